//! `toron import`: a debate bundle (or a CSV, or W3C annotations) checked, then written.

use super::Ctx;

/// `toron import`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The bundle (JSON), or a CSV file with --csv.
    bundle: std::path::PathBuf,
    /// Check the bundle and show what would be created, without writing.
    #[arg(long)]
    dry_run: bool,
    /// The file is CSV of this kind (columns in docs/bundle-format.md), joined to --series.
    #[arg(long, requires = "series")]
    csv: Option<crate::import::CsvKind>,
    /// `w3c`: the file is W3C Web Annotations (JSON-LD, as `toron export --format w3c`
    /// writes), brought into the notes of --session, each re-anchored by its quote.
    #[arg(long, requires = "session", value_parser = ["bundle", "w3c"])]
    format: Option<String>,
    /// The session W3C annotations join.
    #[arg(long)]
    session: Option<String>,
    /// The series a CSV file adds to.
    #[arg(long)]
    series: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Refuse the bundle if anything in it is suspicious (an evaluation changed after it
    /// was submitted, a reply dated before its parent, …), not only if it is invalid.
    #[arg(long)]
    strict: bool,
    /// Also move sessions that exist already to the phase the bundle gives them (without
    /// it only the sessions this import creates get their phase: a re-import never moves
    /// a live session back).
    #[arg(long)]
    set_phases: bool,
}

/// `toron import`: a bundle or a CSV checked and written.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        bundle,
        dry_run,
        csv,
        series,
        json,
        set_phases,
        strict,
        format,
        session,
    } = args;
    let opts = crate::import::Options {
        dry_run,
        set_phases,
        strict,
    };
    let summary = match (csv, series) {
        _ if format.as_deref() == Some("w3c") => {
            let session = session.unwrap_or_default();
            crate::import::run_w3c(
                ctx.cli_server,
                ctx.token.clone(),
                &bundle,
                &session,
                opts,
                limit,
            )
            .await?
        }
        (Some(kind), Some(series)) => {
            crate::import::run_csv(
                ctx.cli_server,
                ctx.token.clone(),
                &bundle,
                kind,
                &series,
                opts,
                limit,
            )
            .await?
        }
        _ => crate::import::run(ctx.cli_server, ctx.token.clone(), &bundle, opts, limit).await?,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        out!("{}", crate::import::summary_table(&summary));
    }
    Ok(())
}
