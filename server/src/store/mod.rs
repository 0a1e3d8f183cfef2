//! The event log in sled: the source of truth. Only this module touches the database.
//!
//! # Layout (tree `events`, all numbers big-endian so that keys sort numerically)
//!
//! | key | value |
//! |---|---|
//! | `L` ‖ global seq (8) | a [`ChangeRecord`], inline or split into pieces (see below) |
//! | `P` ‖ global seq (8) ‖ piece (4) | one piece of a large record |
//! | `D` ‖ document (16) ‖ doc seq (8) | global seq (8) — the per-document order |
//! | `H` ‖ document (16) ‖ change hash (32) | global seq (8) — makes appends idempotent |
//!
//! Tree `snapshots` (a cache: deleting it changes nothing but start-up time):
//! `document ‖ upto doc seq ‖ 'C' ‖ piece` → bytes, then `document ‖ upto doc seq ‖ 'M'` →
//! manifest (pieces, total length), written last so that a torn snapshot is ignored.
//! Tree `timeline` (a projection: derived from the log, rebuilt by `toron-server rebuild`):
//! `E` ‖ session length (2) ‖ session ‖ order time (8) ‖ global seq (8) ‖ index (2) → one
//! entry as JSON; `S` ‖ name → projection state; `C` → the last global seq projected.
//! Entries, state and checkpoint of one step are written in one batch.
//! Tree `meta`: the storage id advertised to clients and the layout version.
//!
//! # Group commit and durability
//!
//! One writer thread owns the sequence counters. It takes every append that is waiting,
//! writes them as one atomic sled batch, calls `flush()` and then `fdatasync`s sled's data
//! file itself — sled 0.34's `flush()` only does `sync_file_range`, which is not durable
//! (sled issue 1452). Only then does it answer the appends. Values are kept well under sled's
//! blob threshold (≈128 KiB): sled never syncs blob files, so large records and snapshots are
//! split into [`PIECE`]-sized pieces. A flush or sync error is fatal for writes: the writer
//! answers every append with [`StoreError::Failed`] from then on and never retries.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use toron_protocol::{
    AdminAction, ChangeRecord, DocumentId, Event, NewChange, Presence, RecordError, Rejection,
};

mod directory;
mod document_log;
mod faults;
mod keys;
mod replica;
mod snapshots;
mod timeline_tree;
mod writer;

use directory::open_db;
pub use directory::private_dir;
pub use document_log::DocumentLog;
pub use faults::DurabilityGate;
#[cfg(any(test, feature = "fault-injection"))]
pub use faults::GateHold;
use keys::*;
pub use keys::{actor_key, is_log_key};
pub use replica::{LogEntry, Replicator};
use writer::{AppendReq, ReqKind, Writer};

/// Largest value written to sled in one piece.
const PIECE: usize = 32 * 1024;
/// Most appends committed together.
const MAX_GROUP: usize = 4096;
const LAYOUT_VERSION: &[u8] = b"1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the event log stopped accepting writes after a failed flush: {0}")]
    Failed(String),
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the data directory was written by a newer layout ({0})")]
    Layout(String),
    #[error("the store writer has stopped")]
    Closed,
    #[error("the cluster's log did not take the write: {0}")]
    Replica(String),
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Records newly written (duplicates of logged changes are skipped).
    pub written: usize,
    /// The document's last sequence number after this append (0 for other events).
    pub last_doc_seq: u64,
}

/// A document as the log holds it: the newest usable snapshot and the changes after it.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Option<Vec<u8>>,
    pub tail: Vec<Vec<u8>>,
    pub last_doc_seq: u64,
}

/// A record that is not a change: refused changes and metadata changes.
#[derive(Debug, Clone)]
pub enum PendingEvent {
    Rejection(Rejection),
    Admin(AdminAction),
    Presence(Presence),
}

/// A change to the server's metadata (the registry), committed with its event.
#[derive(Debug, Clone)]
pub enum RegistryOp {
    Put(String, Vec<u8>),
    Delete(String),
}

/// A consistent point of the log for a backup, taken by the writer between two group
/// commits: the records before `upto` and the registry as it was right after them. Log
/// entries (`L`, `P`, `D`, `H` keys) are never changed once written, so they can be read
/// later, while writes go on, by skipping whatever a later commit added; registry entries
/// can change, so they are copied here.
#[derive(Debug)]
pub struct Cut {
    /// The first global sequence number *not* in the cut.
    pub upto: u64,
    pub registry: Vec<KeyValue>,
}

/// A key and its value, as stored.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Handle to the event log. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    timeline: sled::Tree,
    storage_id: String,
    writer: Mutex<Option<mpsc::Sender<AppendReq>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<AtomicBool>,
    /// The first global sequence number not known to be durable. Every read of the log
    /// stops there: after a failed flush, sled's memory holds records that may never reach
    /// the disk, and nobody may see them.
    durable: Arc<AtomicU64>,
    /// Duration of each group commit (write, flush, fdatasync), for `/metrics`.
    pub commit_seconds: Histogram,
    /// Records written by each group commit, for `/metrics`.
    pub commit_records: Histogram,
    /// On a cluster node: where writes go instead of the writer (see `replica.rs`).
    replicator: std::sync::OnceLock<Arc<dyn Replicator>>,
    /// On a cluster node: the results of recently applied entries.
    applied: Mutex<replica::Applied>,
    /// On a cluster node: the position of the last replicated entry applied.
    applied_seq: AtomicU64,
    applied_tx: tokio::sync::watch::Sender<u64>,
    /// On a cluster node: the stream's last known end, and whether it answered last time.
    stream_position: AtomicU64,
    stream_answers: AtomicBool,
}

impl Store {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, gate: Option<DurabilityGate>) -> Result<Arc<Self>, StoreError> {
        Self::with_db(dir, open_db(dir)?, gate)
    }

    fn with_db(
        dir: &Path,
        db: sled::Db,
        gate: Option<DurabilityGate>,
    ) -> Result<Arc<Self>, StoreError> {
        let events = db.open_tree("events")?;
        let snapshots = db.open_tree("snapshots")?;
        let timeline = db.open_tree("timeline")?;
        let meta = db.open_tree("meta")?;
        match meta.get("layout")? {
            None => {
                meta.insert("layout", LAYOUT_VERSION)?;
            }
            Some(v) if &*v == LAYOUT_VERSION => {}
            Some(v) => return Err(StoreError::Layout(String::from_utf8_lossy(&v).into_owned())),
        }
        // A fresh data directory gets a fresh storage id, so clients never resume from sync
        // states ("shared heads") of a store that no longer exists.
        let storage_id = match meta.get("storage-id")? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                meta.insert("storage-id", id.as_bytes())?;
                id
            }
        };
        db.flush()?;
        let data_file = File::open(dir.join("db"))?;
        data_file.sync_data()?;

        let replica_position = match events.get(KEY_REPLICA_POSITION)? {
            Some(v) => be_u64(&v).ok_or_else(|| corrupt(KEY_REPLICA_POSITION, "position"))?,
            None => 0,
        };
        let next_global = match events.scan_prefix(b"L").next_back() {
            Some(kv) => {
                let (k, _) = kv?;
                be_u64(&k[1..]).ok_or_else(|| corrupt(&k, "log key"))? + 1
            }
            None => 1,
        };
        let failed = Arc::new(AtomicBool::new(false));
        let durable = Arc::new(AtomicU64::new(next_global));
        let (tx, rx) = mpsc::channel();
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let commit_records = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let writer = Writer {
            commit_seconds: commit_seconds.clone(),
            commit_records: commit_records.clone(),
            db: db.clone(),
            events: events.clone(),
            data_file,
            next_global,
            doc_seqs: HashMap::new(),
            doc_heads: HashMap::new(),
            replica_flushed: std::time::Instant::now(),
            failed: failed.clone(),
            durable: durable.clone(),
            gate,
        };
        let thread = std::thread::Builder::new()
            .name("toron-log-writer".into())
            .spawn(move || writer.run(rx))?;
        tracing::info!(path = %dir.display(), next_global, %storage_id, "event log open");
        Ok(Arc::new(Self {
            db,
            events,
            snapshots,
            timeline,
            storage_id,
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            failed,
            durable,
            commit_seconds,
            commit_records,
            replicator: std::sync::OnceLock::new(),
            applied: Mutex::new(replica::Applied::default()),
            applied_seq: AtomicU64::new(replica_position),
            applied_tx: tokio::sync::watch::channel(replica_position).0,
            stream_position: AtomicU64::new(0),
            stream_answers: AtomicBool::new(false),
        }))
    }

    pub fn storage_id(&self) -> &str {
        &self.storage_id
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Whether record `g` is known to be durable (see `durable`).
    fn visible(&self, g: u64) -> bool {
        g < self.durable.load(Ordering::SeqCst)
    }

    /// Appends changes of one document; resolves once they are durable.
    /// Appends changes of one document (and the actor bindings they introduce); resolves
    /// once they are durable.
    pub async fn append(
        &self,
        doc: DocumentId,
        changes: Vec<NewChange>,
        bindings: Vec<(Vec<u8>, String)>,
    ) -> Result<Appended, StoreError> {
        self.submit(ReqKind::Entry(LogEntry::Changes {
            doc,
            changes,
            bindings,
        }))
        .await
    }

    /// Appends a rejection or an admin action together with the registry changes it makes;
    /// resolves once durable.
    pub async fn append_event(
        &self,
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    ) -> Result<(), StoreError> {
        self.submit(ReqKind::Entry(LogEntry::Event { event, registry }))
            .await
            .map(|_| ())
    }

    async fn submit(&self, kind: ReqKind) -> Result<Appended, StoreError> {
        if let Some(replicator) = self.replicator.get() {
            return self.submit_replicated(replicator.as_ref(), kind).await;
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.as_ref().ok_or(StoreError::Closed)?;
            tx.send(AppendReq {
                kind,
                reply,
                replicated: None,
            })
            .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// A consistent point of the log (see [`Cut`]). Blocking: it waits for the writer.
    pub fn cut(&self) -> Result<Cut, StoreError> {
        let (tx, rx) = mpsc::channel();
        let (reply, _) = tokio::sync::oneshot::channel();
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let writer = guard.as_ref().ok_or(StoreError::Closed)?;
            writer
                .send(AppendReq {
                    kind: ReqKind::Cut(tx),
                    reply,
                    replicated: None,
                })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// The log entries of `cut` except the registry (which the cut holds), in key order:
    /// records and their pieces before `cut.upto`, and the index entries pointing at them.
    pub fn log_entries(
        &self,
        cut: &Cut,
    ) -> impl Iterator<Item = Result<KeyValue, StoreError>> + '_ {
        let upto = cut.upto;
        self.events.iter().filter_map(move |kv| {
            let (k, v) = match kv {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let g = match k.first() {
                // The registry is in the cut; a replica's position is its own, not the log's
                // (a backup restores as a single node).
                Some(b'R') => return None,
                _ if &*k == KEY_REPLICA_POSITION => return None,
                Some(b'L' | b'P') => k.get(1..9).and_then(be_u64),
                Some(b'D' | b'H') => be_u64(&v),
                _ => return Some(Err(corrupt(&k, "unknown key kind"))),
            };
            match g {
                Some(g) if g < upto => Some(Ok((k.to_vec(), v.to_vec()))),
                Some(_) => None,
                None => Some(Err(corrupt(&k, "sequence number"))),
            }
        })
    }

    /// Writes log entries into a data directory that has none yet (a restore), makes them
    /// durable, and opens the store on them (with a storage id of its own). The entries are
    /// written as they are: rebuild the caches and verify afterwards. Returns the store and
    /// the entries written.
    pub fn create_from<E>(
        dir: &Path,
        entries: impl Iterator<Item = Result<KeyValue, E>>,
    ) -> Result<(Arc<Self>, u64), E>
    where
        E: From<StoreError>,
    {
        let db = open_db(dir)?;
        let events = db.open_tree("events").map_err(StoreError::from)?;
        if events.iter().next().is_some() {
            return Err(
                StoreError::Failed(format!("{} already holds a log", dir.display())).into(),
            );
        }
        let (mut batch, mut in_batch, mut n) = (sled::Batch::default(), 0usize, 0u64);
        for kv in entries {
            let (k, v) = kv?;
            if !is_log_key(&k) {
                return Err(corrupt(&k, "not a log entry").into());
            }
            in_batch += k.len() + v.len();
            batch.insert(k, v);
            n += 1;
            if in_batch > 8 << 20 {
                events
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(StoreError::from)?;
                in_batch = 0;
            }
        }
        events.apply_batch(batch).map_err(StoreError::from)?;
        db.flush().map_err(StoreError::from)?;
        File::open(dir.join("db"))
            .and_then(|f| f.sync_data())
            .map_err(StoreError::from)?;
        drop(events);
        Ok((Self::with_db(dir, db, None)?, n))
    }

    /// Every registry entry (participants, tokens, roles, sessions, documents, actor bindings).
    pub fn registry_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.events.scan_prefix(b"R") {
            let (k, v) = kv?;
            out.push((String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    /// Events of the log in order, starting at global sequence `from`, at most `limit`.
    pub fn events(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        let upto = self.durable.load(Ordering::SeqCst);
        for kv in self
            .events
            .range(key_l(from)..key_l(upto.max(from)))
            .take(limit)
        {
            let (k, _) = kv?;
            let g = be_u64(&k[1..]).ok_or_else(|| corrupt(&k, "log key"))?;
            if let Some(bytes) = get_value(&self.events, &k, &piece_prefix_l(g))? {
                out.push(Event::decode(&bytes)?);
            }
        }
        Ok(out)
    }

    /// Whether the log holds any change of `doc`.
    pub fn exists(&self, doc: &DocumentId) -> Result<bool, StoreError> {
        let mut prefix = vec![b'D'];
        prefix.extend_from_slice(doc.as_bytes());
        match self.events.scan_prefix(prefix).next().transpose()? {
            Some((k, v)) => Ok(self.visible(be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?)),
            None => Ok(false),
        }
    }

    /// Reads a document for loading: newest usable snapshot plus the changes after it.
    /// Blocking: call it from a blocking thread.
    pub fn load(&self, doc: &DocumentId) -> Result<Loaded, StoreError> {
        let (snapshot, from_seq) = match self.newest_snapshot(doc)? {
            Some((upto, bytes)) => (Some(bytes), upto + 1),
            None => (None, 1),
        };
        let mut tail = Vec::new();
        let mut last_doc_seq = from_seq - 1;
        for kv in self
            .events
            .range(key_d(doc, from_seq)..key_d(doc, u64::MAX))
        {
            let (k, v) = kv?;
            let g = be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?;
            if !self.visible(g) {
                break;
            }
            last_doc_seq = be_u64(&k[17..]).ok_or_else(|| corrupt(&k, "doc seq"))?;
            let rec = self
                .record(g)?
                .ok_or_else(|| corrupt(&k, "index points at no record"))?;
            tail.push(rec.change.bytes);
        }
        Ok(Loaded {
            snapshot,
            tail,
            last_doc_seq,
        })
    }

    /// One record by its global sequence number.
    pub fn record(&self, g: u64) -> Result<Option<ChangeRecord>, StoreError> {
        if !self.visible(g) {
            return Ok(None);
        }
        match get_value(&self.events, &key_l(g), &piece_prefix_l(g))? {
            Some(bytes) => Ok(Some(ChangeRecord::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every record of one document, in document order.
    pub fn document_records(&self, doc: &DocumentId) -> Result<Vec<ChangeRecord>, StoreError> {
        self.indexed_records(doc, 0, usize::MAX)
    }

    /// The record holding document sequence number `doc_seq` of `doc`.
    pub fn record_at(
        &self,
        doc: &DocumentId,
        doc_seq: u64,
    ) -> Result<Option<ChangeRecord>, StoreError> {
        let key = key_d(doc, doc_seq);
        let Some(v) = self.events.get(&key)? else {
            return Ok(None);
        };
        let g = be_u64(&v).ok_or_else(|| corrupt(&key, "global seq"))?;
        if !self.visible(g) {
            return Ok(None);
        }
        Ok(Some(self.record(g)?.ok_or_else(|| {
            corrupt(&key, "index points at no record")
        })?))
    }

    /// Up to `limit` records of `doc` after document sequence number `after`, in order.
    pub fn records_after(
        &self,
        doc: &DocumentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        self.indexed_records(doc, after.saturating_add(1), limit)
    }

    /// Up to `limit` records of `doc` from document sequence number `from`, in order, through
    /// the document's index; stops at the first record not known durable.
    fn indexed_records(
        &self,
        doc: &DocumentId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.events.range(key_d(doc, from)..key_d(doc, u64::MAX)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            let g = be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?;
            if !self.visible(g) {
                break;
            }
            out.push(
                self.record(g)?
                    .ok_or_else(|| corrupt(&k, "index points at no record"))?,
            );
        }
        Ok(out)
    }

    /// The document sequence number of the newest record of `doc` (0 if it has none).
    pub fn document_len(&self, doc: &DocumentId) -> Result<u64, StoreError> {
        let mut prefix = vec![b'D'];
        prefix.extend_from_slice(doc.as_bytes());
        for kv in self.events.scan_prefix(prefix).rev() {
            let (k, v) = kv?;
            if self.visible(be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?) {
                return be_u64(&k[17..]).ok_or_else(|| corrupt(&k, "doc seq"));
            }
        }
        Ok(0)
    }

    /// The highest global sequence number written so far (0 if none).
    /// The store's size on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    pub fn last_global_seq(&self) -> Result<u64, StoreError> {
        let last = match self.events.scan_prefix(b"L").next_back() {
            Some(kv) => {
                let (k, _) = kv?;
                be_u64(&k[1..]).ok_or_else(|| corrupt(&k, "log key"))?
            }
            None => 0,
        };
        Ok(last.min(self.durable.load(Ordering::SeqCst).saturating_sub(1)))
    }

    /// Every document that has changes in the log.
    pub fn documents(&self) -> Result<Vec<DocumentId>, StoreError> {
        let mut out: Vec<DocumentId> = Vec::new();
        for kv in self.events.scan_prefix(b"D") {
            let (k, v) = kv?;
            if !self.visible(be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?) {
                continue;
            }
            let id = DocumentId::from_slice(&k[1..17]).map_err(|e| corrupt(&k, &e.to_string()))?;
            if out.last() != Some(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The raw stored bytes of record `g` (for `verify`, which checks what is really there).
    pub fn raw_record(&self, g: u64) -> Result<Option<Vec<u8>>, StoreError> {
        get_value(&self.events, &key_l(g), &piece_prefix_l(g))
    }

    /// Every global sequence number present in the log, in order.
    pub fn global_seqs(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for kv in self.events.scan_prefix(b"L") {
            let (k, _) = kv?;
            out.push(be_u64(&k[1..]).ok_or_else(|| corrupt(&k, "log key"))?);
        }
        Ok(out)
    }

    /// The document sequence → global sequence index of one document.
    pub fn document_index(&self, doc: &DocumentId) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.events.range(key_d(doc, 0)..key_d(doc, u64::MAX)) {
            let (k, v) = kv?;
            let s = be_u64(&k[17..]).ok_or_else(|| corrupt(&k, "doc seq"))?;
            out.push((s, be_u64(&v).ok_or_else(|| corrupt(&k, "global seq"))?));
        }
        Ok(out)
    }

    /// Whether the idempotency index knows `hash` for `doc`.
    pub fn has_change(&self, doc: &DocumentId, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.events.contains_key(key_h(doc, hash))?)
    }

    /// Overwrites one byte of record `g` as stored — only for tests that prove `verify`
    /// notices damage. Nothing in the server calls it.
    #[cfg(any(test, feature = "fault-injection"))]
    #[doc(hidden)]
    pub fn damage_record_for_tests(&self, g: u64, offset: usize) -> Result<(), StoreError> {
        let key = key_l(g);
        let Some(v) = self.events.get(key)? else {
            return Ok(());
        };
        let mut v = v.to_vec();
        let i = (offset % (v.len().saturating_sub(1)).max(1)) + 1;
        v[i] ^= 0xff;
        self.events.insert(key, v)?;
        self.db.flush()?;
        Ok(())
    }

    /// Stops the writer after it has committed what is queued, and flushes.
    pub fn close(&self) {
        drop(self.writer.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        // After a failed flush nothing more is written: never retry (see the module docs).
        if !self.is_failed() {
            if let Err(e) = self.db.flush() {
                tracing::error!(error = %e, "final flush failed");
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
