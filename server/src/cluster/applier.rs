//! The stream, read in order into this node's sled — the only way entries enter a replica —
//! and what other nodes' entries change here: the registry and the open documents.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use tokio::sync::watch;
use toron_protocol::DocumentId;

use crate::net::hub::Hub;
use crate::registry::Registry;
use crate::store::{LogEntry, PendingEvent, Store};

use super::{NODE_HEADER, SUBJECTS};

/// Most entries written to sled in one go (one group commit).
const CHUNK: usize = 512;
/// Pause before the consumer is made again after an error (the stream lost its leader),
/// doubled at each failure in a row up to [`RETRY_MAX`].
const RETRY: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// After this long without an entry the applier asks the stream where it ends: an ordered
/// consumer whose server went away can sit silent although the stream has moved on (seen:
/// half a minute after two of three servers came back), and writers wait for it.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// What other nodes' entries reach, once the node serves.
#[derive(Debug, Clone)]
pub struct Hooks {
    pub registry: Arc<Registry>,
    pub hub: Arc<Hub>,
}

/// The applier task's handle.
#[derive(Debug)]
pub struct Handle {
    hooks: Arc<Mutex<Option<Hooks>>>,
    stop: watch::Sender<bool>,
}

impl Handle {
    pub fn attach(&self, hooks: Hooks) {
        *self.hooks.lock().unwrap_or_else(|p| p.into_inner()) = Some(hooks);
    }

    /// Turns true when the applier is told to stop.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops reading, and lets go of the hub and the registry (the server waits for the
    /// hub's last holder before it closes the log).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        self.hooks.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

pub fn spawn(
    stream: stream::Stream,
    store: Arc<Store>,
    node: String,
    key: super::auth::ClusterKey,
) -> Handle {
    let hooks = Arc::new(Mutex::new(None));
    let (stop, stopped) = watch::channel(false);
    let applier = Applier {
        stream,
        store,
        node,
        key,
        hooks: hooks.clone(),
    };
    tokio::spawn(applier.run(stopped));
    Handle { hooks, stop }
}

struct Applier {
    stream: stream::Stream,
    store: Arc<Store>,
    node: String,
    key: super::auth::ClusterKey,
    hooks: Arc<Mutex<Option<Hooks>>>,
}

/// An entry read from the stream: its position, the node that wrote it, and the entry (or
/// why it does not decode).
pub(super) struct Read {
    pub(super) seq: u64,
    origin: String,
    pub(super) entry: Result<LogEntry, String>,
}

impl Applier {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut retry = RETRY;
        loop {
            if *stopped.borrow() {
                return;
            }
            let start = self.store.replica_position() + 1;
            let mut chunks = match entries_from(&self.stream, start).await {
                Ok(chunks) => chunks,
                Err(e) => {
                    tracing::warn!(error = %e, start, ?retry, "cannot read the cluster's stream; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {
                            retry = (retry * 2).min(RETRY_MAX);
                            continue;
                        }
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                }
            };
            retry = RETRY;
            loop {
                let chunk = tokio::select! {
                    c = tokio::time::timeout(IDLE_CHECK, chunks.next()) => c,
                    _ = stopped.wait_for(|s| *s) => return,
                };
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(_) if self.behind().await => {
                        tracing::info!(
                            position = self.store.replica_position(),
                            "the stream moved on without us; reading again"
                        );
                        break;
                    }
                    Err(_) => continue,
                };
                let Some(chunk) = chunk else { break };
                let mut reads = Vec::with_capacity(chunk.len());
                let mut broken = None;
                for m in chunk {
                    match m {
                        Ok(msg) => match read(&msg, &self.key) {
                            Some(r) => reads.push(r),
                            None => broken = Some("a message without its position".to_string()),
                        },
                        Err(e) => {
                            broken = Some(e.to_string());
                            break;
                        }
                    }
                }
                if let Err(e) = self.apply(reads).await {
                    tracing::error!(error = %e, "could not write the cluster's entries; reading again");
                    broken.get_or_insert(e);
                }
                if let Some(e) = broken {
                    tracing::warn!(error = %e, "the cluster's stream broke off; reading again");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }

    /// Whether the stream holds entries after this replica's position (`false` when the
    /// stream does not answer: then there is nothing to read anyway).
    async fn behind(&self) -> bool {
        match self.stream.get_info().await {
            Ok(info) => info.state.last_sequence > self.store.replica_position(),
            Err(_) => false,
        }
    }

    /// Writes `reads` into sled in order, then lets other nodes' entries reach the registry
    /// and the open documents.
    async fn apply(&self, reads: Vec<Read>) -> Result<(), String> {
        let mut entries = Vec::with_capacity(reads.len());
        let mut effects = Vec::new();
        for r in reads {
            match r.entry {
                Ok(entry) => {
                    if r.origin != self.node {
                        effects.push(Effect::of(&entry));
                    }
                    entries.push((r.seq, Some(entry)));
                }
                // Every node skips it alike, so the replicas stay the same; the position
                // moves past it.
                Err(e) => {
                    tracing::error!(seq = r.seq, error = %e, "skipping an entry of the cluster's stream");
                    entries.push((r.seq, None));
                }
            }
        }
        self.store
            .apply_replicated(entries)
            .await
            .map_err(|e| e.to_string())?;
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(hooks) = hooks {
            for effect in effects {
                effect.carry_out(&hooks);
            }
        }
        Ok(())
    }
}

/// The stream's entries from position `start` on, in order, in chunks of what is ready
/// (an ordered consumer: it makes itself again when it misses one). The applier reads the
/// stream this way, and so does `verify` when it replays it.
pub(super) async fn entries_from(
    stream: &stream::Stream,
    start: u64,
) -> Result<futures_util::stream::ReadyChunks<pull::Ordered>, String> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: SUBJECTS.into(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let messages = consumer.messages().await.map_err(|e| e.to_string())?;
    Ok(messages.ready_chunks(CHUNK))
}

/// An entry of the stream, if it is the cluster's: one not signed with the cluster's key
/// (`auth`) is read as unreadable — every node skips it alike, and applies nothing of it.
pub(super) fn read(msg: &jetstream::Message, key: &super::auth::ClusterKey) -> Option<Read> {
    let seq = msg.info().ok()?.stream_sequence;
    let Some(origin) = super::auth::verified_origin(key, msg) else {
        let said = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(NODE_HEADER))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        return Some(Read {
            seq,
            origin: said.clone(),
            entry: Err(format!(
                "not signed with the cluster's key (claims node {said:?}): somebody without the key published on the NATS servers"
            )),
        });
    };
    let entry = LogEntry::decode(&msg.payload).map_err(|e| e.to_string());
    Some(Read { seq, origin, entry })
}

/// What another node's entry changes on this node, once it is in this node's log.
enum Effect {
    /// Changes for the document's actor, if it is open here; bindings for the registry.
    Changes {
        doc: DocumentId,
        changes: Vec<Vec<u8>>,
        bindings: Vec<(Vec<u8>, String)>,
    },
    /// The registry changed: read it again; a revocation closes the participant's sockets.
    Registry {
        disconnect: Option<(String, &'static str)>,
    },
    Nothing,
}

impl Effect {
    fn of(entry: &LogEntry) -> Self {
        match entry {
            LogEntry::Changes {
                doc,
                changes,
                bindings,
            } => Effect::Changes {
                doc: *doc,
                changes: changes.iter().map(|c| c.bytes.clone()).collect(),
                bindings: bindings.clone(),
            },
            LogEntry::Event { registry, .. } if registry.is_empty() => Effect::Nothing,
            LogEntry::Event { event, .. } => Effect::Registry {
                disconnect: match event {
                    PendingEvent::Admin(a) => revocation(&a.action),
                    _ => None,
                },
            },
        }
    }

    fn carry_out(self, hooks: &Hooks) {
        match self {
            Effect::Changes {
                doc,
                changes,
                bindings,
            } => {
                hooks.registry.confirm_actors(&bindings);
                hooks.hub.logged(doc, changes);
            }
            Effect::Registry { disconnect } => {
                if let Err(e) = hooks.registry.reload() {
                    tracing::error!(error = %e, "could not read the registry again");
                }
                if let Some((participant, reason)) = disconnect {
                    hooks.hub.disconnect_participant(&participant, reason);
                }
            }
            Effect::Nothing => {}
        }
    }
}

/// The participant whose connections an admin action closes, as the node that made it closes
/// them (`api/admin.rs`), and why.
fn revocation(action: &str) -> Option<(String, &'static str)> {
    let v: serde_json::Value = serde_json::from_str(action).ok()?;
    let (participant, reason) = if let Some(t) = v.get("token_revoked") {
        (t.get("participant")?, "your token was revoked")
    } else if let Some(t) = v.get("token_issued") {
        (t.get("participant")?, "your token was replaced")
    } else if let Some(g) = v.get("role_revoked") {
        (g.get("participant")?, "your roles changed; reconnect")
    } else {
        return None;
    };
    Some((participant.as_str()?.to_string(), reason))
}
