//! `toron react`: 공감 given to an annotation, or taken back.

use super::{whoami, Ctx};

/// `toron react`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The annotation (its id).
    annotation: String,
    /// The session (its key) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// Take the agreement back.
    #[arg(long)]
    remove: bool,
}

/// `toron react`: 공감 given or taken back.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        annotation,
        session,
        remove,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    let v = serde_json::json!({ "kind": "agree", "at": crate::annotate::triage_entry("open", &me, None, None)?["at"] });
    crate::annotate::write_layer(
        &mut conn,
        &session,
        &me,
        "reactions",
        &annotation,
        (!remove).then_some(&v),
        limit,
    )
    .await?;
    conn.close().await;
    Ok(())
}
