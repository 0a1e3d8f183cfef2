//! One task per open document: the tokio driver of a [`DocEngine`].
//!
//! The actor loads the document (newest snapshot + log tail) on a blocking thread, under a
//! semaphore that bounds concurrent loads (reconnect storms re-request every open document at
//! once). Messages that arrive meanwhile wait in its channel, in order. Then it loops: take
//! everything queued, let the engine process it as one batch on a blocking thread (merges cost
//! time proportional to the document's history and must not stall the I/O tasks), append new
//! changes to the log, and only when the log says they are durable, send what the engine
//! generated. Idle documents (no subscriber, nothing queued) are evicted after a while.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use toron_protocol::engine::assemble;
use toron_protocol::wire::{encode, EphemeralFrame};
use toron_protocol::{
    Action, BatchId, ConnId, DocEngine, DocumentId, EngineConfig, Input, Message, NewChange,
    RefusedChanges,
};

use crate::metrics::ErrorKind;
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::metrics::{Metrics, Stats};
use crate::net::log_budget::LogBudget;
use crate::net::open_docs::{DocMsg, EphemeralBus, OpenDocs};
use crate::net::outbound::ConnTx;
use crate::net::server_voice::ServerVoice;
use crate::registry::RegistryGate;
use crate::registry::{ChangeRates, FindingLookup, Registry};
use crate::store::DocumentLog;
use crate::store::PendingEvent;

/// What a document actor is given of the server, once for all actors. Not the hub: an
/// actor neither routes nor sees connections other than those that sent to its document,
/// and it leaves the open documents only through [`OpenDocs`].
#[derive(Debug)]
pub struct DocContext {
    pub config: Arc<Config>,
    /// The log, through its seam: the actor never sees sled.
    pub store: Arc<dyn DocumentLog>,
    /// The permission policy's inputs, and the actor ids bound to participants.
    pub registry: Arc<Registry>,
    /// Each participant's allowance of changes per second.
    pub change_rates: Arc<ChangeRates>,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<Stats>,
    /// Bounds the log lines peers can cause.
    pub log_budget: Arc<LogBudget>,
    /// The server's peer id and notices (a refusal is told as an ephemeral notice).
    pub voice: Arc<ServerVoice>,
    /// Bounds concurrent loads (a reconnect storm re-requests every open document at once).
    pub load_permits: Semaphore,
    /// Turns true when the server stops: idle actors end instead of waiting for work.
    pub closing: watch::Receiver<bool>,
    /// How the schema check reads a series' findings.
    pub findings: FindingLookup,
    /// Where the actor takes itself out when it ends.
    pub open: Arc<OpenDocs>,
    /// On a cluster node: where new ephemeral messages go to reach the other nodes.
    pub bus: std::sync::OnceLock<Arc<dyn EphemeralBus>>,
}

/// Most messages taken into one batch.
const MAX_BATCH: usize = 4096;

pub async fn run(ctx: Arc<DocContext>, id: DocumentId, mut rx: mpsc::UnboundedReceiver<DocMsg>) {
    let engine = match load(&ctx, id).await {
        Ok(e) => e,
        Err(reason) => {
            tracing::error!(%id, %reason, "could not load document");
            ctx.open.forget(id);
            while let Ok(msg) = rx.try_recv() {
                if let DocMsg::Sync { out, .. } = msg {
                    out.close(format!("document {id} could not be loaded"));
                }
            }
            return;
        }
    };
    let mut actor = Actor {
        ctx,
        id,
        engine: Some(engine),
        outs: HashMap::new(),
    };
    actor.run(&mut rx).await;
}

async fn load(ctx: &DocContext, id: DocumentId) -> Result<DocEngine, String> {
    let waiting = ctx.metrics.load_waiting();
    let _permit = ctx
        .load_permits
        .acquire()
        .await
        .map_err(|e| e.to_string())?;
    drop(waiting);
    let _loading = ctx.metrics.loading();
    let store = ctx.store.clone();
    let server = ctx.voice.peer.clone();
    // A document participants write has a bound of its own kind (`schema`).
    let kind_ops = ctx
        .registry
        .document(&id)
        .and_then(|d| d.key)
        .and_then(|k| toron_domain::schema::max_document_ops(&k));
    let config = EngineConfig {
        snapshot_every: ctx.config.snapshot_every,
        max_document_bytes: ctx.config.max_document_bytes,
        max_ops_per_message: ctx.config.max_ops_per_message,
        max_document_ops: kind_ops.map_or(ctx.config.max_document_ops, |k| {
            k.min(ctx.config.max_document_ops)
        }),
        // A whole-document chunk may hold compressed columns: a message may inflate to four
        // times its largest size (a client's first sync of a document it made), no more.
        max_inflated_bytes_per_message: 4 * ctx.config.max_message_bytes as u64,
        ..EngineConfig::default()
    };
    tokio::task::spawn_blocking(move || {
        let loaded = store.load(&id).map_err(|e| e.to_string())?;
        let tail_bytes: u64 = loaded.tail.iter().map(|c| c.len() as u64).sum();
        let mut bytes = loaded.snapshot.as_ref().map_or(0, |s| s.len() as u64) + tail_bytes;
        let doc = match assemble(loaded.snapshot.as_deref(), loaded.tail.clone()) {
            Ok(doc) => doc,
            // A snapshot is only a cache: if it does not load, rebuild from the whole log.
            Err(e) if loaded.snapshot.is_some() => {
                tracing::warn!(%id, error = %e, "snapshot unusable, replaying the whole log");
                let all = store.document_records(&id).map_err(|e| e.to_string())?;
                bytes = all.iter().map(|r| r.change.bytes.len() as u64).sum();
                assemble(None, all.into_iter().map(|r| r.change.bytes).collect())
                    .map_err(|e| e.to_string())?
            }
            Err(e) => return Err(e.to_string()),
        };
        Ok(DocEngine::new(id, server, doc, config).with_stored_bytes(bytes))
    })
    .await
    .map_err(|e| e.to_string())?
}

struct Actor {
    ctx: Arc<DocContext>,
    id: DocumentId,
    /// Moved into blocking tasks and back; `None` only while it is away.
    engine: Option<DocEngine>,
    outs: HashMap<ConnId, ConnTx>,
}

impl Actor {
    async fn run(&mut self, rx: &mut mpsc::UnboundedReceiver<DocMsg>) {
        let idle = self.ctx.config.idle_evict;
        let mut closing = self.ctx.closing.clone();
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                _ = closing.wait_for(|c| *c) => {
                    // Server shutdown: everything acknowledged is already durable.
                    self.ctx.open.forget(self.id);
                    return;
                }
                () = tokio::time::sleep(idle) => {
                    if self.engine_ref().is_some_and(DocEngine::is_idle) && self.ctx.open.try_evict(self.id, rx) {
                        tracing::debug!(id = %self.id, "evicted idle document");
                        return;
                    }
                    continue;
                }
            };
            let Some(first) = first else { return };
            let mut msgs = vec![first];
            while msgs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            let permits = self.take(msgs);
            let going_on = self.process().await;
            drop(permits);
            if !going_on {
                self.ctx.open.forget(self.id);
                return;
            }
        }
    }

    fn engine_ref(&self) -> Option<&DocEngine> {
        self.engine.as_ref()
    }

    /// Hands messages to the engine. Ephemeral messages are relayed at once, each as it is
    /// taken: they reveal no document content, so they need not wait for the log. The
    /// returned permits are the senders' inbox allowances, given back once the batch is
    /// processed.
    fn take(&mut self, msgs: Vec<DocMsg>) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let mut permits = Vec::new();
        if self.engine.is_none() {
            return permits;
        }
        for m in msgs {
            match m {
                DocMsg::Sync { out, input, held } => {
                    self.outs.insert(out.conn, out);
                    permits.extend(held);
                    if let Some(engine) = self.engine.as_mut() {
                        engine.push(input);
                    }
                }
                DocMsg::Ephemeral { out, message, held } => {
                    if let (Some(bus), Some(engine)) = (self.ctx.bus.get(), self.engine.as_ref()) {
                        if engine.ephemeral_is_new(
                            &message.sender_id,
                            &message.session_id,
                            message.count,
                        ) {
                            bus.publish(&message);
                        }
                    }
                    self.relay(out.conn, &message);
                    drop(held);
                }
                DocMsg::Closed { conn } => {
                    self.outs.remove(&conn);
                    if let Some(engine) = self.engine.as_mut() {
                        engine.push(Input::Closed { conn });
                    }
                }
                DocMsg::Logged { changes } => {
                    if let Some(engine) = self.engine.as_mut() {
                        engine.push(Input::Logged { changes });
                    }
                }
                // From no connection of this node: relayed to every subscriber here.
                DocMsg::ClusterEphemeral { message, held } => {
                    self.relay(ConnId(u64::MAX), &message);
                    drop(held);
                }
            }
        }
        permits
    }

    /// Relays one ephemeral message to the document's other subscribers: encoded once, and
    /// queued only for those not behind (checked before anything is made for them).
    fn relay(&mut self, from: ConnId, m: &toron_protocol::Ephemeral) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let now = self.ctx.config.clock.now_ms();
        let targets = engine.ephemeral(from, &m.sender_id, &m.session_id, m.count, now);
        if targets.is_empty() {
            return;
        }
        let frame = EphemeralFrame::new(
            &m.sender_id,
            &m.document_id,
            m.count,
            &m.session_id,
            &m.data,
        );
        for (conn, target) in targets {
            let sent = self
                .outs
                .get(&conn)
                .is_some_and(|out| out.send_shared(&frame, &target));
            if !sent {
                self.ctx.metrics.ephemeral_dropped.inc();
            }
        }
    }

    /// Runs `f` on the engine in a blocking thread and gives the engine back.
    async fn with_engine<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut DocEngine) -> T + Send + 'static,
    ) -> Option<T> {
        let mut engine = self.engine.take()?;
        match tokio::task::spawn_blocking(move || {
            let r = f(&mut engine);
            (engine, r)
        })
        .await
        {
            Ok((engine, r)) => {
                self.engine = Some(engine);
                Some(r)
            }
            Err(e) => {
                // The engine panicked on some input: close everyone on this document and stop.
                tracing::error!(id = %self.id, error = %e, "document engine failed");
                for out in self.outs.values() {
                    out.close("internal error on this document".into());
                }
                None
            }
        }
    }

    /// One batch: step, append, wait for durability, send. Returns false if the actor must stop.
    async fn process(&mut self) -> bool {
        let batch_started = std::time::Instant::now();
        let Some((mut actions, mut bindings)) = self.step_engine().await else {
            return false;
        };
        // Set once a batch is durable: its sync messages go out in the next round.
        let mut fanout_from: Option<std::time::Instant> = None;
        loop {
            let append = self.perform(actions).await;
            if let Some(from) = fanout_from.take() {
                self.ctx
                    .metrics
                    .fanout_seconds
                    .observe(from.elapsed().as_secs_f64());
            }
            let Some((batch, changes)) = append else {
                // Nothing goes to the log: ids held for changes that were not taken are free.
                self.ctx.registry.release_actors(&bindings);
                return true;
            };
            let bound = std::mem::take(&mut bindings);
            match self.append(batch, changes, bound).await {
                Some(next) => {
                    actions = next;
                    fanout_from = Some(batch_started);
                }
                None => return false,
            }
        }
    }

    /// Lets the engine process what was taken, with the registry as its gate. Returns its
    /// actions and the actor ids it holds for the batch's changes.
    async fn step_engine(&mut self) -> Option<(Vec<Action>, Vec<(Vec<u8>, String)>)> {
        let registry = self.ctx.registry.clone();
        let rates = self.ctx.change_rates.clone();
        let clock = self.ctx.config.clock.clone();
        let findings = self.ctx.findings.clone();
        let key = registry.document(&self.id).and_then(|d| d.key);
        self.with_engine(move |e| {
            let mut gate = RegistryGate {
                registry,
                new: Vec::new(),
                key,
                rates,
                findings,
            };
            let actions = e.step(clock.now_ms(), &mut gate);
            (actions, gate.new)
        })
        .await
    }

    /// Carries out the engine's actions; returns the batch to append, if any.
    async fn perform(&mut self, actions: Vec<Action>) -> Option<(BatchId, Vec<NewChange>)> {
        let mut append = None;
        for a in actions {
            match a {
                Action::Send { conn, message } => {
                    tracing::trace!(id = %self.id, %conn, ty = message.type_name(), "send");
                    if let Some(out) = self.outs.get(&conn) {
                        out.send(encode(&message));
                        self.ctx.stats.frames_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Action::Close { conn, reason } => {
                    if let Some(out) = self.outs.remove(&conn) {
                        if self.ctx.log_budget.allow() {
                            tracing::info!(id = %self.id, %conn, %reason, "closing connection");
                        }
                        out.close(reason);
                    }
                }
                Action::Refused(r) => self.refused(r).await,
                Action::Append { batch, changes } => {
                    tracing::trace!(id = %self.id, ?batch, n = changes.len(), "append");
                    append = Some((batch, changes));
                }
                Action::SaveSnapshot {
                    upto_doc_seq,
                    bytes,
                } => {
                    let store = self.ctx.store.clone();
                    let id = self.id;
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = store.save_snapshot(&id, upto_doc_seq, &bytes) {
                            tracing::warn!(%id, error = %e, "snapshot not saved");
                        }
                    });
                }
            }
        }
        append
    }

    /// A refused change: counted, logged as a rejection record, and told to its sender — as
    /// an ephemeral notice with the refusal's kind (the JS client only logs `error`) and an
    /// `error` — or its connection closed.
    async fn refused(&mut self, refused: RefusedChanges) {
        let RefusedChanges {
            conn,
            rejection,
            kind,
            tell,
            close,
        } = refused;
        self.ctx
            .metrics
            .refused(kind, rejection.hashes.len() as u64);
        self.ctx.metrics.error(ErrorKind::refused_change);
        let reason = format!("changes refused: {}", rejection.reason);
        let notice = self.ctx.voice.notice(
            rejection.peer.clone(),
            self.id,
            toron_protocol::notice::refusal(kind, &rejection.reason),
        );
        if self.ctx.log_budget.allow() {
            tracing::info!(id = %self.id, %conn, participant = ?rejection.by.participant, %reason, "refusing changes");
        }
        if let Err(e) = self
            .ctx
            .store
            .append_event(PendingEvent::Rejection(rejection), Vec::new())
            .await
        {
            tracing::error!(id = %self.id, error = %e, "could not log a rejection");
        }
        if close {
            if let Some(out) = self.outs.remove(&conn) {
                out.close(reason);
            }
        } else if let (true, Some(out)) = (tell, self.outs.get(&conn)) {
            out.send(encode(&notice));
            out.send(encode(&Message::Error {
                sender_id: Some(self.ctx.voice.peer.clone()),
                target_id: None,
                message: format!(
                    "{reason} (document {}; this copy's changes are no longer taken: reload it)",
                    self.id
                ),
            }));
        }
    }

    /// Appends a batch and waits until it is durable; only then are the actor ids it
    /// introduced bound, and the engine told (its answer: the sync messages to send). `None`
    /// when the log failed: everyone on the document is closed and the actor stops.
    async fn append(
        &mut self,
        batch: BatchId,
        changes: Vec<NewChange>,
        bound: Vec<(Vec<u8>, String)>,
    ) -> Option<Vec<Action>> {
        let n = changes.len() as u64;
        match self.ctx.store.append(self.id, changes, bound.clone()).await {
            Ok(done) => {
                self.ctx.registry.confirm_actors(&bound);
                self.ctx.metrics.changes_accepted.inc_by(n);
                let last = done.last_doc_seq;
                self.with_engine(move |e| e.durable(batch, last)).await
            }
            Err(e) => {
                self.ctx.registry.release_actors(&bound);
                self.ctx.metrics.error(ErrorKind::storage);
                tracing::error!(id = %self.id, error = %e, "append failed; closing the document");
                let reason = e.to_string();
                if let Some(closes) = self
                    .with_engine(move |eng| eng.commit_failed(&reason))
                    .await
                {
                    for a in closes {
                        if let Action::Close { conn, reason } = a {
                            if let Some(out) = self.outs.get(&conn) {
                                out.close(reason);
                            }
                        }
                    }
                }
                None
            }
        }
    }
}
