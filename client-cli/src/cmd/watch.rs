//! `toron watch`: a document printed, then again after each change.

use toron_protocol::AutomergeUrl;

use super::{print_json, Ctx};

/// `toron watch`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
    /// Stop after this many changes.
    #[arg(long)]
    count: Option<u64>,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    crate::commands::watch_document(&ctx.server, &args.url, args.count, ctx.limit, print_json).await
}
