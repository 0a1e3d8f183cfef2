//! Shared state of a running server: which peers are connected, which documents are open.
//!
//! The hub never touches document contents. It routes each document's messages to that
//! document's actor (spawning it on first use) and remembers which connection a peer id is
//! on, so that a peer that joins again takes over cleanly (old socket closed and forgotten
//! before the new one is answered — reusing sync state across sockets causes sync loops).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify, Semaphore};
use toron_protocol::{ConnId, DocumentId, PeerId};

use crate::config::Config;
use crate::metrics::{Metrics, Stats};
use crate::net::doc_actor::{self, DocContext};
use crate::net::open_docs::{DocMsg, OpenDocs};
use crate::net::outbound::ConnTx;
use crate::net::peer_owners::PeerOwners;
use crate::net::server_voice::ServerVoice;
use crate::registry::{FindingLookup, Registry};
use crate::store::Store;
use crate::views::history_cache::HistoryCache;

/// Where a connection hears who is in a session: its sending side, its peer id, and a
/// document of the session it holds.
pub type PresenceChannel = (ConnTx, PeerId, DocumentId);

/// A join with a peer id that another participant's connection holds.
#[derive(Debug, thiserror::Error)]
#[error("this peer id is in use by another connection; join with a fresh one")]
pub struct JoinRefused;

#[derive(Debug)]
struct PeerEntry {
    conn: ConnId,
    /// Who authenticated the connection holding the id (`None` in open mode).
    participant: Option<String>,
    kick: Arc<Notify>,
    gone: watch::Receiver<bool>,
}

#[derive(Debug)]
pub struct Hub {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    /// Open connections per participant, so that revoking access can close them.
    participant_conns: Mutex<HashMap<String, Vec<ConnTx>>>,
    /// Counts revocations (a token revoked or replaced, a role taken away), so that long-lived
    /// HTTP streams (the SSE replay) ask again at once whether their reader may go on.
    access_revoked: watch::Sender<u64>,
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
    /// The open documents' inboxes.
    docs: Arc<OpenDocs>,
    /// What each document actor is given (not the hub: actors neither route nor see other
    /// connections).
    doc_context: Arc<DocContext>,
    /// Flips to true when the server stops: idle actors end instead of waiting for work.
    closing: watch::Sender<bool>,
    peers: Mutex<HashMap<PeerId, PeerEntry>>,
    /// Who each peer id belongs to, kept after its connection closes: a phone that drops
    /// comes back with the same id, and nobody else may take it meanwhile.
    peer_owners: Mutex<PeerOwners>,
    next_conn: AtomicU64,
    /// (participant, session) → the connections through which they take part in it.
    presence: Mutex<HashMap<(String, String), HashSet<ConnId>>>,
    /// (participant, session) → when their last connection into it closed, while the grace
    /// period before "left" is logged runs (see [`Hub::presence_leave`]).
    pending_leaves: Mutex<HashMap<(String, String), u64>>,
    /// Where to tell each connection present in a session who else is: its sending side, its
    /// peer id and the first document of that session it opened (ephemeral messages travel
    /// on a document the client holds).
    presence_channels: Mutex<HashMap<(ConnId, String), PresenceChannel>>,
    /// On a cluster node: who is present through each other node, by node (their latest
    /// list, and when it was heard); and where this node's own list goes.
    remote_presence: Mutex<HashMap<String, RemotePresence>>,
    presence_bus: std::sync::OnceLock<Arc<dyn PresenceBus>>,
    /// Loaded copies of documents for the history API.
    pub history: Arc<HistoryCache>,
    /// The session timeline, kept in step with the log.
    pub projection: crate::views::projection::Projection,
    /// Bounds the log lines peers can cause (refused joins, protocol errors).
    pub log_budget: Arc<crate::net::log_budget::LogBudget>,
    /// Each participant's allowance of ephemeral bytes per second.
    pub ephemeral_rates: crate::registry::Allowances,
    /// The server's own peer id and ephemeral notices (refusals, presence).
    voice: Arc<ServerVoice>,
    /// One provisioning at a time (`provision.rs`): two would both find a document empty.
    pub(crate) provisioning: tokio::sync::Mutex<()>,
}

/// Who is present through another node of the cluster, as it last said.
#[derive(Debug)]
struct RemotePresence {
    sessions: BTreeMap<String, Vec<String>>,
    heard: std::time::Instant,
}

/// Where a cluster node tells the other nodes who is present through it (its whole list, on
/// every change); implemented by the cluster room.
pub trait PresenceBus: Send + Sync + std::fmt::Debug {
    fn publish(&self, here: BTreeMap<String, Vec<String>>);
}

impl Hub {
    pub fn new(config: Arc<Config>, store: Arc<Store>, registry: Arc<Registry>) -> Arc<Self> {
        let voice = Arc::new(ServerVoice::default());
        let history = Arc::new(HistoryCache::new(store.clone()));
        let metrics = Arc::new(Metrics::new(
            store.commit_seconds.clone(),
            store.commit_records.clone(),
        ));
        let projection = crate::views::projection::Projection::new(store.clone(), registry.clone());
        let closing = watch::Sender::new(false);
        let docs = Arc::new(OpenDocs::default());
        let stats = Arc::new(Stats::default());
        let log_budget = Arc::new(crate::net::log_budget::LogBudget::default());
        let findings = {
            let history = history.clone();
            FindingLookup(Arc::new(move |series: &str| {
                history.report_findings(series)
            }))
        };
        let doc_context = Arc::new(DocContext {
            config: config.clone(),
            store: store.clone(),
            registry: registry.clone(),
            change_rates: Arc::new(crate::registry::ChangeRates::new(
                config.max_changes_per_sec_per_token,
            )),
            metrics: metrics.clone(),
            stats: stats.clone(),
            log_budget: log_budget.clone(),
            voice: voice.clone(),
            load_permits: Semaphore::new(config.max_concurrent_loads.max(1)),
            closing: closing.subscribe(),
            findings,
            open: docs.clone(),
            bus: std::sync::OnceLock::new(),
        });
        let ephemeral_rates = crate::registry::Allowances::new(
            config.max_ephemeral_bytes_per_sec_per_token,
            config
                .max_ephemeral_bytes_per_sec_per_token
                .saturating_mul(4),
        );
        Arc::new(Self {
            history,
            projection,
            config,
            store,
            registry,
            participant_conns: Mutex::new(HashMap::new()),
            access_revoked: watch::Sender::new(0),
            stats,
            metrics,
            docs,
            doc_context,
            closing,
            peers: Mutex::new(HashMap::new()),
            peer_owners: Mutex::new(PeerOwners::default()),
            next_conn: AtomicU64::new(1),
            voice,
            provisioning: tokio::sync::Mutex::new(()),
            presence: Mutex::new(HashMap::new()),
            pending_leaves: Mutex::new(HashMap::new()),
            presence_channels: Mutex::new(HashMap::new()),
            remote_presence: Mutex::new(HashMap::new()),
            presence_bus: std::sync::OnceLock::new(),
            ephemeral_rates,
            log_budget,
        })
    }

    /// Tells every document actor to finish what it is doing and end.
    pub fn close_documents(&self) {
        self.closing.send_replace(true);
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends to the document's actor, starting it if the document is not open.
    pub fn route(&self, id: DocumentId, msg: DocMsg) {
        self.docs.route(id, msg, |id, rx| {
            tokio::spawn(doc_actor::run(self.doc_context.clone(), id, rx));
        });
    }

    /// Sends only if the document is open (closes never load anything).
    pub fn send_if_open(&self, id: DocumentId, msg: DocMsg) {
        self.docs.send_if_open(id, msg);
    }

    /// Queues an ephemeral message for an open document (never loads one); dropped and
    /// counted when the document's ephemeral lane is full.
    pub fn send_ephemeral(
        &self,
        id: DocumentId,
        bytes: usize,
        make: impl FnOnce(crate::net::open_docs::EphemeralHeld) -> DocMsg,
    ) {
        if !self.docs.send_ephemeral(id, bytes, make) {
            self.metrics.ephemeral_dropped.inc();
        }
    }

    /// Connection `conn` is gone: the open ones among the documents it named forget it.
    pub fn connection_closed(&self, conn: ConnId, documents: Vec<DocumentId>) {
        self.docs.connection_closed(conn, documents);
    }

    pub fn open_documents(&self) -> usize {
        self.docs.len()
    }

    /// The server's own peer id (unique per process: a client connected to two servers routes
    /// by it).
    pub fn server_peer(&self) -> &PeerId {
        &self.voice.peer
    }

    /// Whether some document actor still runs (each holds the documents' context).
    pub fn documents_running(&self) -> bool {
        Arc::strong_count(&self.doc_context) > 1
    }

    /// Registers `peer` on `conn` for `participant`. If the same participant holds the id on
    /// another connection (a tab that reconnects before its old socket timed out), that
    /// connection is told to close and this waits (bounded) until it has released its
    /// documents. A peer id held by somebody else is refused: peer ids are public (the
    /// history API shows them), so taking one over must not knock its owner off.
    pub async fn join(
        &self,
        peer: &PeerId,
        participant: Option<&str>,
        conn: ConnId,
        kick: Arc<Notify>,
        gone: watch::Receiver<bool>,
    ) -> Result<(), JoinRefused> {
        if *peer == self.voice.peer {
            return Err(JoinRefused);
        }
        let old = {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            if peers
                .get(peer)
                .is_some_and(|e| e.participant.as_deref() != participant)
            {
                return Err(JoinRefused);
            }
            // Held by somebody else since before its connection dropped.
            if !self
                .peer_owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .claim(peer, participant)
            {
                return Err(JoinRefused);
            }
            peers.insert(
                peer.clone(),
                PeerEntry {
                    conn,
                    participant: participant.map(str::to_string),
                    kick,
                    gone,
                },
            )
        };
        if let Some(mut old) = old {
            if self.log_budget.allow() {
                tracing::info!(%peer, old = %old.conn, new = %conn, "peer joined again; closing its old connection");
            }
            old.kick.notify_one();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), old.gone.wait_for(|g| *g))
                    .await;
        }
        Ok(())
    }

    pub fn participant_connected(&self, participant: &str, out: &ConnTx) {
        let mut m = self
            .participant_conns
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.entry(participant.to_string())
            .or_default()
            .push(out.clone());
    }

    pub fn participant_disconnected(&self, participant: &str, conn: ConnId) {
        let mut m = self
            .participant_conns
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(v) = m.get_mut(participant) {
            v.retain(|o| o.conn != conn);
            if v.is_empty() {
                m.remove(participant);
            }
        }
    }

    /// Changes another node of the cluster logged reach this document's actor, if it is open
    /// here (if not, whoever opens it loads them from the log).
    pub fn logged(&self, doc: DocumentId, changes: Vec<Vec<u8>>) {
        self.docs.send_if_open(doc, DocMsg::Logged { changes });
    }

    /// On a cluster node: where new ephemeral messages of this node's clients go (set once).
    pub fn set_ephemeral_bus(&self, bus: Arc<dyn crate::net::open_docs::EphemeralBus>) {
        let _ = self.doc_context.bus.set(bus);
    }

    /// An ephemeral message from another node reaches this document's subscribers here.
    pub fn cluster_ephemeral(&self, message: toron_protocol::Ephemeral) {
        if message.data.len() > self.config.max_ephemeral_bytes {
            self.metrics.ephemeral_dropped.inc();
            return;
        }
        let bytes = message.data.len() + message.session_id.len();
        self.send_ephemeral(message.document_id, bytes, |held| {
            DocMsg::ClusterEphemeral { message, held }
        });
    }

    /// Wakes when some participant's access was revoked (see [`Hub::disconnect_participant`]).
    pub fn access_revocations(&self) -> watch::Receiver<u64> {
        self.access_revoked.subscribe()
    }

    /// Closes every connection of `participant` (token revoked, roles changed), and tells
    /// every long-lived stream to check its reader again.
    pub fn disconnect_participant(&self, participant: &str, reason: &str) -> usize {
        self.access_revoked.send_modify(|n| *n = n.wrapping_add(1));
        let conns = self
            .participant_conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(participant)
            .unwrap_or_default();
        for out in &conns {
            out.close(reason.to_string());
        }
        conns.len()
    }

    /// `participant` touched a document of `session` through `conn`. Their first connection
    /// into a session logs "joined" (before anything they do there is routed).
    pub async fn presence_join(
        &self,
        participant: &str,
        role: Option<String>,
        session: &str,
        conn: ConnId,
        channel: PresenceChannel,
    ) {
        // (Both maps change under the presence lock, so that a join and a leave of the same
        // participant cannot cross.)
        let (first, arrives) = {
            let mut m = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            let key = (participant.to_string(), session.to_string());
            let set = m.entry(key.clone()).or_default();
            let first = set.insert(conn) && set.len() == 1;
            // Back within the grace period: they never left, as far as the record goes.
            let arrives = first
                && self
                    .pending_leaves
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key)
                    .is_none();
            (first, arrives)
        };
        self.presence_channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((conn, session.to_string()), channel);
        // Everybody there hears of a newcomer; a second tab of someone already here only
        // needs the list itself.
        self.tell_presence(session, if first { None } else { Some(conn) });
        if first {
            self.publish_presence();
        }
        if arrives {
            let now = self.config.clock.now_ms();
            self.log_presence(participant, role, session, true, now)
                .await;
        }
    }

    /// Sends who is in `session` to every connection there (or to `only`), as an ephemeral
    /// notice: best effort, a peer that is behind misses one and gets the next.
    fn tell_presence(&self, session: &str, only: Option<ConnId>) {
        let data = toron_protocol::notice::presence(session, &self.present_in(session));
        self.tell_session_pages(session, only, data);
    }

    /// Tells every page in session `s` where it stands now (its phase, the agenda item under
    /// way), as an ephemeral notice: each page then asks again what it may do, at once.
    pub fn tell_session_state(&self, s: &crate::registry::Session) {
        let data = toron_protocol::notice::session(&s.key, s.phase.as_str(), s.item.as_deref());
        self.tell_session_pages(&s.key, None, data);
    }

    /// Sends the notice `data` to every connection in `session` (or to `only`): best effort,
    /// a peer that is behind misses one and gets the next.
    fn tell_session_pages(&self, session: &str, only: Option<ConnId>, data: Vec<u8>) {
        let channels = self
            .presence_channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for ((conn, s), (out, peer, doc)) in channels.iter() {
            if s == session && only.is_none_or(|o| o == *conn) {
                out.send_best_effort(toron_protocol::wire::encode(&self.voice.notice(
                    peer.clone(),
                    *doc,
                    data.clone(),
                )));
            }
        }
    }

    /// Who is in `session`: through this node, and (in a cluster) through the others.
    pub fn present_in(&self, session: &str) -> Vec<String> {
        let mut out: Vec<String> = {
            let m = self.presence.lock().unwrap_or_else(|p| p.into_inner());
            m.iter()
                .filter(|((_, s), conns)| s == session && !conns.is_empty())
                .map(|((p, _), _)| p.clone())
                .collect()
        };
        let remote = self
            .remote_presence
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for r in remote.values() {
            out.extend(r.sessions.get(session).into_iter().flatten().cloned());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Who is present through this node, by session (what a cluster node tells the others).
    pub fn local_presence(&self) -> BTreeMap<String, Vec<String>> {
        let m = self.presence.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((participant, session), conns) in m.iter() {
            if !conns.is_empty() {
                out.entry(session.clone())
                    .or_default()
                    .push(participant.clone());
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    /// On a cluster node: where this node's presence goes on every change (set once).
    pub fn set_presence_bus(&self, bus: Arc<dyn PresenceBus>) {
        let _ = self.presence_bus.set(bus);
    }

    fn publish_presence(&self) {
        if let Some(bus) = self.presence_bus.get() {
            bus.publish(self.local_presence());
        }
    }

    /// Node `node` says who is present through it; the sessions whose list changed hear it.
    pub fn remote_presence(&self, node: &str, sessions: BTreeMap<String, Vec<String>>) {
        let changed: Vec<String> = {
            let mut remote = self
                .remote_presence
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let old = remote.remove(node).map(|r| r.sessions).unwrap_or_default();
            let changed = old
                .keys()
                .chain(sessions.keys())
                .filter(|s| old.get(*s) != sessions.get(*s))
                .cloned()
                .collect();
            remote.insert(
                node.to_string(),
                RemotePresence {
                    sessions,
                    heard: std::time::Instant::now(),
                },
            );
            changed
        };
        for s in changed {
            self.tell_presence(&s, None);
        }
    }

    /// Forgets what nodes not heard from within `ttl` said (a node that died says nothing
    /// more); the sessions they were in hear it.
    pub fn expire_remote_presence(&self, ttl: std::time::Duration) {
        let gone: Vec<String> = {
            let mut remote = self
                .remote_presence
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let mut gone = Vec::new();
            remote.retain(|_, r| {
                let keep = r.heard.elapsed() < ttl;
                if !keep {
                    gone.extend(r.sessions.keys().cloned());
                }
                keep
            });
            gone
        };
        for s in gone {
            self.tell_presence(&s, None);
        }
    }

    /// `conn` closed: for each session it was the participant's last connection into, log
    /// "left" — once `presence_grace` has passed without their coming back, dated when they
    /// left. A phone that drops and reconnects on venue Wi-Fi is not a departure, and a
    /// participant who reconnects in a loop writes nothing to the log.
    pub async fn presence_leave(
        self: &Arc<Self>,
        participant: &str,
        sessions: &[String],
        conn: ConnId,
    ) {
        let grace = self.config.presence_grace;
        for session in sessions {
            let key = (participant.to_string(), session.clone());
            let at = self.config.clock.now_ms();
            let last = {
                let mut m = self.presence.lock().unwrap_or_else(|p| p.into_inner());
                let last = m.get_mut(&key).is_some_and(|set| {
                    set.remove(&conn);
                    set.is_empty()
                });
                if last {
                    m.remove(&key);
                    if !grace.is_zero() {
                        self.pending_leaves
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key.clone(), at);
                    }
                }
                last
            };
            self.presence_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(conn, session.clone()));
            if !last {
                continue;
            }
            // Those still there see them gone at once (the log waits out the grace period).
            self.tell_presence(session, None);
            self.publish_presence();
            if grace.is_zero() {
                self.log_presence(participant, None, session, false, at)
                    .await;
                continue;
            }
            // Weak: a pending departure must not keep a stopping server's hub alive.
            let hub = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if let Some(hub) = hub.upgrade() {
                    hub.settle_leave(key, at).await;
                }
            });
        }
    }

    /// Logs a departure whose grace period passed, unless they came back (or it was logged).
    async fn settle_leave(&self, key: (String, String), at: u64) {
        let due = {
            let mut m = self
                .pending_leaves
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = m.get(&key) == Some(&at);
            if due {
                m.remove(&key);
            }
            due
        };
        if due {
            self.log_presence(&key.0, None, &key.1, false, at).await;
        }
    }

    /// Logs the departures a crash left open: everyone the presence record has in a session
    /// (this node's log; nobody is connected yet) left at the log's last moment. Best effort:
    /// a failure is logged and the server starts anyway.
    pub async fn close_open_presence(self: &Arc<Self>) {
        let hub = self.clone();
        let found = tokio::task::spawn_blocking(move || -> Result<_, String> {
            hub.projection.catch_up().map_err(|e| e.to_string())?;
            let open =
                crate::views::projection::open_presence(&hub.store).map_err(|e| e.to_string())?;
            let last = hub.store.last_global_seq().map_err(|e| e.to_string())?;
            let at = hub
                .store
                .events(last, 1)
                .map_err(|e| e.to_string())?
                .first()
                .map(toron_protocol::Event::at_ms);
            Ok((open, at))
        })
        .await;
        let (open, at) = match found {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return tracing::warn!(error = %e, "open presence not closed"),
            Err(e) => return tracing::warn!(error = %e, "open presence not closed"),
        };
        let at = at.unwrap_or_else(|| self.config.clock.now_ms());
        for (session, participant) in open {
            tracing::info!(%participant, %session, "left when the server stopped without a word");
            self.log_presence(&participant, None, &session, false, at)
                .await;
        }
    }

    /// Logs every departure still in its grace period (the server is stopping).
    pub async fn flush_presence(&self) {
        let pending: Vec<((String, String), u64)> = self
            .pending_leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for ((participant, session), at) in pending {
            self.log_presence(&participant, None, &session, false, at)
                .await;
        }
    }

    async fn log_presence(
        &self,
        participant: &str,
        role: Option<String>,
        session: &str,
        joined: bool,
        at_ms: u64,
    ) {
        let p = toron_protocol::Presence {
            at_ms,
            participant: participant.to_string(),
            role,
            session: session.to_string(),
            joined,
        };
        if let Err(e) = self
            .store
            .append_event(crate::store::PendingEvent::Presence(p), Vec::new())
            .await
        {
            tracing::warn!(participant, session, error = %e, "presence not logged");
        }
    }

    /// Whether some connection holds `peer` now.
    pub fn peer_is_connected(&self, peer: &PeerId) -> bool {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(peer)
    }

    pub fn leave(&self, peer: &PeerId, conn: ConnId) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.get(peer).is_some_and(|e| e.conn == conn) {
            self.peer_owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .touch(peer);
            peers.remove(peer);
        }
    }
}
