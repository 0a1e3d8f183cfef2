//! `toron reply`: a reply to an annotation, or a presenter's answer to a question.

use serde_json::Value as Json;

use super::{whoami, Ctx};

/// `toron reply`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The annotation replied to (its id).
    parent: String,
    /// The session (its key) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// What you say.
    #[arg(long)]
    body: String,
    /// `reply`, or `answer` (a presenter answering a question).
    #[arg(long, default_value = "reply")]
    kind: String,
    /// The top of the thread, if the parent is itself a reply.
    #[arg(long)]
    root: Option<String>,
}

/// `toron reply`: a reply or an answer to an annotation.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        parent,
        session,
        body,
        kind,
        root,
    } = args;
    if !matches!(kind.as_str(), "reply" | "answer") {
        anyhow::bail!("--kind is reply or answer");
    }
    let (me, role) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mut extra = serde_json::Map::new();
    extra.insert("parent".into(), Json::from(parent.clone()));
    extra.insert("root".into(), Json::from(root.unwrap_or(parent)));
    let a = crate::annotate::annotation(
        &crate::annotate::NewAnnotation {
            session: session.clone(),
            kind,
            body: Some(body),
            author: me.clone(),
            author_role: role,
            extra,
        },
        None,
    );
    let aid = a["id"].as_str().unwrap_or_default().to_string();
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::annotate::write_layer(
        &mut conn,
        &session,
        &me,
        "annotations",
        &aid,
        Some(&a),
        limit,
    )
    .await?;
    conn.close().await;
    outln!("{aid}");
    Ok(())
}
