//! The log's one writer thread: group commit, flush and `fdatasync`, then the answers.

use super::*;

pub(super) enum ReqKind {
    /// Changes (with the actor → participant bindings they introduce, made durable with
    /// them), or another record with the registry entries it changes.
    Entry(LogEntry),
    /// Asks for a [`Cut`] after the group this request lands in has committed.
    Cut(mpsc::Sender<Result<Cut, StoreError>>),
    /// On a replica: an entry of the replicated log that is not applied (unreadable, or not
    /// the cluster's): only the position moves past it.
    Skip,
}

pub(super) struct AppendReq {
    pub(super) kind: ReqKind,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Appended, StoreError>>,
    /// On a replica: the entry's position in the replicated log (see `replica.rs`).
    pub(super) replicated: Option<u64>,
}

/// The single owner of the sequence counters; see the module docs.
pub(super) struct Writer {
    pub(super) db: sled::Db,
    pub(super) events: sled::Tree,
    pub(super) data_file: File,
    pub(super) next_global: u64,
    pub(super) doc_seqs: HashMap<DocumentId, u64>,
    /// On a replica: each document's heads after its last record, as the log's prefix has
    /// them (read from the last record on first use).
    pub(super) doc_heads: HashMap<DocumentId, Vec<[u8; 32]>>,
    /// On a replica: when the log was last written to the disk (see `commit`).
    pub(super) replica_flushed: std::time::Instant,
    pub(super) failed: Arc<AtomicBool>,
    pub(super) durable: Arc<AtomicU64>,
    pub(super) gate: Option<DurabilityGate>,
    pub(super) commit_seconds: Histogram,
    pub(super) commit_records: Histogram,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<AppendReq>) {
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
        let mut g = Group {
            batch: sled::Batch::default(),
            seen: std::collections::HashSet::new(),
            next_global: self.next_global,
            doc_seqs: HashMap::new(),
            doc_heads: HashMap::new(),
        };
        let mut results = Vec::with_capacity(group.len());
        for req in group {
            if let Some(position) = req.replicated {
                g.batch
                    .insert(KEY_REPLICA_POSITION, &position.to_be_bytes());
            }
            results.push(match &req.kind {
                ReqKind::Entry(LogEntry::Changes {
                    doc,
                    changes,
                    bindings,
                }) => {
                    self.changes_into(&mut g, doc, changes, bindings, req.replicated.is_some())?
                }
                ReqKind::Cut(_) | ReqKind::Skip => Appended {
                    written: 0,
                    last_doc_seq: 0,
                },
                ReqKind::Entry(LogEntry::Event { event, registry }) => g.event(event, registry),
            });
        }
        let Group {
            batch,
            next_global,
            doc_seqs,
            doc_heads,
            ..
        } = g;
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
        // A replica's entries are durable in the cluster's stream already: losing the tail of
        // its sled (a kill, a power loss) only means reading it again from the stream, since
        // the position is in the same atomic batch. So a replica writes to the disk at most
        // once a second and never waits for it in between.
        let replica = group.iter().all(|r| r.replicated.is_some());
        if !replica || self.replica_flushed.elapsed() >= REPLICA_FLUSH_EVERY {
            self.db.flush()?;
            // sled's flush is sync_file_range on Linux: make it durable for real.
            self.data_file.sync_data()?;
            self.replica_flushed = std::time::Instant::now();
        }
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        self.next_global = next_global;
        self.durable.store(next_global, Ordering::SeqCst);
        self.doc_seqs.extend(doc_seqs);
        self.doc_heads.extend(doc_heads);
        Ok(results)
    }

    /// Adds one append's changes to the group: each new one numbered, the duplicates
    /// skipped; on a replica with the heads of the log's prefix.
    fn changes_into(
        &mut self,
        g: &mut Group,
        doc: &DocumentId,
        changes: &[NewChange],
        bindings: &[(Vec<u8>, String)],
        replicated: bool,
    ) -> Result<Appended, StoreError> {
        let mut written = 0;
        let mut s = match g.doc_seqs.get(doc) {
            Some(s) => *s,
            None => self.last_doc_seq(doc)?,
        };
        for c in changes {
            let hk = key_h(doc, &c.hash);
            // Idempotent: a change already logged (or earlier in this group) is skipped.
            if !g.seen.insert(hk.clone()) || self.events.contains_key(&hk)? {
                continue;
            }
            let mut change = c.clone();
            if replicated {
                let heads = match g.doc_heads.remove(doc) {
                    Some(h) => h,
                    None => self.heads_of(doc, s)?,
                };
                change.heads_after = heads_after(heads, &change);
                g.doc_heads.insert(*doc, change.heads_after.clone());
            }
            s += 1;
            let seq = g.next_global;
            g.next_global += 1;
            let rec = ChangeRecord {
                global_seq: seq,
                doc_seq: s,
                change,
            };
            put_value(
                &mut g.batch,
                &key_l(seq),
                &piece_prefix_l(seq),
                &rec.encode(),
            );
            g.batch.insert(key_d(doc, s), &seq.to_be_bytes());
            g.batch.insert(hk, &seq.to_be_bytes());
            written += 1;
        }
        for (actor, participant) in bindings {
            g.batch
                .insert(key_r(&actor_key(actor)), participant.as_bytes());
        }
        g.doc_seqs.insert(*doc, s);
        Ok(Appended {
            written,
            last_doc_seq: s,
        })
    }

    /// A replica's heads of `doc` after its record `doc_seq` (0: none yet).
    fn heads_of(&mut self, doc: &DocumentId, doc_seq: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        if let Some(h) = self.doc_heads.get(doc) {
            return Ok(h.clone());
        }
        if doc_seq == 0 {
            return Ok(Vec::new());
        }
        let key = key_d(doc, doc_seq);
        let g = match self.events.get(&key)? {
            Some(v) => be_u64(&v).ok_or_else(|| corrupt(&key, "global seq"))?,
            None => return Err(corrupt(&key, "document index has a gap")),
        };
        let bytes = get_value(&self.events, &key_l(g), &piece_prefix_l(g))?
            .ok_or_else(|| corrupt(&key, "index points at no record"))?;
        let rec = ChangeRecord::decode(&bytes)?;
        Ok(rec.change.heads_after)
    }
}

/// How often a replica's sled is written to the disk (see `Writer::commit`).
const REPLICA_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One group commit as it is being put together.
struct Group {
    batch: sled::Batch,
    /// Change keys (`H`) of the group so far.
    seen: std::collections::HashSet<Vec<u8>>,
    next_global: u64,
    doc_seqs: HashMap<DocumentId, u64>,
    doc_heads: HashMap<DocumentId, Vec<[u8; 32]>>,
}

impl Group {
    /// Adds a record that is not a change, with the registry entries it changes.
    fn event(&mut self, event: &PendingEvent, registry: &[RegistryOp]) -> Appended {
        let g = self.next_global;
        self.next_global += 1;
        let bytes = match event {
            PendingEvent::Rejection(r) => r.encode(g),
            PendingEvent::Admin(a) => a.encode(g),
            PendingEvent::Presence(p) => p.encode(g),
        };
        put_value(&mut self.batch, &key_l(g), &piece_prefix_l(g), &bytes);
        for op in registry {
            match op {
                RegistryOp::Put(k, v) => self.batch.insert(key_r(k), v.as_slice()),
                RegistryOp::Delete(k) => self.batch.remove(key_r(k)),
            }
        }
        Appended {
            written: 1,
            last_doc_seq: 0,
        }
    }
}

/// The heads after `change` when the log's prefix before it has `heads`: the prefix is in
/// causal order, so its dependencies are in it and stop being heads. A change that does not
/// parse keeps the heads its writer computed.
fn heads_after(heads: Vec<[u8; 32]>, change: &NewChange) -> Vec<[u8; 32]> {
    let Ok(parsed) = automerge::Change::from_bytes(change.bytes.clone()) else {
        return change.heads_after.clone();
    };
    let mut set: std::collections::BTreeSet<[u8; 32]> = heads.into_iter().collect();
    for d in parsed.deps() {
        set.remove(&d.0);
    }
    set.insert(change.hash);
    set.into_iter().collect()
}
