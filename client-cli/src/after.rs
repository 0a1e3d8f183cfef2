//! The work after the session, each an attributed change of its document in the log:
//! `toron promote` turns accepted annotations into a finding of the series' report (its
//! organizers), `toron respond` records a department's response to a finding addressed to it
//! (the department's reviewers), `toron evaluate` fills in and submits the caller's evaluation
//! form (the evaluator, while the session's phase allows it). The server's rules decide who
//! may; a refusal is told as the server tells it, and the report shows each change at once.

use std::time::Duration;

use anyhow::{bail, Context};
use automerge::{transaction::Transactable, ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use toron_domain::policy::DocKey;
use toron_protocol::json::put_json;

use crate::annotate::{map_at, now_kst, open_begun, triage_entry};
use crate::sync_client::{ClientError, Connection, DocSync};

/// The finding types of the report.
pub const FINDING_TYPES: &[&str] = toron_domain::vocab::FindingType::NAMES;
/// A department's stance on a finding.
pub const STANCES: &[&str] = toron_domain::vocab::Stance::NAMES;

/// Every annotation of the session's layers the caller may read, by id (one pass: a
/// connection finds a document once).
pub async fn annotations_in(
    conn: &mut Connection,
    layers: &[toron_protocol::DocumentId],
    limit: Duration,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut all = serde_json::Map::new();
    for id in layers {
        let d = match conn.find(*id, limit).await {
            Ok(d) => d,
            Err(ClientError::Unavailable(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let layer = toron_protocol::json::doc_to_json(&d.doc);
        if let Some(anns) = layer["annotations"].as_object() {
            all.extend(anns.clone());
        }
    }
    Ok(all)
}

/// The annotation `given` names, by id or by the ref people see (`L-04`), among `all`.
pub fn pick<'a>(
    all: &'a serde_json::Map<String, Value>,
    given: &str,
    session: &str,
) -> anyhow::Result<(String, &'a Value)> {
    if let Some(a) = all.get(given) {
        return Ok((given.to_string(), a));
    }
    all.iter()
        .find(|(_, a)| a["ref"] == given)
        .map(|(id, a)| (id.clone(), a))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no annotation `{given}` in session {session} (neither an id nor a ref)"
            )
        })
}

/// The report document of `series`, or why the caller cannot read it.
pub async fn report_of(
    conn: &mut Connection,
    series: &str,
    limit: Duration,
) -> anyhow::Result<DocSync> {
    let key = DocKey::Report {
        series: series.to_string(),
    };
    match conn.find(key.document_id(), limit).await {
        Ok(d) => Ok(d),
        Err(ClientError::Unavailable(_)) => bail!(
            "the report of series {series} is not yours to write: its organizers promote findings"
        ),
        Err(e) => Err(e.into()),
    }
}

/// The next free key for a finding of `session` (`F-S-LIB-03`), past every key the report has.
pub fn next_finding_key(report: &Value, session: &str) -> String {
    let prefix = format!("F-{session}-");
    let taken = report["findings"].as_object();
    let n = (1..)
        .find(|n| !taken.is_some_and(|m| m.contains_key(&format!("{prefix}{n:02}"))))
        .unwrap_or(1);
    format!("{prefix}{n:02}")
}

/// Writes `finding` (its JSON, `key` inside) into the report `d` of `series` (as
/// [`report_of`] found it), which must not hold that key yet, and waits until the server has
/// it.
pub async fn write_finding(
    conn: &mut Connection,
    d: &mut DocSync,
    series: &str,
    finding: &Value,
    limit: Duration,
) -> anyhow::Result<()> {
    let key = DocKey::Report {
        series: series.to_string(),
    };
    if d.doc.get(ROOT, "schema")?.is_none() {
        d.doc.put(ROOT, "schema", toron_domain::schema::tag(&key))?;
        d.doc.put(ROOT, "status", "drafting")?;
    }
    let findings = map_at(&mut d.doc, "findings")?;
    let fkey = finding["key"].as_str().unwrap_or_default();
    if d.doc.get(&findings, fkey)?.is_some() {
        bail!("the report already has a finding {fkey}: choose another --key");
    }
    put_json(&mut d.doc, &findings, fkey.into(), finding)?;
    d.doc.commit();
    conn.push(d, limit)
        .await
        .with_context(|| format!("writing finding {fkey} into {key}"))
}

/// Records `response` (its JSON) at `responses/{finding}` of `response:{series}:{department}`
/// and waits until the server has it.
pub async fn write_response(
    conn: &mut Connection,
    series: &str,
    department: &str,
    finding: &str,
    response: &Value,
    limit: Duration,
) -> anyhow::Result<()> {
    let key = DocKey::Response {
        series: series.to_string(),
        department: department.to_string(),
    };
    let mut d = open_begun(conn, &key, &[("department", department)], limit).await?;
    let responses = map_at(&mut d.doc, "responses")?;
    put_json(&mut d.doc, &responses, finding.into(), response)?;
    d.doc.commit();
    conn.push(&mut d, limit)
        .await
        .with_context(|| format!("writing the response to {finding} into {key}"))
}

/// A department's response to a finding, by `responder`, now.
pub fn response(
    finding: &str,
    department: &str,
    responder: &str,
    stance: &str,
    plan: Option<&str>,
    due: Option<&str>,
    progress: Option<&str>,
) -> anyhow::Result<Value> {
    if !STANCES.contains(&stance) {
        bail!("--stance is one of {}", STANCES.join(", "));
    }
    let mut v = json!({
        "finding": finding, "department": department, "stance": stance,
        "responder": responder, "at": now_kst(),
    });
    for (k, x) in [("action_plan", plan), ("due", due), ("progress", progress)] {
        if let Some(x) = x {
            v[k] = json!(toron_domain::anchor::nfc(x));
        }
    }
    Ok(v)
}

/// One criterion's score as given on the command line: `relevance=4`, or `relevance=na`.
pub fn score_arg(given: &str) -> anyhow::Result<(String, Option<u8>)> {
    let (c, v) = given
        .split_once('=')
        .with_context(|| format!("--score {given}: write criterion=1…5 or criterion=na"))?;
    let v = match v.trim() {
        "na" | "NA" | "N/A" => None,
        n => match n.parse::<u8>() {
            Ok(x) if (1..=5).contains(&x) => Some(x),
            _ => bail!("--score {given}: a score is 1 to 5, or na"),
        },
    };
    Ok((c.trim().to_string(), v))
}

/// What `toron evaluate` writes into the caller's form.
#[derive(Debug, Default)]
pub struct FormEdit {
    pub scores: Vec<(String, Option<u8>)>,
    pub comments: Vec<(String, String)>,
    /// strengths, gaps, lessons, overall.
    pub texts: Vec<(&'static str, String)>,
    pub submit: bool,
}

/// Fills in `eval:{case}:{me}` and, with `submit`, submits it; waits until the server has it.
/// The criteria must be the template's (`criteria`, the series' template keys).
pub async fn write_evaluation(
    conn: &mut Connection,
    case: &str,
    me: &str,
    criteria: &[String],
    edit: &FormEdit,
    limit: Duration,
) -> anyhow::Result<()> {
    let named = edit
        .scores
        .iter()
        .map(|(c, _)| c)
        .chain(edit.comments.iter().map(|(c, _)| c));
    for c in named {
        if !criteria.is_empty() && !criteria.contains(c) {
            bail!(
                "no criterion `{c}` in the evaluation template (it has {})",
                criteria.join(", ")
            );
        }
    }
    let key = DocKey::Eval {
        case: case.to_string(),
        evaluator: me.to_string(),
    };
    let begun = [("case", case), ("evaluator", me), ("status", "draft")];
    let mut d = open_begun(conn, &key, &begun, limit).await?;
    // A submitted form is changed only after it is reopened: a change of its own, which the
    // timeline shows and the report lists.
    let submitted = matches!(
        d.doc.get(ROOT, "status")?,
        Some((automerge::Value::Scalar(v), _)) if v.as_str() == Some("submitted")
    ) || matches!(
        d.doc.get(ROOT, "status")?,
        Some((automerge::Value::Object(ObjType::Text), o)) if d.doc.text(&o)? == "submitted"
    );
    if submitted {
        d.doc.put(ROOT, "status", "draft")?;
        d.doc.commit();
    }
    let all = map_at(&mut d.doc, "criteria")?;
    let criterion =
        |doc: &mut automerge::AutoCommit, c: &str| -> anyhow::Result<automerge::ObjId> {
            Ok(match doc.get(&all, c)? {
                Some((automerge::Value::Object(ObjType::Map), o)) => o,
                _ => doc.put_object(&all, c, ObjType::Map)?,
            })
        };
    for (c, v) in &edit.scores {
        let o = criterion(&mut d.doc, c)?;
        match v {
            Some(x) => d.doc.put(&o, "score", i64::from(*x))?,
            None => d.doc.put(&o, "score", automerge::ScalarValue::Null)?,
        }
    }
    for (c, t) in &edit.comments {
        let o = criterion(&mut d.doc, c)?;
        d.doc.put(&o, "text", toron_domain::anchor::nfc(t))?;
    }
    for (k, t) in &edit.texts {
        d.doc.put(ROOT, *k, toron_domain::anchor::nfc(t))?;
    }
    if edit.submit {
        d.doc.put(ROOT, "status", "submitted")?;
        d.doc.put(ROOT, "submitted_at", now_kst())?;
    }
    d.doc.commit();
    conn.push(&mut d, limit)
        .await
        .with_context(|| format!("writing {key}"))
}

/// The triage entry that records an annotation's promotion into `finding`.
pub fn accepted_into(by: &str, finding: &str) -> anyhow::Result<Value> {
    triage_entry("accepted", by, None, Some(finding))
}
