//! `toron set`: one value of a document set, as an attributed change.

use serde_json::Value as Json;
use toron_protocol::AutomergeUrl;

use super::Ctx;

/// `toron set`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
    /// Where: `a.b.0` or `/a/b/0`.
    path: String,
    /// JSON (`"text"`, `3`, `{"k": 1}`), or else taken as a string.
    value: String,
    /// Start the document if the server has no content for it yet (a registered, empty
    /// document such as your own `notes:` layer).
    #[arg(long)]
    create: bool,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let Args {
        url,
        path,
        value,
        create,
    } = args;
    let value = serde_json::from_str(&value).unwrap_or(Json::String(value));
    crate::commands::set_value(&ctx.server, &url, &path, &value, create, ctx.limit).await?;
    Ok(())
}
