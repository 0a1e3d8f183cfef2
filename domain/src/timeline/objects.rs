//! Where each object of a document sits (its path), learned change by change, and each
//! operation of a change located by it ([`Touch`]).

use crate::policy::DocKey;
use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ObjType, ScalarValue};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Oid(u64, ActorId);

impl From<&OpId> for Oid {
    fn from(o: &OpId) -> Self {
        Oid(o.0, o.1.clone())
    }
}

#[derive(Debug, Clone)]
pub(super) struct ObjInfo {
    pub(super) parent: Option<Oid>,
    /// The key in its parent map; `None` for an element of a list.
    pub(super) key: Option<String>,
    pub(super) typ: ObjType,
}

/// What the projector remembers of one document: where each object sits.
#[derive(Debug, Default, Clone)]
pub struct DocObjects {
    pub(super) objs: HashMap<Oid, ObjInfo>,
    /// Document sequence number of the last change learned.
    pub upto: u64,
    /// The hash of the document's skeleton (`provision::skeleton_change`), once learned: the
    /// server's preparation, not anybody's act.
    pub(super) skeleton: Option<automerge::ChangeHash>,
}

/// One operation, located.
#[derive(Debug)]
pub(super) struct Touch {
    /// Path of the object the operation is in.
    pub(super) path: Vec<String>,
    /// The object's type (`Map` for the root).
    pub(super) in_type: ObjType,
    /// The map key it sets or deletes (`None` inside a list or text).
    pub(super) key: Option<String>,
    pub(super) op: TouchOp,
}

#[derive(Debug)]
pub(super) enum TouchOp {
    Make(ObjType),
    Put(ScalarValue),
    Insert(ScalarValue),
    Delete,
    Other,
}

impl DocObjects {
    /// Whether `change` creates the document: made on nothing, or on its skeleton only.
    /// `None` for the skeleton itself, which the server gives every document: nobody's act.
    pub(super) fn creates(&mut self, change: &Change, key: &DocKey) -> Option<bool> {
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

    pub(super) fn path(&self, obj: &ObjectId) -> (Vec<String>, ObjType) {
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
    pub(super) fn touches(&mut self, change: &Change) -> Vec<Touch> {
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
