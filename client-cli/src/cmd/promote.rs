//! `toron promote`: annotations promoted to a finding of the report.

use serde_json::json;

use super::{layer_ids, my_session, whoami, Ctx};

/// `toron promote`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The session the annotations are in (`S-LIB`).
    #[arg(long)]
    session: String,
    /// An annotation to promote, by id or ref (`L-04`); give two or more to merge duplicates
    /// into one finding.
    #[arg(long = "from", required = true)]
    from: Vec<String>,
    /// gap, lesson, recommendation or open_question.
    #[arg(long = "type")]
    kind: String,
    /// The finding's title (the department tables show it).
    #[arg(long)]
    title: String,
    /// A department it is addressed to, by key or name (the first leads); repeat for more.
    #[arg(long = "department", required = true)]
    departments: Vec<String>,
    /// high, medium or low.
    #[arg(long, default_value = "medium")]
    priority: String,
    /// What was found, in a sentence or two.
    #[arg(long)]
    text: Option<String>,
    /// What the department should do.
    #[arg(long)]
    recommendation: Option<String>,
    /// A pledge (공약) it concerns, by key; repeat for more.
    #[arg(long = "pledge")]
    pledges: Vec<String>,
    /// The finding's key (by default the next `F-{session}-NN`).
    #[arg(long)]
    key: Option<String>,
}

/// `toron promote`: a finding from annotations.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let Args {
        session,
        from,
        kind,
        title,
        departments,
        priority,
        text,
        recommendation,
        pledges,
        key,
    } = args;
    if !crate::after::FINDING_TYPES.contains(&kind.as_str()) {
        anyhow::bail!(
            "--type is one of {}",
            crate::after::FINDING_TYPES.join(", ")
        );
    }
    if !matches!(priority.as_str(), "high" | "medium" | "low") {
        anyhow::bail!("--priority is high, medium or low");
    }
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let series = mine["series"].as_str().unwrap_or_default().to_string();
    let departments = crate::annotate::resolve_departments(&departments, &mine["departments"])?;
    let layers = layer_ids(&mine);
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    let mut report_doc = crate::after::report_of(&mut conn, &series, limit).await?;
    let report = toron_protocol::json::doc_to_json(&report_doc.doc);
    let all = crate::after::annotations_in(&mut conn, &layers, limit).await?;
    let mut sources = Vec::new();
    let mut ids = Vec::new();
    let mut cases = Vec::new();
    let mut from_government = None;
    for given in &from {
        let (id, a) = crate::after::pick(&all, given, &session)?;
        let name = a["ref"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| id.clone());
        sources.push(json!({ "kind": "annotation", "ref": name }));
        cases.extend(
            a["subject_cases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string)),
        );
        from_government = from_government.or(a["source_government"].as_str().map(str::to_string));
        ids.push(id);
    }
    let key = key.unwrap_or_else(|| crate::after::next_finding_key(&report, &session));
    let mut finding = json!({
        "key": key, "type": kind, "title": toron_domain::anchor::nfc(&title),
        "text": text.as_deref().map(toron_domain::anchor::nfc).unwrap_or_default(),
        "departments": departments, "priority": priority, "pledges": pledges,
        "sources": sources, "promoted_by": me, "promoted_at": crate::annotate::now_kst(),
    });
    if let Some(f) = mine["field"].as_str() {
        finding["fields"] = json!([f]);
    }
    if let Some(r) = recommendation {
        finding["recommendation"] = json!(toron_domain::anchor::nfc(&r));
    }
    cases.dedup();
    if let Some(c) = cases.first() {
        finding["case"] = json!(c);
    }
    if let (Some(g), "lesson") = (&from_government, kind.as_str()) {
        finding["source_government"] = json!(g);
    }
    crate::after::write_finding(&mut conn, &mut report_doc, &series, &finding, limit).await?;
    // Each source is decided: accepted into the finding (the queue and the report say so).
    let entry = crate::after::accepted_into(&me, &key)?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    crate::annotate::set_triages(&mut conn, &session, &ids, &entry, limit).await?;
    conn.close().await;
    outln!("{key}");
    Ok(())
}
