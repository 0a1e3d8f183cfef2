//! The tree `snapshots`: a cache of saved documents, in pieces with a manifest written
//! last, so that a torn snapshot is ignored. Deleting it changes nothing but start-up time.

use super::*;

impl Store {
    pub(super) fn newest_snapshot(
        &self,
        doc: &DocumentId,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
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
        if self.is_replica() && !self.snapshot_matches(doc, upto_doc_seq, bytes)? {
            // The actor's copy missed another node's change logged before its own: this
            // snapshot would not be the log's prefix. The next one will be.
            tracing::debug!(%doc, upto_doc_seq, "snapshot skipped: not the log's prefix");
            return Ok(());
        }
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

    /// The newest usable snapshot of `doc` and the document sequence it covers.
    pub fn snapshot(&self, doc: &DocumentId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.newest_snapshot(doc)
    }

    /// Deletes every snapshot (they are a cache; used by tests and operators).
    pub fn clear_snapshots(&self) -> Result<(), StoreError> {
        self.snapshots.clear()?;
        self.db.flush()?;
        Ok(())
    }
}

impl Store {
    /// Whether `bytes` hold exactly the heads the log has after record `upto_doc_seq` of
    /// `doc`. On a replica the actor's document may lack another node's change that the log
    /// put before the actor's own (it reaches the actor a moment later).
    fn snapshot_matches(
        &self,
        doc: &DocumentId,
        upto_doc_seq: u64,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let Some(rec) = self.record_at(doc, upto_doc_seq)? else {
            return Ok(false);
        };
        let Ok(saved) = automerge::Automerge::load(bytes) else {
            return Ok(false);
        };
        let mut heads: Vec<[u8; 32]> = saved.get_heads().iter().map(|h| h.0).collect();
        heads.sort_unstable();
        let mut logged = rec.change.heads_after;
        logged.sort_unstable();
        Ok(heads == logged)
    }
}
