//! Keeps the stored session timeline (tree `timeline`) in step with the log.
//!
//! The projection reads the log after its checkpoint, turns each record into timeline
//! entries ([`toron_domain::timeline`]) and writes entries, its small state (each session's
//! last phase) and the new checkpoint in one batch. It runs when somebody reads a timeline,
//! so a reader always sees every record logged before the request; it can be dropped and
//! computed again from zero ([`rebuild`]) and checked against the log ([`verify`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::Change;
use toron_domain::timeline::{self, DocContext, DocObjects, Entry};
use toron_protocol::{DocumentId, Event};

use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// Records read from the log per step.
const STEP: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("record {global_seq}: {reason}")]
    Record { global_seq: u64, reason: String },
}

/// The key of an entry within the timeline tree (without the tree's `E`): the session, then
/// the time the timeline is ordered by, then the log position.
pub fn entry_key(e: &Entry) -> Vec<u8> {
    let mut k = session_prefix(&e.session);
    k.extend_from_slice(&e.order_ms().to_be_bytes());
    k.extend_from_slice(&e.global_seq.to_be_bytes());
    k.extend_from_slice(&e.index.to_be_bytes());
    k
}

/// Every key of `session` starts with this.
pub fn session_prefix(session: &str) -> Vec<u8> {
    let s = session.as_bytes();
    let mut k = Vec::with_capacity(s.len() + 20);
    k.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_be_bytes());
    k.extend_from_slice(s);
    k
}

/// The version of the timeline's naming (`toron_domain::timeline`). Raise it whenever that
/// names records differently: a store projected by another version is projected again from
/// the log (the projection is derived data), at the first timeline read after the upgrade.
/// 2: strings written as text (the JavaScript client's) read as the strings typed.
/// 3: reactions, triage decisions and replies name their annotation by ref and text.
/// 4: a triage decision that names a finding is also `finding.linked`.
/// 5: the series' documents make the series' timeline (`finding.created`/`finding.updated`,
///    `department.responded`).
/// 6: an annotation without words of its own (a highlight) is named by its passage.
/// 7: who is in each session by the presence record (`present/…`), so that a start after a
///    crash logs the departures the crash left open.
pub const PROJECTION_VERSION: u64 = 7;

const PRESENT: &[u8] = b"present/";

/// The state key saying whether `participant` is in `session` by the presence record.
fn presence_state_key(session: &str, participant: &str) -> Vec<u8> {
    let mut k = PRESENT.to_vec();
    k.extend_from_slice(&session_prefix(session));
    k.extend_from_slice(participant.as_bytes());
    k
}

/// Everyone the presence record has in a session without a departure: after a crash, those
/// the crash took out. `(session, participant)` pairs. Reads the projection as it is.
pub fn open_presence(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for (k, v) in store.timeline_states(PRESENT)? {
        if v != b"true" {
            continue;
        }
        let rest = &k[PRESENT.len()..];
        let Some(len) = rest
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            continue;
        };
        if let (Some(s), Some(p)) = (rest.get(2..2 + len), rest.get(2 + len..)) {
            out.push((
                String::from_utf8_lossy(s).into_owned(),
                String::from_utf8_lossy(p).into_owned(),
            ));
        }
    }
    Ok(out)
}

const VERSION_STATE: &[u8] = b"version";

/// Whether the stored timeline was projected by this version of the code.
fn current(store: &Store) -> Result<bool, StoreError> {
    Ok(store.timeline_state(VERSION_STATE)?.as_deref()
        == Some(&PROJECTION_VERSION.to_be_bytes()[..]))
}

fn phase_state_key(session: &str) -> Vec<u8> {
    format!("phase/{session}").into_bytes()
}

fn annotation_state_key(session: &str, name: &str) -> Vec<u8> {
    let mut k = b"ann/".to_vec();
    k.extend_from_slice(&session_prefix(session));
    k.extend_from_slice(name.as_bytes());
    k
}

/// Turns log records into entries. Holds what it has learned of each document's objects,
/// so a document's earlier changes are read at most once per process.
#[derive(Debug, Default)]
pub struct Projector {
    objects: HashMap<DocumentId, DocObjects>,
    phases: HashMap<String, Option<String>>,
    /// What the annotations seen since the last write are called (state key of session and
    /// id or ref → ref and text), to store with it (`ann/…`).
    learned: Vec<(Vec<u8>, serde_json::Value)>,
}

impl Projector {
    /// The entries of one record. `ctx` says where a document belongs; `learn` gives the
    /// changes of a document from sequence number `after + 1` up to `upto`.
    fn entries(
        &mut self,
        event: &Event,
        ctx: impl Fn(&DocumentId) -> Option<DocContext>,
        earlier: impl Fn(&DocumentId, u64, u64) -> Result<Vec<Vec<u8>>, StoreError>,
        stored: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Vec<Entry>, ProjectionError> {
        let entries = self.raw_entries(event, ctx, earlier, &stored)?;
        // What each annotation is called, for readers to name it by (see [`name`]): the log
        // is in arrival order, and an import may bring a reply before its parent.
        for e in &entries {
            if let Some((id, label)) = timeline::annotation_label(e) {
                let names = std::iter::once(id).chain(label["ref"].as_str().map(str::to_string));
                for name in names {
                    self.learned
                        .push((annotation_state_key(&e.session, &name), label.clone()));
                }
            }
        }
        Ok(entries)
    }

    fn raw_entries(
        &mut self,
        event: &Event,
        ctx: impl Fn(&DocumentId) -> Option<DocContext>,
        earlier: impl Fn(&DocumentId, u64, u64) -> Result<Vec<Vec<u8>>, StoreError>,
        stored: &impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Vec<Entry>, ProjectionError> {
        let stored_phase = |s: &str| -> Result<Option<String>, StoreError> {
            Ok(stored(&phase_state_key(s))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
        };
        let g = event.global_seq();
        let bad = |reason: String| ProjectionError::Record {
            global_seq: g,
            reason,
        };
        match event {
            Event::Change(rec) => {
                let doc = rec.change.document_id;
                let Some(ctx) = ctx(&doc) else {
                    return Ok(Vec::new());
                };
                let objs = self.objects.entry(doc).or_default();
                if objs.upto + 1 < rec.doc_seq {
                    for bytes in earlier(&doc, objs.upto, rec.doc_seq - 1)? {
                        let c = Change::from_bytes(bytes).map_err(|e| bad(e.to_string()))?;
                        objs.learn(&c);
                    }
                }
                timeline::change_entries(objs, &ctx, rec).map_err(|e| bad(e.to_string()))
            }
            Event::Presence { presence, .. } => {
                self.learned.push((
                    presence_state_key(&presence.session, &presence.participant),
                    serde_json::Value::Bool(presence.joined),
                ));
                Ok(vec![timeline::presence_entry(g, presence)])
            }
            Event::Admin { action, .. } => {
                // The phase each session had before this action, as the projection saw it.
                let v: serde_json::Value = serde_json::from_str(&action.action).unwrap_or_default();
                let session = v
                    .get("session")
                    .and_then(|s| s.get("key"))
                    .and_then(|k| k.as_str())
                    .map(str::to_string);
                if let Some(s) = &session {
                    if !self.phases.contains_key(s) {
                        let p = stored_phase(s)?;
                        self.phases.insert(s.clone(), p);
                    }
                }
                let phases = &self.phases;
                let entry = timeline::admin_entry(g, action, |s| phases.get(s).cloned().flatten());
                if let (Some(s), Some(p)) = (
                    session,
                    v.get("session")
                        .and_then(|s| s.get("phase"))
                        .and_then(|p| p.as_str()),
                ) {
                    self.phases.insert(s, Some(p.to_string()));
                }
                Ok(entry.into_iter().collect())
            }
            Event::Rejection { .. } => Ok(Vec::new()),
        }
    }
}

/// The live projection of one running server.
pub struct Projection {
    store: Arc<Store>,
    registry: Arc<Registry>,
    projector: Mutex<Projector>,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection").finish_non_exhaustive()
    }
}

impl Projection {
    pub fn new(store: Arc<Store>, registry: Arc<Registry>) -> Self {
        Self {
            store,
            registry,
            projector: Mutex::new(Projector::default()),
        }
    }

    /// Projects every record logged so far. Blocking. Returns the checkpoint.
    pub fn catch_up(&self) -> Result<u64, ProjectionError> {
        let mut p = self.projector.lock().unwrap_or_else(|e| e.into_inner());
        catch_up(&self.store, &mut p, |id| self.registry.timeline_context(id))
    }

    /// Names the annotation each entry is about as people know it — its ref and text
    /// (`agreed with L-04 “…”`) — from what the projection has seen of it, whichever came
    /// first in the log. Done when entries are read, so the stored timeline stays a function
    /// of each record alone. Blocking.
    pub fn name(&self, entries: &mut [Entry]) -> Result<(), StoreError> {
        let mut seen: HashMap<Vec<u8>, Option<serde_json::Value>> = HashMap::new();
        for e in entries {
            let Some(name) = timeline::referenced_annotation(e) else {
                continue;
            };
            let key = annotation_state_key(&e.session, &name);
            if !seen.contains_key(&key) {
                let label = self
                    .store
                    .timeline_state(&key)?
                    .and_then(|v| serde_json::from_slice(&v).ok());
                seen.insert(key.clone(), label);
            }
            if let Some(Some(label)) = seen.get(&key) {
                timeline::name_referenced(e, label);
            }
        }
        Ok(())
    }
}

fn earlier_changes(
    store: &Store,
    doc: &DocumentId,
    after: u64,
    upto: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(store
        .records_after(doc, after, (upto - after) as usize)?
        .into_iter()
        .map(|r| r.change.bytes)
        .collect())
}

fn catch_up(
    store: &Store,
    p: &mut Projector,
    ctx: impl Fn(&DocumentId) -> Option<DocContext>,
) -> Result<u64, ProjectionError> {
    if !current(store)? {
        if store.timeline_checkpoint()? > 0 {
            tracing::info!(
                version = PROJECTION_VERSION,
                "the timeline was projected by an earlier version: projecting the log again"
            );
        }
        store.timeline_clear()?;
        *p = Projector::default();
        let version = PROJECTION_VERSION.to_be_bytes().to_vec();
        store.timeline_write(&[], &[(VERSION_STATE.to_vec(), version)], 0)?;
    }
    let mut checkpoint = store.timeline_checkpoint()?;
    loop {
        let events = store.events(checkpoint + 1, STEP)?;
        let Some(last) = events.last().map(Event::global_seq) else {
            return Ok(checkpoint);
        };
        let mut entries = Vec::new();
        for ev in &events {
            for e in p.entries(
                ev,
                &ctx,
                |d, a, u| earlier_changes(store, d, a, u),
                |k| store.timeline_state(k),
            )? {
                entries.push((entry_key(&e), serde_json::to_vec(&e).unwrap_or_default()));
            }
        }
        let mut state: Vec<(Vec<u8>, Vec<u8>)> = p
            .phases
            .iter()
            .filter_map(|(s, ph)| Some((phase_state_key(s), ph.clone()?.into_bytes())))
            .collect();
        state.extend(
            p.learned
                .drain(..)
                .map(|(k, l)| (k, l.to_string().into_bytes())),
        );
        store.timeline_write(&entries, &state, last)?;
        checkpoint = last;
    }
}

/// Drops the stored timeline and projects the whole log again. Returns the entries written.
pub fn rebuild(store: &Store, registry: &Registry) -> Result<u64, ProjectionError> {
    store.timeline_clear()?;
    let mut p = Projector::default();
    catch_up(store, &mut p, |id| registry.timeline_context(id))?;
    Ok(store.timeline_entries(&[], &[], usize::MAX)?.len() as u64)
}

/// Projects the whole log in memory and compares it with what is stored, up to the stored
/// checkpoint. Returns the problems found, each naming the record it is about.
pub fn verify(store: &Store, registry: &Registry) -> Result<Vec<String>, ProjectionError> {
    let checkpoint = store.timeline_checkpoint()?;
    if checkpoint > 0 && !current(store)? {
        return Ok(vec![format!(
            "timeline: projected by an earlier version of Toron (this one names records as version {PROJECTION_VERSION}); starting the server or `rebuild` projects it again"
        )]);
    }
    let mut p = Projector::default();
    let mut expected: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut from = 1;
    let mut problems = Vec::new();
    'log: while from <= checkpoint {
        let events = store.events(from, STEP)?;
        if events.is_empty() {
            break;
        }
        for ev in &events {
            if ev.global_seq() > checkpoint {
                break 'log;
            }
            from = ev.global_seq() + 1;
            let entries = match p.entries(
                ev,
                |id| registry.timeline_context(id),
                |d, a, u| earlier_changes(store, d, a, u),
                |_: &[u8]| Ok(None),
            ) {
                Ok(es) => es,
                Err(e) => {
                    problems.push(format!("timeline: {e}"));
                    continue;
                }
            };
            for e in entries {
                expected.push((entry_key(&e), serde_json::to_vec(&e).unwrap_or_default()));
            }
        }
    }
    expected.sort();
    let stored = store.timeline_entries(&[], &[], usize::MAX)?;
    let seq_of = |k: &[u8]| -> u64 {
        k.len()
            .checked_sub(10)
            .and_then(|i| k.get(i..i + 8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    let (mut i, mut j) = (0, 0);
    while (i < expected.len() || j < stored.len()) && problems.len() < 20 {
        match (expected.get(i), stored.get(j)) {
            (Some(e), Some(s)) if e.0 == s.0 => {
                if e.1 != s.1 {
                    problems.push(format!(
                        "timeline: the entry of record {} differs from the log",
                        seq_of(&e.0)
                    ));
                }
                i += 1;
                j += 1;
            }
            (Some(e), s) if s.is_none_or(|s| e.0 < s.0) => {
                problems.push(format!(
                    "timeline: the entry of record {} is missing",
                    seq_of(&e.0)
                ));
                i += 1;
            }
            (_, Some(s)) => {
                problems.push(format!(
                    "timeline: an entry claims record {}, which the log does not give",
                    seq_of(&s.0)
                ));
                j += 1;
            }
            _ => break,
        }
    }
    Ok(problems)
}
