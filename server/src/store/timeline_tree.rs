//! The tree `timeline`: the session timeline projection's entries, state and checkpoint
//! (derived from the log; rebuilt by `toron-server rebuild`).

use super::*;

/// A value of the timeline projection's state: its name and its bytes.
pub(crate) type StateEntry = (Vec<u8>, Vec<u8>);

impl Store {
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

    /// Every value of the projection's state whose name starts with `prefix`: (name, value).
    pub fn timeline_states(&self, prefix: &[u8]) -> Result<Vec<StateEntry>, StoreError> {
        let mut key = vec![b'S'];
        key.extend_from_slice(prefix);
        self.timeline
            .scan_prefix(key)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[1..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// One value of the projection's state.
    pub fn timeline_state(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut key = vec![b'S'];
        key.extend_from_slice(name);
        Ok(self.timeline.get(key)?.map(|v| v.to_vec()))
    }

    /// The next page of up to `limit` entries under `prefix` from `from`, which moves past the
    /// page's last key: reading page after page visits every entry once, and an empty page
    /// is the end.
    pub fn timeline_page(
        &self,
        prefix: &[u8],
        from: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let rows = self.timeline_entries(prefix, from, limit)?;
        if let Some(last) = rows.last() {
            from.clone_from(&last.0);
            from.push(0);
        }
        Ok(rows)
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
    #[cfg(any(test, feature = "fault-injection"))]
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
}
