//! `toron respond`: a department's response to a finding addressed to it.

use super::Ctx;

/// `toron respond`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The finding (`F-LIB-02`).
    finding: String,
    /// The series (`HB-BENCH-2012`).
    #[arg(long)]
    series: String,
    /// Your department's key (`DEP-CULT`).
    #[arg(long)]
    department: String,
    /// accepted, partially_accepted, not_accepted or long_term_review.
    #[arg(long)]
    stance: String,
    /// What the department will do (조치계획).
    #[arg(long)]
    plan: Option<String>,
    /// By when (`2013-06`).
    #[arg(long)]
    due: Option<String>,
    /// Where it stands (추진상황).
    #[arg(long)]
    progress: Option<String>,
}

/// `toron respond`: a department's response to a finding.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        finding,
        series,
        department,
        stance,
        plan,
        due,
        progress,
    } = args;
    let srv = ctx.cli_server.to_string();
    let token = ctx.token.clone();
    let me = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
    })
    .await??;
    let me = me["participant"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("responding needs a participant's token (--token)"))?
        .to_string();
    let response = crate::after::response(
        &finding,
        &department,
        &me,
        &stance,
        plan.as_deref(),
        due.as_deref(),
        progress.as_deref(),
    )?;
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::after::write_response(&mut conn, &series, &department, &finding, &response, limit)
        .await?;
    conn.close().await;
    Ok(())
}
