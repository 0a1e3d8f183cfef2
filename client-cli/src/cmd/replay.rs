//! `toron replay`: a session played back, its timeline printed as it plays.

use super::Ctx;

/// `toron replay`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The session (its key, `S-LIB`).
    session: String,
    /// 1, 4, 16… times real time, or `max` for as fast as possible.
    #[arg(long, default_value = "1")]
    speed: String,
    /// Start at `17:00[:00]` (KST, on --date or the session's first day), UTC
    /// milliseconds or RFC 3339; default: the session's first entry.
    #[arg(long)]
    from: Option<String>,
    /// The day of a clock time, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Print each entry as JSON (one per line).
    #[arg(long)]
    json: bool,
}

/// `toron replay`: the session's timeline played back.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        session,
        speed,
        from,
        date,
        json,
    } = args;
    let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
    let n = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let from = match from {
            None => None,
            Some(f) => {
                // The timeline is on the clock of what happened: a clock time
                // without a day is on the session's own date.
                let day = match date {
                    Some(d) => Some(d),
                    None => crate::history::session_day(
                        &crate::admin::Admin::new(&srv, token.clone(), limit),
                        &session,
                    )?,
                };
                Some(crate::history::parse_time_on(&f, day.as_deref())?)
            }
        };
        crate::history::replay(&srv, token.as_deref(), &session, &speed, from, |e| {
            if json {
                outln!("{e}");
            } else {
                outln!("{}", crate::history::timeline_line(e));
            }
        })
    })
    .await??;
    eprintln!("replayed {n} entries");
    Ok(())
}
