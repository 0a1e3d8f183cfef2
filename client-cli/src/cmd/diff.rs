//! `toron diff`: what changed between two change numbers of a document.

use toron_protocol::AutomergeUrl;

use super::Ctx;

/// `toron diff`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
    /// A change number of the document.
    from: u64,
    /// A later change number.
    to: u64,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let Args { url, from, to } = args;
    let (srv, token, limit, url) = (
        ctx.cli_server.to_string(),
        ctx.token.clone(),
        ctx.limit,
        url.to_string(),
    );
    let answer = tokio::task::spawn_blocking(move || {
        crate::history::diff(
            &crate::admin::Admin::new(&srv, token, limit),
            &url,
            from,
            to,
        )
    })
    .await??;
    outln!("{}", serde_json::to_string_pretty(&answer["patches"])?);
    Ok(())
}
