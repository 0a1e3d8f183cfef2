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
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use toron_protocol::{
    AdminAction, ChangeRecord, DocumentId, Event, NewChange, Presence, RecordError, Rejection,
};

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
}

/// Lets a test hold appends back after they are written but before they are declared durable.
#[derive(Debug, Default, Clone)]
pub struct DurabilityGate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Debug, Default)]
struct GateState {
    held: bool,
    /// Tests only: the next commits fail as a full disk would, before anything is written.
    failing: bool,
    /// Tests only: the next commits write their batch, then fail as a flush or fsync would.
    failing_flush: bool,
    /// A commit is written and waiting at the gate.
    waiting: bool,
}

/// Holds the gate closed until dropped (or released), so that a failing test cannot leave
/// the log writer blocked forever.
#[derive(Debug)]
#[must_use = "the gate opens again when this is dropped"]
pub struct GateHold(DurabilityGate);

impl GateHold {
    pub fn release(self) {}
}

impl Drop for GateHold {
    fn drop(&mut self) {
        let (lock, cv) = &*(self.0).0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).held = false;
        cv.notify_all();
    }
}

impl DurabilityGate {
    pub fn hold(&self) -> GateHold {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).held = true;
        GateHold(self.clone())
    }

    /// From now on every commit fails with "No space left on device" before it writes
    /// anything (a full disk or a broken store, injected).
    pub fn fail_writes(&self) {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing = true;
    }

    /// From now on every commit writes its batch into sled and then fails as a flush or
    /// fsync would ("Input/output error"): the records are in sled's memory, not durable.
    pub fn fail_flushes(&self) {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing_flush = true;
    }

    fn failing(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing
    }

    fn failing_flush(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing_flush
    }

    /// Whether a written commit is being held back right now.
    pub fn is_holding_a_commit(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).waiting
    }

    fn wait(&self) {
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        while state.held {
            state.waiting = true;
            state = cv.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.waiting = false;
    }
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

enum ReqKind {
    Changes {
        doc: DocumentId,
        changes: Vec<NewChange>,
        /// New actor → participant bindings, made durable with the changes that use them.
        bindings: Vec<(Vec<u8>, String)>,
    },
    Event {
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    },
    /// Asks for a [`Cut`] after the group this request lands in has committed.
    Cut(mpsc::Sender<Result<Cut, StoreError>>),
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

struct AppendReq {
    kind: ReqKind,
    reply: tokio::sync::oneshot::Sender<Result<Appended, StoreError>>,
}

fn key_r(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(b'R');
    k.extend_from_slice(name.as_bytes());
    k
}

/// Registry key of an actor binding.
pub fn actor_key(actor: &[u8]) -> String {
    let hex: String = actor.iter().map(|b| format!("{b:02x}")).collect();
    format!("actor/{hex}")
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
}

fn key_l(g: u64) -> [u8; 9] {
    let mut k = [b'L'; 9];
    k[1..].copy_from_slice(&g.to_be_bytes());
    k
}

fn key_d(doc: &DocumentId, s: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(b'D');
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(&s.to_be_bytes());
    k
}

fn key_h(doc: &DocumentId, hash: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(49);
    k.push(b'H');
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(hash);
    k
}

fn key_piece(prefix: &[u8], idx: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&idx.to_be_bytes());
    k
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Values are `0 ‖ bytes` when inline, `1 ‖ pieces (4) ‖ total length (8)` when split.
fn put_value(batch: &mut sled::Batch, key: &[u8], piece_prefix: &[u8], bytes: &[u8]) {
    if bytes.len() < PIECE {
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.push(0);
        v.extend_from_slice(bytes);
        batch.insert(key, v);
        return;
    }
    let mut n = 0u32;
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        n = i as u32 + 1;
        batch.insert(key_piece(piece_prefix, i as u32), piece);
    }
    let mut v = vec![1];
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    batch.insert(key, v);
}

fn corrupt(key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("{key:02x?}"),
        reason: reason.to_string(),
    }
}

fn get_value(
    tree: &sled::Tree,
    key: &[u8],
    piece_prefix: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(v) = tree.get(key)? else {
        return Ok(None);
    };
    match v.first() {
        Some(0) => Ok(Some(v[1..].to_vec())),
        Some(1) if v.len() == 13 => {
            let n = u32::from_be_bytes([v[1], v[2], v[3], v[4]]);
            let total = be_u64(&v[5..13]).ok_or_else(|| corrupt(key, "length"))?;
            let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0).min(1 << 30));
            for i in 0..n {
                let piece = tree
                    .get(key_piece(piece_prefix, i))?
                    .ok_or_else(|| corrupt(key, "missing piece"))?;
                out.extend_from_slice(&piece);
            }
            if out.len() as u64 != total {
                return Err(corrupt(key, "pieces do not add up"));
            }
            Ok(Some(out))
        }
        _ => Err(corrupt(key, "unknown value header")),
    }
}

fn piece_prefix_l(g: u64) -> [u8; 9] {
    let mut k = key_l(g);
    k[0] = b'P';
    k
}

/// How long opening waits for sled's lock on the directory: a store dropped a moment ago (a
/// restart in the same process, a process that is just exiting) still holds it while sled's
/// background IO threads finish. Another server running on the directory is still reported,
/// this much later.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Creates `dir` if missing and makes it its owner's only (0700): it holds the whole record
/// and the admin token, and sled creates its files readable by anyone the umask lets in. A
/// directory made before this, open to others, is closed with a note in the log.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), "data directory made private (0700)");
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    private_dir(dir)?;
    let config = sled::Config::new()
        .path(dir)
        // We flush ourselves, once per group commit; the background flusher would only
        // add unsynced writes of its own.
        .flush_every_ms(None)
        .cache_capacity(256 * 1024 * 1024);
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            // sled reports it as `Other`, with this text.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Whether `key` is one of the log's kinds of entries (see the module docs); a backup holds
/// nothing else.
pub fn is_log_key(key: &[u8]) -> bool {
    matches!(key.first(), Some(b'L' | b'P' | b'D' | b'H' | b'R'))
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
        self.submit(ReqKind::Changes {
            doc,
            changes,
            bindings,
        })
        .await
    }

    /// Appends a rejection or an admin action together with the registry changes it makes;
    /// resolves once durable.
    pub async fn append_event(
        &self,
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    ) -> Result<(), StoreError> {
        self.submit(ReqKind::Event { event, registry })
            .await
            .map(|_| ())
    }

    async fn submit(&self, kind: ReqKind) -> Result<Appended, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = guard.as_ref().ok_or(StoreError::Closed)?;
            tx.send(AppendReq { kind, reply })
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
                Some(b'R') => return None,
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
        let mut out = Vec::new();
        for kv in self.events.range(key_d(doc, 0)..key_d(doc, u64::MAX)) {
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
        let mut out = Vec::new();
        let from = after.saturating_add(1);
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

    fn newest_snapshot(&self, doc: &DocumentId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        for kv in self.snapshots.scan_prefix(doc.as_bytes()).rev() {
            let (k, v) = kv?;
            if k.len() != 25 || k[24] != b'M' {
                continue;
            }
            let Some(upto) = be_u64(&k[16..24]) else {
                continue;
            };
            let mut prefix = k[..24].to_vec();
            prefix.push(b'C');
            match get_value(&self.snapshots, &k, &prefix) {
                Ok(Some(bytes)) if !v.is_empty() => return Ok(Some((upto, bytes))),
                Ok(_) => {}
                Err(e) => tracing::warn!(%doc, upto, error = %e, "ignoring a torn snapshot"),
            }
        }
        Ok(None)
    }

    /// Stores a snapshot of `doc` covering its log up to `upto_doc_seq` and deletes older ones.
    /// Snapshots are a cache: they need no fsync of their own (the next group commit's
    /// flush covers them, and a torn one is ignored on load).
    pub fn save_snapshot(
        &self,
        doc: &DocumentId,
        upto_doc_seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut base = doc.as_bytes().to_vec();
        base.extend_from_slice(&upto_doc_seq.to_be_bytes());
        let mut manifest_key = base.clone();
        manifest_key.push(b'M');
        let mut piece_prefix = base;
        piece_prefix.push(b'C');
        // Pieces first, manifest last, in one atomic batch.
        let mut batch = sled::Batch::default();
        let mut n = 0u32;
        for (i, piece) in bytes.chunks(PIECE).enumerate() {
            n = i as u32 + 1;
            batch.insert(key_piece(&piece_prefix, i as u32), piece);
        }
        let mut v = vec![1];
        v.extend_from_slice(&n.to_be_bytes());
        v.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        batch.insert(manifest_key.clone(), v);
        self.snapshots.apply_batch(batch)?;
        // Older snapshots of this document are now redundant.
        let mut old = sled::Batch::default();
        for kv in self
            .snapshots
            .range(doc.as_bytes().to_vec()..manifest_key[..24].to_vec())
        {
            let (k, _) = kv?;
            old.remove(k);
        }
        self.snapshots.apply_batch(old)?;
        Ok(())
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

    /// The newest usable snapshot of `doc` and the document sequence it covers.
    pub fn snapshot(&self, doc: &DocumentId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.newest_snapshot(doc)
    }

    /// Overwrites one byte of record `g` as stored — only for tests that prove `verify`
    /// notices damage. Nothing in the server calls it.
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

    /// The last global sequence number the timeline projection has taken in (0 = none).
    pub fn timeline_checkpoint(&self) -> Result<u64, StoreError> {
        match self.timeline.get(b"C")? {
            Some(v) => be_u64(&v).ok_or_else(|| corrupt(b"C", "timeline checkpoint")),
            None => Ok(0),
        }
    }

    /// Writes one step of the timeline projection: entries, state and the new checkpoint,
    /// atomically. Like snapshots it is derived data, so it needs no fsync of its own.
    pub fn timeline_write(
        &self,
        entries: &[(Vec<u8>, Vec<u8>)],
        state: &[(Vec<u8>, Vec<u8>)],
        checkpoint: u64,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in entries {
            let mut key = Vec::with_capacity(k.len() + 1);
            key.push(b'E');
            key.extend_from_slice(k);
            batch.insert(key, v.as_slice());
        }
        for (k, v) in state {
            let mut key = Vec::with_capacity(k.len() + 1);
            key.push(b'S');
            key.extend_from_slice(k);
            batch.insert(key, v.as_slice());
        }
        batch.insert(&b"C"[..], &checkpoint.to_be_bytes()[..]);
        self.timeline.apply_batch(batch)?;
        Ok(())
    }

    /// One value of the projection's state.
    pub fn timeline_state(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut key = vec![b'S'];
        key.extend_from_slice(name);
        Ok(self.timeline.get(key)?.map(|v| v.to_vec()))
    }

    /// Timeline entries whose key (without the `E`) is at least `from` and starts with
    /// `prefix`, in key order, at most `limit`.
    pub fn timeline_entries(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let mut p = vec![b'E'];
        p.extend_from_slice(prefix);
        let mut start = vec![b'E'];
        start.extend_from_slice(from.max(prefix));
        let mut out = Vec::new();
        for kv in self.timeline.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&p) || out.len() >= limit {
                break;
            }
            out.push((k[1..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Drops the whole timeline projection (`rebuild` then computes it again).
    pub fn timeline_clear(&self) -> Result<(), StoreError> {
        self.timeline.clear()?;
        Ok(())
    }

    /// Flips one byte of the `nth` stored timeline entry and returns the global sequence
    /// number it is about — only for tests that prove `verify` notices. Nothing in the server
    /// calls it.
    #[doc(hidden)]
    pub fn damage_timeline_for_tests(&self, nth: usize) -> Result<Option<u64>, StoreError> {
        let Some(kv) = self.timeline.scan_prefix(b"E").nth(nth) else {
            return Ok(None);
        };
        let (k, v) = kv?;
        let mut v = v.to_vec();
        let i = v.len() / 2;
        v[i] = v[i].wrapping_add(1);
        self.timeline.insert(&k, v)?;
        self.db.flush()?;
        let g = k.len().checked_sub(10).and_then(|i| be_u64(&k[i..i + 8]));
        Ok(g)
    }

    /// Deletes every snapshot (they are a cache; used by tests and operators).
    pub fn clear_snapshots(&self) -> Result<(), StoreError> {
        self.snapshots.clear()?;
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

/// The single owner of the sequence counters; see the module docs.
struct Writer {
    db: sled::Db,
    events: sled::Tree,
    data_file: File,
    next_global: u64,
    doc_seqs: HashMap<DocumentId, u64>,
    failed: Arc<AtomicBool>,
    durable: Arc<AtomicU64>,
    gate: Option<DurabilityGate>,
    commit_seconds: Histogram,
    commit_records: Histogram,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<AppendReq>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            if self.failed.load(Ordering::SeqCst) {
                self.answer_cuts(&group);
                for r in group {
                    let _ = r
                        .reply
                        .send(Err(StoreError::Failed("an earlier flush failed".into())));
                }
                continue;
            }
            let (started, first_seq) = (std::time::Instant::now(), self.next_global);
            match self.commit(&group) {
                Ok(results) => {
                    self.answer_cuts(&group);
                    self.commit_seconds.observe(started.elapsed().as_secs_f64());
                    self.commit_records
                        .observe(self.next_global.saturating_sub(first_seq) as f64);
                    for (r, res) in group.into_iter().zip(results) {
                        let _ = r.reply.send(Ok(res));
                    }
                }
                Err(e) => {
                    // Never retry: after a failed fsync the kernel may have dropped the pages.
                    tracing::error!(error = %e, "event log write failed; no more writes are accepted");
                    self.failed.store(true, Ordering::SeqCst);
                    self.answer_cuts(&group);
                    let msg = e.to_string();
                    for r in group {
                        let _ = r.reply.send(Err(StoreError::Failed(msg.clone())));
                    }
                }
            }
        }
    }

    /// Answers the cuts asked for in `group`, which has just been committed (or refused).
    fn answer_cuts(&self, group: &[AppendReq]) {
        for r in group {
            let ReqKind::Cut(tx) = &r.kind else { continue };
            let registry: Result<Vec<KeyValue>, sled::Error> = self
                .events
                .scan_prefix(b"R")
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect();
            let _ = tx.send(registry.map_err(StoreError::from).map(|registry| Cut {
                upto: self.next_global,
                registry,
            }));
        }
    }

    fn last_doc_seq(&mut self, doc: &DocumentId) -> Result<u64, StoreError> {
        if let Some(s) = self.doc_seqs.get(doc) {
            return Ok(*s);
        }
        let mut prefix = vec![b'D'];
        prefix.extend_from_slice(doc.as_bytes());
        let s = match self.events.scan_prefix(prefix).next_back() {
            Some(kv) => {
                let (k, _) = kv?;
                be_u64(&k[17..]).ok_or_else(|| corrupt(&k, "doc seq"))?
            }
            None => 0,
        };
        self.doc_seqs.insert(*doc, s);
        Ok(s)
    }

    fn commit(&mut self, group: &[AppendReq]) -> Result<Vec<Appended>, StoreError> {
        let mut batch = sled::Batch::default();
        let mut seen = std::collections::HashSet::new();
        let mut results = Vec::with_capacity(group.len());
        let mut next_global = self.next_global;
        let mut doc_seqs: HashMap<DocumentId, u64> = HashMap::new();
        for req in group {
            let (doc, changes, bindings) = match &req.kind {
                ReqKind::Changes {
                    doc,
                    changes,
                    bindings,
                } => (doc, changes, bindings),
                ReqKind::Cut(_) => {
                    results.push(Appended {
                        written: 0,
                        last_doc_seq: 0,
                    });
                    continue;
                }
                ReqKind::Event { event, registry } => {
                    let g = next_global;
                    next_global += 1;
                    let bytes = match event {
                        PendingEvent::Rejection(r) => r.encode(g),
                        PendingEvent::Admin(a) => a.encode(g),
                        PendingEvent::Presence(p) => p.encode(g),
                    };
                    put_value(&mut batch, &key_l(g), &piece_prefix_l(g), &bytes);
                    for op in registry {
                        match op {
                            RegistryOp::Put(k, v) => batch.insert(key_r(k), v.as_slice()),
                            RegistryOp::Delete(k) => batch.remove(key_r(k)),
                        }
                    }
                    results.push(Appended {
                        written: 1,
                        last_doc_seq: 0,
                    });
                    continue;
                }
            };
            let mut written = 0;
            let mut s = match doc_seqs.get(doc) {
                Some(s) => *s,
                None => self.last_doc_seq(doc)?,
            };
            for c in changes {
                let hk = key_h(doc, &c.hash);
                // Idempotent: a change already logged (or earlier in this group) is skipped.
                if !seen.insert(hk.clone()) || self.events.contains_key(&hk)? {
                    continue;
                }
                s += 1;
                let g = next_global;
                next_global += 1;
                let rec = ChangeRecord {
                    global_seq: g,
                    doc_seq: s,
                    change: c.clone(),
                };
                put_value(&mut batch, &key_l(g), &piece_prefix_l(g), &rec.encode());
                batch.insert(key_d(doc, s), &g.to_be_bytes());
                batch.insert(hk, &g.to_be_bytes());
                written += 1;
            }
            for (actor, participant) in bindings {
                batch.insert(key_r(&actor_key(actor)), participant.as_bytes());
            }
            doc_seqs.insert(*doc, s);
            results.push(Appended {
                written,
                last_doc_seq: s,
            });
        }
        if self.gate.as_ref().is_some_and(DurabilityGate::failing) {
            return Err(StoreError::Io(std::io::Error::from_raw_os_error(28)));
        }
        self.events.apply_batch(batch)?;
        if self
            .gate
            .as_ref()
            .is_some_and(DurabilityGate::failing_flush)
        {
            return Err(StoreError::Io(std::io::Error::from_raw_os_error(5)));
        }
        self.db.flush()?;
        // sled's flush is sync_file_range on Linux: make it durable for real.
        self.data_file.sync_data()?;
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        self.next_global = next_global;
        self.durable.store(next_global, Ordering::SeqCst);
        self.doc_seqs.extend(doc_seqs);
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toron_protocol::{ConnId, PeerId};

    fn change(doc: DocumentId, n: u8, size: usize) -> NewChange {
        NewChange {
            document_id: doc,
            received_at_ms: 1,
            conn: ConnId(1),
            peer: PeerId::new("p").expect("peer"),
            by: toron_protocol::Attribution::default(),
            actor: vec![n],
            hash: [n; 32],
            bytes: vec![n; size],
            heads_after: vec![[n; 32]],
        }
    }

    #[tokio::test]
    async fn sequences_are_gap_free_idempotent_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (DocumentId::random(), DocumentId::random());
        {
            let store = Store::open(dir.path(), None).expect("open");
            let r = store
                .append(a, vec![change(a, 1, 10), change(a, 2, 10)], vec![])
                .await
                .expect("append");
            assert_eq!(
                r,
                Appended {
                    written: 2,
                    last_doc_seq: 2
                }
            );
            let r = store
                .append(b, vec![change(b, 3, 200_000)], vec![])
                .await
                .expect("append");
            assert_eq!(
                r,
                Appended {
                    written: 1,
                    last_doc_seq: 1
                }
            );
            // The same change again is not a second record.
            let r = store
                .append(a, vec![change(a, 2, 10), change(a, 4, 10)], vec![])
                .await
                .expect("append");
            assert_eq!(
                r,
                Appended {
                    written: 1,
                    last_doc_seq: 3
                }
            );
        }
        let store = Store::open(dir.path(), None).expect("reopen");
        assert_eq!(store.last_global_seq().expect("seq"), 4);
        let recs = store.document_records(&a).expect("records");
        assert_eq!(
            recs.iter()
                .map(|r| (r.global_seq, r.doc_seq))
                .collect::<Vec<_>>(),
            vec![(1, 1), (2, 2), (4, 3)]
        );
        let big = store.document_records(&b).expect("records");
        assert_eq!(
            big[0].change.bytes.len(),
            200_000,
            "a large record comes back whole"
        );
        let r = store
            .append(a, vec![change(a, 5, 10)], vec![])
            .await
            .expect("append");
        assert_eq!(r.last_doc_seq, 4);
        assert_eq!(store.last_global_seq().expect("seq"), 5);
    }

    #[tokio::test]
    async fn snapshots_are_a_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), None).expect("open");
        let d = DocumentId::random();
        store
            .append(
                d,
                vec![change(d, 1, 5), change(d, 2, 5), change(d, 3, 5)],
                vec![],
            )
            .await
            .expect("append");
        store
            .save_snapshot(&d, 1, &vec![7u8; 100_000])
            .expect("snapshot");
        store.save_snapshot(&d, 2, &[8u8; 10]).expect("snapshot");
        let loaded = store.load(&d).expect("load");
        assert_eq!(loaded.snapshot.as_deref(), Some(&[8u8; 10][..]));
        assert_eq!(loaded.tail, vec![vec![3u8; 5]]);
        assert_eq!(loaded.last_doc_seq, 3);
        store.clear_snapshots().expect("clear");
        let loaded = store.load(&d).expect("load");
        assert!(loaded.snapshot.is_none());
        assert_eq!(loaded.tail.len(), 3);
    }
}
