//! `toron annotate`: a passage annotated in the caller's notes layer of the session.

use serde_json::Value as Json;

use super::{my_session, whoami, Ctx};

/// `toron annotate`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The document: a key such as `case:C-LIB-HB` or an `automerge:` URL.
    doc: String,
    /// Where the text is: `sections.method`, `criteria.sustainability.text`, `overall`…
    #[arg(long)]
    path: String,
    /// The exact passage (NFC-normalised; Korean text as typed).
    #[arg(long)]
    quote: String,
    /// Text just before / after the passage, to choose between repeats.
    #[arg(long)]
    prefix: Option<String>,
    /// Text just after the passage.
    #[arg(long)]
    suffix: Option<String>,
    /// comment, question, highlight, strength, gap, lesson, score.
    #[arg(long, default_value = "comment")]
    kind: String,
    /// What you say about the passage.
    #[arg(long)]
    body: Option<String>,
    /// The session (its key, `S-LIB`) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// gap/strength/score: the template criterion; score: its value 1–5.
    #[arg(long)]
    criterion: Option<String>,
    /// score: the value, 1 to 5.
    #[arg(long)]
    value: Option<u8>,
    /// gap/lesson: departments concerned (comma-separated keys).
    #[arg(long, value_delimiter = ',')]
    departments: Vec<String>,
    /// lesson: the government it comes from.
    #[arg(long)]
    source_government: Option<String>,
    /// gap: high, medium or low.
    #[arg(long)]
    severity: Option<String>,
}

/// The fields of an annotation beyond its kind and body, as `toron annotate` was given them.
fn annotation_extras(
    kind: &str,
    criterion: Option<String>,
    value: Option<u8>,
    source_government: Option<String>,
    severity: Option<String>,
    departments: Vec<String>,
) -> serde_json::Map<String, Json> {
    let mut extra = serde_json::Map::new();
    for (k, v) in [
        ("criterion", criterion.map(Json::from)),
        ("value", value.map(Json::from)),
        ("source_government", source_government.map(Json::from)),
        ("severity", severity.map(Json::from)),
        (
            "departments",
            (!departments.is_empty()).then(|| Json::from(departments)),
        ),
    ] {
        if let Some(v) = v {
            extra.insert(k.into(), v);
        }
    }
    if kind == "score" {
        extra.insert("score_class".into(), Json::from("reference"));
    }
    extra
}

/// `toron annotate`: a passage of a document annotated in the caller's notes layer of the
/// session; the annotation's id.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let (cli_server, token, server, limit) = (
        ctx.cli_server,
        ctx.token.clone(),
        ctx.server.as_str(),
        ctx.limit,
    );
    let Args {
        doc,
        path,
        quote,
        prefix,
        suffix,
        kind,
        body,
        session,
        criterion,
        value,
        departments,
        source_government,
        severity,
    } = args;
    const KINDS: [&str; 7] = [
        "comment",
        "question",
        "highlight",
        "strength",
        "gap",
        "lesson",
        "score",
    ];
    if !KINDS.contains(&kind.as_str()) {
        anyhow::bail!("--kind is one of {}", KINDS.join(", "));
    }
    if kind == "score" && !(criterion.is_some() && value.is_some_and(|v| (1..=5).contains(&v))) {
        anyhow::bail!("a score needs --criterion and --value from 1 to 5");
    }
    let (me, role) = whoami(cli_server, token.clone(), &session, limit).await?;
    // Departments by key or by name, as the series lists them.
    let departments = if departments.is_empty() {
        departments
    } else {
        let s = my_session(cli_server, token.clone(), &session, limit).await?;
        crate::annotate::resolve_departments(&departments, &s["departments"])?
    };
    let id = crate::annotate::document_id(&doc)?;
    let mut conn = crate::sync_client::Connection::connect(server, limit).await?;
    let mut target = conn.find(id, limit).await?;
    let doc_key = if doc.parse::<toron_domain::policy::DocKey>().is_ok() {
        doc.clone()
    } else {
        id.to_string()
    };
    let t = crate::annotate::text_target(
        &mut target.doc,
        &doc_key,
        &crate::annotate::split_path(&path),
        &quote,
        prefix.as_deref(),
        suffix.as_deref(),
    )?;
    let extra = annotation_extras(
        &kind,
        criterion,
        value,
        source_government,
        severity,
        departments,
    );
    let a = crate::annotate::annotation(
        &crate::annotate::NewAnnotation {
            session: session.clone(),
            kind,
            body,
            author: me.clone(),
            author_role: role,
            extra,
        },
        Some(t),
    );
    let aid = a["id"].as_str().unwrap_or_default().to_string();
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
