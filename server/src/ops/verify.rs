//! `toron-server verify` and `rebuild`: offline checks and repairs of a data directory.
//!
//! `verify` replays the whole log from zero: every record must decode, global sequence numbers
//! must run 1, 2, 3… without a gap, each document's must too, every change's bytes must hash to
//! the hash it was logged under and be in the idempotency index, every document must rebuild,
//! and every snapshot must have the heads of the log prefix it claims to cover. Each problem
//! names the record (global sequence number) or document it is about.
//!
//! It also checks that each record's stored heads are those of the log up to it, and projects
//! the session timeline from zero to compare it with the stored projection.
//!
//! `rebuild` throws every snapshot away and writes a fresh one per document from the log, and
//! projects the timeline again.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use automerge::Change;
use toron_protocol::{engine::assemble, history, DocumentId, Event};

use crate::clock::Clock;
use crate::registry::Registry;
use crate::store::Store;
use crate::views::projection;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub documents: u64,
    pub changes: u64,
    pub timeline_checked_upto: u64,
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn verify(store: &Arc<Store>) -> anyhow::Result<Report> {
    let mut r = Report::default();
    let seqs = store.global_seqs()?;
    for (i, g) in seqs.iter().enumerate() {
        let expected = i as u64 + 1;
        if *g != expected {
            r.problems.push(format!(
                "global sequence gap: record {g} where {expected} was expected"
            ));
            break;
        }
    }
    for g in &seqs {
        r.records += 1;
        let bytes = match store.raw_record(*g) {
            Ok(Some(b)) => b,
            Ok(None) => {
                r.problems.push(format!("record {g}: missing"));
                continue;
            }
            Err(e) => {
                r.problems.push(format!("record {g}: unreadable: {e}"));
                continue;
            }
        };
        let event = match Event::decode(&bytes) {
            Ok(e) => e,
            Err(e) => {
                r.problems.push(format!("record {g}: does not decode: {e}"));
                continue;
            }
        };
        if event.global_seq() != *g {
            r.problems.push(format!(
                "record {g}: says it is record {}",
                event.global_seq()
            ));
        }
        if let Event::Change(c) = event {
            r.changes += 1;
            match Change::from_bytes(c.change.bytes.clone()) {
                Ok(ch) if ch.hash().0 == c.change.hash => {}
                Ok(_) => r.problems.push(format!(
                    "record {g}: the change's bytes do not hash to its logged hash"
                )),
                Err(e) => r
                    .problems
                    .push(format!("record {g}: the change does not parse: {e}")),
            }
            if !store.has_change(&c.change.document_id, &c.change.hash)? {
                r.problems
                    .push(format!("record {g}: missing from the idempotency index"));
            }
        }
    }
    for doc in store.documents()? {
        r.documents += 1;
        verify_document(store, &doc, &mut r)?;
    }
    // The timeline projection, recomputed from zero, must equal what is stored.
    match Registry::load(store.clone(), Clock::system()) {
        Ok(registry) => {
            r.timeline_checked_upto = store.timeline_checkpoint()?;
            match projection::verify(store, &registry) {
                Ok(problems) => r.problems.extend(problems),
                Err(e) => r.problems.push(format!("timeline: {e}")),
            }
        }
        Err(e) => r.problems.push(format!("registry: {e}")),
    }
    Ok(r)
}

fn verify_document(store: &Store, doc: &DocumentId, r: &mut Report) -> anyhow::Result<()> {
    let index = store.document_index(doc)?;
    for (i, (s, _)) in index.iter().enumerate() {
        if *s != i as u64 + 1 {
            r.problems
                .push(format!("document {doc}: sequence gap at {s}"));
            return Ok(());
        }
    }
    let mut changes = Vec::with_capacity(index.len());
    let mut heads: BTreeSet<[u8; 32]> = BTreeSet::new();
    for (s, g) in &index {
        match store.record(*g) {
            Ok(Some(rec)) if rec.doc_seq == *s && rec.change.document_id == *doc => {
                // The heads each record claims must be those of the log up to it.
                if let Ok(c) = Change::from_bytes(rec.change.bytes.clone()) {
                    for d in c.deps() {
                        heads.remove(&d.0);
                    }
                    heads.insert(c.hash().0);
                    let claimed = &rec.change.heads_after;
                    if !claimed.is_empty() && !claimed.iter().eq(heads.iter()) {
                        r.problems.push(format!(
                            "record {g}: the heads it stores are not those of document {doc} at {s}"
                        ));
                    }
                }
                changes.push(rec.change.bytes)
            }
            Ok(Some(_)) => r.problems.push(format!(
                "document {doc}: entry {s} points at record {g}, which belongs elsewhere"
            )),
            Ok(None) => r.problems.push(format!(
                "document {doc}: entry {s} points at missing record {g}"
            )),
            Err(e) => r.problems.push(format!(
                "document {doc}: record {g} (entry {s}) is unreadable: {e}"
            )),
        }
    }
    if changes.len() != index.len() {
        return Ok(());
    }
    if let Err(e) = assemble(None, changes.clone()) {
        r.problems.push(format!(
            "document {doc}: does not rebuild from its log: {e}"
        ));
        return Ok(());
    }
    if let Some((upto, bytes)) = store.snapshot(doc)? {
        let parsed: Result<Vec<Change>, _> = changes.into_iter().map(Change::from_bytes).collect();
        let expected = history::heads_after(&parsed?, upto as usize);
        match automerge::Automerge::load(&bytes) {
            Ok(snap) if snap.get_heads() == expected => {}
            Ok(_) => r.problems.push(format!(
                "document {doc}: the snapshot at {upto} has other heads than the log"
            )),
            Err(e) => r.problems.push(format!(
                "document {doc}: the snapshot at {upto} does not load: {e}"
            )),
        }
    }
    Ok(())
}

/// What `rebuild` wrote.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub documents: u64,
    pub timeline_entries: u64,
}

/// Replaces every snapshot with a fresh one made from the log, and projects the timeline
/// again from zero.
pub fn rebuild(store: &Arc<Store>) -> anyhow::Result<Rebuilt> {
    let documents = rebuild_snapshots(store)?;
    let registry = Registry::load(store.clone(), Clock::system())?;
    let timeline_entries = projection::rebuild(store, &registry)?;
    Ok(Rebuilt {
        documents,
        timeline_entries,
    })
}

/// Replaces every snapshot with a fresh one made from the log. Returns the documents written.
pub fn rebuild_snapshots(store: &Store) -> anyhow::Result<u64> {
    store.clear_snapshots()?;
    let mut n = 0;
    for doc in store.documents()? {
        let records = store.document_records(&doc)?;
        let Some(last) = records.last().map(|r| r.doc_seq) else {
            continue;
        };
        let d = assemble(None, records.into_iter().map(|r| r.change.bytes).collect())?;
        store.save_snapshot(&doc, last, &d.save())?;
        n += 1;
    }
    Ok(n)
}

/// Opens the data directory for an offline command (fails if a server holds it).
pub fn open(dir: &Path) -> anyhow::Result<std::sync::Arc<Store>> {
    if !dir.join("db").exists() {
        anyhow::bail!("{} is not a Toron data directory", dir.display());
    }
    Store::open(dir, None).map_err(|e| {
        anyhow::anyhow!(
            "cannot open {} (is a server running on it?): {e}",
            dir.display()
        )
    })
}
