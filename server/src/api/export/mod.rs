//! A series (or one session of it) as an import bundle again: the catalog's descriptive data
//! plus the documents' current content, read from the log. `toron export` writes it; the report
//! is rendered from it, so the report reads exactly what an export shows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};
use toron_domain::policy::{DocKey, Scope};
use toron_protocol::DocumentId;

use toron_domain::integrity::{self, Problem};

use crate::net::hub::Hub;

mod made;
mod provenance;
use provenance::{attribute, claim, session_log, Created, Origin};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("series {0} was never imported")]
    NoSeries(String),
    #[error("session {0} is not in this series")]
    NoSession(String),
    #[error("reading the timeline: {0}")]
    Timeline(String),
}

/// The current content of a document as JSON (`None` if it has none, or if it could not be
/// read: then the reason is recorded in `problems` and the export goes on). Blocking.
fn content(hub: &Hub, key: &DocKey, problems: &mut Vec<Problem>) -> Option<Value> {
    let id: DocumentId = key.document_id();
    let read = hub
        .store
        .document_len(&id)
        .map_err(|e| e.to_string())
        .and_then(|len| {
            if len == 0 {
                return Ok(None);
            }
            hub.history
                .with_doc(&id, len, toron_protocol::json::doc_to_json)
                .map(Some)
                .map_err(|e| e.to_string())
        });
    match read {
        Ok(mut v) => {
            // What was typed decomposed live reads as an import would have written it.
            if let Some(v) = v.as_mut() {
                toron_domain::anchor::nfc_json(v);
            }
            v
        }
        Err(why) => {
            tracing::warn!(doc = %key, %why, "export: a document could not be read; left out");
            problems.push(Problem::skipped(
                &key.to_string(),
                None,
                format!("could not be read: {why}"),
            ));
            None
        }
    }
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    if let Value::Object(m) = &mut v {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

/// The registry's catalog: reference entities by kind and key.
type Catalog = BTreeMap<String, BTreeMap<String, Value>>;

fn entries(catalog: &Catalog, kind: &str) -> Vec<Value> {
    catalog
        .get(kind)
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

fn at_secs(v: &Value) -> i64 {
    v.get("at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// The bundle of `series` (only `session` when given). Blocking: reads documents.
pub fn export(hub: &Hub, series: &str, session: Option<&str>) -> Result<Value, ExportError> {
    let catalog = hub.registry.catalog();
    let s_meta = match catalog.get("series").and_then(|m| m.get(series)) {
        Some(meta) => meta.clone(),
        None => {
            made::series(hub, series).ok_or_else(|| ExportError::NoSeries(series.to_string()))?
        }
    };
    let template_key = s_meta
        .get("evaluation_template")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut sessions: Vec<Value> = entries(&catalog, "session")
        .into_iter()
        .filter(|s| s.get("series").and_then(Value::as_str) == Some(series))
        .filter(|s| session.is_none_or(|k| s.get("key").and_then(Value::as_str) == Some(k)))
        .collect();
    sessions.extend(made::sessions(hub, series, session, &sessions));
    if let Some(k) = session {
        if sessions.is_empty() {
            return Err(ExportError::NoSession(k.to_string()));
        }
    }
    sessions.sort_by_key(|s| (s.get("no").and_then(Value::as_u64), s["key"].to_string()));
    let docs = hub.registry.documents_of_series(series);
    let mut s_meta = s_meta;
    // Where the series stands, for a report of one of its sessions too: every session the
    // registry holds for it, with its number and phase.
    s_meta["sessions_registered"] = json!(hub
        .registry
        .sessions()
        .into_iter()
        .filter(|x| x.series == series)
        .map(|x| {
            let no = catalog
                .get("session")
                .and_then(|m| m.get(&x.key))
                .and_then(|m| m.get("no"))
                .cloned()
                .unwrap_or(Value::Null);
            json!({ "key": x.key, "no": no, "phase": x.phase })
        })
        .collect::<Vec<_>>());
    let mut problems: Vec<Problem> = Vec::new();
    let mut all_refs: BTreeMap<String, String> = BTreeMap::new();
    for s in &mut sessions {
        export_session(hub, &catalog, &docs, s, &mut all_refs, &mut problems)?;
    }
    let (findings, responses) = findings_and_responses(hub, &docs, &mut problems);
    let template = catalog
        .get(&toron_domain::import_plan::scoped("template", series))
        .and_then(|m| m.get(&template_key))
        .cloned()
        // A series no import described has no criteria yet.
        .unwrap_or_else(|| json!({ "key": template_key, "criteria": [] }));
    let listed = |kind: &str, list: &str| listed(&catalog, series, kind, list);
    let participants = series_participants(
        hub,
        series,
        &sessions,
        listed("participant", "participants"),
    );
    let mut bundle = json!({
        "series": s_meta,
        "fields": listed("field", "fields"),
        "governments": listed("government", "governments"),
        "departments": listed("department", "departments"),
        "pledges": listed("pledge", "pledges"),
        "evaluation_template": template,
        "participants": participants,
        "sessions": sessions,
        "findings": findings,
        "department_responses": responses,
    });
    if let Some(meta) = catalog.get("meta").and_then(|m| m.get(series)) {
        bundle["meta"] = meta.clone();
    }
    unfinished_imports(&catalog, series, session, &mut problems);
    if !problems.is_empty() {
        bundle["integrity"] = json!(problems);
    }
    Ok(bundle)
}

/// The series' own reference entities of `kind`, in the order its bundle gave them (all of
/// that kind when it gave no order).
fn listed(catalog: &Catalog, series: &str, kind: &str, list: &str) -> Vec<Value> {
    let own = catalog.get("bundle").and_then(|m| m.get(series));
    let kind = toron_domain::import_plan::scoped(kind, series);
    let kind = kind.as_str();
    match own.and_then(|o| o.get(list)).and_then(Value::as_array) {
        Some(keys) => keys
            .iter()
            .filter_map(|k| catalog.get(kind)?.get(k.as_str()?).cloned())
            .collect(),
        None => entries(catalog, kind),
    }
}

/// The imported participants, and those who take part in the series without having come in
/// by an import (added by an organizer during the debate): the report names them as they
/// consented and knows an official's department (conflicts of interest).
fn series_participants(
    hub: &Hub,
    series: &str,
    sessions: &[Value],
    mut participants: Vec<Value>,
) -> Vec<Value> {
    let session_keys: Vec<String> = sessions
        .iter()
        .filter_map(|s| s["key"].as_str().map(str::to_string))
        .collect();
    for p in hub.registry.participants() {
        if toron_domain::import_plan::is_importer(&p.key)
            || participants.iter().any(|x| x["key"] == p.key.as_str())
        {
            continue;
        }
        let takes_part = hub
            .registry
            .roles_of(&p.key)
            .iter()
            .any(|g| match g.scope() {
                Scope::Series(s) => s == series,
                Scope::Session(s) => session_keys.contains(&s),
            });
        if takes_part {
            participants.push(json!({
                "key": p.key, "name": p.name, "affiliation": p.affiliation, "kind": p.kind,
                "department": p.department, "attribution": p.attribution,
            }));
        }
    }
    participants
}

/// An import that was started and never finished (`toron import` stopped before it marked
/// the batch applied) may have left part of its content out: said as a problem.
fn unfinished_imports(
    catalog: &Catalog,
    series: &str,
    session: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    for b in entries(catalog, "batch") {
        let of_series = b.get("series").and_then(Value::as_str) == Some(series);
        let of_session = session.is_none_or(|k| {
            b.get("sessions")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|s| s.as_str() == Some(k)))
        });
        if of_series && of_session && b.get("applied_at_ms").is_none() {
            let batch = b.get("batch").and_then(Value::as_str).unwrap_or("?");
            problems.push(Problem::corrected(
                &format!("import {batch}"),
                None,
                "this import was started but did not finish: content may be missing; run the same `toron import` again",
            ));
        }
    }
}

/// The findings of the series' report and the departments' responses (each department
/// answers for itself only).
fn findings_and_responses(
    hub: &Hub,
    docs: &[DocKey],
    problems: &mut Vec<Problem>,
) -> (Vec<Value>, Vec<Value>) {
    let mut findings = Vec::new();
    let mut responses = Vec::new();
    for k in docs {
        match k {
            DocKey::Report { .. } => {
                if let Some(r) = content(hub, k, problems) {
                    if let Some(m) = r.get("findings").and_then(Value::as_object) {
                        let doc = k.to_string();
                        for (key, f) in m {
                            let mut f = f.clone();
                            claim(&mut f, "key", key, &doc, Some(key), problems);
                            findings.push(f);
                        }
                    }
                }
            }
            DocKey::Response { department, .. } => {
                let Some(r) = content(hub, k, problems) else {
                    continue;
                };
                let Some(m) = r.get("responses").and_then(Value::as_object) else {
                    continue;
                };
                let doc = k.to_string();
                for (item, v) in m {
                    let mut v = v.clone();
                    claim(&mut v, "department", department, &doc, Some(item), problems);
                    // A response answers the finding it is filed under (the key the server
                    // checked when it was written), whatever the value says.
                    claim(&mut v, "finding", item, &doc, Some(item), problems);
                    responses.push(v);
                }
            }
            _ => {}
        }
    }
    (findings, responses)
}

/// An evaluation form as the report counts it: as of its last submission. A form reopened
/// since (and not submitted again) is read at that submission, and says how often it was
/// reopened (`reopened`), so that the report can list it.
fn as_submitted(
    hub: &Hub,
    key: &DocKey,
    submitted: &provenance::Submissions,
    problems: &mut Vec<Problem>,
) -> Option<Value> {
    let mut now = content(hub, key, problems)?;
    let at_last = submitted.last.filter(|_| now["status"] != "submitted");
    if let Some(seq) = at_last {
        let id = key.document_id();
        let then = hub.history.point_at_seq(&id, seq).and_then(|p| {
            hub.history.with_doc(&id, seq, |d| {
                toron_protocol::json::doc_to_json_at(d, &p.heads)
            })
        });
        match then {
            Ok(mut v) => {
                toron_domain::anchor::nfc_json(&mut v);
                now = v
            }
            Err(why) => problems.push(Problem::skipped(
                &key.to_string(),
                None,
                format!("its last submission could not be read: {why}"),
            )),
        }
    }
    if submitted.reopened > 0 {
        now["reopened"] = serde_json::json!(submitted.reopened);
    }
    Some(now)
}

/// What one session's documents hold, gathered for its entry in the bundle.
#[derive(Default)]
struct SessionParts {
    evaluations: Vec<Value>,
    annotations: Vec<Value>,
    reactions: Vec<Value>,
    triage: Vec<Value>,
}

/// Fills session `s` of the bundle: its cases with their content, evaluations,
/// annotations, reactions and triage, in a stable order.
fn export_session(
    hub: &Hub,
    catalog: &Catalog,
    docs: &[DocKey],
    s: &mut Value,
    all_refs: &mut BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> Result<(), ExportError> {
    let key = s["key"].as_str().unwrap_or_default().to_string();
    let cases = session_cases(hub, catalog, &key, problems);
    let case_keys: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    let log = session_log(hub, &key)?;
    // Who was there, as the presence record says (beside the planned attendance a bundle
    // gives): the report prints both. By participant kind, as an office counts attendance.
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    // People only: the server's own principals (the organizer's service token) are not.
    for p in &log.attended {
        if let Some(kind) = hub.registry.participant(p).and_then(|p| p.kind.person()) {
            *by_kind.entry(kind.as_str()).or_default() += 1;
        }
    }
    let count: u64 = by_kind.values().sum();
    s["attended"] = json!({ "count": count, "composition": by_kind });
    let creators = log.creators;
    // The session opened for notes an hour before its scheduled start (if it says one).
    let opened_ms = s
        .get("scheduled")
        .and_then(|x| x.get("start"))
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| u64::try_from(t.timestamp_millis() - 3_600_000).ok());
    let mut parts = SessionParts::default();
    for k in docs {
        match k {
            DocKey::Eval { case, evaluator } if case_keys.contains(case) => {
                let doc = k.to_string();
                let submitted = log.submissions.get(&doc).cloned().unwrap_or_default();
                if let Some(mut e) = as_submitted(hub, k, &submitted, problems) {
                    // The key says whose evaluation of which case this is.
                    for (field, truth) in [("case", case), ("evaluator", evaluator)] {
                        claim(&mut e, field, truth, &doc, None, problems);
                    }
                    parts.evaluations.push(without(e, &["schema"]));
                }
            }
            DocKey::Notes {
                session: s2,
                participant,
            } if *s2 == key => {
                if let Some(layer) = content(hub, k, problems) {
                    let doc = k.to_string();
                    let owner = Owner {
                        doc: &doc,
                        session: &key,
                        participant,
                        creators: &creators,
                        opened_ms,
                    };
                    notes_layer(hub, &layer, &owner, &mut parts, problems);
                }
            }
            DocKey::Triage { session: s2 } if *s2 == key => {
                if let Some(t) = content(hub, k, problems) {
                    triage_entries(&t, &mut parts.triage);
                }
            }
            _ => {}
        }
    }
    fill_session(s, cases, parts, all_refs, problems);
    Ok(())
}

/// Puts a session's parts into its bundle entry in a stable order (annotations by creation,
/// reactions and triage by time), reactions naming annotations by reference, and leaves out
/// what does not read as its type — so that an export imports again, and the report reads
/// it the same way.
fn fill_session(
    s: &mut Value,
    mut cases: Vec<Value>,
    parts: SessionParts,
    all_refs: &mut BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) {
    let SessionParts {
        mut evaluations,
        mut annotations,
        mut reactions,
        mut triage,
    } = parts;
    annotations.sort_by_key(|a| {
        (
            a.get("created_at")
                .and_then(Value::as_str)
                .map(str::to_string),
            a.get("ref").and_then(Value::as_str).map(str::to_string),
        )
    });
    for a in &annotations {
        if let (Some(id), Some(r)) = (a["id"].as_str(), a["ref"].as_str()) {
            all_refs.insert(id.to_string(), r.to_string());
        }
    }
    for r in &mut reactions {
        if let Some(reference) = r["annotation"].as_str().and_then(|id| all_refs.get(id)) {
            r["annotation"] = json!(reference);
        }
    }
    reactions.sort_by_key(|r| {
        (
            at_secs(r),
            r["annotation"].to_string(),
            r["participant"].to_string(),
        )
    });
    triage.sort_by_key(|t| (at_secs(t), t["annotation"].to_string()));
    evaluations.sort_by_key(|e| (e["case"].to_string(), e["evaluator"].to_string()));
    for c in &mut cases {
        integrity::keep_text_sections(c, "case", problems);
    }
    evaluations.retain(
        |v| match integrity::reads_as::<toron_domain::bundle::Evaluation>(v) {
            Ok(()) => true,
            Err(why) => {
                let doc = format!(
                    "eval:{}:{}",
                    v["case"].as_str().unwrap_or("?"),
                    v["evaluator"].as_str().unwrap_or("?")
                );
                problems.push(Problem::skipped(&doc, None, why));
                false
            }
        },
    );
    s["cases"] = json!(cases);
    s["evaluations"] = json!(evaluations);
    s["annotations"] = json!(annotations);
    s["reactions"] = json!(reactions);
    s["triage"] = json!(triage);
}

/// The cases of session `key`, each with its sections and indicators.
fn session_cases(
    hub: &Hub,
    catalog: &Catalog,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Vec<Value> {
    let mut cases: Vec<Value> = entries(catalog, "case")
        .into_iter()
        .filter(|c| {
            let case = c["key"].as_str().unwrap_or_default();
            hub.registry.case(case).map(|x| x.session).as_deref() == Some(key)
        })
        .collect();
    // And those no import described (made with the CLI or the API alone).
    let made = made::cases(hub, key, &cases);
    cases.extend(made);
    for c in &mut cases {
        let case = c["key"].as_str().unwrap_or_default().to_string();
        if let Some(body) = content(hub, &DocKey::Case { case }, problems) {
            c["sections"] = body.get("sections").cloned().unwrap_or(json!({}));
            if let Some(order) = body.get("section_order").filter(|o| o.is_array()) {
                c["section_order"] = order.clone();
            }
            c["indicators"] = body.get("indicators").cloned().unwrap_or(json!([]));
        }
    }
    cases
}

/// Whose notes layer is read, and where.
struct Owner<'a> {
    doc: &'a str,
    session: &'a str,
    participant: &'a str,
    creators: &'a HashMap<(String, String), Created>,
    /// When the session opened for notes (see `Origin::opened_ms`).
    opened_ms: Option<u64>,
}

/// The annotations and reactions of one participant's notes layer.
fn notes_layer(
    hub: &Hub,
    layer: &Value,
    owner: &Owner<'_>,
    parts: &mut SessionParts,
    problems: &mut Vec<Problem>,
) {
    let doc = owner.doc;
    if let Some(m) = layer.get("annotations").and_then(Value::as_object) {
        for (id, a) in m {
            let mut a = without(a.clone(), &["import_batch"]);
            if !a.is_object() {
                problems.push(Problem::skipped(
                    doc,
                    Some(id),
                    "an annotation is a map; this one is not",
                ));
                continue;
            }
            if let Some(t) = a.get_mut("target") {
                *t = without(t.clone(), &["cursor", "heads"]);
            }
            let origin = Origin {
                doc,
                id,
                session: owner.session,
                owner: owner.participant,
                created: owner.creators.get(&(doc.to_string(), id.clone())),
                opened_ms: owner.opened_ms,
            };
            attribute(hub, &mut a, &origin, problems);
            // What does not read as an annotation is left out here already, named by its
            // layer and id, so that the report reads the rest.
            match integrity::reads_as::<toron_domain::bundle::Annotation>(&a) {
                Ok(()) => parts.annotations.push(a),
                Err(why) => problems.push(Problem::skipped(doc, Some(id), why)),
            }
        }
    }
    if let Some(m) = layer.get("reactions").and_then(Value::as_object) {
        for (ann, r) in m {
            parts.reactions.push(json!({
                "annotation": ann,
                "participant": owner.participant,
                "kind": r.get("kind").cloned().unwrap_or(json!("agree")),
                "at": r.get("at").cloned().unwrap_or(Value::Null),
            }));
        }
    }
}

/// Every step of every triage item's history, as the bundle lists them.
fn triage_entries(t: &Value, triage: &mut Vec<Value>) {
    let Some(m) = t.get("items").and_then(Value::as_object) else {
        return;
    };
    for (ann, item) in m {
        let reference = item.get("ref").and_then(Value::as_str).unwrap_or(ann);
        let history: Vec<&Value> = item
            .get("history")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let entry = |h: &Value| {
            let mut e = Map::new();
            e.insert("annotation".into(), json!(reference));
            if let Value::Object(hm) = h {
                for (k, v) in hm {
                    if k != "history" && k != "ref" {
                        e.insert(k.clone(), v.clone());
                    }
                }
            }
            e.entry("finding").or_insert(Value::Null);
            Value::Object(e)
        };
        for h in &history {
            triage.push(entry(h));
        }
        // The item's own status is where it stands now: a client that sets it without
        // keeping a history (any client may) is told as the last decision, not dropped.
        let status = item.get("status").and_then(Value::as_str);
        let last = history
            .last()
            .and_then(|h| h.get("status"))
            .and_then(Value::as_str);
        if status.is_some() && status != last {
            let mut now = entry(item);
            // No earlier than the history it follows.
            let latest = history
                .iter()
                .filter_map(|h| h.get("at").and_then(Value::as_str))
                .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .max();
            let own = now
                .get("at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if let (Some(l), o) = (latest, own) {
                if o.is_none_or(|o| o < l) {
                    now["at"] = json!(l.to_rfc3339());
                }
            }
            triage.push(now);
        }
    }
}
