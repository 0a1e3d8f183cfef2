//! `toron report`: the final report of a series or a session, in a format and a language.

use toron_domain::report::{Format, Lang};

use super::Ctx;

/// `toron report`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A series key, or a session key.
    key: String,
    /// html, md (Markdown), csv, xlsx (the department tables), hwpx (한글) or pdf; the
    /// last three are files: they need --output.
    #[arg(long, default_value_t = Format::Html)]
    format: Format,
    /// ko (Korean) or en (English).
    #[arg(long, default_value_t = Lang::Ko)]
    lang: Lang,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    /// Only this department's part (its key): what its department reviewers may read.
    #[arg(long)]
    department: Option<String>,
    /// Where the report's links lead, for a file mailed to readers who reach the server
    /// by another address (`https://toron.example.go.kr`); by default the --server's.
    #[arg(long)]
    base_url: Option<String>,
}

/// `toron report`: the series' report in a format and language.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        key,
        format,
        lang,
        output,
        department,
        base_url,
    } = args;
    if format.is_file() && output.is_none() {
        anyhow::bail!("a .{format} report is a file: name it with --output (-o) FILE.{format}");
    }
    let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit.max(std::time::Duration::from_secs(60)))
            .get_bytes(&format!(
                "/api/v1/reports/{key}?format={format}&lang={lang}{}{}",
                department
                    .map(|d| format!(
                        "&department={}",
                        url::form_urlencoded::byte_serialize(d.as_bytes()).collect::<String>()
                    ))
                    .unwrap_or_default(),
                base_url
                    .map(|b| format!(
                        "&base={}",
                        url::form_urlencoded::byte_serialize(b.as_bytes()).collect::<String>()
                    ))
                    .unwrap_or_default()
            ))
    })
    .await??;
    match output {
        Some(p) => std::fs::write(&p, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
        None => out!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}
