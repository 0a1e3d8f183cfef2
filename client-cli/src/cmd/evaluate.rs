//! `toron evaluate`: the caller's evaluation form of a case, filled in and submitted.

use super::{my_session, whoami, Ctx};

/// `toron evaluate`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The case (`C-LIB-HB`).
    case: String,
    /// The session the case is presented in (`S-LIB`).
    #[arg(long)]
    session: String,
    /// A criterion's score: `relevance=4`, or `relevance=na` (not applicable); repeat.
    #[arg(long = "score")]
    scores: Vec<String>,
    /// A criterion's comment: `relevance=수요 근거가 있다.`; repeat.
    #[arg(long = "comment")]
    comments: Vec<String>,
    /// 강점.
    #[arg(long)]
    strengths: Option<String>,
    /// 부족한 점.
    #[arg(long)]
    gaps: Option<String>,
    /// 배울 점.
    #[arg(long)]
    lessons: Option<String>,
    /// 총평.
    #[arg(long)]
    overall: Option<String>,
    /// Submit the form (its scores then count in the report).
    #[arg(long)]
    submit: bool,
}

/// `toron evaluate`: the caller's evaluation form of a case.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        case,
        session,
        scores,
        comments,
        strengths,
        gaps,
        lessons,
        overall,
        submit,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let criteria: Vec<String> = mine["template"]["criteria"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    let mut edit = crate::after::FormEdit {
        submit,
        ..Default::default()
    };
    for s in &scores {
        edit.scores.push(crate::after::score_arg(s)?);
    }
    for c in &comments {
        let (k, t) = c
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--comment {c}: write criterion=text"))?;
        edit.comments.push((k.trim().to_string(), t.to_string()));
    }
    for (k, v) in [
        ("strengths", strengths),
        ("gaps", gaps),
        ("lessons", lessons),
        ("overall", overall),
    ] {
        if let Some(v) = v {
            edit.texts.push((k, v));
        }
    }
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::after::write_evaluation(&mut conn, &case, &me, &criteria, &edit, limit).await?;
    conn.close().await;
    Ok(())
}
