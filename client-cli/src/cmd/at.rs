//! `toron at`: the document as it was after change number SEQ, or at a moment.

use toron_protocol::AutomergeUrl;

use super::Ctx;

/// `toron at`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
    /// After change number SEQ of the document.
    #[arg(long, conflicts_with = "time", required_unless_present = "time")]
    seq: Option<u64>,
    /// `17:30[:15]` (KST, on --date or the document's first day), UTC milliseconds, or
    /// RFC 3339 such as 2026-11-26T17:30:00+09:00.
    #[arg(long)]
    time: Option<String>,
    /// The day of a clock time, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Which clock --time is on: when acts happened (an imported act's own time; the
    /// timeline's order) or when the server received them.
    #[arg(long, value_enum, default_value_t = crate::history::Clock::Happened)]
    clock: crate::history::Clock,
}

/// `toron at`: the document after change SEQ or at a moment.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        url,
        seq,
        time,
        date,
        clock,
    } = args;
    let (srv, token, url) = (
        ctx.cli_server.to_string(),
        ctx.token.clone(),
        url.to_string(),
    );
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let api = crate::admin::Admin::new(&srv, token, limit);
        let time = match time {
            None => None,
            Some(t) => {
                // A clock time without a day means the document's first day, on
                // the same clock.
                let day = match date {
                    Some(d) => Some(d),
                    None => crate::history::history(&api, &url, None, None)?
                        .first()
                        .and_then(|e| clock.of(e))
                        .and_then(crate::history::kst_date),
                };
                Some(crate::history::parse_time_on(&t, day.as_deref())?)
            }
        };
        crate::history::state_at(&api, &url, seq, time, clock)
    })
    .await??;
    outln!("{}", serde_json::to_string_pretty(&answer["state"])?);
    Ok(())
}
