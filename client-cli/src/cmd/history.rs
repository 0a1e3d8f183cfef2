//! `toron history`: a document's changes, or a session's timeline in the debate's terms.

use toron_protocol::AutomergeUrl;

use super::Ctx;

/// `toron history`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A document (`automerge:…` or its id) or a session key.
    target: String,
    /// Only what this participant did (a key such as `P-KIM`).
    #[arg(long)]
    participant: Option<String>,
    /// Only what was done in this role (`activist`, `evaluator`, …).
    #[arg(long)]
    role: Option<String>,
    /// Sessions only: entries of this kind (`annotation`, `triage.status_set`, …).
    #[arg(long)]
    kind: Option<String>,
    /// From this moment: `16:10[:30]` (KST, on --date or the session's own date — a
    /// document's first day), UTC milliseconds, or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Up to this moment (inclusive), written as --since.
    #[arg(long)]
    until: Option<String>,
    /// The day of a clock time in --since/--until, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Which clock --since/--until and the order are on: when acts happened (an imported
    /// act's own time; the timeline's order) or when the server received them.
    #[arg(long, value_enum, default_value_t = crate::history::Clock::Happened)]
    clock: crate::history::Clock,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `toron history`: a document's changes or a session's timeline, filtered, as a table or
/// JSON (the text to print).
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let (cli_server, token, limit) = (ctx.cli_server, ctx.token.clone(), ctx.limit);
    let Args {
        target,
        participant,
        role,
        kind,
        since,
        until,
        date,
        clock,
        json,
    } = args;
    let srv = cli_server.to_string();
    let is_doc = target.parse::<AutomergeUrl>().is_ok()
        || target.parse::<toron_protocol::DocumentId>().is_ok();
    let (rows, text) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let api = crate::admin::Admin::new(&srv, token, limit);
        let mut rows = if is_doc {
            crate::history::history(&api, &target, participant.as_deref(), role.as_deref())?
        } else {
            let f = crate::history::TimelineFilter {
                participant,
                role,
                kind,
                ..Default::default()
            };
            crate::history::timeline(&api, &target, &f)?
        };
        // A clock time is on the session's own date (a document's first day).
        let day = match (&date, since.is_some() || until.is_some()) {
            (Some(d), _) => Some(d.clone()),
            (None, false) => None,
            (None, true) if is_doc => rows
                .iter()
                .filter_map(|e| clock.of(e))
                .min()
                .and_then(crate::history::kst_date),
            (None, true) => crate::history::session_day(&api, &target)?,
        };
        let bound = |t: &Option<String>| {
            t.as_deref()
                .map(|t| crate::history::parse_time_on(t, day.as_deref()))
                .transpose()
        };
        let (from, to) = (bound(&since)?, bound(&until)?);
        crate::history::on_clock(&mut rows, clock, from, to);
        let t = if is_doc {
            crate::history::table(&rows)
        } else {
            crate::history::timeline_table(&rows)
        };
        Ok((rows, t))
    })
    .await??;
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        out!("{text}");
    }
    Ok(())
}
