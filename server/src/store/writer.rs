//! The log's one writer thread: group commit, flush and `fdatasync`, then the answers.

use super::*;

pub(super) enum ReqKind {
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

pub(super) struct AppendReq {
    pub(super) kind: ReqKind,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Appended, StoreError>>,
}

/// The single owner of the sequence counters; see the module docs.
pub(super) struct Writer {
    pub(super) db: sled::Db,
    pub(super) events: sled::Tree,
    pub(super) data_file: File,
    pub(super) next_global: u64,
    pub(super) doc_seqs: HashMap<DocumentId, u64>,
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
