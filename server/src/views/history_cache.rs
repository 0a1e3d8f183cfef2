//! Loaded copies of documents for reading their past.
//!
//! Every record carries the document's heads after it, and Automerge reads any object at any
//! heads its copy contains. So a point of a document's history is answered from one loaded
//! copy — newest snapshot plus the bounded tail after it, kept up to date with the log — and
//! never by replaying the log. Copies are kept up to a budget of inflated bytes, least recently
//! used first out: a replay of a hall's session reads every layer of its fifty participants at
//! each move, so the budget is in bytes (many small documents fit), not in documents.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use automerge::{Automerge, Change, ChangeHash};
use toron_protocol::{ChangeRecord, DocumentId};

use crate::store::{Store, StoreError};

/// Inflated bytes (snapshot and changes, their compressed columns counted as they are once
/// loaded) of the copies kept loaded. A loaded document takes a few times that in memory; a
/// hall's session is well under a megabyte.
const BUDGET_BYTES: usize = 16 << 20;

/// What stored chunks weigh once loaded: their inflated size (a compressed snapshot of a
/// document full of repeated text is small on disk and large in memory).
fn resident(stored: &[u8]) -> usize {
    toron_protocol::inflate::inflated_len(stored, u64::MAX)
        .map_or(stored.len(), |n| usize::try_from(n).unwrap_or(usize::MAX))
}
/// And never more documents than this, however small.
const MAX_DOCS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data does not load: {0}")]
    Corrupt(String),
}

struct Loaded {
    doc: Automerge,
    /// The document sequence number of the last record the copy holds.
    upto: u64,
}

/// One kept copy, with what it weighs in inflated bytes (updated as records are applied).
struct Slot {
    id: DocumentId,
    loaded: Arc<Mutex<Loaded>>,
    bytes: Arc<AtomicUsize>,
}

/// A point of a document's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Document sequence number (0 = before the first change).
    pub seq: u64,
    /// Server receive time of that record.
    pub time_ms: Option<u64>,
    pub heads: Vec<ChangeHash>,
}

impl std::fmt::Debug for HistoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.docs.lock().map(|d| d.len()).unwrap_or(0);
        f.debug_struct("HistoryCache").field("loaded", &n).finish()
    }
}

pub struct HistoryCache {
    store: Arc<Store>,
    docs: Mutex<VecDeque<Slot>>,
}

impl HistoryCache {
    /// The findings of `series`' report as stored now (none if it has no report yet), each
    /// with the departments it is addressed to. Blocking, as [`Self::report`].
    pub fn report_findings(&self, series: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
        let report = self.report(series)?;
        let Some(findings) = report
            .get("findings")
            .and_then(serde_json::Value::as_object)
        else {
            return Ok(BTreeMap::new());
        };
        Ok(findings
            .iter()
            .map(|(k, f)| {
                let to = f["departments"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                (k.clone(), to)
            })
            .collect())
    }

    /// `series`' report document as stored now, as JSON (`null` if it has none yet).
    /// Blocking: reads it through the history cache, which keeps it loaded.
    pub fn report(&self, series: &str) -> Result<serde_json::Value, String> {
        let id = toron_domain::policy::DocKey::Report {
            series: series.to_string(),
        }
        .document_id();
        let len = self
            .store
            .document_len(&id)
            .map_err(|e| format!("the report of series {series} cannot be read: {e}"))?;
        if len == 0 {
            return Ok(serde_json::Value::Null);
        }
        self.with_doc(&id, len, toron_protocol::json::doc_to_json)
            .map_err(|e| format!("the report of series {series} cannot be read: {e}"))
    }

    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            docs: Mutex::new(VecDeque::new()),
        }
    }

    /// Runs `f` on a copy of `doc` that holds every record up to at least `upto`. Blocking.
    pub fn with_doc<T>(
        &self,
        id: &DocumentId,
        upto: u64,
        f: impl FnOnce(&Automerge) -> T,
    ) -> Result<T, HistoryError> {
        let (slot, weight) = self.slot(id)?;
        let mut loaded = slot.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.upto < upto {
            // Bring the copy up to date with what was appended since.
            let tail = self.store.records_after(id, loaded.upto, usize::MAX)?;
            if let Some(last) = tail.last() {
                let upto = last.doc_seq;
                let added: usize = tail.iter().map(|r| resident(&r.change.bytes)).sum();
                weight.fetch_add(added, Ordering::Relaxed);
                let changes = tail
                    .into_iter()
                    .map(|r| Change::from_bytes(r.change.bytes))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| HistoryError::Corrupt(e.to_string()))?;
                loaded
                    .doc
                    .apply_changes(changes)
                    .map_err(|e| HistoryError::Corrupt(e.to_string()))?;
                loaded.upto = upto;
            }
        }
        Ok(f(&loaded.doc))
    }

    /// The kept copy of `id` (loaded now if it is not kept) and its weight.
    fn slot(
        &self,
        id: &DocumentId,
    ) -> Result<(Arc<Mutex<Loaded>>, Arc<AtomicUsize>), HistoryError> {
        {
            let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = docs.iter().position(|s| s.id == *id) {
                let entry = docs.remove(i).unwrap_or_else(|| unreachable!("found"));
                let found = (entry.loaded.clone(), entry.bytes.clone());
                docs.push_back(entry);
                return Ok(found);
            }
        }
        // Load outside the list's lock: other documents stay readable meanwhile.
        let l = self.store.load(id)?;
        let bytes = l.snapshot.as_deref().map_or(0, resident)
            + l.tail.iter().map(|c| resident(c)).sum::<usize>();
        let doc = toron_protocol::engine::assemble(l.snapshot.as_deref(), l.tail)
            .map_err(|e| HistoryError::Corrupt(e.to_string()))?;
        let loaded = Arc::new(Mutex::new(Loaded {
            doc,
            upto: l.last_doc_seq,
        }));
        let weight = Arc::new(AtomicUsize::new(bytes));
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = docs.iter().find(|s| s.id == *id) {
            return Ok((s.loaded.clone(), s.bytes.clone()));
        }
        docs.push_back(Slot {
            id: *id,
            loaded: loaded.clone(),
            bytes: weight.clone(),
        });
        // Oldest out until within budget; the copy just loaded stays, however big.
        let total = |d: &VecDeque<Slot>| {
            d.iter()
                .map(|s| s.bytes.load(Ordering::Relaxed))
                .sum::<usize>()
        };
        while docs.len() > 1 && (docs.len() > MAX_DOCS || total(&docs) > BUDGET_BYTES) {
            docs.pop_front();
        }
        Ok((loaded, weight))
    }

    /// Forgets every copy (after the log was rebuilt or damaged under us).
    pub fn clear(&self) {
        self.docs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The point after record `seq` (clamped to the document's length).
    pub fn point_at_seq(&self, id: &DocumentId, seq: u64) -> Result<Point, HistoryError> {
        let seq = seq.min(self.store.document_len(id)?);
        if seq == 0 {
            return Ok(Point {
                seq: 0,
                time_ms: None,
                heads: Vec::new(),
            });
        }
        let rec = self
            .store
            .record_at(id, seq)?
            .ok_or_else(|| HistoryError::Corrupt(format!("record {seq} is missing")))?;
        let heads = self.heads_of(id, &rec)?;
        Ok(Point {
            seq,
            time_ms: Some(rec.change.received_at_ms),
            heads,
        })
    }

    /// The point after every record received at or before `at_ms`: a binary search over the
    /// document's records, whose receive times never decrease.
    pub fn point_at_time(&self, id: &DocumentId, at_ms: u64) -> Result<Point, HistoryError> {
        self.point_at(id, at_ms, false)
    }

    /// The same on the clock the timeline is ordered by: when an importer said a change
    /// happened (its change time), else when it was received. An import writes a document's
    /// items in time order and live changes come after, so this clock too never decreases
    /// along a document's records.
    pub fn point_at_happened(&self, id: &DocumentId, at_ms: u64) -> Result<Point, HistoryError> {
        self.point_at(id, at_ms, true)
    }

    fn point_at(&self, id: &DocumentId, at_ms: u64, happened: bool) -> Result<Point, HistoryError> {
        let (mut lo, mut hi) = (0u64, self.store.document_len(id)?);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let rec = self
                .store
                .record_at(id, mid)?
                .ok_or_else(|| HistoryError::Corrupt(format!("record {mid} is missing")))?;
            let t = if happened {
                happened_ms(&rec)
            } else {
                rec.change.received_at_ms
            };
            if t <= at_ms {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.point_at_seq(id, lo)
    }

    fn heads_of(
        &self,
        id: &DocumentId,
        rec: &ChangeRecord,
    ) -> Result<Vec<ChangeHash>, HistoryError> {
        if !rec.change.heads_after.is_empty() {
            return Ok(rec
                .change
                .heads_after
                .iter()
                .map(|h| ChangeHash(*h))
                .collect());
        }
        // A record from before heads were stored: derive them from the dependencies.
        let changes = self
            .store
            .records_after(id, 0, rec.doc_seq as usize)?
            .into_iter()
            .map(|r| Change::from_bytes(r.change.bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HistoryError::Corrupt(e.to_string()))?;
        Ok(toron_protocol::history::heads_after(
            &changes,
            changes.len(),
        ))
    }
}

/// When a record's change happened: its Automerge time if an importer delivered it, else the
/// server's receive time (the timeline's order).
pub fn happened_ms(rec: &ChangeRecord) -> u64 {
    if rec.change.by.role.as_deref() == Some("importer") {
        if let Ok(c) = Change::from_bytes(rec.change.bytes.clone()) {
            if c.timestamp() > 0 {
                return c.timestamp() as u64 * 1000;
            }
        }
    }
    rec.change.received_at_ms
}
