//! A document at a point of its log, and what changed between two points — pure functions
//! over the changes the log holds, shared by the server's history API and `verify`.

use std::collections::BTreeSet;

use automerge::{Automerge, Change, ChangeHash, ObjType, Patch, PatchAction, Prop, Value};
use serde_json::{json, Value as Json};

use crate::engine::AssembleError;

/// The document made of `changes` (in log order).
pub fn document_of(changes: &[Vec<u8>]) -> Result<Automerge, AssembleError> {
    crate::engine::assemble(None, changes.to_vec())
}

/// The heads after the first `n` changes of `changes`. The log is in causal order (a change
/// is appended only after its dependencies), so the heads of a prefix are the changes in it
/// that no later change of it depends on.
pub fn heads_after(changes: &[Change], n: usize) -> Vec<ChangeHash> {
    let mut heads = BTreeSet::new();
    for c in changes.iter().take(n) {
        for d in c.deps() {
            heads.remove(d);
        }
        heads.insert(c.hash());
    }
    heads.into_iter().collect()
}

fn prop_json(p: &Prop) -> Json {
    match p {
        Prop::Map(k) => json!(k),
        Prop::Seq(i) => json!(i),
    }
}

/// A value a patch sets. A new object is shown empty: the patches after it fill it in, and
/// reading it from the copy would show its content at the copy's newest heads instead.
fn value_json(_doc: &Automerge, v: &Value<'_>, _id: &automerge::ObjId) -> Json {
    match v {
        Value::Object(ObjType::Map | ObjType::Table) => json!({}),
        Value::Object(ObjType::List) => json!([]),
        Value::Object(ObjType::Text) => json!(""),
        Value::Scalar(s) => crate::json::scalar_json(s),
    }
}

/// One patch as JSON: `{ path: [...], action: "...", ... }`.
pub fn patch_json(doc: &Automerge, p: &Patch) -> Json {
    let path: Vec<Json> = p.path.iter().map(|(_, prop)| prop_json(prop)).collect();
    let (action, mut fields) = match &p.action {
        PatchAction::PutMap {
            key,
            value,
            conflict,
        } => (
            "put",
            json!({ "key": key, "value": value_json(doc, &value.0, &value.1), "conflict": conflict }),
        ),
        PatchAction::PutSeq {
            index,
            value,
            conflict,
        } => (
            "put",
            json!({ "index": index, "value": value_json(doc, &value.0, &value.1), "conflict": conflict }),
        ),
        PatchAction::Insert { index, values } => {
            let vs: Vec<Json> = values
                .iter()
                .map(|(v, id, _)| value_json(doc, v, id))
                .collect();
            ("insert", json!({ "index": index, "values": vs }))
        }
        PatchAction::SpliceText { index, value, .. } => (
            "splice",
            json!({ "index": index, "value": value.make_string() }),
        ),
        PatchAction::Increment { prop, value } => (
            "increment",
            json!({ "prop": prop_json(prop), "value": value }),
        ),
        PatchAction::Conflict { prop } => ("conflict", json!({ "prop": prop_json(prop) })),
        PatchAction::DeleteMap { key } => ("delete", json!({ "key": key })),
        PatchAction::DeleteSeq { index, length } => {
            ("delete", json!({ "index": index, "length": length }))
        }
        PatchAction::Mark { marks } => ("mark", json!({ "marks": marks.len() })),
    };
    if let Json::Object(m) = &mut fields {
        m.insert("path".into(), Json::Array(path));
        m.insert("action".into(), json!(action));
    }
    fields
}

/// What changed between two points of a loaded document, as JSON patches.
pub fn diff_between(doc: &Automerge, before: &[ChangeHash], after: &[ChangeHash]) -> Vec<Json> {
    doc.diff(before, after)
        .iter()
        .map(|p| patch_json(doc, p))
        .collect()
}

/// What changed between the first `from` and the first `to` changes of the log.
pub fn diff(changes: &[Change], from: usize, to: usize) -> Vec<Json> {
    let mut doc = Automerge::new();
    let _ = doc.apply_changes(changes.iter().take(from.max(to)).cloned());
    let before = heads_after(changes, from);
    let after = heads_after(changes, to);
    doc.diff(&before, &after)
        .iter()
        .map(|p| patch_json(&doc, p))
        .collect()
}
