//! The store as a replica of a replicated log (a cluster node): what its writes become, and
//! how the log's entries come back in.
//!
//! On one node, `Store::append` and `append_event` go to the writer thread. On a cluster
//! node a [`Replicator`] is set: every write is published as a [`LogEntry`] to the cluster's
//! log instead, and resolves only once (1) a quorum of the log has acknowledged it and (2)
//! this node's applier has written it back into sled through [`Store::apply_replicated`] —
//! the only way anything enters a replica's log. Every node applies the same entries in the
//! same order, so each node's sled holds the same records under the same global and document
//! sequence numbers; the position in the replicated log of the last entry applied is written
//! in the same sled batch (key `Z`), so a node that restarts resumes exactly after it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;
use minicbor::{Decoder, Encoder};
use toron_protocol::{ChangeRecord, DocumentId, Event, NewChange};

use super::writer::{AppendReq, ReqKind};
use super::{Appended, PendingEvent, RegistryOp, Store, StoreError};

/// Where a cluster node's writes go: the replicated log.
pub trait Replicator: Send + Sync + std::fmt::Debug {
    /// Publishes `entry`; resolves with the position of its last part in the replicated log
    /// once a quorum holds it, or an error (no quorum, no answer in time) — never sooner.
    fn publish(&self, entry: LogEntry) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// One write of a node, as the replicated log carries it.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// Changes of one document with the actor bindings they introduce.
    Changes {
        doc: DocumentId,
        changes: Vec<NewChange>,
        bindings: Vec<(Vec<u8>, String)>,
    },
    /// A rejection, admin or presence record with the registry entries it changes.
    Event {
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    },
}

/// The version of [`LogEntry`]'s encoding.
const ENTRY_VERSION: u64 = 1;
/// How long a write waits for this node to apply what the log acknowledged.
const APPLY_WAIT: Duration = Duration::from_secs(30);
/// Results of applied entries kept for writers that learn their position late.
const RECENT_RESULTS: usize = 65_536;

impl LogEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        // Writing into a Vec cannot fail.
        let _ = (|| -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
            match self {
                LogEntry::Changes {
                    doc,
                    changes,
                    bindings,
                } => {
                    e.map(4)?.str("v")?.u64(ENTRY_VERSION)?;
                    e.str("doc")?.bytes(doc.as_bytes())?;
                    e.str("changes")?.array(changes.len() as u64)?;
                    for c in changes {
                        let rec = ChangeRecord {
                            global_seq: 0,
                            doc_seq: 0,
                            change: c.clone(),
                        };
                        e.bytes(&rec.encode())?;
                    }
                    e.str("bind")?.array(bindings.len() as u64)?;
                    for (actor, participant) in bindings {
                        e.array(2)?.bytes(actor)?.str(participant)?;
                    }
                }
                LogEntry::Event { event, registry } => {
                    let bytes = match event {
                        PendingEvent::Rejection(r) => r.encode(0),
                        PendingEvent::Admin(a) => a.encode(0),
                        PendingEvent::Presence(p) => p.encode(0),
                    };
                    e.map(3)?.str("v")?.u64(ENTRY_VERSION)?;
                    e.str("event")?.bytes(&bytes)?;
                    e.str("reg")?.array(registry.len() as u64)?;
                    for op in registry {
                        match op {
                            RegistryOp::Put(k, v) => e.array(3)?.u8(0)?.str(k)?.bytes(v)?,
                            RegistryOp::Delete(k) => e.array(2)?.u8(1)?.str(k)?,
                        };
                    }
                }
            }
            Ok(())
        })();
        e.into_writer()
    }

    pub fn decode(input: &[u8]) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::Corrupt {
            key: "replicated entry".into(),
            reason,
        };
        let mut d = Decoder::new(input);
        let n = d.map().map_err(|e| bad(e.to_string()))?.unwrap_or(0);
        let (mut doc, mut changes, mut bindings) = (None, None, Vec::new());
        let (mut event, mut registry) = (None, Vec::new());
        for _ in 0..n.min(16) {
            let key = d.str().map_err(|e| bad(e.to_string()))?;
            match key {
                "v" => {
                    let v = d.u64().map_err(|e| bad(e.to_string()))?;
                    if v > ENTRY_VERSION {
                        return Err(bad(format!("written by a newer version ({v})")));
                    }
                }
                "doc" => {
                    let b = d.bytes().map_err(|e| bad(e.to_string()))?;
                    let b: [u8; 16] = b.try_into().map_err(|_| bad("document id".into()))?;
                    doc = Some(DocumentId::from_bytes(b));
                }
                "changes" => changes = Some(decode_changes(&mut d).map_err(bad)?),
                "bind" => bindings = decode_bindings(&mut d).map_err(bad)?,
                "event" => {
                    let b = d.bytes().map_err(|e| bad(e.to_string()))?;
                    event = Some(match Event::decode(b)? {
                        Event::Rejection { rejection, .. } => PendingEvent::Rejection(rejection),
                        Event::Admin { action, .. } => PendingEvent::Admin(action),
                        Event::Presence { presence, .. } => PendingEvent::Presence(presence),
                        Event::Change(_) => return Err(bad("a change as an event".into())),
                    });
                }
                "reg" => registry = decode_registry(&mut d).map_err(bad)?,
                _ => d.skip().map_err(|e| bad(e.to_string()))?,
            }
        }
        match (doc, changes, event) {
            (Some(doc), Some(changes), None) => Ok(LogEntry::Changes {
                doc,
                changes,
                bindings,
            }),
            (None, None, Some(event)) => Ok(LogEntry::Event { event, registry }),
            _ => Err(bad("neither changes nor an event".into())),
        }
    }

    /// The entry cut into entries whose encodings stay under `limit` bytes where the changes
    /// allow it (a single change larger than that stays one entry, and the log refuses it).
    pub fn split(self, limit: usize) -> Vec<LogEntry> {
        let LogEntry::Changes {
            doc,
            changes,
            mut bindings,
        } = self
        else {
            return vec![self];
        };
        let mut parts = Vec::new();
        let mut part: Vec<NewChange> = Vec::new();
        let mut size = 0;
        for c in changes {
            // The record's fields besides the change bytes stay well under a kilobyte.
            let n = c.bytes.len() + 1024 + 33 * c.heads_after.len();
            if !part.is_empty() && size + n > limit {
                parts.push(std::mem::take(&mut part));
                size = 0;
            }
            size += n;
            part.push(c);
        }
        parts.push(part);
        parts
            .into_iter()
            .map(|changes| LogEntry::Changes {
                doc,
                // Every binding goes with the first part: it makes none of them visible early,
                // since nothing is applied in memory before the last part is in.
                bindings: std::mem::take(&mut bindings),
                changes,
            })
            .collect()
    }

    /// The change hashes it carries, in order.
    pub fn hashes(&self) -> Vec<[u8; 32]> {
        match self {
            LogEntry::Changes { changes, .. } => changes.iter().map(|c| c.hash).collect(),
            LogEntry::Event { .. } => Vec::new(),
        }
    }
}

fn decode_changes(d: &mut Decoder<'_>) -> Result<Vec<NewChange>, String> {
    let n = d.array().map_err(|e| e.to_string())?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let b = d.bytes().map_err(|e| e.to_string())?;
        out.push(ChangeRecord::decode(b).map_err(|e| e.to_string())?.change);
    }
    Ok(out)
}

fn decode_bindings(d: &mut Decoder<'_>) -> Result<Vec<(Vec<u8>, String)>, String> {
    let n = d.array().map_err(|e| e.to_string())?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        d.array().map_err(|e| e.to_string())?;
        let actor = d.bytes().map_err(|e| e.to_string())?.to_vec();
        let who = d.str().map_err(|e| e.to_string())?.to_string();
        out.push((actor, who));
    }
    Ok(out)
}

fn decode_registry(d: &mut Decoder<'_>) -> Result<Vec<RegistryOp>, String> {
    let n = d.array().map_err(|e| e.to_string())?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let len = d.array().map_err(|e| e.to_string())?.unwrap_or(0);
        let op = d.u8().map_err(|e| e.to_string())?;
        let key = d.str().map_err(|e| e.to_string())?.to_string();
        out.push(match (op, len) {
            (0, 3) => RegistryOp::Put(key, d.bytes().map_err(|e| e.to_string())?.to_vec()),
            (1, 2) => RegistryOp::Delete(key),
            _ => return Err(format!("registry operation {op} of {len} items")),
        });
    }
    Ok(out)
}

/// Which replicated entries this node has applied, and their results.
#[derive(Debug, Default)]
pub(super) struct Applied {
    pub(super) results: BTreeMap<u64, Appended>,
}

impl Store {
    /// Makes this store a replica: from now on its writes go to `replicator`. Set once, before
    /// anything writes; a second call is ignored.
    pub fn set_replicator(&self, replicator: std::sync::Arc<dyn Replicator>) {
        let _ = self.replicator.set(replicator);
    }

    /// Whether this store is a cluster node's replica.
    pub fn is_replica(&self) -> bool {
        self.replicator.get().is_some()
    }

    /// The position in the replicated log of the last entry applied here (0: none).
    pub fn replica_position(&self) -> u64 {
        self.applied_seq.load(Ordering::SeqCst)
    }

    /// What the cluster last said of its log: where it ends, and whether a quorum of its
    /// replicas is there. Set by the node's watcher every second.
    pub fn set_stream_status(&self, position: Option<u64>, quorum: bool) {
        if let Some(p) = position {
            self.stream_position.store(p, Ordering::SeqCst);
        }
        self.stream_answers.store(quorum, Ordering::SeqCst);
    }

    /// The stream's last known end, and whether it had a quorum at the last check.
    pub fn stream_status(&self) -> (u64, bool) {
        (
            self.stream_position.load(Ordering::SeqCst),
            self.stream_answers.load(Ordering::SeqCst),
        )
    }

    /// A write of a replica: published, then waited for until this node has applied it.
    pub(super) async fn submit_replicated(
        &self,
        replicator: &dyn Replicator,
        kind: ReqKind,
    ) -> Result<Appended, StoreError> {
        let ReqKind::Entry(entry) = kind else {
            return Err(StoreError::Closed);
        };
        let seq = replicator.publish(entry).await?;
        let mut rx = self.applied_tx.subscribe();
        tokio::time::timeout(APPLY_WAIT, rx.wait_for(|a| *a >= seq))
            .await
            .map_err(|_| {
                StoreError::Replica(format!(
                    "the log acknowledged entry {seq}, but this node did not apply it within {APPLY_WAIT:?}"
                ))
            })?
            .map_err(|_| StoreError::Closed)?;
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        Ok(applied.results.get(&seq).copied().unwrap_or(Appended {
            written: 0,
            last_doc_seq: 0,
        }))
    }

    /// Writes entries of the replicated log, in its order, each with its position (the
    /// applier's one way in). Positions at or below [`Store::replica_position`] are skipped.
    /// Changes get the heads of this log's prefix (another node may have appended to the
    /// same document in between), so every replica stores the same heads.
    /// `entries` in the order of the replicated log; `None` for an entry that is not applied
    /// (unreadable, or not the cluster's), which the position moves past all the same.
    pub async fn apply_replicated(
        &self,
        entries: Vec<(u64, Option<LogEntry>)>,
    ) -> Result<Vec<(u64, Appended)>, StoreError> {
        let from = self.replica_position();
        let mut waiting = Vec::new();
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.as_ref().ok_or(StoreError::Closed)?;
            for (seq, entry) in entries {
                if seq <= from {
                    continue;
                }
                let (reply, rx) = tokio::sync::oneshot::channel();
                tx.send(AppendReq {
                    kind: entry.map_or(ReqKind::Skip, ReqKind::Entry),
                    reply,
                    replicated: Some(seq),
                })
                .map_err(|_| StoreError::Closed)?;
                waiting.push((seq, rx));
            }
        }
        let mut out = Vec::with_capacity(waiting.len());
        for (seq, rx) in waiting {
            let res = rx.await.map_err(|_| StoreError::Closed)??;
            {
                let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
                applied.results.insert(seq, res);
                while applied.results.len() > RECENT_RESULTS {
                    applied.results.pop_first();
                }
            }
            self.applied_seq.store(seq, Ordering::SeqCst);
            self.applied_tx.send_replace(seq);
            out.push((seq, res));
        }
        Ok(out)
    }
}
