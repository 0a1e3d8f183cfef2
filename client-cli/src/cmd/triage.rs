//! `toron triage`: a root annotation's status in the session's triage.

use super::{layer_ids, my_session, whoami, Ctx};

/// `toron triage`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The annotation: its id, or the ref people see (`L-04`, `W-04`).
    annotation: String,
    /// The session (its key, `S-LIB`).
    #[arg(long)]
    session: String,
    /// open, answered, accepted, merged, noted, deferred, withdrawn.
    #[arg(long)]
    status: String,
    /// Why, in a word (shown in the queue and the report).
    #[arg(long)]
    note: Option<String>,
    /// accepted: the finding of the report it went into (`F-LIB-01`).
    #[arg(long)]
    finding: Option<String>,
}

/// `toron triage`: an item's status in the session's triage.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        annotation,
        session,
        status,
        note,
        finding,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let entry = crate::annotate::triage_entry(&status, &me, note.as_deref(), finding.as_deref())?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let layers = layer_ids(&mine);
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    if let (Some(f), Some(series)) = (&finding, mine["series"].as_str()) {
        crate::annotate::known_finding(&mut conn, series, f, limit).await?;
    }
    let id = crate::annotate::resolve_annotation(&mut conn, &layers, &annotation, &session, limit)
        .await?;
    crate::annotate::set_triage(&mut conn, &session, &id, &entry, limit).await?;
    conn.close().await;
    Ok(())
}
