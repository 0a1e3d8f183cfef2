//! What a change did, in the debate's terms, per kind of document: the drafts of timeline
//! entries read from a change's located operations.

use automerge::{ObjType, ScalarValue};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

use super::objects::{Touch, TouchOp};

pub(super) fn scalar_str(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The start of a text as the timeline quotes it, in NFC (Hangul typed as decomposed jamo
/// reads as the syllables it is).
pub(super) fn short(text: &str) -> String {
    let text = crate::anchor::nfc(text);
    let t: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        format!("{t}…")
    } else {
        t
    }
}

/// What one change did to a text object.
#[derive(Default)]
pub(super) struct TextEdit {
    pub(super) added: u64,
    pub(super) removed: u64,
    pub(super) inserted: String,
}

/// Annotation fields seen in one change.
#[derive(Default)]
pub(super) struct AnnotationTouch {
    pub(super) made: bool,
    pub(super) deleted: bool,
    pub(super) withdrawn: bool,
    pub(super) fields: BTreeMap<String, Json>,
    pub(super) body: TextEdit,
    /// The passage it is anchored to (`target.quote.exact`), which names a highlight.
    pub(super) quote: Option<String>,
}

pub(super) struct Draft {
    pub(super) kind: &'static str,
    pub(super) summary: String,
    pub(super) detail: Json,
}

pub(super) fn scalar_json(v: &ScalarValue) -> Json {
    toron_protocol::json::scalar_json(v)
}

pub(super) fn text_edits(touches: &[Touch]) -> BTreeMap<Vec<String>, TextEdit> {
    let mut out: BTreeMap<Vec<String>, TextEdit> = BTreeMap::new();
    for t in touches {
        if t.in_type != ObjType::Text {
            continue;
        }
        let e = out.entry(t.path.clone()).or_default();
        match &t.op {
            TouchOp::Insert(v) => {
                let s = scalar_str(v).unwrap_or_default();
                e.added += s.chars().count().max(1) as u64;
                e.inserted.push_str(&s);
            }
            TouchOp::Delete => e.removed += 1,
            _ => {}
        }
    }
    out
}

/// The values this change gives to map fields, keyed by the field's path, whichever way the
/// client wrote them: a scalar `put`, or a text object made and typed into in the same change
/// (the JavaScript client writes every string so; vocabulary values are typed straight
/// through, `schema.rs`). A field made as another object is `null`.
pub(super) fn field_values(touches: &[Touch]) -> BTreeMap<Vec<String>, Json> {
    let mut typed: BTreeMap<&[String], String> = BTreeMap::new();
    for t in touches {
        if let (ObjType::Text, TouchOp::Insert(v)) = (t.in_type, &t.op) {
            typed
                .entry(t.path.as_slice())
                .or_default()
                .push_str(&scalar_str(v).unwrap_or_default());
        }
    }
    let mut out = BTreeMap::new();
    for t in touches {
        let Some(k) = &t.key else { continue };
        let mut path = t.path.clone();
        path.push(k.clone());
        let v = match &t.op {
            TouchOp::Put(v) => scalar_json(v),
            TouchOp::Make(ObjType::Text) => {
                Json::String(typed.get(path.as_slice()).cloned().unwrap_or_default())
            }
            TouchOp::Make(_) => Json::Null,
            _ => continue,
        };
        out.insert(path, v);
    }
    out
}

/// The string a field was given in this change, if one.
pub(super) fn field_str<'a>(
    values: &'a BTreeMap<Vec<String>, Json>,
    path: &[&str],
) -> Option<&'a str> {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    values.get(&path).and_then(Json::as_str)
}

pub(super) fn section_edit(path: &[String], e: &TextEdit) -> Draft {
    let p = path.join("/");
    Draft {
        kind: "section.edited",
        summary: format!("edited {p} (+{}/−{} characters)", e.added, e.removed),
        detail: json!({ "path": path, "added": e.added, "removed": e.removed, "inserted": short(&e.inserted) }),
    }
}

/// What one touch below an annotation (`field`, or deeper when not `direct`) says of it.
pub(super) fn field_touch(a: &mut AnnotationTouch, t: &Touch, field: String, direct: bool) {
    match &t.op {
        TouchOp::Put(v) if direct => {
            if (field == "withdrawn" && *v == ScalarValue::Boolean(true))
                || (field == "status" && scalar_str(v).as_deref() == Some("withdrawn"))
            {
                a.withdrawn = true;
            }
            a.fields.insert(field, scalar_json(v));
        }
        TouchOp::Make(_) if direct => {
            a.fields.entry(field).or_insert(Json::Null);
        }
        TouchOp::Insert(v) if field == "body" && t.in_type == ObjType::Text => {
            let s = scalar_str(v).unwrap_or_default();
            a.body.added += s.chars().count().max(1) as u64;
            a.body.inserted.push_str(&s);
        }
        TouchOp::Delete if field == "body" && t.in_type == ObjType::Text => a.body.removed += 1,
        _ => {
            a.fields.entry(field).or_insert(Json::Null);
        }
    }
}

/// Fields written as text (the JavaScript client's strings) read as the strings typed.
pub(super) fn text_fields(anns: &mut BTreeMap<String, AnnotationTouch>, touches: &[Touch]) {
    for (path, v) in field_values(touches) {
        if let [first, id, target, quote, exact] = path.as_slice() {
            if [first, target, quote, exact].map(String::as_str)
                == ["annotations", "target", "quote", "exact"]
            {
                if let (Some(a), Some(q)) = (anns.get_mut(id), v.as_str()) {
                    a.quote = Some(q.to_string());
                }
            }
        }
        if let [first, id, field] = path.as_slice() {
            if first == "annotations" {
                if let Some(a) = anns.get_mut(id) {
                    if field == "status" && v.as_str() == Some("withdrawn") {
                        a.withdrawn = true;
                    }
                    if !v.is_null() {
                        a.fields.insert(field.clone(), v);
                    }
                }
            }
        }
    }
}

/// The timeline entry of one annotation's touches in a change: made, withdrawn or edited.
pub(super) fn annotation_draft(id: &str, a: AnnotationTouch) -> Draft {
    let kind = a
        .fields
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or("comment");
    let body = match a.fields.get("body").and_then(Json::as_str) {
        Some(b) => b.to_string(),
        None => a.body.inserted.clone(),
    };
    // A highlight (or any annotation without words of its own) is named by its passage.
    let body = match (&a.quote, body.is_empty()) {
        (Some(q), true) => q.clone(),
        _ => body,
    };
    if a.deleted || a.withdrawn {
        return Draft {
            kind: "annotation.withdrawn",
            summary: format!("withdrew annotation {id}"),
            detail: json!({ "annotation": id }),
        };
    }
    if a.made {
        let parent = a.fields.get("parent").and_then(Json::as_str);
        let mut detail = json!({
            "annotation": id,
            "annotation_kind": kind,
            "body": short(&body),
        });
        for f in ["ref", "parent", "root", "criterion", "value", "severity"] {
            if let Some(v) = a.fields.get(f).filter(|v| !v.is_null()) {
                detail[f] = v.clone();
            }
        }
        return match parent {
            Some(p) => Draft {
                kind: "reply.created",
                summary: format!("{kind} to {p}: \"{}\"", short(&body)),
                detail,
            },
            None => Draft {
                kind: "annotation.created",
                summary: format!("{kind} annotation: \"{}\"", short(&body)),
                detail,
            },
        };
    }
    {
        let mut fields: Vec<String> = a.fields.keys().cloned().collect();
        if a.body.added + a.body.removed > 0 && !fields.contains(&"body".to_string()) {
            fields.push("body".into());
        }
        Draft {
            kind: "annotation.edited",
            summary: format!(
                "edited annotation {id}: {} (+{}/−{} characters)",
                fields.join(", "),
                a.body.added,
                a.body.removed
            ),
            detail: json!({ "annotation": id, "fields": fields, "added": a.body.added, "removed": a.body.removed }),
        }
    }
}

pub(super) fn notes_drafts(touches: &[Touch]) -> Vec<Draft> {
    let mut anns: BTreeMap<String, AnnotationTouch> = BTreeMap::new();
    let mut reactions: BTreeMap<String, bool> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for t in touches {
        let p: Vec<&str> = t.path.iter().map(String::as_str).collect();
        match (p.as_slice(), t.key.as_deref()) {
            (["annotations"], Some(id)) => {
                let a = anns.entry(id.to_string()).or_default();
                if !order.contains(&id.to_string()) {
                    order.push(id.to_string());
                }
                match t.op {
                    TouchOp::Make(_) => a.made = true,
                    TouchOp::Delete => a.deleted = true,
                    _ => {}
                }
            }
            (["annotations", id, rest @ ..], key) => {
                let a = anns.entry(id.to_string()).or_default();
                if !order.contains(&id.to_string()) {
                    order.push(id.to_string());
                }
                let field = match (rest.first(), key) {
                    (Some(f), _) => f.to_string(),
                    (None, Some(k)) => k.to_string(),
                    (None, None) => continue,
                };
                field_touch(a, t, field, rest.is_empty());
            }
            (["reactions"], Some(id)) => {
                reactions.insert(id.to_string(), !matches!(t.op, TouchOp::Delete));
            }
            _ => {}
        }
    }
    text_fields(&mut anns, touches);
    let mut out = Vec::new();
    for id in order {
        let Some(a) = anns.remove(&id) else { continue };
        out.push(annotation_draft(&id, a));
    }
    for (id, added) in reactions {
        out.push(if added {
            Draft {
                kind: "reaction.added",
                summary: format!("agreed with {id} (공감)"),
                detail: json!({ "annotation": id, "reaction": "agree" }),
            }
        } else {
            Draft {
                kind: "reaction.removed",
                summary: format!("took back agreement with {id}"),
                detail: json!({ "annotation": id, "reaction": "agree" }),
            }
        });
    }
    out
}

pub(super) fn triage_drafts(touches: &[Touch]) -> Vec<Draft> {
    let mut items: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
    for (path, v) in field_values(touches) {
        if let [first, id, k] = path.as_slice() {
            if first == "items" && !v.is_null() {
                items.entry(id.clone()).or_default().insert(k.clone(), v);
            }
        }
    }
    let mut out = Vec::new();
    for (id, f) in items {
        if let Some(status) = f.get("status").and_then(Json::as_str) {
            out.push(Draft {
                kind: "triage.status_set",
                summary: format!("set {id} to {status}"),
                detail: json!({ "annotation": id, "status": status, "note": f.get("note") }),
            });
        }
        // Accepted into a finding of the report (or merged into one): the report's provenance.
        if let Some(finding) = f.get("finding").and_then(Json::as_str) {
            out.push(Draft {
                kind: "finding.linked",
                summary: format!("linked {id} to finding {finding}"),
                detail: json!({ "annotation": id, "finding": finding }),
            });
        }
        for flag in ["hidden", "pinned"] {
            if let Some(v) = f.get(flag).and_then(Json::as_bool) {
                out.push(Draft {
                    kind: "triage.flag_set",
                    summary: format!("{} {id}", if v { flag } else { "un-flagged" }),
                    detail: json!({ "annotation": id, "flag": flag, "value": v }),
                });
            }
        }
    }
    out
}

/// `first`: the document's first change (its status then is where it starts, not a move).
pub(super) fn eval_drafts(touches: &[Touch], first: bool) -> Vec<Draft> {
    let mut out = Vec::new();
    for t in touches {
        let p: Vec<&str> = t.path.iter().map(String::as_str).collect();
        if let (["criteria", c], Some("score"), TouchOp::Put(v)) =
            (p.as_slice(), t.key.as_deref(), &t.op)
        {
            out.push(Draft {
                kind: "score.set",
                summary: format!("scored {c}: {}", scalar_json(v)),
                detail: json!({ "criterion": c, "value": scalar_json(v) }),
            });
        }
    }
    match field_str(&field_values(touches), &["status"]) {
        Some("submitted") => out.push(Draft {
            kind: "evaluation.submitted",
            summary: "submitted the evaluation".into(),
            detail: json!({}),
        }),
        Some("draft") if !first => out.push(Draft {
            kind: "evaluation.reopened",
            summary: "reopened the evaluation (draft again)".into(),
            detail: json!({}),
        }),
        _ => {}
    }
    out
}

/// The report: findings made (`finding.created`) and findings whose fields changed
/// (`finding.updated`, naming the fields).
pub(super) fn report_drafts(touches: &[Touch]) -> Vec<Draft> {
    let mut made: Vec<String> = Vec::new();
    let mut changed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in touches {
        let p: Vec<&str> = t.path.iter().map(String::as_str).collect();
        match (p.as_slice(), t.key.as_deref(), &t.op) {
            (["findings"], Some(k), TouchOp::Make(_)) if !made.iter().any(|m| m == k) => {
                made.push(k.to_string());
            }
            (["findings", k, rest @ ..], key, _) => {
                if let Some(f) = rest.first().copied().or(key) {
                    changed
                        .entry(k.to_string())
                        .or_default()
                        .insert(f.to_string());
                }
            }
            _ => {}
        }
    }
    let values = field_values(touches);
    let mut out = Vec::new();
    for k in &made {
        let title = field_str(&values, &["findings", k, "title"]).unwrap_or_default();
        let kind = field_str(&values, &["findings", k, "type"]).unwrap_or_default();
        out.push(Draft {
            kind: "finding.created",
            summary: format!("added finding {k} ({kind}): \"{}\"", short(title)),
            detail: json!({ "finding": k, "type": kind, "title": short(title) }),
        });
    }
    for (k, fields) in changed {
        if made.contains(&k) {
            continue;
        }
        let fields: Vec<String> = fields.into_iter().collect();
        out.push(Draft {
            kind: "finding.updated",
            summary: format!("edited finding {k}: {}", fields.join(", ")),
            detail: json!({ "finding": k, "fields": fields }),
        });
    }
    out
}

/// A department's answers: a stance given on a finding (`department.responded`).
pub(super) fn response_drafts(touches: &[Touch], department: &str) -> Vec<Draft> {
    let values = field_values(touches);
    let mut out = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for path in values.keys() {
        if let [first, finding, _] = path.as_slice() {
            if first == "responses" && seen.insert(finding.as_str()) {
                let at = |f: &str| field_str(&values, &["responses", finding, f]);
                let Some(stance) = at("stance") else { continue };
                out.push(Draft {
                    kind: "department.responded",
                    summary: format!("{department} answered {finding}: {stance}"),
                    detail: json!({
                        "finding": finding, "department": department, "stance": stance,
                        "due": at("due"), "action_plan": at("action_plan").map(short),
                    }),
                });
            }
        }
    }
    out
}

pub(super) fn session_drafts(touches: &[Touch]) -> Vec<Draft> {
    let values = field_values(touches);
    let path = vec!["current_item".to_string()];
    match values.get(&path).filter(|v| !v.is_null()) {
        Some(v) => vec![Draft {
            kind: "agenda.advanced",
            summary: format!("agenda moved to {v}"),
            detail: json!({ "item": v }),
        }],
        None => Vec::new(),
    }
}
