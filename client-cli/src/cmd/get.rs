//! `toron get`: a document printed as JSON.

use toron_protocol::AutomergeUrl;

use super::{print_json, Ctx};

/// `toron get`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    print_json(&crate::commands::get_document(&ctx.server, &args.url, ctx.limit).await?);
    Ok(())
}
