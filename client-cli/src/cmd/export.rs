//! `toron export`: a series or a session as a bundle, or a session's annotations as W3C Web
//! Annotations (JSON-LD).

use std::path::PathBuf;

use super::Ctx;

/// `toron export`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A series key, or a session key.
    key: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// bundle, or w3c (a session's annotations as a Web Annotation collection).
    #[arg(long, default_value = "bundle")]
    format: String,
}

pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let Args {
        key,
        output,
        format,
    } = args;
    let limit = ctx.limit;
    if !matches!(format.as_str(), "bundle" | "w3c") {
        anyhow::bail!("--format is bundle or w3c");
    }
    let (srv, token, k) = (ctx.cli_server.to_string(), ctx.token.clone(), key.clone());
    let mut v =
        tokio::task::spawn_blocking(move || {
            crate::admin::Admin::new(&srv, token, limit.max(std::time::Duration::from_secs(60)))
                .call("GET", &format!("/api/v1/export/{k}"), None)
        })
        .await??;
    if format == "w3c" {
        let bundle = toron_domain::integrity::read_export(v).map_err(anyhow::Error::msg)?;
        if !bundle.sessions.iter().any(|s| s.key == key) {
            anyhow::bail!("`{key}` is not a session: W3C exports one session's annotations");
        }
        // The annotations' sources name the server as participants reach it: its
        // `--public-url`, else the address this command was given.
        let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
        let me = tokio::task::spawn_blocking(move || {
            crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
        })
        .await??;
        let base = me["public_url"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| crate::admin::http_base(ctx.cli_server));
        v = toron_domain::w3c::export(&bundle, &key, &base).map_err(anyhow::Error::msg)?;
    }
    let text = serde_json::to_string_pretty(&v)? + "\n";
    match output {
        Some(p) => std::fs::write(&p, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
        None => out!("{text}"),
    }
    Ok(())
}
