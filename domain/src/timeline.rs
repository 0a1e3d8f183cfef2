//! The session timeline: the event log told in the debate's terms — annotation created,
//! reply, reaction, triage status set, section edited (+N/−M characters), score set,
//! evaluation submitted, participant joined and left, phase changed, import applied.
//!
//! This is a *projection*: a pure function of the log, computed record by record, so it can
//! be dropped and rebuilt at any time (`toron-server rebuild`) and checked against what is
//! stored (`toron-server verify`). It reads the operations inside each change rather than
//! diffing documents: a change's operations name exactly what that change did, and reading
//! them costs time proportional to the change, not to the document's history.
//!
//! Paths come from the layouts of design §7 and domain §2.3 (`annotations/<id>/…` in notes
//! layers, `items/<id>/status` in the triage document, `sections/<name>` in a case,
//! `criteria/<criterion>/score` in an evaluation). A change that fits none of them is still
//! listed, as `doc.changed` with the paths it touched: nothing accepted is left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ObjType, ScalarValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::policy::DocKey;
use toron_protocol::record::{AdminAction, ChangeRecord, Presence};

/// One line of a session's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub session: String,
    /// Server receive time, UTC milliseconds (the log's clock).
    pub time_ms: u64,
    /// When an imported action happened (the importer's clock), if it said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_ms: Option<u64>,
    pub global_seq: u64,
    /// Position among the entries one record produced.
    pub index: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `annotation.created`, `reply.created`, `section.edited`, … (see the module docs).
    pub kind: String,
    /// The same in words, for people.
    pub summary: String,
    pub detail: Json,
}

impl Entry {
    /// The time the timeline is ordered by: when it happened if an importer said so,
    /// otherwise when the server received it.
    pub fn order_ms(&self) -> u64 {
        self.occurred_ms.unwrap_or(self.time_ms)
    }
}

/// Where a document belongs, as the registry knows it.
#[derive(Debug, Clone)]
pub struct DocContext {
    pub key: DocKey,
    pub session: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Oid(u64, ActorId);

impl From<&OpId> for Oid {
    fn from(o: &OpId) -> Self {
        Oid(o.0, o.1.clone())
    }
}

#[derive(Debug, Clone)]
struct ObjInfo {
    parent: Option<Oid>,
    /// The key in its parent map; `None` for an element of a list.
    key: Option<String>,
    typ: ObjType,
}

/// What the projector remembers of one document: where each object sits.
#[derive(Debug, Default, Clone)]
pub struct DocObjects {
    objs: HashMap<Oid, ObjInfo>,
    /// Document sequence number of the last change learned.
    pub upto: u64,
    /// The hash of the document's skeleton (`provision::skeleton_change`), once learned: the
    /// server's preparation, not anybody's act.
    skeleton: Option<automerge::ChangeHash>,
}

/// One operation, located.
#[derive(Debug)]
struct Touch {
    /// Path of the object the operation is in.
    path: Vec<String>,
    /// The object's type (`Map` for the root).
    in_type: ObjType,
    /// The map key it sets or deletes (`None` inside a list or text).
    key: Option<String>,
    op: TouchOp,
}

#[derive(Debug)]
enum TouchOp {
    Make(ObjType),
    Put(ScalarValue),
    Insert(ScalarValue),
    Delete,
    Other,
}

impl DocObjects {
    /// Whether `change` creates the document: made on nothing, or on its skeleton only.
    /// `None` for the skeleton itself, which the server gives every document: nobody's act.
    fn creates(&mut self, change: &Change, key: &DocKey) -> Option<bool> {
        if change.deps().is_empty() && change.actor_id() == &crate::provision::skeleton_actor(key) {
            self.skeleton = Some(change.hash());
            return None;
        }
        Some(
            change.deps().is_empty()
                || self
                    .skeleton
                    .is_some_and(|k| change.deps().iter().all(|d| *d == k)),
        )
    }

    fn path(&self, obj: &ObjectId) -> (Vec<String>, ObjType) {
        let mut segs = Vec::new();
        let mut cur = match obj {
            ObjectId::Root => return (segs, ObjType::Map),
            ObjectId::Id(o) => Some(Oid::from(o)),
        };
        let typ = cur
            .as_ref()
            .and_then(|o| self.objs.get(o))
            .map(|i| i.typ)
            .unwrap_or(ObjType::Map);
        // Bounded: an object's parent always comes from an earlier operation.
        let mut hops = 0;
        while let Some(o) = cur {
            hops += 1;
            let Some(info) = self.objs.get(&o) else {
                segs.push("?".into());
                break;
            };
            if hops > 64 {
                break;
            }
            segs.push(info.key.clone().unwrap_or_else(|| "*".into()));
            cur = info.parent.clone();
        }
        segs.reverse();
        (segs, typ)
    }

    /// Locates every operation of `change`, and remembers the objects it makes.
    fn touches(&mut self, change: &Change) -> Vec<Touch> {
        let exp = change.decode();
        let start = exp.start_op.get();
        let mut out = Vec::with_capacity(exp.operations.len());
        for (i, op) in exp.operations.iter().enumerate() {
            let id = Oid(start + i as u64, exp.actor_id.clone());
            let (path, in_type) = self.path(&op.obj);
            let key = match &op.key {
                Key::Map(k) => Some(k.to_string()),
                Key::Seq(_) => None,
            };
            let t = match &op.action {
                OpType::Make(typ) => {
                    let parent = match &op.obj {
                        ObjectId::Root => None,
                        ObjectId::Id(o) => Some(Oid::from(o)),
                    };
                    self.objs.insert(
                        id,
                        ObjInfo {
                            parent,
                            key: key.clone(),
                            typ: *typ,
                        },
                    );
                    TouchOp::Make(*typ)
                }
                OpType::Put(v) if op.insert => TouchOp::Insert(v.clone()),
                OpType::Put(v) => TouchOp::Put(v.clone()),
                OpType::Delete => TouchOp::Delete,
                _ => TouchOp::Other,
            };
            out.push(Touch {
                path,
                in_type,
                key,
                op: t,
            });
        }
        out
    }

    /// Learns the objects `change` makes without projecting it (catching up on a document
    /// whose earlier changes were projected by another run).
    pub fn learn(&mut self, change: &Change) {
        let _ = self.touches(change);
    }
}

fn scalar_str(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The start of a text as the timeline quotes it, in NFC (Hangul typed as decomposed jamo
/// reads as the syllables it is).
fn short(text: &str) -> String {
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
struct TextEdit {
    added: u64,
    removed: u64,
    inserted: String,
}

/// Annotation fields seen in one change.
#[derive(Default)]
struct AnnotationTouch {
    made: bool,
    deleted: bool,
    withdrawn: bool,
    fields: BTreeMap<String, Json>,
    body: TextEdit,
    /// The passage it is anchored to (`target.quote.exact`), which names a highlight.
    quote: Option<String>,
}

struct Draft {
    kind: &'static str,
    summary: String,
    detail: Json,
}

fn scalar_json(v: &ScalarValue) -> Json {
    toron_protocol::json::scalar_json(v)
}

fn text_edits(touches: &[Touch]) -> BTreeMap<Vec<String>, TextEdit> {
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
fn field_values(touches: &[Touch]) -> BTreeMap<Vec<String>, Json> {
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
fn field_str<'a>(values: &'a BTreeMap<Vec<String>, Json>, path: &[&str]) -> Option<&'a str> {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    values.get(&path).and_then(Json::as_str)
}

fn section_edit(path: &[String], e: &TextEdit) -> Draft {
    let p = path.join("/");
    Draft {
        kind: "section.edited",
        summary: format!("edited {p} (+{}/−{} characters)", e.added, e.removed),
        detail: json!({ "path": path, "added": e.added, "removed": e.removed, "inserted": short(&e.inserted) }),
    }
}

/// What one touch below an annotation (`field`, or deeper when not `direct`) says of it.
fn field_touch(a: &mut AnnotationTouch, t: &Touch, field: String, direct: bool) {
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
fn text_fields(anns: &mut BTreeMap<String, AnnotationTouch>, touches: &[Touch]) {
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
fn annotation_draft(id: &str, a: AnnotationTouch) -> Draft {
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

fn notes_drafts(touches: &[Touch]) -> Vec<Draft> {
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

fn triage_drafts(touches: &[Touch]) -> Vec<Draft> {
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
fn eval_drafts(touches: &[Touch], first: bool) -> Vec<Draft> {
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
fn report_drafts(touches: &[Touch]) -> Vec<Draft> {
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
fn response_drafts(touches: &[Touch], department: &str) -> Vec<Draft> {
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

fn session_drafts(touches: &[Touch]) -> Vec<Draft> {
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

/// The timeline entries of one accepted change. `objects` is what the projector knows of the
/// document so far; it learns the objects this change makes.
pub fn change_entries(
    objects: &mut DocObjects,
    ctx: &DocContext,
    rec: &ChangeRecord,
) -> Result<Vec<Entry>, automerge::LoadChangeError> {
    let change = Change::from_bytes(rec.change.bytes.clone())?;
    let touches = objects.touches(&change);
    objects.upto = rec.doc_seq;
    let Some(first) = objects.creates(&change, &ctx.key) else {
        return Ok(Vec::new());
    };
    let mut drafts = match ctx.key {
        DocKey::Notes { .. } | DocKey::NotesPrivate { .. } => notes_drafts(&touches),
        DocKey::Triage { .. } => triage_drafts(&touches),
        DocKey::Eval { .. } => eval_drafts(&touches, first),
        DocKey::Session { .. } => session_drafts(&touches),
        DocKey::Report { .. } => report_drafts(&touches),
        DocKey::Response { ref department, .. } => response_drafts(&touches, department),
        DocKey::Case { .. } => Vec::new(),
    };
    // Text edits the kind-specific rules did not already tell (annotation bodies are); a
    // document's first change writes its initial content, which "created" already tells.
    // (A triage item's fields are its decision, which `triage_drafts` tells, typed or not.)
    if !first
        && !matches!(
            ctx.key,
            DocKey::Notes { .. }
                | DocKey::NotesPrivate { .. }
                | DocKey::Triage { .. }
                | DocKey::Report { .. }
                | DocKey::Response { .. }
        )
    {
        for (path, e) in text_edits(&touches) {
            // A vocabulary value typed as text (an evaluation's status) is a new value, which
            // the kind's own entry tells, not an edit of a text.
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            // A form's `submitted_at` is part of its submission, which is told already.
            let stamp = matches!(ctx.key, DocKey::Eval { .. }) && p == ["submitted_at"];
            if crate::schema::vocabulary(&ctx.key, &p).is_none() && !stamp {
                drafts.push(section_edit(&path, &e));
            }
        }
    }
    if first {
        drafts.insert(
            0,
            Draft {
                kind: "document.created",
                summary: format!("created {}", ctx.key),
                detail: json!({}),
            },
        );
    }
    if drafts.is_empty() {
        let mut paths: Vec<String> = Vec::new();
        for t in &touches {
            let mut p = t.path.clone();
            if let Some(k) = &t.key {
                p.push(k.clone());
            }
            let p = p.join("/");
            if !paths.contains(&p) && paths.len() < 5 {
                paths.push(p);
            }
        }
        drafts.push(Draft {
            kind: "doc.changed",
            summary: format!("changed {}", paths.join(", ")),
            detail: json!({ "paths": paths }),
        });
    }
    let c = &rec.change;
    // An importer may say when a historical action happened: Automerge's change time
    // (seconds, as the JavaScript and Rust libraries write it). Nobody else is trusted to.
    let occurred_ms = (c.by.role.as_deref() == Some("importer") && change.timestamp() > 0)
        .then(|| change.timestamp() as u64 * 1000);
    Ok(drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| Entry {
            session: ctx.session.clone(),
            time_ms: c.received_at_ms,
            occurred_ms,
            global_seq: rec.global_seq,
            index: i.min(u16::MAX as usize) as u16,
            document: Some(ctx.key.to_string()),
            document_id: Some(c.document_id.to_string()),
            doc_seq: Some(rec.doc_seq),
            participant: c.by.participant.clone(),
            role: c.by.role.clone(),
            kind: d.kind.to_string(),
            summary: d.summary,
            detail: d.detail,
        })
        .collect())
}

/// What an entry that creates an annotation tells of it for later entries to name it by:
/// its id, and its ref and the start of its text.
pub fn annotation_label(e: &Entry) -> Option<(String, Json)> {
    // Only shared notes: a private note's text must not reach others through a label.
    let shared = e
        .document
        .as_deref()
        .is_some_and(|d| d.starts_with("notes:"));
    if !shared || !matches!(e.kind.as_str(), "annotation.created" | "reply.created") {
        return None;
    }
    let id = e.detail["annotation"].as_str()?.to_string();
    let mut label = json!({ "body": e.detail["body"] });
    if let Some(r) = e.detail.get("ref").filter(|r| !r.is_null()) {
        label["ref"] = r.clone();
    }
    Some((id, label))
}

/// The annotation an entry is about (reactions, triage, a reply's parent), if any.
pub fn referenced_annotation(e: &Entry) -> Option<String> {
    match e.kind.as_str() {
        "reaction.added" | "reaction.removed" | "triage.status_set" | "triage.flag_set"
        | "finding.linked" => e.detail["annotation"].as_str().map(str::to_string),
        "reply.created" => e.detail["parent"].as_str().map(str::to_string),
        _ => None,
    }
}

/// Names the annotation an entry is about by its ref and text (from its `annotation_label`),
/// as people know it — `agreed with L-04 “평일 저녁…”` rather than an id.
pub fn name_referenced(e: &mut Entry, label: &Json) {
    let reference = label["ref"].as_str();
    let body = label["body"].as_str().unwrap_or_default();
    let named = match (reference, body.is_empty()) {
        (Some(r), false) => format!("{r} “{}”", short(body)),
        (Some(r), true) => r.to_string(),
        (None, false) => format!("“{}”", short(body)),
        (None, true) => return,
    };
    let field = if e.kind == "reply.created" {
        "parent"
    } else {
        "annotation"
    };
    if let Some(r) = reference {
        e.detail[format!("{field}_ref")] = json!(r);
    }
    e.detail[format!("{field}_text")] = json!(short(body));
    e.summary = match e.kind.as_str() {
        "reaction.added" => format!("agreed with {named} (공감)"),
        "reaction.removed" => format!("took back agreement with {named}"),
        "triage.status_set" => format!(
            "set {named} to {}",
            e.detail["status"].as_str().unwrap_or("?")
        ),
        "triage.flag_set" => format!("{} {named}", e.detail["flag"].as_str().unwrap_or("?")),
        "finding.linked" => format!(
            "linked {named} to finding {}",
            e.detail["finding"].as_str().unwrap_or("?")
        ),
        "reply.created" => format!(
            "{} to {named}: \"{}\"",
            e.detail["annotation_kind"].as_str().unwrap_or("reply"),
            e.detail["body"].as_str().unwrap_or_default()
        ),
        _ => return,
    };
}

/// The entry a presence record makes.
pub fn presence_entry(global_seq: u64, p: &Presence) -> Entry {
    Entry {
        session: p.session.clone(),
        time_ms: p.at_ms,
        occurred_ms: None,
        global_seq,
        index: 0,
        document: None,
        document_id: None,
        doc_seq: None,
        participant: Some(p.participant.clone()),
        role: p.role.clone(),
        kind: if p.joined {
            "participant.joined"
        } else {
            "participant.left"
        }
        .into(),
        summary: if p.joined { "joined" } else { "left" }.into(),
        detail: json!({}),
    }
}

/// The entry a metadata action makes in a session's timeline, if it concerns one:
/// a phase change (`previous_phase` is the phase the projection last saw), a session-scoped
/// role grant or revocation, an applied import.
pub fn admin_entry(
    global_seq: u64,
    a: &AdminAction,
    previous_phase: impl Fn(&str) -> Option<String>,
) -> Option<Entry> {
    let v: Json = serde_json::from_str(&a.action).ok()?;
    let (session, kind, summary, detail) = if let Some(i) = v.get("agenda_item") {
        let item = i.get("item").and_then(Json::as_str);
        (
            i.get("session")?.as_str()?.to_string(),
            "session.agenda_item",
            match item {
                Some(k) => format!("agenda item {k} begun"),
                None => "no agenda item under way".into(),
            },
            json!({ "item": item }),
        )
    } else if let Some(s) = v.get("session") {
        let key = s.get("key")?.as_str()?.to_string();
        let phase = s.get("phase")?.as_str()?.to_string();
        let before = previous_phase(&key);
        if before.as_deref() == Some(phase.as_str()) {
            return None;
        }
        let summary = match &before {
            Some(b) => format!("phase {b} → {phase}"),
            None => format!("session created ({phase})"),
        };
        (
            key,
            "session.phase_changed",
            summary,
            json!({ "from": before, "to": phase }),
        )
    } else if let Some(g) = v.get("role_granted").or_else(|| v.get("role_revoked")) {
        if g.get("scope")?.as_str()? != "session" {
            return None;
        }
        let granted = v.get("role_granted").is_some();
        let who = g.get("participant")?.as_str()?;
        let role = g.get("role")?.as_str()?;
        (
            g.get("name")?.as_str()?.to_string(),
            if granted {
                "role.granted"
            } else {
                "role.revoked"
            },
            format!(
                "{} {role} {} {who}",
                if granted { "granted" } else { "revoked" },
                if granted { "to" } else { "from" }
            ),
            json!({ "participant": who, "role": role }),
        )
    } else if let Some(i) = v.get("import_applied") {
        let session = i.get("session")?.as_str()?.to_string();
        (
            session,
            "import.applied",
            format!(
                "import {} applied",
                i.get("batch").and_then(Json::as_str).unwrap_or("?")
            ),
            i.clone(),
        )
    } else {
        return None;
    };
    Some(Entry {
        session,
        time_ms: a.at_ms,
        occurred_ms: None,
        global_seq,
        index: 0,
        document: None,
        document_id: None,
        doc_seq: None,
        participant: Some(a.by.clone()),
        role: None,
        kind: kind.into(),
        summary,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ReadDoc, ROOT};
    use toron_protocol::ids::{ConnId, DocumentId, PeerId};
    use toron_protocol::record::{Attribution, NewChange};

    fn rec(doc: &mut AutoCommit, seq: u64, role: &str) -> ChangeRecord {
        let bytes = doc
            .get_last_local_change()
            .expect("a change")
            .raw_bytes()
            .to_vec();
        ChangeRecord {
            global_seq: 100 + seq,
            doc_seq: seq,
            change: NewChange {
                document_id: DocumentId::from_bytes([1; 16]),
                received_at_ms: 1_000 * seq,
                conn: ConnId(1),
                peer: PeerId::new("p").expect("peer"),
                by: Attribution {
                    participant: Some("P-1".into()),
                    role: Some(role.into()),
                },
                actor: vec![],
                hash: [0; 32],
                bytes,
                heads_after: vec![],
            },
        }
    }

    fn kinds(es: &[Entry]) -> Vec<&str> {
        es.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_notes_layer_tells_annotations_replies_reactions_edits_and_withdrawals() {
        let ctx = DocContext {
            key: DocKey::Notes {
                session: "S1".into(),
                participant: "P-1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        d.put(ROOT, "schema", "notes/1").expect("put");
        let anns = d
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("map");
        let reacts = d.put_object(ROOT, "reactions", ObjType::Map).expect("map");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["document.created"]);

        let a = d.put_object(&anns, "a-1", ObjType::Map).expect("ann");
        d.put(&a, "kind", "gap").expect("kind");
        let body = d.put_object(&a, "body", ObjType::Text).expect("body");
        d.splice_text(&body, 0, 0, "돌봄 공백 😀 있음")
            .expect("text");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "gap");
        assert_eq!(e[0].detail["body"], "돌봄 공백 😀 있음");
        assert_eq!(e[0].participant.as_deref(), Some("P-1"));
        assert_eq!(e[0].doc_seq, Some(2));

        let r = d.put_object(&anns, "a-2", ObjType::Map).expect("reply");
        d.put(&r, "kind", "reply").expect("kind");
        d.put(&r, "parent", "a-0").expect("parent");
        d.put(&r, "body", "동의합니다").expect("body");
        let re = d
            .put_object(&reacts, "a-0", ObjType::Map)
            .expect("reaction");
        d.put(&re, "kind", "agree").expect("kind");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["reply.created", "reaction.added"]);
        assert_eq!(e[0].detail["parent"], "a-0");

        d.splice_text(&body, 2, 3, "보완").expect("edit");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 4, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.edited"]);
        assert_eq!(
            (
                e[0].detail["added"].as_u64(),
                e[0].detail["removed"].as_u64()
            ),
            (Some(2), Some(3))
        );

        d.put(&a, "withdrawn", true).expect("withdraw");
        d.delete(&reacts, "a-0").expect("unreact");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 5, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.withdrawn", "reaction.removed"]);
        assert_eq!(d.length(&body), 9);
    }

    #[test]
    fn triage_evaluation_and_case_changes_and_the_importers_clock() {
        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Eval {
                case: "C1".into(),
                evaluator: "P-ev".into(),
            },
            session: "S1".into(),
        };
        let mut d = AutoCommit::new();
        let crit = d.put_object(ROOT, "criteria", ObjType::Map).expect("map");
        let eff = d
            .put_object(&crit, "effectiveness", ObjType::Map)
            .expect("map");
        let text = d.put_object(&eff, "text", ObjType::Text).expect("text");
        d.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "evaluator")).expect("entries");
        d.put(&eff, "score", 4).expect("score");
        d.splice_text(&text, 0, 0, "효과가 크다").expect("text");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["score.set", "section.edited"]);
        assert_eq!(
            e[0].detail,
            json!({"criterion": "effectiveness", "value": 4})
        );
        assert_eq!(
            e[1].detail["path"],
            json!(["criteria", "effectiveness", "text"])
        );
        assert_eq!(e[1].detail["added"], 6);
        assert_eq!(e[1].occurred_ms, None);

        // An importer's change keeps its own time; the same from anybody else does not count.
        d.put(ROOT, "status", "submitted").expect("status");
        d.commit_with(automerge::transaction::CommitOptions::default().with_time(1_790_000_000));
        let r = rec(&mut d, 3, "importer");
        let e = change_entries(&mut objs, &ctx, &r).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.submitted"]);
        assert_eq!(e[0].occurred_ms, Some(1_790_000_000_000));
        assert_eq!(e[0].order_ms(), 1_790_000_000_000);

        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Triage {
                session: "S1".into(),
            },
            session: "S1".into(),
        };
        let mut t = AutoCommit::new();
        let items = t.put_object(ROOT, "items", ObjType::Map).expect("map");
        t.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut t, 1, "organizer")).expect("entries");
        let it = t.put_object(&items, "a-1", ObjType::Map).expect("item");
        t.put(&it, "status", "answered").expect("status");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 2, "facilitator")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set"]);
        assert_eq!(e[0].detail["status"], "answered");
        t.put(&it, "status", "accepted").expect("status");
        t.put(&it, "finding", "F-1").expect("finding");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 3, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set", "finding.linked"]);
        assert_eq!(
            e[1].detail,
            json!({ "annotation": "a-1", "finding": "F-1" })
        );
        t.put(&items, "junk", 1).expect("other");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 4, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["doc.changed"]);
        assert_eq!(e[0].detail["paths"], json!(["items/junk"]));
    }

    /// The series' documents: a finding added then edited in the report, a department's
    /// stance on it typed as text (as the JavaScript client writes strings).
    #[test]
    fn findings_and_department_responses() {
        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Report {
                series: "BM".into(),
            },
            session: "BM".into(),
        };
        let mut r = AutoCommit::new();
        let fs = r.put_object(ROOT, "findings", ObjType::Map).expect("map");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 1, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["document.created"]);
        let f = r.put_object(&fs, "F-1", ObjType::Map).expect("finding");
        r.put(&f, "type", "gap").expect("type");
        r.put(&f, "title", "인력 부족").expect("title");
        let text = r.put_object(&f, "text", ObjType::Text).expect("text");
        r.splice_text(&text, 0, 0, "사서가 없다").expect("typed");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 2, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["finding.created"]);
        assert_eq!(
            e[0].detail,
            json!({ "finding": "F-1", "type": "gap", "title": "인력 부족" })
        );
        r.splice_text(&text, 5, 0, " 순회").expect("edit");
        r.put(&f, "priority", "high").expect("priority");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 3, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["finding.updated"]);
        assert_eq!(e[0].detail["fields"], json!(["priority", "text"]));

        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Response {
                series: "BM".into(),
                department: "DEP-CULT".into(),
            },
            session: "BM".into(),
        };
        let mut d = AutoCommit::new();
        let rs = d.put_object(ROOT, "responses", ObjType::Map).expect("map");
        d.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "department_reviewer"));
        let one = d.put_object(&rs, "F-1", ObjType::Map).expect("response");
        put_text(&mut d, &one, "stance", "partially_accepted");
        put_text(&mut d, &one, "due", "2013-03");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "department_reviewer")).expect("e");
        assert_eq!(kinds(&e), ["department.responded"]);
        assert_eq!(e[0].detail["finding"], "F-1");
        assert_eq!(e[0].detail["department"], "DEP-CULT");
        assert_eq!(e[0].detail["stance"], "partially_accepted");
        assert_eq!(e[0].detail["due"], "2013-03");
    }

    #[test]
    fn metadata_actions_in_a_session() {
        let a = |action: Json| AdminAction {
            at_ms: 5,
            by: "admin".into(),
            action: action.to_string(),
        };
        let e = admin_entry(
            1,
            &a(json!({"session": {"key": "S1", "phase": "live"}})),
            |_| Some("scheduled".into()),
        )
        .expect("entry");
        assert_eq!(
            (e.kind.as_str(), e.session.as_str()),
            ("session.phase_changed", "S1")
        );
        assert!(admin_entry(
            2,
            &a(json!({"session": {"key": "S1", "phase": "live"}})),
            |_| { Some("live".into()) }
        )
        .is_none());
        let g = json!({"role_granted": {"participant": "P-1", "role": "activist", "scope": "session", "name": "S1"}});
        assert_eq!(
            admin_entry(3, &a(g), |_| None).expect("grant").kind,
            "role.granted"
        );
        assert!(admin_entry(
            4,
            &a(json!({"token_issued": {"participant": "P-1"}})),
            |_| None
        )
        .is_none());
    }

    /// Text, as the JavaScript client writes every string: a field made as a text object and
    /// typed into in the same change.
    fn put_text(d: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str) {
        let t = d.put_object(obj, key, ObjType::Text).expect("text");
        d.splice_text(&t, 0, 0, value).expect("splice");
    }

    #[test]
    fn strings_written_as_text_are_read_as_the_strings_typed() {
        // A notes layer: a question and a reply whose kind and parent are texts.
        let ctx = DocContext {
            key: DocKey::Notes {
                session: "S1".into(),
                participant: "P-1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        let anns = d
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("map");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "activist")).expect("entries");
        let a = d.put_object(&anns, "q-1", ObjType::Map).expect("ann");
        put_text(&mut d, &a, "kind", "question");
        put_text(&mut d, &a, "body", "예산은 어디서 오나요?");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "question", "{:?}", e[0]);
        let r = d.put_object(&anns, "r-1", ObjType::Map).expect("reply");
        put_text(&mut d, &r, "kind", "answer");
        put_text(&mut d, &r, "parent", "q-1");
        put_text(&mut d, &r, "body", "구비 예산입니다");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["reply.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "answer");
        assert_eq!(e[0].detail["parent"], "q-1");

        // The triage document: a status typed as text is one decision, not section edits.
        let ctx = DocContext {
            key: DocKey::Triage {
                session: "S1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        let items = d.put_object(ROOT, "items", ObjType::Map).expect("items");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "facilitator")).expect("entries");
        let item = d.put_object(&items, "q-1", ObjType::Map).expect("item");
        put_text(&mut d, &item, "status", "answered");
        put_text(&mut d, &item, "note", "구청장 답변");
        let history = d
            .put_object(&item, "history", ObjType::List)
            .expect("history");
        let h = d.insert_object(&history, 0, ObjType::Map).expect("entry");
        put_text(&mut d, &h, "status", "answered");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "facilitator")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set"], "{e:?}");
        assert_eq!(e[0].detail["status"], "answered");
        assert_eq!(e[0].detail["note"], "구청장 답변");

        // An evaluation submitted, then reopened, with its status as text.
        let ctx = DocContext {
            key: DocKey::Eval {
                case: "C1".into(),
                evaluator: "P-E".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        put_text(&mut d, &ROOT, "status", "draft");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "evaluator")).expect("entries");
        put_text(&mut d, &ROOT, "status", "submitted");
        // The web client stamps the submission as text beside it: one entry, not an edit too.
        put_text(&mut d, &ROOT, "submitted_at", "2026-12-07T10:42:00.000Z");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.submitted"], "{e:?}");
        put_text(&mut d, &ROOT, "status", "draft");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.reopened"], "{e:?}");
    }
}
