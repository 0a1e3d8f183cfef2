//! One module per command of `toron` (as mini-redis's `cmd/`): each holds its arguments (a
//! clap `Args`) and `run`, which does the command with the [`Ctx`] every command shares and
//! writes what it prints. `cli.rs` has the command line's shape and the dispatch.

use std::io::Write;
use std::time::Duration;

use serde_json::Value as Json;

/// Writes to standard output. A reader that went away (`toron replay … | head`) ends the
/// program quietly, as Unix tools do, where `print!` would panic on the broken pipe.
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `print!` that ends quietly when standard output is gone ([`emit`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::cmd::emit(format_args!($($arg)*)) };
}

/// `println!` that ends quietly when standard output is gone ([`emit`]).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cmd::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) mod admin;
pub(crate) mod annotate;
pub(crate) mod at;
pub(crate) mod bench;
pub(crate) mod diff;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod get;
pub(crate) mod history;
pub(crate) mod import;
pub(crate) mod new;
pub(crate) mod promote;
pub(crate) mod react;
pub(crate) mod replay;
pub(crate) mod reply;
pub(crate) mod report;
pub(crate) mod respond;
pub(crate) mod set;
pub(crate) mod storm;
pub(crate) mod triage;
pub(crate) mod watch;

/// One JSON value on a line of its own.
pub(crate) fn print_json(v: &Json) {
    outln!("{v}");
}

/// What every command is run with: the server as given, the caller's token, the sync URL
/// with it, and the time allowed.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) cli_server: &'a str,
    pub(crate) token: Option<String>,
    pub(crate) server: String,
    pub(crate) limit: Duration,
}

/// Of comma-separated servers (a cluster's nodes), the first whose `/healthz` answers `ok`.
pub(crate) async fn first_answering(servers: &str, limit: Duration) -> anyhow::Result<String> {
    let candidates: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let each = (limit / candidates.len().max(1) as u32).max(Duration::from_secs(1));
    let list = candidates.clone();
    let found = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(each))
            .build()
            .new_agent();
        list.into_iter().find(|s| {
            let url = format!("{}/healthz", crate::admin::http_base(s));
            agent.get(&url).call().is_ok_and(|r| r.status() == 200)
        })
    })
    .await?;
    found.ok_or_else(|| anyhow::anyhow!("none of the servers answered: {}", candidates.join(", ")))
}

/// The session as the caller sees it (`/api/v1/me/sessions`): its documents, layers, people and
/// the series' departments.
pub(crate) async fn my_session(
    server: &str,
    token: Option<String>,
    session: &str,
    limit: std::time::Duration,
) -> anyhow::Result<Json> {
    let srv = server.to_string();
    let mine = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/me/sessions", None)
    })
    .await??;
    mine["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["key"] == session)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("you take no part in session {session}"))
}

/// The session's notes layers the caller may read.
pub(crate) fn layer_ids(s: &Json) -> Vec<toron_protocol::DocumentId> {
    s["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["doc"].as_str()?.parse().ok())
        .collect()
}

/// The caller's participant key and the role they act in for `session` (a role granted for
/// the session first, else one for its series).
pub(crate) async fn whoami(
    server: &str,
    token: Option<String>,
    session: &str,
    limit: std::time::Duration,
) -> anyhow::Result<(String, String)> {
    let srv = server.to_string();
    let me = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
    })
    .await??;
    let who = me["participant"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("annotating needs a participant's token (--token)"))?
        .to_string();
    let roles = me["roles"].as_array().cloned().unwrap_or_default();
    let pick = |scope: &str| {
        roles.iter().find_map(|g| {
            (g["scope"] == scope && (scope == "series" || g["name"] == session))
                .then(|| g["role"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let role = pick("session")
        .or_else(|| pick("series"))
        .ok_or_else(|| anyhow::anyhow!("you hold no role in session {session}"))?;
    Ok((who, role))
}
