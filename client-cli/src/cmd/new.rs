//! `toron new`: a document created, its URL printed once the server has stored it.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value as Json;

use super::Ctx;

/// `toron new`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A JSON file with the initial content (an object); `-` reads standard input.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let initial = match args.json {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            Some(
                serde_json::from_str::<Json>(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
    };
    let url = crate::commands::new_document(&ctx.server, initial.as_ref(), ctx.limit).await?;
    outln!("{url}");
    Ok(())
}
