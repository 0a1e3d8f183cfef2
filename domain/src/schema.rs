//! What may be written where: the schema tag of each document kind and the values that its
//! fields with a fixed vocabulary ([`crate::vocab`]) may take.
//!
//! [`check`] reads the operations of incoming changes *before* they are applied, locating each
//! one by the object it writes to (objects already in the document through
//! `Automerge::parents`, objects the same batch creates from their `make` operations), and
//! refuses values outside the vocabulary: an unknown annotation kind, a score outside 1–5, a
//! triage status or response stance nobody defined, a schema tag of another kind. Fields it
//! does not know are left alone — documents may carry more than Toron reads.

use std::collections::HashMap;
use toron_protocol::refusal::{Refusal, RefusalKind};

use automerge::legacy::{ElementId, Key, ObjectId, OpType};
use automerge::{ActorId, Automerge, Change, ObjType, Prop, ReadDoc, ScalarValue};

use crate::policy::DocKey;
use crate::vocab::{AnnotationKind, EvaluationStatus, Stance, TriageStatus};

/// The schema tag every document of this kind carries at `schema`.
pub fn tag(key: &DocKey) -> &'static str {
    match key {
        DocKey::Case { .. } => "case/1",
        DocKey::Eval { .. } => "evaluation/1",
        DocKey::Notes { .. } | DocKey::NotesPrivate { .. } => "notes/1",
        DocKey::Triage { .. } => "triage/1",
        DocKey::Session { .. } => "session/1",
        DocKey::Report { .. } => "report/1",
        DocKey::Response { .. } => "response/1",
    }
}

/// The longest text, in characters, a field of a document participants write in a debate may
/// hold: a note or a reply, an evaluation form's comment, a triage note, a finding, a
/// department's answer. About three A4 pages of Korean — more than anyone says in a hall,
/// and a bound on what one participant can make every reader, export and report carry.
pub const MAX_TEXT_CHARS: usize = 5_000;
/// The longest text of a case's section or a session's field (the material presenters
/// bring, written by organizers and presenters).
pub const MAX_MATERIAL_CHARS: usize = 200_000;

/// The longest text any field of a document of kind `key` may hold.
pub fn max_text_chars(key: &DocKey) -> usize {
    match key {
        DocKey::Case { .. } | DocKey::Session { .. } => MAX_MATERIAL_CHARS,
        _ => MAX_TEXT_CHARS,
    }
}

/// The most operations (a character typed is one) a document participants write in a debate
/// may hold — a notes layer, an evaluation form, the triage, a department's answers: fifty
/// of the longest notes with their edits. A document of 1,000,000 operations takes a few
/// hundred megabytes in memory, held by its actor and by every reader's copy: one participant
/// must not make the server hold that. Case material and the report keep the server's bound.
pub const MAX_PARTICIPANT_DOCUMENT_OPS: u64 = 250_000;

/// The bound on a document's operations for its kind, if its kind has its own
/// ([`MAX_PARTICIPANT_DOCUMENT_OPS`]).
pub fn max_document_ops(key: &DocKey) -> Option<u64> {
    match key {
        DocKey::Notes { .. }
        | DocKey::NotesPrivate { .. }
        | DocKey::Eval { .. }
        | DocKey::Triage { .. }
        | DocKey::Response { .. } => Some(MAX_PARTICIPANT_DOCUMENT_OPS),
        DocKey::Case { .. } | DocKey::Session { .. } | DocKey::Report { .. } => None,
    }
}

fn too_long(key: &DocKey, path: &[String], chars: usize) -> Refusal {
    Refusal::new(
        RefusalKind::Size,
        format!(
            "`{}` would hold {chars} characters; a {} document's texts hold at most {} here",
            path.join("/"),
            key.kind(),
            max_text_chars(key)
        ),
    )
}

/// A text object the batch writes into: where it is, how long it was, and how much the
/// batch's characters add (inserted) or take (deleted).
struct Growth {
    path: Vec<String>,
    base: usize,
    delta: i64,
}

/// A value written: a scalar, or the text a new text object was filled with.
#[derive(Debug)]
enum Written {
    Scalar(ScalarValue),
    Text(String),
    /// A map or a list (never a vocabulary value).
    Object,
}

impl Written {
    fn as_str(&self) -> Option<&str> {
        match self {
            Written::Scalar(ScalarValue::Str(s)) => Some(s),
            Written::Text(t) => Some(t),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Written::Scalar(ScalarValue::Int(i)) => Some(*i),
            Written::Scalar(ScalarValue::Uint(u)) => i64::try_from(*u).ok(),
            Written::Scalar(ScalarValue::F64(f)) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Written::Scalar(ScalarValue::Null))
    }
}

fn one_of(path: &str, w: &Written, allowed: &[&str]) -> Result<(), String> {
    match w.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        Some(s) => Err(format!(
            "`{path}` cannot be `{s}` (one of {})",
            allowed.join(", ")
        )),
        None => Err(format!(
            "`{path}` must be text, one of {}",
            allowed.join(", ")
        )),
    }
}

fn score(path: &str, w: &Written, nullable: bool) -> Result<(), String> {
    match w.as_int() {
        Some(1..=5) => Ok(()),
        _ if nullable && w.is_null() => Ok(()),
        _ => Err(format!(
            "`{path}` must be a score from 1 to 5{}",
            if nullable { " or null" } else { "" }
        )),
    }
}

/// The values a fixed field of a document of kind `key` may take, when `path` is one (an
/// annotation's kind, a triage status, an evaluation's status, a response's stance).
pub fn vocabulary(key: &DocKey, path: &[&str]) -> Option<&'static [&'static str]> {
    match (key, path) {
        (DocKey::Notes { .. } | DocKey::NotesPrivate { .. }, ["annotations", _, "kind"]) => {
            Some(AnnotationKind::NAMES)
        }
        (DocKey::Notes { .. } | DocKey::NotesPrivate { .. }, ["reactions", _, "kind"]) => {
            Some(&["agree"])
        }
        (DocKey::Triage { .. }, ["items", _, "status"]) => Some(TriageStatus::NAMES),
        (DocKey::Eval { .. }, ["status"]) => Some(EvaluationStatus::NAMES),
        (DocKey::Response { .. }, ["responses", _, "stance"]) => Some(Stance::NAMES),
        _ => None,
    }
}

/// What a document's fields may refer to outside it, as the server knows it (the series'
/// departments). Asked only for values written at a [`references`] place.
pub trait References {
    /// `Err(message naming it)` unless `department` is a key of the series' departments.
    fn department(&self, department: &str) -> Result<(), String>;
    /// `Err(message naming it)` unless `finding` is a finding of the series' report.
    fn finding(&self, finding: &str) -> Result<(), String>;
    /// `Err(message naming it)` unless `finding` is a finding of the series' report addressed
    /// to `department`: a department answers for its own findings only.
    fn finding_of_department(&self, finding: &str, department: &str) -> Result<(), String>;
}

/// Anything goes: for checks made without the registry (tests, fuzzing).
#[derive(Debug, Default)]
pub struct AnyReference;

impl References for AnyReference {
    fn department(&self, _: &str) -> Result<(), String> {
        Ok(())
    }

    fn finding(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn finding_of_department(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

/// What kind of thing a value at `path` of a `key` document names, when it names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Department,
    Finding,
}

/// The places whose values name something outside the document: the departments a gap or
/// lesson is routed to, and those of a finding.
pub fn references(key: &DocKey, path: &[&str]) -> Option<Reference> {
    match (key, path) {
        (
            DocKey::Notes { .. } | DocKey::NotesPrivate { .. },
            ["annotations", _, "departments", "*"],
        )
        | (DocKey::Report { .. }, ["findings", _, "departments", "*"]) => {
            Some(Reference::Department)
        }
        (DocKey::Triage { .. }, ["items", _, "finding"]) => Some(Reference::Finding),
        _ => None,
    }
}

/// The rule for a value written at `path` of a document of kind `key`.
/// A value the schema does not allow.
fn value(message: String) -> Refusal {
    Refusal::new(RefusalKind::Value, message)
}

fn rule(key: &DocKey, path: &[String], w: &Written, refs: &dyn References) -> Result<(), Refusal> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let shown = p.join("/");
    if let Some(values) = vocabulary(key, &p) {
        return one_of(&shown, w, values).map_err(value);
    }
    let unknown = |e: String| Refusal::new(RefusalKind::Reference, format!("`{shown}`: {e}"));
    match references(key, &p) {
        Some(Reference::Department) => {
            return match w.as_str() {
                Some(d) => refs.department(d).map_err(unknown),
                None => Err(value(format!("`{shown}` must be text, a department's key"))),
            }
        }
        // A decision not (or no longer) linked to a finding writes null.
        Some(Reference::Finding) if w.is_null() => return Ok(()),
        Some(Reference::Finding) => {
            return match w.as_str() {
                Some(f) => refs.finding(f).map_err(unknown),
                None => Err(value(format!("`{shown}` must be text, a finding's key"))),
            }
        }
        None => {}
    }
    // Everything under `responses/{finding}` of a department's document answers that finding.
    if let (DocKey::Response { department, .. }, ["responses", finding, ..]) = (key, p.as_slice()) {
        refs.finding_of_department(finding, department)
            .map_err(unknown)?;
    }
    match (key, p.as_slice()) {
        (_, ["schema"]) => match w.as_str() {
            Some(t) if t == tag(key) => Ok(()),
            _ => Err(value(format!(
                "a {} document's `schema` is `{}`",
                key.kind(),
                tag(key)
            ))),
        },
        (DocKey::Notes { .. } | DocKey::NotesPrivate { .. }, ["annotations", _, "value"]) => {
            score(&shown, w, false).map_err(value)
        }
        (DocKey::Eval { .. }, ["criteria", _, "score"]) => score(&shown, w, true).map_err(value),
        _ => Ok(()),
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Oid(u64, ActorId);

/// Where an object is: its path from the root, and its type.
fn locate(
    doc: &Automerge,
    made: &HashMap<Oid, (Vec<String>, ObjType)>,
    obj: &ObjectId,
) -> Option<(Vec<String>, ObjType)> {
    let o = match obj {
        ObjectId::Root => return Some((Vec::new(), ObjType::Map)),
        ObjectId::Id(o) => Oid(o.0, o.1.clone()),
    };
    if let Some(m) = made.get(&o) {
        return Some(m.clone());
    }
    let (id, typ) = doc.import(&format!("{}@{}", o.0, o.1)).ok()?;
    let mut path: Vec<String> = doc
        .parents(&id)
        .ok()?
        .map(|p| match p.prop {
            Prop::Map(k) => k,
            Prop::Seq(_) => "*".to_string(),
        })
        .collect();
    path.reverse();
    Some((path, typ))
}

/// [`locate`], remembering what the document had (objects the batch makes are in `made`).
fn located(
    doc: &Automerge,
    made: &HashMap<Oid, (Vec<String>, ObjType)>,
    found: &mut HashMap<Oid, Option<(Vec<String>, ObjType)>>,
    obj: &ObjectId,
) -> Option<(Vec<String>, ObjType)> {
    let ObjectId::Id(o) = obj else {
        return locate(doc, made, obj);
    };
    let oid = Oid(o.0, o.1.clone());
    if let Some(m) = made.get(&oid) {
        return Some(m.clone());
    }
    found
        .entry(oid)
        .or_insert_with(|| locate(doc, made, obj))
        .clone()
}

/// Whether `path` of a `key` document holds a value of a fixed vocabulary.
fn governed(key: &DocKey, path: &[String]) -> bool {
    rule(key, path, &Written::Object, &AnyReference).is_err()
}

/// A text object made by the change being read, and what was typed into it.
#[derive(Default)]
struct Typed {
    text: String,
    /// The last character's operation: each one must follow it, so that the text read here
    /// is the text the document will hold.
    last: Option<Oid>,
    /// `false` once anything but typing straight on happened (a delete, an insert elsewhere).
    straight: bool,
}

/// Checks the changes of one message against the vocabulary of `key`'s kind. `doc` is the
/// document before they are applied. `Err` names the path and what is allowed.
///
/// A vocabulary value is written whole: a scalar, or a new text object typed straight through
/// in the same change (as JavaScript writes strings). Editing such a text in place — splicing
/// `accepted` into `open` — and objects where a scalar belongs (a score as a map or a list)
/// are refused, since what they would leave could not be checked from the change alone.
pub fn check(key: &DocKey, doc: &Automerge, changes: &[Change]) -> Result<(), Refusal> {
    check_with(key, doc, changes, &AnyReference)
}

/// [`check`], and every value at a [`references`] place must name something `refs` knows.
pub fn check_with(
    key: &DocKey,
    doc: &Automerge,
    changes: &[Change],
    refs: &dyn References,
) -> Result<(), Refusal> {
    if let DocKey::Eval { .. } = key {
        submitted_stays(doc, changes)?;
    }
    let mut made: HashMap<Oid, (Vec<String>, ObjType)> = HashMap::new();
    let mut texts: HashMap<Oid, Growth> = HashMap::new();
    // Objects of the document, located once each (a paste into a note is thousands of
    // operations on one text).
    let mut found: HashMap<Oid, Option<(Vec<String>, ObjType)>> = HashMap::new();
    for change in changes {
        let exp = change.decode();
        let start = exp.start_op.get();
        let mut typed: HashMap<Oid, Typed> = HashMap::new();
        for (i, op) in exp.operations.iter().enumerate() {
            let id = Oid(start + i as u64, exp.actor_id.clone());
            let Some((path, typ)) = located(doc, &made, &mut found, &op.obj) else {
                continue;
            };
            let key_here = match &op.key {
                Key::Map(k) => Some(k.to_string()),
                Key::Seq(_) => None,
            };
            let in_place = || {
                value(format!(
                    "`{}` is written whole, not edited in place",
                    path.join("/")
                ))
            };
            match &op.action {
                OpType::Make(t) => {
                    let mut p = path.clone();
                    p.push(key_here.clone().unwrap_or_else(|| "*".into()));
                    if *t == ObjType::Text {
                        texts.insert(
                            id.clone(),
                            Growth {
                                path: p.clone(),
                                base: 0,
                                delta: 0,
                            },
                        );
                        typed.insert(
                            id.clone(),
                            Typed {
                                straight: true,
                                ..Typed::default()
                            },
                        );
                    } else {
                        rule(key, &p, &Written::Object, refs)?;
                    }
                    made.insert(id, (p, *t));
                }
                OpType::Put(_) | OpType::Delete if typ == ObjType::Text => {
                    let ObjectId::Id(o) = &op.obj else { continue };
                    let at = Oid(o.0, o.1.clone());
                    let grows = texts.entry(at.clone()).or_insert_with(|| Growth {
                        path: path.clone(),
                        base: text_len(doc, o),
                        delta: 0,
                    });
                    grows.delta += text_delta(op);
                    match typed.get_mut(&at) {
                        Some(t) => t.take(op, id),
                        None if governed(key, &path) => return Err(in_place()),
                        None => {}
                    }
                }
                OpType::Increment(_) if governed(key, &path) => return Err(in_place()),
                OpType::Put(v) => {
                    // A map's field by name; a list's items all as `*`.
                    let mut p = path;
                    match key_here {
                        Some(k) => p.push(k),
                        None if typ == ObjType::List => p.push("*".into()),
                        None => continue,
                    }
                    scalar_length(key, &p, v)?;
                    rule(key, &p, &Written::Scalar(v.clone()), refs)?;
                }
                _ => {}
            }
        }
        typed_whole(key, &made, typed, refs)?;
    }
    within_length(key, &texts)
}

/// The texts a change made and typed: a vocabulary value must have been typed straight
/// through, and each is checked as the value it holds.
fn typed_whole(
    key: &DocKey,
    made: &HashMap<Oid, (Vec<String>, ObjType)>,
    typed: HashMap<Oid, Typed>,
    refs: &dyn References,
) -> Result<(), Refusal> {
    for (oid, t) in typed {
        if let Some((p, _)) = made.get(&oid) {
            if !t.straight && governed(key, p) {
                return Err(value(format!(
                    "`{}` is written whole: type it straight through",
                    p.join("/")
                )));
            }
            rule(key, p, &Written::Text(t.text), refs)?;
        }
    }
    Ok(())
}

/// A string written whole holds at most its kind's characters.
fn scalar_length(key: &DocKey, path: &[String], v: &ScalarValue) -> Result<(), Refusal> {
    match v {
        ScalarValue::Str(text) if text.chars().count() > max_text_chars(key) => {
            Err(too_long(key, path, text.chars().count()))
        }
        _ => Ok(()),
    }
}

/// What an operation on a text adds to its length (a character typed) or takes (deleted).
fn text_delta(op: &automerge::legacy::Op) -> i64 {
    match &op.action {
        OpType::Put(ScalarValue::Str(c)) if op.insert => c.chars().count() as i64,
        OpType::Delete => -1,
        _ => 0,
    }
}

/// Every text the batch grew holds at most its kind's characters.
fn within_length(key: &DocKey, texts: &HashMap<Oid, Growth>) -> Result<(), Refusal> {
    for g in texts.values() {
        let chars = usize::try_from(g.base as i64 + g.delta).unwrap_or(0);
        if chars > max_text_chars(key) && g.delta > 0 {
            return Err(too_long(key, &g.path, chars));
        }
    }
    Ok(())
}

impl Typed {
    /// One operation on the new text: typing straight on keeps it readable here, anything
    /// else does not.
    fn take(&mut self, op: &automerge::legacy::Op, id: Oid) {
        let follows = op.insert
            && match &op.key {
                Key::Seq(ElementId::Head) => self.last.is_none(),
                Key::Seq(ElementId::Id(prev)) => {
                    self.last.as_ref() == Some(&Oid(prev.0, prev.1.clone()))
                }
                Key::Map(_) => false,
            };
        match &op.action {
            OpType::Put(ScalarValue::Str(c)) if follows => self.text.push_str(c),
            _ => self.straight = false,
        }
        self.last = Some(id);
    }
}

/// An evaluation form's `status` now, whether written as a string or as text.
fn status_now(doc: &Automerge) -> Option<String> {
    match doc.get(automerge::ROOT, "status").ok()?? {
        (automerge::Value::Scalar(v), _) => match v.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (automerge::Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

/// A submitted evaluation form is changed only by reopening it first: a change that sets
/// `status` to `draft` and nothing else (the timeline's "evaluation.reopened"); then it may be
/// edited and submitted again. Without this its scores could change silently after they were
/// counted, the form still saying "submitted".
fn submitted_stays(doc: &Automerge, changes: &[Change]) -> Result<(), Refusal> {
    let mut locked = status_now(doc).as_deref() == Some("submitted");
    for change in changes {
        let exp = change.decode();
        let start = exp.start_op.get();
        // The status text this change makes, and what is typed into it.
        let mut status_text: Option<(Oid, String)> = None;
        let mut written: Option<String> = None;
        let mut other = false;
        for (i, op) in exp.operations.iter().enumerate() {
            let id = Oid(start + i as u64, exp.actor_id.clone());
            let at_status = matches!(&op.obj, ObjectId::Root)
                && matches!(&op.key, Key::Map(k) if k.as_str() == "status");
            let in_status_text = match (&op.obj, &status_text) {
                (ObjectId::Id(o), Some((t, _))) => Oid(o.0, o.1.clone()) == *t,
                _ => false,
            };
            match &op.action {
                OpType::Make(ObjType::Text) if at_status => {
                    status_text = Some((id, String::new()));
                }
                OpType::Put(ScalarValue::Str(v)) if at_status => written = Some(v.to_string()),
                OpType::Put(ScalarValue::Str(c)) if in_status_text && op.insert => {
                    if let Some((_, t)) = status_text.as_mut() {
                        t.push_str(c);
                    }
                }
                _ if at_status || in_status_text => {}
                _ => other = true,
            }
        }
        if let Some((_, t)) = status_text {
            written = Some(t);
        }
        if locked && (other || written.as_deref() != Some("draft")) {
            return Err(Refusal::new(
                RefusalKind::Value,
                "a submitted evaluation is changed only after it is reopened: set `status` to `draft` first (alone), then edit it and submit it again",
            ));
        }
        match written.as_deref() {
            Some("submitted") => locked = true,
            Some("draft") => locked = false,
            _ => {}
        }
    }
    Ok(())
}

/// How long a text object of the document is now (0 if the document does not have it).
fn text_len(doc: &Automerge, o: &automerge::legacy::OpId) -> usize {
    doc.import(&format!("{}@{}", o.0, o.1))
        .map_or(0, |(id, _)| doc.length(&id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn changes(d: &mut AutoCommit, from: &[automerge::ChangeHash]) -> Vec<Change> {
        d.get_changes(from)
    }

    #[test]
    fn vocabularies_are_enforced_and_unknown_fields_left_alone() {
        let notes = DocKey::Notes {
            session: "S1".into(),
            participant: "P-1".into(),
        };
        let mut d = AutoCommit::new();
        d.put(ROOT, "schema", "notes/1").expect("put");
        let anns = d
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("map");
        d.commit();
        let base = Automerge::load(&d.save()).expect("load");
        let heads = d.get_heads();
        // A good annotation, its kind as collaborative text (as JSON strings become).
        let a = d.put_object(&anns, "a-1", ObjType::Map).expect("ann");
        let k = d.put_object(&a, "kind", ObjType::Text).expect("kind");
        d.splice_text(&k, 0, 0, "gap").expect("text");
        d.put(&a, "anything", "else").expect("free field");
        d.commit();
        assert_eq!(check(&notes, &base, &changes(&mut d, &heads)), Ok(()));
        // An unknown kind, as text or as a string; a score of 7.
        let mut bad = d.fork();
        let b = bad.put_object(&anns, "a-2", ObjType::Map).expect("ann");
        let k = bad.put_object(&b, "kind", ObjType::Text).expect("kind");
        bad.splice_text(&k, 0, 0, "poem").expect("text");
        bad.commit();
        let e = check(&notes, &base, &changes(&mut bad, &heads)).expect_err("poem");
        assert_eq!(e.kind, RefusalKind::Value, "{e}");
        let e = e.message;
        assert!(
            e.contains("annotations/a-2/kind") && e.contains("poem"),
            "{e}"
        );
        let mut bad = d.fork();
        bad.put(&anns, "x", 1).expect("x");
        let b = bad.put_object(&anns, "a-3", ObjType::Map).expect("ann");
        bad.put(&b, "value", 7).expect("value");
        bad.commit();
        let e = check(&notes, &base, &changes(&mut bad, &heads)).expect_err("7");
        assert_eq!(e.kind, RefusalKind::Value, "{e}");
        let e = e.message;
        assert!(e.contains("1 to 5"), "{e}");
        // A change to an object that already exists is located through the document.
        let loaded = Automerge::load(&d.save()).expect("load");
        let now = d.get_heads();
        let a1 = d.get(&anns, "a-1").expect("get").expect("a-1").1;
        d.put(&a1, "kind", "opinion").expect("put");
        d.commit();
        let e = check(&notes, &loaded, &changes(&mut d, &now)).expect_err("opinion");
        assert_eq!(e.kind, RefusalKind::Value, "{e}");
        let e = e.message;
        assert!(e.contains("annotations/a-1/kind"), "{e}");
        // The schema tag of another kind.
        let triage = DocKey::Triage {
            session: "S1".into(),
        };
        let mut t = AutoCommit::new();
        t.put(ROOT, "schema", "notes/1").expect("put");
        t.commit();
        assert!(check(&triage, &Automerge::new(), &changes(&mut t, &[])).is_err());
        let eval = DocKey::Eval {
            case: "C".into(),
            evaluator: "P".into(),
        };
        let mut e = AutoCommit::new();
        let c = e.put_object(ROOT, "criteria", ObjType::Map).expect("c");
        let r = e.put_object(&c, "relevance", ObjType::Map).expect("r");
        e.put(&r, "score", ScalarValue::Null).expect("null is N/A");
        e.put(ROOT, "status", "submitted").expect("status");
        e.commit();
        assert_eq!(
            check(&eval, &Automerge::new(), &changes(&mut e, &[])),
            Ok(())
        );
    }

    /// The schema bypasses of the red-team pass (issue 15): text edited in place, objects
    /// where a scalar belongs, and text typed out of order.
    #[test]
    fn vocabulary_values_are_written_whole() {
        let triage = DocKey::Triage {
            session: "S1".into(),
        };
        let mut d = AutoCommit::new();
        let items = d.put_object(ROOT, "items", ObjType::Map).expect("items");
        let item = d.put_object(&items, "a-1", ObjType::Map).expect("item");
        let status = d
            .put_object(&item, "status", ObjType::Text)
            .expect("status");
        d.splice_text(&status, 0, 0, "open").expect("open");
        d.commit();
        assert_eq!(
            check(&triage, &Automerge::new(), &changes(&mut d, &[])),
            Ok(())
        );
        let base = Automerge::load(&d.save()).expect("load");
        let heads = d.get_heads();
        // Splicing "accepted" into the existing "open": refused, whatever it spells.
        let mut bad = d.fork();
        bad.splice_text(&status, 0, 4, "answered").expect("splice");
        bad.commit();
        let e = check(&triage, &base, &changes(&mut bad, &heads)).expect_err("in place");
        assert_eq!(e.kind, RefusalKind::Value, "{e}");
        let e = e.message;
        assert!(e.contains("items/a-1/status") && e.contains("whole"), "{e}");
        let mut bad = d.fork();
        bad.splice_text(&status, 4, 0, "-ish").expect("splice");
        bad.commit();
        assert!(check(&triage, &base, &changes(&mut bad, &heads)).is_err());
        // Replacing it whole is how a status changes.
        let mut good = d.fork();
        let s2 = good
            .put_object(&item, "status", ObjType::Text)
            .expect("new");
        good.splice_text(&s2, 0, 0, "answered").expect("answered");
        good.commit();
        assert_eq!(check(&triage, &base, &changes(&mut good, &heads)), Ok(()));
        // Typed out of order: the change reads "open" in op order but leaves "nepo".
        let mut bad = d.fork();
        let s3 = bad.put_object(&item, "status", ObjType::Text).expect("new");
        for c in ["o", "p", "e", "n"] {
            bad.splice_text(&s3, 0, 0, c).expect("at the head");
        }
        bad.commit();
        assert!(check(&triage, &base, &changes(&mut bad, &heads)).is_err());
        // A score as a map or a list; a kind as a list.
        let eval = DocKey::Eval {
            case: "C".into(),
            evaluator: "P".into(),
        };
        for t in [ObjType::Map, ObjType::List, ObjType::Text] {
            let mut e = AutoCommit::new();
            let c = e.put_object(ROOT, "criteria", ObjType::Map).expect("c");
            let r = e.put_object(&c, "relevance", ObjType::Map).expect("r");
            e.put_object(&r, "score", t).expect("object");
            e.commit();
            assert!(
                check(&eval, &Automerge::new(), &changes(&mut e, &[])).is_err(),
                "a score as {t:?}"
            );
        }
        let notes = DocKey::Notes {
            session: "S1".into(),
            participant: "P".into(),
        };
        let mut n = AutoCommit::new();
        let anns = n.put_object(ROOT, "annotations", ObjType::Map).expect("a");
        let a = n.put_object(&anns, "x", ObjType::Map).expect("x");
        n.put_object(&a, "kind", ObjType::List).expect("list");
        n.commit();
        assert!(check(&notes, &Automerge::new(), &changes(&mut n, &[])).is_err());
    }

    /// The series' departments, as the server's registry would answer.
    struct Departments(&'static [&'static str]);

    impl References for Departments {
        fn department(&self, d: &str) -> Result<(), String> {
            if self.0.contains(&d) {
                Ok(())
            } else {
                Err(format!(
                    "department `{d}` is not one of this series' departments"
                ))
            }
        }

        fn finding(&self, f: &str) -> Result<(), String> {
            match f {
                "F-1" => Ok(()),
                _ => Err(format!("no finding `{f}` in the report")),
            }
        }

        /// F-1 is addressed to the first department.
        fn finding_of_department(&self, f: &str, d: &str) -> Result<(), String> {
            self.finding(f)?;
            if self.0.first() == Some(&d) {
                Ok(())
            } else {
                Err(format!("finding `{f}` is not addressed to {d}"))
            }
        }
    }

    #[test]
    fn a_department_answers_only_for_findings_addressed_to_it() {
        let known = Departments(&["D-WEL", "D-PARK"]);
        for (department, finding, ok) in [
            ("D-WEL", "F-1", true),
            ("D-PARK", "F-1", false),
            ("D-WEL", "F-9", false),
        ] {
            let key = DocKey::Response {
                series: "S".into(),
                department: department.into(),
            };
            let mut d = AutoCommit::new();
            let all = d
                .put_object(ROOT, "responses", ObjType::Map)
                .expect("responses");
            d.commit();
            let base = Automerge::load(&d.save()).expect("load");
            let heads = d.get_heads();
            let r = d.put_object(&all, finding, ObjType::Map).expect("response");
            d.put(&r, "stance", "accepted").expect("stance");
            d.commit();
            let verdict = check_with(&key, &base, &d.get_changes(&heads), &known);
            assert_eq!(verdict.is_ok(), ok, "{department} {finding}: {verdict:?}");
            if let Err(e) = verdict {
                assert_eq!(e.kind, RefusalKind::Reference, "{e}");
                assert!(e.message.contains(finding), "{e}");
            }
        }
    }

    #[test]
    fn a_triage_decision_links_only_a_finding_of_the_report() {
        let triage = DocKey::Triage {
            session: "S1".into(),
        };
        let known = Departments(&[]);
        let mut d = AutoCommit::new();
        let items = d.put_object(ROOT, "items", ObjType::Map).expect("items");
        d.commit();
        let base = Automerge::load(&d.save()).expect("load");
        let heads = d.get_heads();
        for (finding, ok) in [("F-1", true), ("F-9", false)] {
            for as_text in [false, true] {
                let mut f = d.fork();
                let it = f.put_object(&items, "a-1", ObjType::Map).expect("item");
                f.put(&it, "status", "accepted").expect("status");
                if as_text {
                    let t = f.put_object(&it, "finding", ObjType::Text).expect("text");
                    f.splice_text(&t, 0, 0, finding).expect("typed");
                } else {
                    f.put(&it, "finding", finding).expect("finding");
                }
                f.commit();
                let r = check_with(&triage, &base, &f.get_changes(&heads), &known);
                assert_eq!(r.is_ok(), ok, "{finding} as text: {as_text}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e.kind, RefusalKind::Reference, "{e}");
                    let e = e.message;
                    assert!(e.contains("items/a-1/finding") && e.contains("F-9"), "{e}");
                }
            }
        }
        // Unlinking writes null.
        let mut f = d.fork();
        let it = f.put_object(&items, "a-1", ObjType::Map).expect("item");
        f.put(&it, "finding", ScalarValue::Null).expect("null");
        f.commit();
        assert_eq!(
            check_with(&triage, &base, &f.get_changes(&heads), &known),
            Ok(())
        );
    }

    #[test]
    fn departments_must_be_the_series_own_as_text_or_scalar() {
        let notes = DocKey::Notes {
            session: "S1".into(),
            participant: "P".into(),
        };
        let known = Departments(&["D-WEL", "D-PARK"]);
        let mut d = AutoCommit::new();
        let anns = d.put_object(ROOT, "annotations", ObjType::Map).expect("a");
        d.commit();
        let base = Automerge::load(&d.save()).expect("load");
        let heads = d.get_heads();
        // As the CLI writes them (scalars) and as the JavaScript client does (texts).
        let mut write = |as_text: bool, deps: &[&str]| {
            let mut f = d.fork();
            let a = f.put_object(&anns, "g", ObjType::Map).expect("ann");
            let l = f
                .put_object(&a, "departments", ObjType::List)
                .expect("list");
            for (i, dep) in deps.iter().enumerate() {
                if as_text {
                    let t = f.insert_object(&l, i, ObjType::Text).expect("text");
                    f.splice_text(&t, 0, 0, dep).expect("type");
                } else {
                    f.insert(&l, i, *dep).expect("insert");
                }
            }
            f.commit();
            f.get_changes(&heads)
        };
        for as_text in [false, true] {
            let ok = write(as_text, &["D-WEL", "D-PARK"]);
            assert_eq!(check_with(&notes, &base, &ok, &known), Ok(()), "{as_text}");
            let bad = write(as_text, &["D-WEL", "복지정책과"]);
            let e = check_with(&notes, &base, &bad, &known).expect_err("a name, not a key");
            assert_eq!(e.kind, RefusalKind::Reference, "{e}");
            let e = e.message;
            assert!(
                e.contains("annotations/g/departments/*") && e.contains("복지정책과"),
                "{e}"
            );
            // Without the registry (fuzzing, tests) anything is a department.
            assert_eq!(check(&notes, &base, &bad), Ok(()));
        }
        // A department as a map is not a department.
        let mut m = d.fork();
        let a = m.put_object(&anns, "g", ObjType::Map).expect("ann");
        let l = m
            .put_object(&a, "departments", ObjType::List)
            .expect("list");
        m.insert_object(&l, 0, ObjType::Map).expect("map");
        m.commit();
        assert!(check_with(&notes, &base, &m.get_changes(&heads), &known).is_err());
    }
}
