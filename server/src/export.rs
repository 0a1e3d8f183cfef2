//! A series (or one session of it) as an import bundle again: the catalog's descriptive data
//! plus the documents' current content, read from the log. `toron export` writes it; the report
//! is rendered from it, so the report reads exactly what an export shows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use toron_protocol::policy::DocKey;
use toron_protocol::DocumentId;

use crate::hub::Hub;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("series {0} was never imported")]
    NoSeries(String),
    #[error("session {0} is not in this series")]
    NoSession(String),
    #[error("reading {doc}: {reason}")]
    Read { doc: String, reason: String },
}

/// The current content of a document as JSON (`None` if it has none). Blocking.
fn content(hub: &Hub, key: &DocKey) -> Result<Option<Value>, ExportError> {
    let id: DocumentId = key.document_id();
    let bad = |e: &dyn std::fmt::Display| ExportError::Read {
        doc: key.to_string(),
        reason: e.to_string(),
    };
    let len = hub.store.document_len(&id).map_err(|e| bad(&e))?;
    if len == 0 {
        return Ok(None);
    }
    hub.history
        .with_doc(&id, len, toron_protocol::json::doc_to_json)
        .map(Some)
        .map_err(|e| bad(&e))
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    if let Value::Object(m) = &mut v {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

fn entries(catalog: &BTreeMap<String, BTreeMap<String, Value>>, kind: &str) -> Vec<Value> {
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
    let s_meta = catalog
        .get("series")
        .and_then(|m| m.get(series))
        .cloned()
        .ok_or_else(|| ExportError::NoSeries(series.to_string()))?;
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
    if let Some(k) = session {
        if sessions.is_empty() {
            return Err(ExportError::NoSession(k.to_string()));
        }
    }
    sessions.sort_by_key(|s| (s.get("no").and_then(Value::as_u64), s["key"].to_string()));
    let docs = hub.registry.documents_of_series(series);
    let mut all_refs: BTreeMap<String, String> = BTreeMap::new();
    for s in &mut sessions {
        let key = s["key"].as_str().unwrap_or_default().to_string();
        let mut cases = Vec::new();
        for c in entries(&catalog, "case") {
            if hub
                .registry
                .case(c["key"].as_str().unwrap_or_default())
                .map(|x| x.session)
                != Some(key.clone())
            {
                continue;
            }
            let mut c = c;
            let dk = DocKey::Case {
                case: c["key"].as_str().unwrap_or_default().to_string(),
            };
            if let Some(body) = content(hub, &dk)? {
                c["sections"] = body.get("sections").cloned().unwrap_or(json!({}));
                c["indicators"] = body.get("indicators").cloned().unwrap_or(json!([]));
            }
            cases.push(c);
        }
        let case_keys: BTreeSet<String> = cases
            .iter()
            .filter_map(|c| c["key"].as_str().map(str::to_string))
            .collect();
        let mut evaluations = Vec::new();
        let mut annotations: Vec<Value> = Vec::new();
        let mut reactions: Vec<Value> = Vec::new();
        let mut triage: Vec<Value> = Vec::new();
        for k in &docs {
            match k {
                DocKey::Eval { case, .. } if case_keys.contains(case) => {
                    if let Some(e) = content(hub, k)? {
                        evaluations.push(without(e, &["schema"]));
                    }
                }
                DocKey::Notes {
                    session: s2,
                    participant,
                } if *s2 == key => {
                    let Some(layer) = content(hub, k)? else {
                        continue;
                    };
                    if let Some(m) = layer.get("annotations").and_then(Value::as_object) {
                        for a in m.values() {
                            let mut a = without(a.clone(), &["import_batch"]);
                            if let Some(t) = a.get_mut("target") {
                                *t = without(t.clone(), &["cursor", "heads"]);
                            }
                            annotations.push(a);
                        }
                    }
                    if let Some(m) = layer.get("reactions").and_then(Value::as_object) {
                        for (ann, r) in m {
                            reactions.push(json!({
                                "annotation": ann,
                                "participant": participant,
                                "kind": r.get("kind").cloned().unwrap_or(json!("agree")),
                                "at": r.get("at").cloned().unwrap_or(Value::Null),
                            }));
                        }
                    }
                }
                DocKey::Triage { session: s2 } if *s2 == key => {
                    let Some(t) = content(hub, k)? else { continue };
                    if let Some(m) = t.get("items").and_then(Value::as_object) {
                        for (ann, item) in m {
                            let reference = item.get("ref").and_then(Value::as_str).unwrap_or(ann);
                            for h in item
                                .get("history")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                            {
                                let mut e = Map::new();
                                e.insert("annotation".into(), json!(reference));
                                if let Value::Object(hm) = h {
                                    for (k, v) in hm {
                                        e.insert(k.clone(), v.clone());
                                    }
                                }
                                e.entry("finding").or_insert(Value::Null);
                                triage.push(Value::Object(e));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
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
        s["cases"] = json!(cases);
        s["evaluations"] = json!(evaluations);
        s["annotations"] = json!(annotations);
        s["reactions"] = json!(reactions);
        s["triage"] = json!(triage);
    }
    let mut findings = Vec::new();
    let mut responses = Vec::new();
    for k in &docs {
        match k {
            DocKey::Report { .. } => {
                if let Some(r) = content(hub, k)? {
                    if let Some(m) = r.get("findings").and_then(Value::as_object) {
                        findings.extend(m.values().cloned());
                    }
                }
            }
            DocKey::Response { .. } => {
                if let Some(r) = content(hub, k)? {
                    if let Some(m) = r.get("responses").and_then(Value::as_object) {
                        responses.extend(m.values().cloned());
                    }
                }
            }
            _ => {}
        }
    }
    let template = catalog
        .get(&crate::import_api::scoped("template", series))
        .and_then(|m| m.get(&template_key))
        .cloned()
        .unwrap_or(Value::Null);
    // The series' own reference entities, in the order its bundle gave them.
    let own = catalog.get("bundle").and_then(|m| m.get(series));
    let listed = |kind: &str, list: &str| -> Vec<Value> {
        let kind = crate::import_api::scoped(kind, series);
        let kind = kind.as_str();
        match own.and_then(|o| o.get(list)).and_then(Value::as_array) {
            Some(keys) => keys
                .iter()
                .filter_map(|k| catalog.get(kind)?.get(k.as_str()?).cloned())
                .collect(),
            None => entries(&catalog, kind),
        }
    };
    let mut bundle = json!({
        "series": s_meta,
        "fields": listed("field", "fields"),
        "governments": listed("government", "governments"),
        "departments": listed("department", "departments"),
        "pledges": listed("pledge", "pledges"),
        "evaluation_template": template,
        "participants": listed("participant", "participants"),
        "sessions": sessions,
        "findings": findings,
        "department_responses": responses,
    });
    if let Some(meta) = catalog.get("meta").and_then(|m| m.get(series)) {
        bundle["meta"] = meta.clone();
    }
    Ok(bundle)
}
