//! `toron annotate`, `reply`, `react`, `triage`: what a person in the hall does, for scripts.
//!
//! An annotation goes into the caller's own notes layer (`notes:{session}:{me}`, one writer
//! per document); a text anchor stores the quote with its context, the position in code points,
//! an Automerge cursor pair and the target's heads, computed on the copy of the target the
//! caller holds — so it stays attached while others edit ([`toron_domain::anchor`]).

use std::time::Duration;

use anyhow::{bail, Context};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use toron_domain::anchor::{self, Position, Resolution};
use toron_domain::policy::DocKey;
use toron_protocol::json::put_json;
use toron_protocol::DocumentId;

use crate::sync_client::{ClientError, Connection, DocSync};

/// What to anchor and say.
#[derive(Debug, Clone)]
pub struct NewAnnotation {
    pub session: String,
    pub kind: String,
    pub body: Option<String>,
    /// `author` and `author_role`: the caller and the role they annotate in.
    pub author: String,
    pub author_role: String,
    pub extra: serde_json::Map<String, Value>,
}

/// A document key (`case:C-1`) or an `automerge:` URL / id.
pub fn document_id(doc: &str) -> anyhow::Result<DocumentId> {
    if let Ok(k) = doc.parse::<DocKey>() {
        return Ok(k.document_id());
    }
    doc.trim_start_matches("automerge:")
        .parse()
        .with_context(|| {
            format!("`{doc}` is neither a document key like case:C-1 nor a document id")
        })
}

/// The text object at a dotted or slashed path (`sections.method`).
pub fn text_at(doc: &AutoCommit, path: &[String]) -> anyhow::Result<ObjId> {
    let mut obj = ROOT;
    for p in path {
        obj = match doc.get(&obj, p.as_str())? {
            Some((_, o)) => o,
            None => bail!("there is nothing at `{}`", path.join(".")),
        };
    }
    if !matches!(doc.object_type(&obj), Ok(ObjType::Text)) {
        bail!("`{}` is not a text", path.join("."));
    }
    Ok(obj)
}

pub fn split_path(path: &str) -> Vec<String> {
    path.split(['.', '/'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The target of a text anchor, computed on `target` (the caller's copy of the document).
/// The quote is NFC-normalised and must occur in the text; prefix and suffix choose between
/// repeats.
pub fn text_target(
    target: &mut AutoCommit,
    doc_key: &str,
    path: &[String],
    exact: &str,
    prefix: Option<&str>,
    suffix: Option<&str>,
) -> anyhow::Result<Value> {
    let obj = text_at(target, path)?;
    let text = target.text(&obj)?;
    let wanted = anchor::Quote {
        exact: anchor::nfc(exact),
        prefix: prefix.map(anchor::nfc).unwrap_or_default(),
        suffix: suffix.map(anchor::nfc).unwrap_or_default(),
    };
    let p: Position = match anchor::locate(&text, &wanted, None) {
        Resolution::Orphaned => bail!(
            "«{}» is not in {doc_key} at {}",
            wanted.exact,
            path.join(".")
        ),
        r => r.range().unwrap_or(Position { start: 0, end: 0 }),
    };
    let quote = anchor::quote_of(&text, p, 16).context("the quote's range")?;
    let mut t = json!({
        "type": "text_range", "doc": doc_key, "path": path,
        "quote": quote, "position": p,
        "heads": target.get_heads().iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    });
    let len = text.chars().count();
    // A cursor names a character; the end of the text has none, so the end cursor is then
    // left out and the quote carries the anchor.
    let start = target.get_cursor(&obj, p.start, None);
    let end = (p.end < len).then(|| target.get_cursor(&obj, p.end, None));
    if let (Ok(s), Some(Ok(e))) = (start, end) {
        // The text form of a cursor, which the JavaScript library reads and writes too.
        t["cursor"] = json!({ "start": s.to_string(), "end": e.to_string() });
    }
    Ok(t)
}

/// Resolves a stored text target against a document (now, or at `heads`).
pub fn resolve_target(doc: &AutoCommit, target: &Value) -> anyhow::Result<Resolution> {
    let path: Vec<String> =
        serde_json::from_value(target["path"].clone()).context("target.path")?;
    let obj = text_at(doc, &path)?;
    let quote: anchor::Quote =
        serde_json::from_value(target["quote"].clone()).context("target.quote")?;
    let position: Option<Position> = serde_json::from_value(target["position"].clone()).ok();
    let cursor = |k: &str| -> Option<automerge::Cursor> {
        automerge::Cursor::try_from(target["cursor"][k].as_str()?).ok()
    };
    let cursors = cursor("start").zip(cursor("end"));
    Ok(anchor::resolve(
        doc,
        &obj,
        cursors.as_ref().map(|(s, e)| (s, e)),
        &quote,
        position,
        None,
    ))
}

pub(crate) fn now_kst() -> String {
    let kst = chrono::FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("valid"));
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&kst)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The annotation's JSON (a new id, the time, the caller as author).
pub fn annotation(a: &NewAnnotation, target: Option<Value>) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let mut v = json!({
        "id": id, "session": a.session, "kind": a.kind,
        "author": a.author, "author_role": a.author_role,
        "created_at": now_kst(), "capture": "live_app", "visibility": "session",
        "source": { "kind": "live" },
    });
    if let Some(b) = &a.body {
        v["body"] = json!(anchor::nfc(b));
    }
    if let Some(t) = target {
        v["target"] = t;
    }
    for (k, x) in &a.extra {
        v[k] = x.clone();
    }
    v
}

pub(crate) async fn open(
    conn: &mut Connection,
    id: DocumentId,
    limit: Duration,
) -> anyhow::Result<DocSync> {
    match conn.find(id, limit).await {
        Ok(d) => Ok(d),
        Err(ClientError::Unavailable(_)) => Ok(DocSync::new(id, AutoCommit::new())),
        Err(e) => Err(e.into()),
    }
}

/// The document `key` as the server has it, begun with its schema tag and `fields` (root
/// scalars) if it is still empty.
pub(crate) async fn open_begun(
    conn: &mut Connection,
    key: &DocKey,
    fields: &[(&str, &str)],
    limit: Duration,
) -> anyhow::Result<DocSync> {
    let mut d = open(conn, key.document_id(), limit).await?;
    if d.doc.get(ROOT, "schema")?.is_none() {
        d.doc.put(ROOT, "schema", toron_domain::schema::tag(key))?;
        for (k, v) in fields {
            d.doc.put(ROOT, *k, *v)?;
        }
    }
    Ok(d)
}

pub(crate) fn map_at(doc: &mut AutoCommit, key: &str) -> anyhow::Result<ObjId> {
    match doc.get(ROOT, key)? {
        Some((automerge::Value::Object(ObjType::Map), o)) => Ok(o),
        _ => Ok(doc.put_object(ROOT, key, ObjType::Map)?),
    }
}

/// Writes `value` at `collection/key` of the caller's layer `notes:{session}:{me}` (starting
/// the layer if it is empty) and waits until the server has it.
pub async fn write_layer(
    conn: &mut Connection,
    session: &str,
    me: &str,
    collection: &str,
    key: &str,
    value: Option<&Value>,
    limit: Duration,
) -> anyhow::Result<()> {
    let layer = DocKey::Notes {
        session: session.to_string(),
        participant: me.to_string(),
    };
    let mut d = open_begun(conn, &layer, &[("session", session), ("owner", me)], limit).await?;
    map_at(&mut d.doc, "annotations")?;
    let coll = map_at(&mut d.doc, collection)?;
    match value {
        Some(v) => put_json(&mut d.doc, &coll, key.into(), v)?,
        None => d.doc.delete(&coll, key)?,
    }
    d.doc.commit();
    conn.push(&mut d, limit)
        .await
        .with_context(|| format!("writing {layer}"))
}

/// The id of the annotation `given` names in the notes layers `layers`: its id, or the ref
/// people see in the report and the web client (`W-04`). An annotation nobody has is an
/// error naming it, not a triage item for nothing.
pub async fn resolve_annotation(
    conn: &mut Connection,
    layers: &[DocumentId],
    given: &str,
    session: &str,
    limit: Duration,
) -> anyhow::Result<String> {
    let all = crate::after::annotations_in(conn, layers, limit).await?;
    crate::after::pick(&all, given, session).map(|(id, _)| id)
}

/// `Ok` when `finding` is a finding of `series`' report, read from `report:{series}` (which
/// only the series' organizers may read: a finding is linked by them); otherwise an error
/// naming it, with the findings there are.
pub async fn known_finding(
    conn: &mut Connection,
    series: &str,
    finding: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let key = DocKey::Report {
        series: series.to_string(),
    };
    let d = match conn.find(key.document_id(), limit).await {
        Ok(d) => d,
        Err(ClientError::Unavailable(_)) => bail!(
            "--finding {finding}: the report of series {series} is not yours to read; an organizer of the series links findings"
        ),
        Err(e) => return Err(e.into()),
    };
    let report = toron_protocol::json::doc_to_json(&d.doc);
    let known: Vec<&String> = report["findings"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    if known.iter().any(|k| *k == finding) {
        return Ok(());
    }
    bail!(toron_domain::report::no_such_finding(
        finding,
        series,
        known.iter().map(|k| k.as_str())
    ))
}

/// Sets the triage status of a root annotation in `triage:{session}`, keeping every transition
/// in the item's `history`.
pub async fn set_triage(
    conn: &mut Connection,
    session: &str,
    annotation: &str,
    entry: &Value,
    limit: Duration,
) -> anyhow::Result<()> {
    set_triages(conn, session, &[annotation], entry, limit).await
}

/// [`set_triage`] for several annotations at once, in one change of the session's triage
/// document (a connection finds a document once).
pub async fn set_triages(
    conn: &mut Connection,
    session: &str,
    annotations: &[&str],
    entry: &Value,
    limit: Duration,
) -> anyhow::Result<()> {
    let key = DocKey::Triage {
        session: session.to_string(),
    };
    let mut d = open_begun(conn, &key, &[], limit).await?;
    for annotation in annotations {
        triage_item(&mut d.doc, annotation, entry)?;
    }
    d.doc.commit();
    conn.push(&mut d, limit)
        .await
        .with_context(|| format!("writing {key}"))
}

/// Sets item `annotation` of a triage document to `entry` and adds `entry` to its history.
fn triage_item(doc: &mut AutoCommit, annotation: &str, entry: &Value) -> anyhow::Result<()> {
    let items = map_at(doc, "items")?;
    let item = match doc.get(&items, annotation)? {
        Some((automerge::Value::Object(ObjType::Map), o)) => o,
        _ => {
            let o = doc.put_object(&items, annotation, ObjType::Map)?;
            doc.put_object(&o, "history", ObjType::List)?;
            o
        }
    };
    if let Value::Object(m) = entry {
        for (k, v) in m {
            put_json(doc, &item, k.as_str().into(), v)?;
        }
    }
    let history = match doc.get(&item, "history")? {
        Some((automerge::Value::Object(ObjType::List), o)) => o,
        _ => doc.put_object(&item, "history", ObjType::List)?,
    };
    let n = doc.length(&history);
    put_json(doc, &history, n.into(), entry)?;
    Ok(())
}

/// The triage entry for `status` (validated), by the caller, now.
pub fn triage_entry(
    status: &str,
    by: &str,
    note: Option<&str>,
    finding: Option<&str>,
) -> anyhow::Result<Value> {
    let statuses = toron_domain::vocab::TriageStatus::NAMES;
    if !statuses.contains(&status) {
        bail!("status is one of {}", statuses.join(", "));
    }
    let mut v = json!({ "status": status, "by": by, "at": now_kst() });
    if let Some(n) = note {
        v["note"] = json!(anchor::nfc(n));
    }
    if let Some(f) = finding {
        v["finding"] = json!(f);
    }
    Ok(v)
}

/// The keys of the departments `given` names — each by key, Korean or English name — among
/// `known` (the series' list, `[{key, name_ko, name_en}]`); an unknown one is named with the
/// departments there are.
pub fn resolve_departments(given: &[String], known: &Value) -> anyhow::Result<Vec<String>> {
    let known: Vec<&Value> = known.as_array().into_iter().flatten().collect();
    given
        .iter()
        .map(|g| {
            let g = g.trim();
            let hit = known.iter().find(|d| d["key"] == g).or_else(|| {
                let named: Vec<&&Value> = known
                    .iter()
                    .filter(|d| d["name_ko"] == g || d["name_en"] == g)
                    .collect();
                (named.len() == 1).then(|| named[0])
            });
            match hit.and_then(|d| d["key"].as_str()) {
                Some(k) => Ok(k.to_string()),
                None if known.is_empty() => {
                    bail!("department `{g}` is not known: this series defines no departments")
                }
                None => bail!(
                    "department `{g}` is not one of this series' departments: {}",
                    known
                        .iter()
                        .map(|d| format!(
                            "{} ({})",
                            d["key"].as_str().unwrap_or_default(),
                            d["name_ko"].as_str().unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        })
        .collect()
}
