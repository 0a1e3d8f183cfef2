//! The sync engine of one document, as a state machine without IO.
//!
//! A [`DocEngine`] owns the server's copy of one Automerge document and one `sync::State` per
//! connection that asked for it. The driver feeds it inputs ([`DocEngine::push`]), calls
//! [`DocEngine::step`] to process everything queued as **one batch**, and carries out the
//! returned [`Action`]s.
//!
//! # Durable before visible
//!
//! When a batch brings new changes, `step` returns an [`Action::Append`] and nothing else that
//! depends on them: no sync message is generated until the driver reports
//! [`DocEngine::durable`]. Until then `step` processes nothing, so a message from another peer
//! cannot make the engine reveal the new heads either. If the append fails, the engine is
//! poisoned ([`DocEngine::commit_failed`]): it closes every connection and the driver must drop
//! it, so the in-memory changes that never became durable are never shown to anyone.
//!
//! # Batching
//!
//! Applying a remote change costs time proportional to the document's history, so the engine
//! never applies message by message. It parses the changes of every queued message, applies
//! them with one `apply_changes`, then lets each message update its sender's sync state with
//! the (already applied) changes stripped off, and finally generates at most one message per
//! connection.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::ids::{ConnId, DocumentId, PeerId};
use crate::record::{Attribution, NewChange, Rejection};
use crate::refusal::{Refusal, RefusalKind};
use crate::sync_receive;
use crate::wire::Message;
pub use crate::wire::SyncKind;

/// Identifies one append handed to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

/// What the driver feeds the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A `request` or `sync` that arrived on `conn` (joined as `peer`).
    Sync {
        conn: ConnId,
        peer: PeerId,
        kind: SyncKind,
        data: Vec<u8>,
        /// What the sender may do with this document (decided by the policy).
        grant: Grant,
    },
    /// The connection is gone: forget its sync state.
    Closed { conn: ConnId },
    /// Changes already in the log that another writer put there (a cluster's other node):
    /// durable, checked where they arrived, so applied as they are and shown to every
    /// subscriber. Changes the document has are skipped.
    Logged { changes: Vec<Vec<u8>> },
}

/// What a connection may do with the document, and whose changes it brings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    pub may_write: bool,
    pub by: Attribution,
}

impl Grant {
    /// `--open` mode: anybody writes, nobody is attributed.
    pub fn open() -> Self {
        Self {
            may_write: true,
            by: Attribution::default(),
        }
    }
}

/// Binds Automerge actor ids to participants: an actor id belongs to the first participant
/// that writes with it, and nobody else may use it.
pub trait ActorGate {
    /// `Err(reason)` if `actor` belongs to someone other than `participant`.
    fn check(&self, participant: &str, actor: &[u8]) -> Result<(), Refusal>;
    /// Records that `actor` belongs to `participant` (no-op if it already does).
    fn bind(&mut self, participant: &str, actor: &[u8]);
    /// `Err(reason)` if `changes` write a value the document's schema does not allow
    /// (the debate domain's schema); `doc` is the document before they are applied.
    fn check_content(&self, _doc: &Automerge, _changes: &[Change]) -> Result<(), Refusal> {
        Ok(())
    }
    /// `Err(reason)` if `participant` may not make `changes` more changes at `now_ms` (the
    /// bound on changes per second per token). Asked last, so that only changes that would
    /// otherwise be accepted count against the allowance.
    fn admit(&mut self, _participant: &str, _changes: usize, _now_ms: u64) -> Result<(), Refusal> {
        Ok(())
    }
}

/// The gate of `--open` mode and of tests: every actor is fine.
#[derive(Debug, Default)]
pub struct NoGate;

impl ActorGate for NoGate {
    fn check(&self, _: &str, _: &[u8]) -> Result<(), Refusal> {
        Ok(())
    }

    fn bind(&mut self, _: &str, _: &[u8]) {}
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send {
        conn: ConnId,
        message: Message,
    },
    /// Make these changes durable, then call [`DocEngine::durable`] (or `commit_failed`).
    Append {
        batch: BatchId,
        changes: Vec<NewChange>,
    },
    /// Send `error` with `reason` and close the connection.
    Close {
        conn: ConnId,
        reason: String,
    },
    /// The connection sent changes it may not make: none was applied. Record the refusal in
    /// the log; then, if `tell`, send `error` with the reason (once per connection and
    /// document), and close the connection only if `close`.
    ///
    /// A refused change stays in the client's copy, and every later change of that copy
    /// depends on it: closing made the official clients reconnect and resend it forever (a
    /// rejection record each turn). So a permanent refusal keeps the connection and turns its
    /// sync state for the document read-only: the server stops asking for the client's
    /// changes, and automerge ≥ 0.7 clients (the JS client's 3.x) stop sending them. Only a
    /// transient refusal (the rate limit) closes, so that the client resends later.
    Refused(RefusedChanges),
    /// Store a snapshot covering the document's log up to and including `upto_doc_seq`.
    SaveSnapshot {
        upto_doc_seq: u64,
        bytes: Vec<u8>,
    },
}

/// Changes a connection may not make, as [`Action::Refused`] reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedChanges {
    pub conn: ConnId,
    pub rejection: Rejection,
    /// What kind of refusal it is (the rejection's reason says it in words).
    pub kind: RefusalKind,
    /// Send `error` with the reason (once per connection and document).
    pub tell: bool,
    /// Close the connection (only for a transient refusal).
    pub close: bool,
}

/// Tunables of an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Take a snapshot after this many new changes (0 = never).
    pub snapshot_every: u64,
    /// Most (sender, session) pairs the ephemeral dedupe table remembers.
    pub ephemeral_table_size: usize,
    /// How long an ephemeral dedupe entry is kept, in milliseconds.
    pub ephemeral_ttl_ms: u64,
    /// Changes that would make the document larger than this many bytes are refused (see
    /// [`DocEngine::stored_bytes`]).
    pub max_document_bytes: u64,
    /// Operations one connection's changes may bring in one batch. Automerge holds every
    /// operation in memory (a character typed is one, ~70 bytes resident and several hundred
    /// while a change is applied): a 16 MiB message of one pasted text would cost gigabytes.
    pub max_ops_per_message: u64,
    /// Highest operation counter a document may reach (about its number of operations).
    pub max_document_ops: u64,
    /// Bytes one message's changes may take once inflated: a saved document's columns and a
    /// compressed change are DEFLATE streams (a few hundred kilobytes can inflate to
    /// gigabytes), measured by [`crate::inflate`] before anything inflates them, and a string
    /// counts with all its bytes here, however few operations it is.
    pub max_inflated_bytes_per_message: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
            ephemeral_table_size: 4096,
            ephemeral_ttl_ms: 5 * 60 * 1000,
            max_document_bytes: u64::MAX,
            max_ops_per_message: u64::MAX,
            max_document_ops: u64::MAX,
            max_inflated_bytes_per_message: u64::MAX,
        }
    }
}

#[derive(Debug)]
struct PeerDoc {
    peer: PeerId,
    state: sync::State,
    /// Only ever sent `request`: it wants `doc-unavailable` rather than an empty sync.
    requested_only: bool,
    unavailable_sent: bool,
    /// Refusals of this connection's changes to this document so far; after the first, its
    /// sync state is read-only and its changes are not applied.
    refusals: u32,
    /// Whether a message with changes of the document went to this connection.
    sent_changes: bool,
    /// Messages that asked for the whole document again after it was sent on this connection.
    resyncs: u32,
    /// Changes this connection sent whose dependencies it has not sent yet (its Bloom filter
    /// check took one of them for a change the server has): kept, unchecked and unapplied,
    /// until the dependencies come (see [`MAX_WAITING_CHANGES`]).
    waiting: Vec<Change>,
    /// The dependencies of `waiting` the server lacks: asked for in the next message's `need`.
    wants: Vec<ChangeHash>,
    /// Messages this connection sent while changes of it were waiting.
    waited: u32,
}

/// Messages a connection may send while some of its changes wait for their dependencies,
/// before it is closed (see [`PeerDoc::waited`]).
pub const MAX_WAITING_MESSAGES: u32 = 4;

/// Changes one connection may have waiting for their dependencies. Automerge's sync protocol
/// lets a sender's Bloom filter check withhold a change the receiver lacks and send its
/// successors; automerge queues them and asks for the missing one by hash. The engine does
/// likewise but keeps them aside, so that every change is checked (permissions, content,
/// actors) only when its whole history is there. Past this bound, or past one message's
/// inflated bytes ([`EngineConfig::max_inflated_bytes_per_message`]), the sender is closed.
pub const MAX_WAITING_CHANGES: usize = 256;

/// Times one connection may ask for the whole document again (a message with no heads) after
/// it was sent: each costs the server the whole document for a few bytes. A client that
/// drops its copy and finds the document again does so rarely; past this the connection is
/// closed, and a new one gets the document as any first `request` does.
pub const MAX_RESYNCS_PER_CONNECTION: u32 = 2;

/// What one [`DocEngine::step`] carries between its phases.
#[derive(Default)]
struct StepState {
    actions: Vec<Action>,
    /// Connections closed in this batch: nothing more of theirs is taken.
    rejected: BTreeSet<ConnId>,
    decoded: Vec<(ConnId, sync::Message)>,
    grants: HashMap<ConnId, Grant>,
    /// Which connection brought each change taken in this batch.
    origin: HashMap<ChangeHash, ConnId>,
    /// The actors whose first change was taken in this batch.
    introduced: std::collections::HashSet<automerge::ActorId>,
    /// The changes taken in this batch, not yet applied (each actor's next one must follow).
    taken: HashMap<ChangeHash, Change>,
}

/// What the changes taken so far in a batch add to the document.
struct BatchBudget {
    bytes: u64,
    max_op: u64,
}

/// Refusals logged per connection and document before the connection is closed: an honest
/// client stops sending after the first (its sync state sees the server read-only); one that
/// keeps sending costs a bounded number of records.
pub const MAX_REFUSALS_PER_CONNECTION: u32 = 8;

#[derive(Debug)]
struct InFlight {
    batch: BatchId,
    touched: BTreeSet<ConnId>,
    changes: u64,
}

/// The engine of one document. See the module docs.
#[derive(Debug)]
pub struct DocEngine {
    id: DocumentId,
    server: PeerId,
    doc: Automerge,
    peers: BTreeMap<ConnId, PeerDoc>,
    inbox: VecDeque<Input>,
    in_flight: Option<InFlight>,
    next_batch: u64,
    poisoned: bool,
    config: EngineConfig,
    changes_since_snapshot: u64,
    /// See [`DocEngine::stored_bytes`].
    stored_bytes: u64,
    /// (sender, session) → (highest count seen, when).
    ephemeral_seen: HashMap<(String, String), (u64, u64)>,
    /// The latest changes and their dependencies, for trimming peers' `sent_hashes`.
    recent: sync_receive::RecentChanges,
    /// The highest operation counter of the document's changes (see
    /// [`EngineConfig::max_document_ops`]).
    max_op: u64,
    /// The actors the document's changes come from, each with its last sequence number, read
    /// from the document the first time a peer's changes need it (see
    /// [`DocEngine::whole_history`]), then kept up to date.
    actors: Option<std::collections::HashMap<automerge::ActorId, u64>>,
}

impl DocEngine {
    /// An engine over `doc`, which the driver loaded from durable storage (or an empty doc).
    pub fn new(id: DocumentId, server: PeerId, doc: Automerge, config: EngineConfig) -> Self {
        Self {
            id,
            server,
            peers: BTreeMap::new(),
            inbox: VecDeque::new(),
            in_flight: None,
            next_batch: 0,
            poisoned: false,
            config,
            changes_since_snapshot: 0,
            stored_bytes: 0,
            ephemeral_seen: HashMap::new(),
            recent: sync_receive::RecentChanges::default(),
            max_op: 0,
            actors: None,
            doc,
        }
        .with_max_op()
    }

    /// Reads the highest operation counter from the document's heads (every other change is
    /// an ancestor of one of them, with a lower counter).
    fn with_max_op(mut self) -> Self {
        self.max_op = self
            .doc
            .get_heads()
            .iter()
            .filter_map(|h| self.doc.get_change_by_hash(h))
            .map(|c| c.max_op())
            .max()
            .unwrap_or(0);
        self
    }

    /// Sets the document's size as loaded (see [`DocEngine::stored_bytes`]).
    pub fn with_stored_bytes(mut self, bytes: u64) -> Self {
        self.stored_bytes = bytes;
        self
    }

    /// The document's size as the bound on document size counts it: what loading it read
    /// (its newest snapshot and the changes logged after it) plus the bytes of every change
    /// accepted since. Cheap to keep, and what the next load will read, give or take the
    /// compression of the next snapshot.
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    pub fn document_id(&self) -> DocumentId {
        self.id
    }

    /// The server's copy. Everything in it is durable unless a batch is in flight.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The document exists once it has at least one change.
    pub fn exists(&self) -> bool {
        !self.doc.get_heads().is_empty()
    }

    /// Nothing queued, nothing in flight, nobody subscribed: the driver may evict it.
    pub fn is_idle(&self) -> bool {
        self.peers.is_empty() && self.inbox.is_empty() && self.in_flight.is_none()
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Queues an input. A closed connection is forgotten at once, with its queued messages.
    pub fn push(&mut self, input: Input) {
        if let Input::Closed { conn } = input {
            self.peers.remove(&conn);
            self.inbox
                .retain(|i| !matches!(i, Input::Sync { conn: c, .. } if *c == conn));
            return;
        }
        self.inbox.push_back(input);
    }

    /// Processes everything queued as one batch. Returns nothing while an append is in flight.
    pub fn step(&mut self, now_ms: u64, gate: &mut dyn ActorGate) -> Vec<Action> {
        if self.poisoned || self.in_flight.is_some() || self.inbox.is_empty() {
            return Vec::new();
        }
        let inputs: Vec<Input> = self.inbox.drain(..).collect();
        // 0. Changes another node logged are durable already: they go in first, and are never
        //    appended again.
        let heads_at_start = self.doc.get_heads();
        let logged_changed = self.apply_logged(&inputs);
        // 1. Decode every sync message; a peer whose bytes automerge refuses is closed.
        let mut st = self.decode_inputs(inputs);
        // 2. Parse every message's changes, keep those we do not have, check that the sender
        //    may make them, then apply everything accepted at once.
        let heads_before = self.doc.get_heads();
        self.take_changes(&mut st, now_ms, gate);
        // Listed in causal order, as `RecentChanges` wants them.
        let new_changes = self.doc.get_changes(&heads_before);
        for c in &new_changes {
            self.recent.record(c.hash(), c.deps());
            self.max_op = self.max_op.max(c.max_op());
        }
        // 3. Let every message update its sender's sync state (changes are already applied).
        let touched = self.receive_sync(&mut st, &heads_at_start);
        let mut actions = std::mem::take(&mut st.actions);
        // 4. New changes go to the log first; replies wait for durability.
        if new_changes.is_empty() {
            actions.extend(self.fan_out(&touched, logged_changed));
            return actions;
        }
        let records = self.records_for_log(&new_changes, &heads_before, &touched, &st, now_ms);
        self.stored_bytes += records.iter().map(|r| r.bytes.len() as u64).sum::<u64>();
        let batch = BatchId(self.next_batch);
        self.next_batch += 1;
        self.in_flight = Some(InFlight {
            batch,
            touched,
            changes: records.len() as u64,
        });
        actions.push(Action::Append {
            batch,
            changes: records,
        });
        actions
    }

    /// Step 0: the changes of [`Input::Logged`] inputs that the document lacks, applied.
    /// Returns whether the document changed. A change that does not parse or apply is left
    /// out (it came from the log, not from a peer: nobody is to blame or to close).
    fn apply_logged(&mut self, inputs: &[Input]) -> bool {
        let mut new = Vec::new();
        for input in inputs {
            let Input::Logged { changes } = input else {
                continue;
            };
            for bytes in changes {
                match Change::from_bytes(bytes.clone()) {
                    Ok(c) if self.doc.get_change_by_hash(&c.hash()).is_none() => new.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(id = %self.id, error = %e, "a logged change does not parse")
                    }
                }
            }
        }
        if new.is_empty() {
            return false;
        }
        let heads = self.doc.get_heads();
        let bytes: u64 = new.iter().map(|c| c.raw_bytes().len() as u64).sum();
        if let Err(e) = self.doc.apply_changes(new) {
            tracing::warn!(id = %self.id, error = %e, "logged changes could not be applied");
        }
        for c in self.doc.get_changes(&heads) {
            self.recent.record(c.hash(), c.deps());
            self.max_op = self.max_op.max(c.max_op());
            self.know_actors_of(&c);
        }
        self.stored_bytes += bytes;
        self.doc.get_heads() != heads
    }

    /// Step 1: each sync input decoded, its sender's state made on first contact.
    fn decode_inputs(&mut self, inputs: Vec<Input>) -> StepState {
        let mut st = StepState::default();
        for input in inputs {
            let Input::Sync {
                conn,
                peer,
                kind,
                data,
                grant,
            } = input
            else {
                continue;
            };
            if st.rejected.contains(&conn) {
                continue;
            }
            match sync::Message::decode(&data) {
                Ok(m) => {
                    let entry = self.peers.entry(conn).or_insert_with(|| PeerDoc {
                        peer,
                        state: sync::State::new(),
                        requested_only: true,
                        unavailable_sent: false,
                        refusals: 0,
                        sent_changes: false,
                        resyncs: 0,
                        waiting: Vec::new(),
                        wants: Vec::new(),
                        waited: 0,
                    });
                    if kind == SyncKind::Sync {
                        entry.requested_only = false;
                    }
                    st.grants.insert(conn, grant);
                    st.decoded.push((conn, m));
                }
                Err(e) => {
                    st.rejected.insert(conn);
                    let refusal = self.reject(conn, format!("invalid sync message: {e}"));
                    st.actions.push(refusal);
                }
            }
        }
        st
    }

    /// Step 2: the changes each message brings that the document lacks, checked, then all
    /// that passed applied together.
    fn take_changes(&mut self, st: &mut StepState, now_ms: u64, gate: &mut dyn ActorGate) {
        let mut groups: Vec<(ConnId, Vec<Change>)> = Vec::new();
        let mut budget = BatchBudget {
            bytes: 0,
            max_op: self.max_op,
        };
        let mut decoded = std::mem::take(&mut st.decoded);
        for (conn, msg) in decoded.iter_mut() {
            let conn = *conn;
            if st.rejected.contains(&conn) {
                continue;
            }
            // A sender that answered the server's `need` several times without what its
            // waiting changes depend on will not send it (automerge sends no change twice on
            // one connection): closed, as before waiting, it reconnects and syncs afresh.
            if let Some(pd) = self
                .peers
                .get_mut(&conn)
                .filter(|pd| !pd.waiting.is_empty())
            {
                pd.waited += 1;
                if pd.waited > MAX_WAITING_MESSAGES {
                    st.rejected.insert(conn);
                    let refusal = self.reject(
                        conn,
                        "invalid changes: their dependencies never came; sync again".into(),
                    );
                    st.actions.push(refusal);
                    continue;
                }
            }
            if msg.changes.is_empty() {
                continue;
            }
            let mut new = Vec::new();
            let mut bad = None;
            // Within what one message may inflate to (what the document may still grow by is
            // the size bound's, below, on the changes as parsed).
            let mut left = self.config.max_inflated_bytes_per_message;
            for chunk in msg.changes.iter() {
                match crate::inflate::inflated_len(chunk, left) {
                    Ok(n) => left -= n,
                    Err(e) => {
                        bad = Some(format!("invalid changes: {e}; nothing of them was applied"));
                        break;
                    }
                }
                match parse_changes(chunk) {
                    Ok(changes) => new.extend(changes.into_iter().filter(|c| {
                        let h = c.hash();
                        !st.origin.contains_key(&h) && self.doc.get_change_by_hash(&h).is_none()
                    })),
                    Err(e) => bad = Some(format!("invalid changes: {e}")),
                }
            }
            msg.changes = sync::ChunkList::empty();
            if st.rejected.contains(&conn) {
                continue;
            }
            if let Some(reason) = bad {
                st.rejected.insert(conn);
                let refusal = self.reject(conn, reason);
                st.actions.push(refusal);
                continue;
            }
            let new = match self.wait_for_dependencies(conn, new, st) {
                Ok(ready) => ready,
                Err(why) => {
                    st.rejected.insert(conn);
                    let refusal = self.reject(conn, format!("invalid changes: {why}"));
                    st.actions.push(refusal);
                    continue;
                }
            };
            if new.is_empty() {
                continue;
            }
            if let Err(why) = self.whole_history(&new, st) {
                st.rejected.insert(conn);
                let refusal = self.reject(conn, format!("invalid changes: {why}"));
                st.actions.push(refusal);
                continue;
            }
            if let Some(new) = self.admit(conn, new, st, &mut budget, now_ms, gate) {
                st.introduced.extend(
                    new.iter()
                        .filter(|c| c.seq() == 1)
                        .map(|c| c.actor_id().clone()),
                );
                groups.push((conn, new));
            }
        }
        st.decoded = decoded;
        self.apply_groups(groups, &mut st.rejected, &mut st.actions);
        for conn in &st.rejected {
            self.peers.remove(conn);
        }
    }

    /// Whether `new` (from `conn`) may be applied: the sender's grant and actor ids, the
    /// content, the document's limits and the sender's rate. Taken changes are counted in
    /// `budget` and returned; refused ones become an [`Action::Refused`].
    fn admit(
        &mut self,
        conn: ConnId,
        new: Vec<Change>,
        st: &mut StepState,
        budget: &mut BatchBudget,
        now_ms: u64,
        gate: &mut dyn ActorGate,
    ) -> Option<Vec<Change>> {
        let grant = st.grants.get(&conn).cloned().unwrap_or_default();
        let bytes: u64 = new.iter().map(|c| c.raw_bytes().len() as u64).sum();
        let reaches_op = new.iter().map(|c| c.max_op()).fold(budget.max_op, u64::max);
        let earlier = self.peers.get(&conn).map_or(0, |p| p.refusals);
        let checked = if earlier > 0 {
            Err((
                Refusal::new(
                    RefusalKind::Follows,
                    "an earlier change of this copy was refused, and these follow it; reload the document to go on",
                ),
                false,
            ))
        } else {
            authorize(&grant, &new, gate)
                .and_then(|()| gate.check_content(&self.doc, &new))
                .and_then(|()| {
                    let grows_to = self.stored_bytes + budget.bytes + bytes;
                    self.within_limits(&new, grows_to, reaches_op)
                })
                .map_err(|r| (r, false))
                .and_then(|()| match &grant.by.participant {
                    Some(p) => gate.admit(p, new.len(), now_ms).map_err(|r| (r, true)),
                    None => Ok(()),
                })
        };
        if let Err((refusal, transient)) = checked {
            let action = self.refuse(conn, grant, &new, refusal, transient, earlier, now_ms);
            if matches!(&action, Action::Refused(r) if r.close) {
                st.rejected.insert(conn);
            }
            st.actions.push(action);
            return None;
        }
        if let Some(p) = &grant.by.participant {
            for c in &new {
                gate.bind(p, c.actor_id().to_bytes());
            }
        }
        for c in &new {
            st.origin.insert(c.hash(), conn);
            st.taken.insert(c.hash(), c.clone());
        }
        budget.bytes += bytes;
        budget.max_op = reaches_op;
        Some(new)
    }

    /// The document's size limits for changes that would make it `grows_to` bytes and reach
    /// operation `reaches_op`.
    fn within_limits(&self, new: &[Change], grows_to: u64, reaches_op: u64) -> Result<(), Refusal> {
        if grows_to > self.config.max_document_bytes {
            return Err(Refusal::new(RefusalKind::Size, format!(
                "document size: these changes would make the document {grows_to} bytes, over this server's limit of {} bytes; nothing of them was applied",
                self.config.max_document_bytes
            )));
        }
        let ops: u64 = new.iter().map(|c| c.len() as u64).sum();
        if ops > self.config.max_ops_per_message {
            return Err(Refusal::new(RefusalKind::Size, format!(
                "too large a change: these changes hold {ops} operations, over this server's limit of {} in one message; nothing of them was applied",
                self.config.max_ops_per_message
            )));
        }
        if reaches_op > self.config.max_document_ops {
            return Err(Refusal::new(RefusalKind::Size, format!(
                "document size: these changes would take the document to {reaches_op} operations, over this server's limit of {}; nothing of them was applied",
                self.config.max_document_ops
            )));
        }
        Ok(())
    }

    /// A refusal of `new` from `conn`: the copy is read-only from now on; a transient refusal
    /// (rate) or too many refusals close the connection. Told once, when it first happens or
    /// when it closes.
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        conn: ConnId,
        grant: Grant,
        new: &[Change],
        refusal: Refusal,
        transient: bool,
        earlier: u32,
        now_ms: u64,
    ) -> Action {
        let close = transient || earlier + 1 >= MAX_REFUSALS_PER_CONNECTION;
        let peer = match self.peers.get_mut(&conn) {
            Some(pd) => {
                pd.refusals += 1;
                pd.state.set_read_only(true);
                pd.peer.clone()
            }
            None => self.server.clone(),
        };
        if close {
            self.peers.remove(&conn);
        }
        Action::Refused(RefusedChanges {
            conn,
            rejection: Rejection {
                at_ms: now_ms,
                document_id: self.id,
                conn,
                peer,
                by: grant.by,
                hashes: new.iter().map(|c| c.hash().0).collect(),
                reason: refusal.message,
            },
            kind: refusal.kind,
            tell: earlier == 0 || close,
            close,
        })
    }

    /// Step 3: every message updates its sender's sync state. Returns who must hear back.
    fn receive_sync(
        &mut self,
        st: &mut StepState,
        heads_before: &[ChangeHash],
    ) -> BTreeSet<ConnId> {
        let heads_now = self.doc.get_heads();
        let batch_changed_heads = heads_now != heads_before;
        let mut touched = BTreeSet::new();
        for (conn, msg) in std::mem::take(&mut st.decoded) {
            if st.rejected.contains(&conn) {
                continue;
            }
            let Some(pd) = self.peers.get_mut(&conn) else {
                continue;
            };
            // No heads: the sender has nothing and gets the whole document (automerge resets
            // its sync state). Once it has been sent, that is allowed only a few times.
            if msg.heads.is_empty() && pd.sent_changes {
                pd.resyncs += 1;
                if pd.resyncs > MAX_RESYNCS_PER_CONNECTION {
                    let n = pd.resyncs;
                    st.rejected.insert(conn);
                    let refusal = self.reject(
                        conn,
                        format!(
                            "this connection asked for the whole document {n} times after it was sent; reconnect to load it again"
                        ),
                    );
                    st.actions.push(refusal);
                    continue;
                }
            }
            // automerge takes "no changes, and your heads equal mine" to mean we already told
            // the sender our heads. When this batch changed the document, "mine" are heads the
            // sender has not been told yet (its own change, applied above, or a change another
            // message brought): the acknowledgement it waits for would never be generated.
            let last_sent = batch_changed_heads.then(|| pd.state.last_sent_heads.clone());
            // Without automerge's history walk where it can (see `sync_receive`).
            let received = match sync_receive::receive_applied(
                &self.doc,
                &heads_now,
                &mut pd.state,
                msg,
                &self.recent,
            ) {
                Ok(()) => Ok(()),
                Err(msg) => self.doc.receive_sync_message(&mut pd.state, *msg),
            };
            if let Some(last_sent) = last_sent {
                pd.state.last_sent_heads = last_sent;
            }
            match received {
                Ok(()) => {
                    touched.insert(conn);
                }
                Err(e) => {
                    st.rejected.insert(conn);
                    let refusal = self.reject(conn, format!("sync message refused: {e}"));
                    st.actions.push(refusal);
                }
            }
        }
        touched
    }

    /// Step 4: the log records of the batch's new changes, each attributed to the connection
    /// that brought it, with the heads after it.
    fn records_for_log(
        &self,
        new_changes: &[Change],
        heads_before: &[ChangeHash],
        touched: &BTreeSet<ConnId>,
        st: &StepState,
        now_ms: u64,
    ) -> Vec<NewChange> {
        let fallback = touched.iter().next().copied().unwrap_or(ConnId(0));
        // `get_changes` lists them in causal order, so each one's heads follow from the
        // previous heads and its dependencies.
        let mut heads: BTreeSet<[u8; 32]> = heads_before.iter().map(|h| h.0).collect();
        new_changes
            .iter()
            .map(|c| {
                for d in c.deps() {
                    heads.remove(&d.0);
                }
                heads.insert(c.hash().0);
                let conn = st.origin.get(&c.hash()).copied().unwrap_or(fallback);
                let peer = self
                    .peers
                    .get(&conn)
                    .map(|p| p.peer.clone())
                    .unwrap_or_else(|| self.server.clone());
                NewChange {
                    document_id: self.id,
                    received_at_ms: now_ms,
                    conn,
                    peer,
                    by: st
                        .grants
                        .get(&conn)
                        .map(|g| g.by.clone())
                        .unwrap_or_default(),
                    actor: c.actor_id().to_bytes().to_vec(),
                    hash: c.hash().0,
                    bytes: c.raw_bytes().to_vec(),
                    heads_after: heads.iter().copied().collect(),
                }
            })
            .collect()
    }

    /// The driver made batch `batch` durable; `last_doc_seq` is the document sequence number of
    /// its last record. Now the new heads may be shown: one sync message per subscriber.
    pub fn durable(&mut self, batch: BatchId, last_doc_seq: u64) -> Vec<Action> {
        let Some(inflight) = self.in_flight.take_if(|f| f.batch == batch) else {
            return Vec::new();
        };
        let mut actions = self.fan_out(&inflight.touched, true);
        self.changes_since_snapshot += inflight.changes;
        if self.config.snapshot_every > 0
            && self.changes_since_snapshot >= self.config.snapshot_every
        {
            self.changes_since_snapshot = 0;
            actions.push(Action::SaveSnapshot {
                upto_doc_seq: last_doc_seq,
                bytes: self.doc.save(),
            });
        }
        actions
    }

    /// The append failed. The in-memory document now holds changes that are not durable, so
    /// the engine closes every connection and refuses all further work; drop it.
    pub fn commit_failed(&mut self, reason: &str) -> Vec<Action> {
        self.poisoned = true;
        self.in_flight = None;
        self.inbox.clear();
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        self.peers.clear();
        conns
            .into_iter()
            .map(|conn| Action::Close {
                conn,
                reason: format!(
                    "the server could not store changes and accepts none now: {reason}"
                ),
            })
            .collect()
    }

    /// Whether an ephemeral message with this (sender, session, count) would be relayed (it
    /// has not been seen): a cluster node passes on to the other nodes only what is new here.
    pub fn ephemeral_is_new(&self, sender_id: &PeerId, session_id: &str, count: u64) -> bool {
        let key = (sender_id.as_str().to_string(), session_id.to_string());
        !matches!(self.ephemeral_seen.get(&key), Some((seen, _)) if count <= *seen)
    }

    /// Who an ephemeral message is relayed to: every other subscriber, once per (sender,
    /// session, count) — JS clients echo what they receive, so without the dedupe it would
    /// ping-pong. Returns each target's connection and peer id; the driver encodes the message
    /// once ([`crate::wire::EphemeralFrame`]) and sends it to those that have room.
    pub fn ephemeral(
        &mut self,
        from: ConnId,
        sender_id: &PeerId,
        session_id: &str,
        count: u64,
        now_ms: u64,
    ) -> Vec<(ConnId, PeerId)> {
        let key = (sender_id.as_str().to_string(), session_id.to_string());
        match self.ephemeral_seen.get(&key) {
            Some((seen, _)) if count <= *seen => return Vec::new(),
            _ => {}
        }
        if !self.ephemeral_seen.contains_key(&key)
            && self.ephemeral_seen.len() >= self.config.ephemeral_table_size
        {
            self.prune_ephemeral(now_ms);
        }
        self.ephemeral_seen.insert(key, (count, now_ms));
        self.peers
            .iter()
            .filter(|(conn, pd)| **conn != from && pd.peer != *sender_id)
            .map(|(conn, pd)| (*conn, pd.peer.clone()))
            .collect()
    }

    fn prune_ephemeral(&mut self, now_ms: u64) {
        let ttl = self.config.ephemeral_ttl_ms;
        self.ephemeral_seen
            .retain(|_, (_, at)| now_ms.saturating_sub(*at) < ttl);
        if self.ephemeral_seen.len() >= self.config.ephemeral_table_size {
            // Still full of live sessions: forget the older half.
            let mut times: Vec<u64> = self.ephemeral_seen.values().map(|(_, at)| *at).collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            self.ephemeral_seen.retain(|_, (_, at)| *at > cut);
        }
    }

    fn reject(&mut self, conn: ConnId, reason: String) -> Action {
        self.peers.remove(&conn);
        Action::Close { conn, reason }
    }

    /// `new` (from `conn`) with the changes it had waiting, split: those whose whole history
    /// is in the document, this batch or among them (returned, in causal order), and those
    /// still waiting for a dependency (kept on the connection, the dependencies asked for).
    /// `Err` when more than [`MAX_WAITING_CHANGES`] would wait.
    fn wait_for_dependencies(
        &mut self,
        conn: ConnId,
        new: Vec<Change>,
        st: &StepState,
    ) -> Result<Vec<Change>, String> {
        let Some(pd) = self.peers.get_mut(&conn) else {
            return Ok(new);
        };
        let doc = &self.doc;
        let mut pending = std::mem::take(&mut pd.waiting);
        pd.wants.clear();
        if !pending.is_empty() {
            let listed: std::collections::HashSet<ChangeHash> =
                new.iter().map(Change::hash).collect();
            pending.retain(|c| {
                !listed.contains(&c.hash()) && doc.get_change_by_hash(&c.hash()).is_none()
            });
        }
        pending.extend(new);
        // Taken before them in this call; with the document and this batch, what is there.
        let mut taken: std::collections::HashSet<ChangeHash> = std::collections::HashSet::new();
        let there = |d: &ChangeHash, taken: &std::collections::HashSet<ChangeHash>| {
            taken.contains(d) || st.origin.contains_key(d) || doc.get_change_by_hash(d).is_some()
        };
        let mut ready = Vec::new();
        // Each round takes the changes whose dependencies are all there: causal order.
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            for c in pending {
                if c.deps().iter().all(|d| there(d, &taken)) {
                    taken.insert(c.hash());
                    ready.push(c);
                } else {
                    rest.push(c);
                }
            }
            pending = rest;
            if pending.len() == before || pending.is_empty() {
                break;
            }
        }
        if pending.is_empty() {
            pd.waited = 0;
            return Ok(ready);
        }
        let held: u64 = pending.iter().map(|c| c.raw_bytes().len() as u64).sum();
        if pending.len() > MAX_WAITING_CHANGES || held > self.config.max_inflated_bytes_per_message
        {
            return Err(format!(
                "{} changes ({held} bytes) wait for dependencies that never came (at most {MAX_WAITING_CHANGES}, and one message's bytes)",
                pending.len()
            ));
        }
        let waiting: std::collections::HashSet<ChangeHash> =
            pending.iter().map(Change::hash).collect();
        let mut wants: Vec<ChangeHash> = pending
            .iter()
            .flat_map(|c| c.deps().to_vec())
            .filter(|d| !waiting.contains(d) && !there(d, &taken))
            .collect();
        wants.sort();
        wants.dedup();
        pd.waiting = pending;
        pd.wants = wants;
        Ok(ready)
    }

    /// Whether a sender's new changes — each with its dependencies there, as
    /// [`DocEngine::wait_for_dependencies`] left them (Automerge would keep a change with
    /// missing dependencies aside, to apply it later unchecked) — can be applied as they are:
    /// each actor a change names is one the document has, or one they introduce (an actor's
    /// first change). Automerge panics applying a change that names an actor its history does
    /// not have (found by the `inflate` fuzz target) — one sender's bytes would cut everyone
    /// off the document.
    fn whole_history(&mut self, new: &[Change], st: &StepState) -> Result<(), String> {
        let doc = &self.doc;
        let known = self.actors.get_or_insert_with(|| {
            let mut last = std::collections::HashMap::new();
            for m in doc.get_changes_meta(&[]) {
                let seq = last.entry(m.actor.into_owned()).or_insert(0);
                *seq = m.seq.max(*seq);
            }
            last
        });
        let introduced: std::collections::HashSet<&automerge::ActorId> = new
            .iter()
            .filter(|c| c.seq() == 1)
            .map(Change::actor_id)
            .chain(st.introduced.iter())
            .collect();
        for c in new {
            if let Some(a) = c
                .actors()
                .find(|a| !known.contains_key(*a) && !introduced.contains(a))
            {
                return Err(format!(
                    "change {} names actor {a}, whose changes the document does not have",
                    c.hash()
                ));
            }
        }
        in_sequence(new, known, &st.taken, doc)?;
        checksums_are_hashes(new)
    }

    /// `c` was applied: its actor is one of the document's, up to `c`'s sequence number.
    fn know_actors_of(&mut self, c: &Change) {
        if let Some(known) = self.actors.as_mut() {
            let seq = known.entry(c.actor_id().clone()).or_insert(0);
            *seq = c.seq().max(*seq);
        }
    }

    fn apply_groups(
        &mut self,
        groups: Vec<(ConnId, Vec<Change>)>,
        rejected: &mut BTreeSet<ConnId>,
        actions: &mut Vec<Action>,
    ) {
        let all: Vec<Change> = groups.iter().flat_map(|(_, g)| g.iter().cloned()).collect();
        if all.is_empty() {
            return;
        }
        if self.doc.apply_changes(all.iter().cloned()).is_ok() {
            for c in &all {
                self.know_actors_of(c);
            }
            return;
        }
        // Somebody sent a change automerge refuses: find whose, apply everyone else's.
        for (conn, group) in groups {
            match self.doc.apply_changes(group.iter().cloned()) {
                Ok(()) => {
                    for c in &group {
                        self.know_actors_of(c);
                    }
                }
                Err(e) => {
                    rejected.insert(conn);
                    let a = self.reject(conn, format!("changes could not be applied: {e}"));
                    actions.push(a);
                }
            }
        }
    }

    /// Generates sync messages: for the connections in `touched`, or for every subscriber when
    /// the heads changed.
    fn fan_out(&mut self, touched: &BTreeSet<ConnId>, heads_changed: bool) -> Vec<Action> {
        let exists = self.exists();
        let mut actions = Vec::new();
        let targets: Vec<ConnId> = if heads_changed {
            self.peers.keys().copied().collect()
        } else {
            touched.iter().copied().collect()
        };
        for conn in targets {
            let Some(pd) = self.peers.get_mut(&conn) else {
                continue;
            };
            if !exists && pd.requested_only {
                // Never answer a `request` with an empty sync: say we don't have it, once, and
                // keep the requester subscribed so a later upload reaches it.
                if !pd.unavailable_sent {
                    pd.unavailable_sent = true;
                    actions.push(Action::Send {
                        conn,
                        message: Message::DocUnavailable {
                            sender_id: self.server.clone(),
                            target_id: pd.peer.clone(),
                            document_id: self.id,
                        },
                    });
                }
                continue;
            }
            if let Some(mut m) = self.doc.generate_sync_message(&mut pd.state) {
                pd.sent_changes |= !m.changes.is_empty();
                // The dependencies of its waiting changes, asked for by hash.
                pd.wants
                    .retain(|h| self.doc.get_change_by_hash(h).is_none());
                if !pd.wants.is_empty() {
                    m.need.extend(pd.wants.iter().copied());
                    // Encoded sorted, as automerge writes them.
                    m.need.sort();
                    m.need.dedup();
                }
                actions.push(Action::Send {
                    conn,
                    message: Message::Sync {
                        sender_id: self.server.clone(),
                        target_id: pd.peer.clone(),
                        document_id: self.id,
                        data: m.encode(),
                    },
                });
            }
        }
        actions
    }
}

/// Why a document could not be rebuilt from storage.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("the snapshot does not load: {0}")]
    Snapshot(automerge::AutomergeError),
    #[error("a stored change does not parse: {0}")]
    Change(automerge::LoadChangeError),
    #[error("the stored changes do not apply: {0}")]
    Apply(automerge::AutomergeError),
}

/// Rebuilds a document from what the log holds: the newest snapshot (if any) and the changes
/// after it. Both come from durable storage, so the result may be shown to peers.
pub fn assemble(snapshot: Option<&[u8]>, tail: Vec<Vec<u8>>) -> Result<Automerge, AssembleError> {
    let mut doc = match snapshot {
        Some(bytes) => Automerge::load(bytes).map_err(AssembleError::Snapshot)?,
        None => Automerge::new(),
    };
    let changes = tail
        .into_iter()
        .map(Change::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(AssembleError::Change)?;
    doc.apply_changes(changes).map_err(AssembleError::Apply)?;
    Ok(doc)
}

use crate::inflate::CHUNK_MAGIC;

/// Each actor's new changes run on from the document's (and from those taken earlier in the
/// same batch), one after the other: numbered from its last sequence number on without a gap,
/// each after (depending, through the batch's changes, on) the one before. Automerge panics on
/// a change whose number skips — found by the `inflate` fuzz target: a peer's one change would
/// cut everyone off the document. Changes the document has already are left to Automerge,
/// which ignores them.
fn in_sequence(
    new: &[Change],
    last: &std::collections::HashMap<automerge::ActorId, u64>,
    taken: &HashMap<ChangeHash, Change>,
    doc: &Automerge,
) -> Result<(), String> {
    let fresh: Vec<&Change> = new
        .iter()
        .filter(|c| doc.get_change_by_hash(&c.hash()).is_none() && !taken.contains_key(&c.hash()))
        .collect();
    let mut batch: HashMap<ChangeHash, &Change> = taken.iter().map(|(h, c)| (*h, c)).collect();
    batch.extend(fresh.iter().map(|c| (c.hash(), *c)));
    let mut by_actor: HashMap<&automerge::ActorId, Vec<&Change>> = HashMap::new();
    for c in &fresh {
        by_actor.entry(c.actor_id()).or_default().push(c);
    }
    for (actor, mut changes) in by_actor {
        changes.sort_by_key(|c| c.seq());
        // The actor's last change before these: one taken earlier in this batch, else the
        // document's.
        let before: Option<&Change> = taken
            .values()
            .filter(|c| c.actor_id() == actor)
            .max_by_key(|c| c.seq());
        let have = before
            .map(Change::seq)
            .unwrap_or_else(|| last.get(actor).copied().unwrap_or(0));
        for (i, c) in changes.iter().enumerate() {
            let expected = have + 1 + i as u64;
            if c.seq() != expected {
                return Err(format!(
                    "change {} of actor {actor} is number {}, where {expected} comes next",
                    c.hash(),
                    c.seq()
                ));
            }
        }
        let chain = before.into_iter().chain(changes.iter().copied());
        let chain: Vec<&Change> = chain.collect();
        for pair in chain.windows(2) {
            if !reaches(&batch, pair[1], pair[0].hash()) {
                return Err(format!(
                    "change {} of actor {actor} does not follow its change {}",
                    pair[1].hash(),
                    pair[0].hash()
                ));
            }
        }
    }
    Ok(())
}

/// Whether `from` depends on `target` through the changes of `batch` (bounded by its size).
fn reaches(
    batch: &std::collections::HashMap<ChangeHash, &Change>,
    from: &Change,
    target: ChangeHash,
) -> bool {
    let mut todo: Vec<ChangeHash> = from.deps().to_vec();
    let mut seen = std::collections::HashSet::new();
    while let Some(h) = todo.pop() {
        if h == target {
            return true;
        }
        if seen.insert(h) {
            if let Some(c) = batch.get(&h) {
                todo.extend(c.deps().iter().copied());
            }
        }
    }
    false
}

/// Splits a `changes` entry into its storage chunks and parses them into changes (refusing
/// what Automerge would choke on), so that
/// every change is known — hash, actor — before anything is applied: for attribution, for the
/// permission check, and so that a whole batch goes through one `apply_changes`. automerge
/// 0.12 sends incremental changes as one V2 entry holding change chunks back to back, V1
/// entries hold one change each, and a whole-document chunk is sent when the missing part is
/// over a third of the document. Framing: magic (4), checksum (4), type (1), uLEB128 length.
pub fn parse_changes(entry: &[u8]) -> Result<Vec<Change>, String> {
    // Automerge's parsers panic on some malformed input (a bundle's columns, found by the
    // `inflate` fuzz target): a panic here is one peer's bad bytes, refused as any are —
    // never the document's actor ended for everyone on it.
    let changes = std::panic::catch_unwind(|| parse_chunks(entry))
        .unwrap_or_else(|_| Err("automerge could not read these changes".into()))?;
    // A change that names an actor twice parses, and then panics Automerge when it is
    // applied (found by the `inflate` fuzz target): everyone on the document would be cut
    // off. Refused here, before anything applies it.
    for c in &changes {
        let mut seen = std::collections::HashSet::new();
        seen.insert(c.actor_id());
        if c.other_actor_ids().iter().any(|a| !seen.insert(a)) {
            return Err("a change names the same actor twice".into());
        }
    }
    Ok(changes)
}

fn parse_chunks(entry: &[u8]) -> Result<Vec<Change>, String> {
    let mut rest = entry;
    let mut changes = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 9 || rest[..4] != CHUNK_MAGIC {
            return Err("not an automerge chunk".into());
        }
        let chunk_type = rest[8];
        let (len, len_bytes) = uleb128(&rest[9..]).ok_or("bad chunk length")?;
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(9 + len_bytes))
            .filter(|t| *t <= rest.len())
            .ok_or("chunk longer than its message")?;
        let (chunk, tail) = rest.split_at(total);
        match chunk_type {
            1 | 2 => changes.push(Change::from_bytes(chunk.to_vec()).map_err(|e| e.to_string())?),
            // Bundles are an experimental storage form no sync client sends (automerge syncs
            // changes or a saved document), and their parser is where malformed input
            // panicked: not taken from peers.
            3 => return Err("bundles are not taken in sync; send changes".into()),
            0 => {
                let doc = Automerge::load(chunk).map_err(|e| e.to_string())?;
                changes.extend(doc.get_changes(&[]));
            }
            other => return Err(format!("unknown chunk type {other}")),
        }
        rest = tail;
    }
    Ok(changes)
}

/// May this sender make these (new) changes?
fn authorize(grant: &Grant, changes: &[Change], gate: &dyn ActorGate) -> Result<(), Refusal> {
    if !grant.may_write {
        return Err(Refusal::new(
            RefusalKind::ReadOnly,
            "you may read this document but not change it",
        ));
    }
    if let Some(p) = &grant.by.participant {
        for c in changes {
            gate.check(p, c.actor_id().to_bytes())?;
        }
    }
    Ok(())
}

/// Each change's checksum is the first bytes of its hash. A compressed chunk whose checksum is
/// of its compressed bytes instead (found by the `inflate` fuzz target) is read by Automerge
/// under one hash and kept under another: the document's next read of its changes panics,
/// for everyone on it.
fn checksums_are_hashes(new: &[Change]) -> Result<(), String> {
    match new
        .iter()
        .find(|c| c.raw_bytes().get(4..8) != Some(&c.hash().0[..4]))
    {
        Some(c) => Err(format!(
            "change {}: its checksum is not its hash's",
            c.hash()
        )),
        None => Ok(()),
    }
}

fn uleb128(b: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        value |= bits.checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `inflate` fuzz target: a change whose other actor nothing in its history
    /// introduced, which panics Automerge when applied. In a peer's sync message the engine
    /// refuses it (closing its sender) and goes on.
    #[test]
    fn a_change_naming_an_actor_its_history_lacks_is_refused_and_the_engine_goes_on() {
        const CHANGE: &[u8] = &[
            0x85, 0x6f, 0x4a, 0x83, 0x15, 0xc5, 0xca, 0xd5, 0x02, 0x9f, 0x01, 0x63, 0x10, 0x48,
            0xbc, 0x22, 0xff, 0xa0, 0x38, 0x6a, 0x63, 0x6a, 0xef, 0xbc, 0x66, 0xa7, 0x1d, 0x5b,
            0xff, 0xc4, 0x31, 0x32, 0x32, 0x30, 0x31, 0x70, 0x31, 0xb2, 0x33, 0x9a, 0xfb, 0xd8,
            0x84, 0x0e, 0x0e, 0x88, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e,
            0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e,
            0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x26, 0x0e, 0x0e, 0x0e,
            0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x14, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e,
            0x4e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e,
            0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x0e, 0x73, 0x89, 0xf2, 0x9b, 0x18, 0x0d, 0x84, 0xd1,
            0x94, 0x30, 0x9a, 0x0b, 0x46, 0x73, 0xc1, 0x68, 0x2e, 0x18, 0xcd, 0x05, 0xa3, 0xb9,
            0x60, 0x34, 0x17, 0x8c, 0xe6, 0x02, 0x3a, 0xe7, 0x82, 0xd7, 0x73, 0xf7, 0x8c, 0xa2,
            0xd1, 0x10, 0x18, 0x0d, 0x81, 0xd1, 0x10, 0x78, 0x3d, 0x14, 0x8a, 0x82, 0x36, 0x12,
            0x00, 0x00,
        ];
        let (engine, actions) = one_peer_chunk(CHANGE);
        assert!(
            actions.iter().any(|a| matches!(a, Action::Close { reason, .. } if reason.contains("whose changes the document does not have"))),
            "{actions:?}"
        );
        assert!(engine.doc().get_heads().is_empty());
    }

    /// A sender whose Bloom filter check took one of its changes (Y) for one the server has
    /// sends Y's successor X alone (CI's load generator met it under many writers). As
    /// automerge does, the engine keeps X and asks for Y by hash; nobody is closed, and both
    /// are checked and applied when Y comes.
    #[test]
    fn a_change_whose_dependency_is_still_to_come_waits_and_the_dependency_is_asked_for() {
        use automerge::transaction::Transactable;
        let mut client = automerge::AutoCommit::new();
        client.put(automerge::ROOT, "a", 1).expect("put");
        let y = client.get_changes(&[])[0].clone();
        let before = client.get_heads();
        client.put(automerge::ROOT, "b", 2).expect("put");
        let x = client.get_changes(&before)[0].clone();
        let (mut engine, actions) = one_peer_chunk(x.raw_bytes());
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Close { .. })),
            "X alone closes nothing: {actions:?}"
        );
        let asked = actions.iter().any(|a| match a {
            Action::Send {
                message: Message::Sync { data, .. },
                ..
            } => automerge::sync::Message::decode(data).is_ok_and(|m| m.need.contains(&y.hash())),
            _ => false,
        });
        assert!(asked, "the next message to the sender needs Y: {actions:?}");
        assert!(
            engine.doc().get_heads().is_empty(),
            "X is not applied alone"
        );
        // Y comes: both are taken, in order.
        push_changes(&mut engine, vec![x.hash()], vec![y.raw_bytes().to_vec()]);
        let actions = engine.step(1, &mut NoGate);
        let appended = actions.iter().find_map(|a| match a {
            Action::Append { batch, changes } => Some((*batch, changes.len())),
            _ => None,
        });
        assert_eq!(appended.map(|a| a.1), Some(2), "{actions:?}");
        assert_eq!(engine.doc().get_heads(), vec![x.hash()]);
    }

    /// A sender that never sends what its waiting change depends on is closed after a few
    /// messages (its client reconnects and syncs afresh), not kept waiting for good.
    #[test]
    fn a_dependency_that_never_comes_closes_its_sender_after_a_few_messages() {
        use automerge::transaction::Transactable;
        let mut client = automerge::AutoCommit::new();
        client.put(automerge::ROOT, "a", 1).expect("put");
        let before = client.get_heads();
        client.put(automerge::ROOT, "b", 2).expect("put");
        let x = client.get_changes(&before)[0].clone();
        let (mut engine, _) = one_peer_chunk(x.raw_bytes());
        let mut closed = false;
        for i in 0..=MAX_WAITING_MESSAGES {
            push_changes(&mut engine, vec![x.hash()], Vec::new());
            let actions = engine.step(u64::from(i) + 1, &mut NoGate);
            closed = actions.iter().any(
                |a| matches!(a, Action::Close { reason, .. } if reason.contains("never came")),
            );
            if closed {
                assert_eq!(
                    i, MAX_WAITING_MESSAGES,
                    "closed after the bound, not before"
                );
                break;
            }
        }
        assert!(closed, "the sender is closed");
        assert!(engine.doc().get_heads().is_empty());
    }

    /// Pushes, as peer `peer` on connection 1, a sync message whose heads are `heads` and
    /// whose `changes` entry holds `chunks`.
    fn push_changes(
        engine: &mut DocEngine,
        heads: Vec<automerge::ChangeHash>,
        chunks: Vec<Vec<u8>>,
    ) {
        let message = automerge::sync::Message {
            heads,
            need: Vec::new(),
            have: Vec::new(),
            changes: chunks.into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        engine.push(Input::Sync {
            conn: ConnId(1),
            peer: PeerId::new("peer").expect("peer"),
            kind: SyncKind::Sync,
            data: message.encode(),
            grant: Grant::open(),
        });
    }

    /// A fresh engine given `chunk` as a peer's whole `changes` entry, and what it did.
    fn one_peer_chunk(chunk: &[u8]) -> (DocEngine, Vec<Action>) {
        let server = PeerId::new("server").expect("peer");
        let id = DocumentId::from_bytes([5; 16]);
        let mut engine = DocEngine::new(id, server, Automerge::new(), EngineConfig::default());
        push_changes(&mut engine, Vec::new(), vec![chunk.to_vec()]);
        let actions = engine.step(0, &mut NoGate);
        (engine, actions)
    }

    /// Found by the `inflate` fuzz target (issue 29's run, open until issue 31): a compressed
    /// change whose checksum is not its hash's, whose operations then panicked Automerge's
    /// batch apply. Refused before it is applied.
    #[test]
    fn a_change_whose_list_operations_automerge_cannot_apply_is_refused() {
        let data = include_bytes!("../../fuzz/corpus/inflate/checksum-05966985");
        let (_, actions) = one_peer_chunk(data);
        assert!(
            actions.iter().any(|a| matches!(a, Action::Close { .. })),
            "{actions:?}"
        );
    }

    /// Found by the `inflate` fuzz target (its final run for issue 29): a change numbered 341
    /// for an actor the document has no change of, with nothing missing from its history:
    /// Automerge panicked applying it. The engine refuses it, and goes on.
    #[test]
    fn a_change_whose_number_skips_is_refused_before_it_is_applied() {
        let data = include_bytes!("../../fuzz/corpus/inflate/seq-skips-d83341bf");
        let (engine, actions) = one_peer_chunk(data);
        assert!(
            actions.iter().any(
                |a| matches!(a, Action::Close { reason, .. } if reason.contains("comes next"))
            ),
            "{actions:?}"
        );
        assert!(engine.doc().get_heads().is_empty());
    }

    /// Found by the `inflate` fuzz target: a compressed change whose actor list names one
    /// actor many times parses, then panics Automerge when applied. The engine refuses it.
    #[test]
    fn a_change_naming_an_actor_twice_is_refused_before_it_is_applied() {
        const CHANGE: &[u8] = &[
            0x85, 0x6f, 0x4a, 0x83, 0x59, 0xc1, 0x6d, 0x62, 0x02, 0xce, 0x08, 0xed, 0xc1, 0xa1,
            0x0d, 0xc2, 0x50, 0x14, 0x00, 0xc0, 0xf7, 0xda, 0x40, 0x90, 0x98, 0xaa, 0x6a, 0x06,
            0x20, 0x61, 0x00, 0xc2, 0x10, 0x45, 0x13, 0x2c, 0x02, 0xd5, 0xd4, 0xfd, 0xaf, 0xd8,
            0x84, 0x5d, 0x10, 0x08, 0x0c, 0x09, 0x0a, 0xcb, 0x0e, 0x28, 0x86, 0xc0, 0xde, 0x5d,
            0x2c, 0x3f, 0xd3, 0xfa, 0xf6, 0x7c, 0x1d, 0xfb, 0x51, 0xf5, 0x7e, 0x7c, 0xaf, 0xf7,
            0x53, 0xbb, 0xcc, 0x66, 0x44, 0x76, 0x93, 0xbb, 0x66, 0x98, 0xed, 0x6b, 0xdd, 0x9e,
            0x9b, 0x92, 0x7e, 0x96, 0x2c, 0x97, 0x5a, 0x17, 0x07, 0x00, 0x00, 0x00, 0x77, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x50, 0x00, 0x00, 0x85, 0x6f,
            0x4a, 0x83, 0x15, 0xc5, 0xca, 0xd5, 0x02, 0x9f, 0x01, 0x63, 0x10, 0x48, 0xbc, 0x22,
            0xff, 0xa0, 0x28, 0x6a, 0x63, 0x6a, 0xef, 0xbc, 0x66, 0xa7, 0x1d, 0x5b, 0xff, 0xc4,
            0x31, 0x32, 0x32, 0x30, 0x30, 0x70, 0x31, 0xb2, 0x33, 0xb1, 0x0b, 0xb2, 0x0b, 0x73,
            0x89, 0xf2, 0x9b, 0xb0, 0x38, 0xb1, 0x86, 0x71, 0x86, 0xef, 0x91, 0x2b, 0x60, 0x66,
            0x60, 0x6c, 0x61, 0x67, 0x60, 0x60, 0x04, 0x51, 0x8c, 0x0c, 0x8c, 0x0c, 0x4c, 0xcd,
            0x10, 0x5e, 0x1d, 0x03, 0x53, 0x13, 0x48, 0xa0, 0x9e, 0x25, 0x29, 0x3f, 0xa5, 0x92,
            0xa1, 0x85, 0xbd, 0x9e, 0x25, 0x2f, 0xbf, 0x24, 0x15, 0xa4, 0xaa, 0x9e, 0xa5, 0x95,
            0x9d, 0xb1, 0x9e, 0xa1, 0x85, 0xdd, 0xac, 0xbe, 0x6d, 0x1a, 0xe3, 0xa5, 0x0d, 0x0d,
            0xaf, 0x9b, 0x66, 0xbc, 0xee, 0x5e, 0x32, 0xca, 0x18, 0xfa, 0x84, 0xd1, 0x94, 0x30,
            0x9a, 0x0b, 0x46, 0x73, 0xc1, 0x68, 0x2e, 0x18, 0xcd, 0x05, 0xa3, 0xb9, 0x60, 0x34,
            0x17, 0x8c, 0xe6, 0x02, 0x3a, 0xe7, 0x82, 0xd7, 0x73, 0xf7, 0x8c, 0xa2, 0xd1, 0x10,
            0x18, 0x0d, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xb3, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b,
            0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b,
            0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b,
            0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9f, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x48, 0xa0, 0x9e, 0x25, 0x29,
            0x3f, 0xa5, 0x92, 0xa1, 0x85, 0xbd, 0x9e, 0x25, 0x2f, 0xbf, 0x24, 0x15, 0xa4, 0xaa,
            0x9e, 0xa5, 0x95, 0x9d, 0xb1, 0x9e, 0xa1, 0x85, 0xdd, 0xac, 0xbe, 0x6d, 0x1a, 0xe3,
            0xab, 0x0d, 0x0d, 0xaf, 0x9b, 0x66, 0xbc, 0xee, 0x5e, 0x35, 0xca, 0x18, 0x0d, 0x84,
            0xd1, 0x94, 0x30, 0x9a, 0x0b, 0x46, 0x73, 0xc1, 0x68, 0x2e, 0x18, 0xcd, 0x05, 0xa3,
            0xbe, 0x60, 0x80, 0x3f, 0x95, 0xf8, 0x01,
        ];
        let e = parse_changes(CHANGE).expect_err("refused");
        assert!(e.contains("same actor twice"), "{e}");
    }

    /// Found by the `inflate` fuzz target: a bundle chunk on which Automerge's parser panics.
    /// In a peer's sync message it is refused (bundles are not taken), the engine goes on.
    #[test]
    fn a_malformed_bundle_from_a_peer_is_refused_and_panics_nothing() {
        const BUNDLE: &[u8] = &[
            0x85, 0x6f, 0x4a, 0x83, 0x15, 0xc5, 0xca, 0x00, 0x03, 0x7f, 0x01, 0x00, 0x80, 0x00,
            0x00, 0x7f, 0x01, 0x7f, 0x86, 0x07, 0x7f, 0x1b, 0x00, 0x7f, 0x00, 0x7f, 0x07, 0x00,
            0xa5, 0x25, 0x92, 0xa1, 0x85, 0xbd, 0x18, 0x0d, 0x84, 0xd1, 0x03, 0x03, 0x03, 0x03,
            0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
            0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
            0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x23, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
            0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x94, 0x9a, 0x0b, 0x3a, 0xe7, 0x82, 0xd7, 0x02,
            0x82, 0xff, 0x7d, 0x7d, 0xf8, 0x30, 0xca, 0x18, 0x0d, 0x84, 0xd1, 0x94, 0x30, 0x9a,
            0x0b, 0x46, 0x73, 0xc1, 0xd7, 0x73, 0xf7, 0x8c, 0xa2, 0xd1, 0x10, 0x18, 0x0d, 0x81,
            0xd1, 0x10, 0x78, 0x3d, 0x14, 0x8a, 0x82, 0x36, 0x76, 0x06, 0x00,
        ];
        assert!(parse_changes(BUNDLE).is_err());
        // And if Automerge panics on some other chunk, that is one peer's error.
        assert!(std::panic::catch_unwind(|| parse_changes(BUNDLE)).is_ok());
    }
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    /// The server's receive leaves a peer's sync state as automerge's own receive does (`sent_hashes`
    /// may keep hashes the peer has; see `sync_receive`).
    #[test]
    fn an_acknowledgement_in_sync_updates_the_state_like_automerge() {
        let mut server = AutoCommit::new();
        let mut client = AutoCommit::new();
        let (mut s_state, mut c_state) = (sync::State::new(), sync::State::new());
        let mut compared = 0;
        for i in 0..30 {
            server.put(ROOT, format!("k{i}"), i).expect("put");
            server.commit();
            // Exchange until quiet, as a server and a subscriber do after each edit.
            for _ in 0..10 {
                let a = server.sync().generate_sync_message(&mut s_state);
                if let Some(m) = a.clone() {
                    client
                        .sync()
                        .receive_sync_message(&mut c_state, m)
                        .expect("client");
                }
                let b = client.sync().generate_sync_message(&mut c_state);
                if let Some(m) = b.clone() {
                    let heads = server.get_heads();
                    let mut fast = s_state.clone();
                    let mut slow = s_state.clone();
                    let used_fast = crate::sync_receive::receive_applied(
                        server.document(),
                        &heads,
                        &mut fast,
                        m.clone(),
                        &crate::sync_receive::RecentChanges::default(),
                    )
                    .is_ok();
                    server
                        .document()
                        .clone()
                        .receive_sync_message(&mut slow, m.clone())
                        .expect("server");
                    if used_fast {
                        compared += 1;
                        assert_eq!(fast.shared_heads, slow.shared_heads);
                        assert_eq!(fast.last_sent_heads, slow.last_sent_heads);
                        assert_eq!(fast.their_heads, slow.their_heads);
                        assert_eq!(fast.their_need, slow.their_need);
                        assert!(fast.sent_hashes.is_superset(&slow.sent_hashes));
                        assert_eq!(fast.in_flight, slow.in_flight);
                        assert_eq!(fast.their_capabilities, slow.their_capabilities);
                        assert_eq!(
                            fast.their_have.as_ref().map(|h| h.len()),
                            slow.their_have.as_ref().map(|h| h.len())
                        );
                    }
                    server
                        .sync()
                        .receive_sync_message(&mut s_state, m)
                        .expect("server");
                }
                if a.is_none() && b.is_none() {
                    break;
                }
            }
        }
        assert_eq!(server.get_heads(), client.get_heads());
        assert!(compared >= 30, "the fast path was taken {compared} times");
    }

    /// Found by the inflate property (issue 31's CI): a compressed change chunk that
    /// automerge parses, whose dependency is nowhere, must not reach the document.
    #[test]
    fn a_chunk_found_by_the_fuzzer_is_refused_without_a_panic() {
        let data = hex_bytes("856f4a83a180e2c9029f0163107891ee64bab592cbfa714ac79973890c2d8c8c0c0c0c5c8cec4cec82ecc25ca2fc262c4eac619ce17be40a9819185bd819184441142303230353338457c7c0d40412a86749ca4fa9646861af67c9cb2f4905a9aa67696567ac67686137ab6f9bc6f86a43c3eba619afbb978c3246036134258ce682d15c309a0b4673c1682e18cd05a3b980ceb9e0f5dc3da368340446436034045e0f85a2a08d9d0100");
        let (engine, actions) = one_peer_chunk(&data);
        assert!(engine.doc.get_heads().is_empty(), "{actions:?}");
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Close { reason, .. } if reason.contains("checksum"))),
            "the sender is told and let go: {actions:?}"
        );
    }

    fn hex_bytes(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
