//! The protocol core in an in-memory network: clients are plain Automerge documents with their
//! own sync states; the "server" is the real sans-IO core — one `ConnectionState` per client
//! (join, the documents it names, what it may not send), a `Router` of one `DocEngine` per
//! document — plus a log whose durability the test controls. Every scenario runs until quiet,
//! with a bound on the number of rounds.

use std::collections::{HashMap, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use toron_protocol::{
    Action, ActorGate, Attribution, BatchId, ConnEvent, ConnId, ConnectionState, DocEngine,
    DocumentId, EngineConfig, Grant, Input, Message, NewChange, PeerId, Refusal, RefusalKind,
    Rejection, Router, SyncKind, PROTOCOL_VERSION,
};

const MAX_ROUNDS: usize = 200;

struct Client {
    peer: PeerId,
    conn: ConnId,
    docs: HashMap<DocumentId, (AutoCommit, sync::State)>,
    inbox: VecDeque<Message>,
    unavailable: Vec<DocumentId>,
    ephemeral_seen: Vec<(String, u64)>,
    closed: Option<String>,
}

struct Net {
    server: PeerId,
    /// The server's side of each client's connection.
    conns: HashMap<ConnId, ConnectionState>,
    engines: Router<DocEngine>,
    clients: Vec<Client>,
    /// Messages from clients to the server, in arrival order.
    to_server: VecDeque<(ConnId, Message)>,
    /// Appends the store has not made durable yet.
    pending_appends: Vec<(DocumentId, BatchId, Vec<NewChange>)>,
    hold_durability: bool,
    log: Vec<NewChange>,
    refused: Vec<Rejection>,
    /// The kind of each refusal, in the same order.
    refused_kinds: Vec<RefusalKind>,
    /// Connections told why their changes were refused.
    told: Vec<ConnId>,
    /// Per-connection grants (absent: open mode).
    grants: HashMap<ConnId, Grant>,
    gate: Bindings,
    /// Clients that do not read their inbox during `round` (a busy or slow client).
    held: std::collections::HashSet<usize>,
    now: u64,
}

impl Net {
    fn new(n: usize) -> Self {
        let clients: Vec<Client> = (0..n)
            .map(|i| Client {
                peer: PeerId::new(format!("peer-{i}")).expect("peer"),
                conn: ConnId(i as u64 + 1),
                docs: HashMap::new(),
                inbox: VecDeque::new(),
                unavailable: Vec::new(),
                ephemeral_seen: Vec::new(),
                closed: None,
            })
            .collect();
        let server = PeerId::new("server").expect("peer");
        // Every client joins first, as a real one does.
        let to_server = clients
            .iter()
            .map(|c| {
                let join = Message::Join {
                    sender_id: c.peer.clone(),
                    supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
                    peer_metadata: None,
                };
                (c.conn, join)
            })
            .collect();
        let conns = clients
            .iter()
            .map(|c| (c.conn, ConnectionState::new(server.clone(), None, 64)))
            .collect();
        Self {
            server,
            conns,
            engines: Router::new(),
            clients,
            to_server,
            pending_appends: Vec::new(),
            hold_durability: false,
            log: Vec::new(),
            refused: Vec::new(),
            refused_kinds: Vec::new(),
            told: Vec::new(),
            grants: HashMap::new(),
            gate: Bindings::default(),
            held: std::collections::HashSet::new(),
            now: 1_000,
        }
    }

    fn create(&mut self, c: usize, key: &str, value: i64) -> DocumentId {
        let id = DocumentId::random();
        let mut doc = AutoCommit::new();
        doc.put(ROOT, key, value).expect("put");
        self.clients[c].docs.insert(id, (doc, sync::State::new()));
        self.client_sync(c, id, SyncKind::Sync);
        id
    }

    fn find(&mut self, c: usize, id: DocumentId) {
        self.clients[c]
            .docs
            .insert(id, (AutoCommit::new(), sync::State::new()));
        self.client_sync(c, id, SyncKind::Request);
    }

    fn edit(&mut self, c: usize, id: DocumentId, key: &str, value: i64) {
        let (doc, _) = self.clients[c].docs.get_mut(&id).expect("doc");
        doc.put(ROOT, key, value).expect("put");
        self.client_sync(c, id, SyncKind::Sync);
    }

    fn client_sync(&mut self, c: usize, id: DocumentId, kind: SyncKind) {
        let client = &mut self.clients[c];
        let (doc, state) = client.docs.get_mut(&id).expect("doc");
        if let Some(m) = doc.sync().generate_sync_message(state) {
            let (sender_id, target_id, data) =
                (client.peer.clone(), self.server.clone(), m.encode());
            let msg = Message::sync_of_kind(kind, sender_id, target_id, id, data);
            self.to_server.push_back((client.conn, msg));
        }
    }

    fn client_index(&self, conn: ConnId) -> usize {
        self.clients
            .iter()
            .position(|c| c.conn == conn)
            .expect("client")
    }

    fn carry_out(&mut self, id: DocumentId, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { conn, message } => {
                    let i = self.client_index(conn);
                    self.clients[i].inbox.push_back(message);
                }
                Action::Append { batch, changes } => {
                    self.pending_appends.push((id, batch, changes))
                }
                Action::Close { conn, reason } => self.close(conn, reason),
                Action::SaveSnapshot { .. } => {}
                Action::Refused(r) => {
                    self.refused.push(r.rejection);
                    self.refused_kinds.push(r.kind);
                    if r.tell {
                        self.told.push(r.conn);
                    }
                    if r.close {
                        self.close(r.conn, "refused".into());
                    }
                }
            }
        }
    }

    /// One round: deliver every queued message, let every engine step, make appends durable
    /// (unless held). Returns whether anything happened.
    fn round(&mut self) -> bool {
        let mut busy = false;
        self.now += 10;
        while let Some((conn, msg)) = self.to_server.pop_front() {
            busy = true;
            let Some(state) = self.conns.get_mut(&conn) else {
                continue;
            };
            let events = state.receive(msg);
            self.serve(conn, events);
        }
        let ids: Vec<DocumentId> = self.engines.ids().copied().collect();
        for id in &ids {
            let now = self.now;
            let actions = self
                .engines
                .get_mut(id)
                .expect("engine")
                .step(now, &mut self.gate);
            busy |= !actions.is_empty();
            self.carry_out(*id, actions);
        }
        if !self.hold_durability {
            for (id, batch, changes) in std::mem::take(&mut self.pending_appends) {
                busy = true;
                let last = self.log.iter().filter(|c| c.document_id == id).count() as u64
                    + changes.len() as u64;
                self.log.extend(changes);
                let actions = self
                    .engines
                    .get_mut(&id)
                    .expect("engine")
                    .durable(batch, last);
                self.carry_out(id, actions);
            }
        }
        for i in 0..self.clients.len() {
            if !self.held.contains(&i) {
                busy |= self.client_receive(i);
            }
        }
        busy
    }

    /// Does what a connection's state machine asks, as the server's socket task does: the
    /// hub's part (registering the peer id) always succeeds here; a connection's grant is the
    /// test's (open mode when it set none).
    fn serve(&mut self, conn: ConnId, events: Vec<ConnEvent>) {
        let mut todo: VecDeque<ConnEvent> = events.into();
        while let Some(e) = todo.pop_front() {
            match e {
                ConnEvent::Send(m) => {
                    let i = self.client_index(conn);
                    self.clients[i].inbox.push_back(m);
                }
                ConnEvent::Close { reason, .. } => self.close(conn, reason),
                ConnEvent::Join { .. } => {
                    let state = self.conns.get_mut(&conn).expect("connection");
                    todo.extend(state.joined());
                }
                ConnEvent::Sync {
                    peer,
                    document_id,
                    kind,
                    data,
                    ..
                } => {
                    let server = self.server.clone();
                    let grant = self.grants.get(&conn).cloned().unwrap_or_else(Grant::open);
                    let (engine, _) = self.engines.get_or_open(document_id, || {
                        DocEngine::new(
                            document_id,
                            server,
                            automerge::Automerge::new(),
                            EngineConfig::default(),
                        )
                    });
                    engine.push(Input::Sync {
                        conn,
                        peer,
                        kind,
                        data,
                        grant,
                    });
                }
                ConnEvent::Ephemeral { peer, message: m } => {
                    // A `senderId` another connection holds is an echo: dropped.
                    if m.sender_id != peer && self.clients.iter().any(|c| c.peer == m.sender_id) {
                        continue;
                    }
                    let now = self.now;
                    if let Some(e) = self.engines.get_mut(&m.document_id) {
                        let targets = e.ephemeral(conn, &peer, &m.session_id, m.count, now);
                        let frame = toron_protocol::wire::EphemeralFrame::new(
                            &peer,
                            &m.document_id,
                            m.count,
                            &m.session_id,
                            &m.data,
                        );
                        let actions = targets
                            .into_iter()
                            .filter_map(|(conn, target)| {
                                let message =
                                    toron_protocol::wire::decode(&frame.frame_for(&target)).ok()?;
                                Some(Action::Send { conn, message })
                            })
                            .collect();
                        self.carry_out(m.document_id, actions);
                    }
                }
                ConnEvent::IgnoredInvalidId { .. } => {}
                ConnEvent::PeerError(reason) => self.close(conn, reason),
                ConnEvent::Left => self.close(conn, "left".into()),
            }
        }
    }

    /// Connection `conn` is closed: its client hears why, and the open documents it named
    /// forget it.
    fn close(&mut self, conn: ConnId, reason: String) {
        let i = self.client_index(conn);
        self.clients[i].closed.get_or_insert(reason);
        let named = self
            .conns
            .get_mut(&conn)
            .map(ConnectionState::close)
            .unwrap_or_default();
        for id in self.engines.closing(named) {
            if let Some(e) = self.engines.get_mut(&id) {
                e.push(Input::Closed { conn });
            }
        }
    }

    /// Client `i` handles everything the server sent it, replying as the protocol asks.
    fn client_receive(&mut self, i: usize) -> bool {
        let mut busy = false;
        while let Some(msg) = self.clients[i].inbox.pop_front() {
            busy = true;
            match msg {
                Message::Sync {
                    document_id, data, ..
                } => {
                    let (doc, state) = self.clients[i].docs.get_mut(&document_id).expect("doc");
                    let m = sync::Message::decode(&data).expect("server sends valid sync");
                    doc.sync().receive_sync_message(state, m).expect("apply");
                    self.client_sync(i, document_id, SyncKind::Sync);
                }
                Message::DocUnavailable { document_id, .. } => {
                    self.clients[i].unavailable.push(document_id)
                }
                Message::Ephemeral {
                    session_id, count, ..
                } => {
                    self.clients[i].ephemeral_seen.push((session_id, count));
                }
                Message::Peer { .. } => {}
                other => panic!("unexpected server message {other:?}"),
            }
        }
        busy
    }

    fn run_until_quiet(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        panic!("the network did not go quiet within {MAX_ROUNDS} rounds (sync loop?)");
    }

    /// The server has told client `c` that it holds the client's heads of `id`.
    fn acknowledged(&mut self, c: usize, id: DocumentId) -> bool {
        let (doc, state) = self.clients[c].docs.get_mut(&id).expect("doc");
        state.their_heads.as_ref() == Some(&doc.get_heads())
    }

    fn value(&mut self, c: usize, id: DocumentId, key: &str) -> Option<i64> {
        let (doc, _) = self.clients[c].docs.get_mut(&id)?;
        match doc.get(ROOT, key).expect("get") {
            Some((automerge::Value::Scalar(s), _)) => s.as_i64(),
            _ => None,
        }
    }
}

/// Actor bindings as the server keeps them: first writer wins.
#[derive(Default)]
struct Bindings(HashMap<Vec<u8>, String>);

impl ActorGate for Bindings {
    fn check(&self, participant: &str, actor: &[u8]) -> Result<(), Refusal> {
        match self.0.get(actor) {
            Some(owner) if owner != participant => Err(Refusal::new(
                RefusalKind::Actor,
                format!("actor bound to {owner}"),
            )),
            _ => Ok(()),
        }
    }

    fn bind(&mut self, participant: &str, actor: &[u8]) {
        self.0
            .entry(actor.to_vec())
            .or_insert_with(|| participant.to_string());
    }
}

fn as_participant(p: &str, may_write: bool) -> Grant {
    Grant {
        may_write,
        by: Attribution {
            participant: Some(p.into()),
            role: Some(if may_write { "evaluator" } else { "activist" }.into()),
        },
    }
}

#[test]
fn a_reader_sending_changes_is_refused_and_nothing_is_applied() {
    let mut net = Net::new(3);
    net.grants.insert(ConnId(1), as_participant("P-ev", true));
    net.grants.insert(ConnId(2), as_participant("P-act", false));
    net.grants.insert(ConnId(3), as_participant("P-obs", false));
    let id = net.create(0, "score", 3);
    net.run_until_quiet();
    net.find(1, id);
    net.find(2, id);
    net.run_until_quiet();
    assert_eq!(net.log[0].by.participant.as_deref(), Some("P-ev"));

    net.edit(1, id, "score", 1);
    net.run_until_quiet();
    assert_eq!(net.refused.len(), 1);
    assert_eq!(net.refused_kinds, vec![RefusalKind::ReadOnly]);
    assert_eq!(net.refused[0].by.participant.as_deref(), Some("P-act"));
    assert_eq!(net.told, vec![ConnId(2)], "told why, once");
    assert!(
        net.clients[1].closed.is_none(),
        "kept connected: closing made clients reconnect and resend the refused change"
    );
    assert_eq!(
        net.log.len(),
        1,
        "nothing of the refused message was stored"
    );
    assert_eq!(net.value(0, id, "score"), Some(3));
    assert_eq!(net.value(2, id, "score"), Some(3), "nothing was relayed");
    // The others go on working, and the refused client still receives their changes.
    net.edit(0, id, "score", 4);
    net.run_until_quiet();
    assert_eq!(net.value(2, id, "score"), Some(4));
    assert_eq!(net.value(0, id, "score"), Some(4));
    // Its next edit is not even sent: its sync state sees the server read-only. No loop.
    net.edit(1, id, "score", 5);
    net.run_until_quiet();
    assert_eq!(net.refused.len(), 1, "no second refusal");
    assert_eq!(net.log.len(), 2);
}

#[test]
fn a_change_made_with_someone_elses_actor_id_is_refused() {
    let mut net = Net::new(2);
    net.grants.insert(ConnId(1), as_participant("P-ev", true));
    net.grants
        .insert(ConnId(2), as_participant("P-mallory", true));
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.run_until_quiet();
    // Mallory writes with the evaluator's actor id.
    let actor = net.clients[0]
        .docs
        .get_mut(&id)
        .expect("doc")
        .0
        .get_actor()
        .clone();
    net.clients[1]
        .docs
        .get_mut(&id)
        .expect("doc")
        .0
        .set_actor(actor);
    net.edit(1, id, "v", 666);
    net.run_until_quiet();
    assert_eq!(net.refused.len(), 1);
    assert_eq!(net.refused_kinds, vec![RefusalKind::Actor]);
    assert!(
        net.refused[0].reason.contains("bound to P-ev"),
        "{}",
        net.refused[0].reason
    );
    assert_eq!(net.value(0, id, "v"), Some(1));
    assert_eq!(net.log.len(), 1);
}

/// Regression: Alice edits while a message from the server is still unread; she then reads it
/// and replies, so her change and her reply (heads already including the change) arrive in one
/// batch. The server must still acknowledge her change.
#[test]
fn an_edit_and_a_late_reply_in_one_batch_are_still_acknowledged() {
    let mut net = Net::new(2);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.run_until_quiet();

    net.held.insert(0);
    net.edit(1, id, "w", 2);
    net.round();
    net.round();
    assert!(
        !net.clients[0].inbox.is_empty(),
        "Alice has an unread message"
    );
    net.edit(0, id, "v", 3);
    net.client_receive(0);
    net.held.clear();
    net.run_until_quiet();
    assert!(
        net.acknowledged(0, id),
        "the server told Alice it has her change"
    );
    assert!(net.acknowledged(1, id));
    assert_eq!(
        (net.value(0, id, "w"), net.value(1, id, "v")),
        (Some(2), Some(3))
    );
}

#[test]
fn alice_creates_bob_finds_and_both_edits_converge() {
    let mut net = Net::new(2);
    let id = net.create(0, "title", 1);
    net.run_until_quiet();
    assert_eq!(net.log.len(), 1, "the server logged Alice's change once");
    assert_eq!(net.log[0].peer.as_str(), "peer-0");
    assert!(
        net.acknowledged(0, id),
        "the server told Alice it has her heads"
    );

    net.find(1, id);
    net.run_until_quiet();
    assert_eq!(net.value(1, id, "title"), Some(1));

    net.edit(0, id, "a", 10);
    net.edit(1, id, "b", 20);
    net.run_until_quiet();
    for c in 0..2 {
        assert_eq!(
            (net.value(c, id, "a"), net.value(c, id, "b")),
            (Some(10), Some(20))
        );
    }
    assert_eq!(net.log.len(), 3);
    let attributed: Vec<&str> = net.log[1..].iter().map(|c| c.peer.as_str()).collect();
    assert!(
        attributed.contains(&"peer-0") && attributed.contains(&"peer-1"),
        "{attributed:?}"
    );
}

#[test]
fn many_peers_converge_and_every_change_is_logged_once() {
    let mut net = Net::new(12);
    let id = net.create(0, "init", 0);
    net.run_until_quiet();
    for c in 1..12 {
        net.find(c, id);
    }
    net.run_until_quiet();
    for round in 0..5 {
        for c in 0..12 {
            net.edit(c, id, &format!("k{c}"), round);
        }
        net.run_until_quiet();
    }
    for c in 0..12 {
        assert!(net.acknowledged(c, id), "client {c} got the server's heads");
        for k in 0..12 {
            assert_eq!(
                net.value(c, id, &format!("k{k}")),
                Some(4),
                "client {c} key {k}"
            );
        }
    }
    assert_eq!(net.log.len(), 1 + 12 * 5);
    let mut hashes: Vec<[u8; 32]> = net.log.iter().map(|c| c.hash).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), net.log.len(), "no change logged twice");
}

#[test]
fn a_request_for_a_missing_document_is_answered_unavailable_then_served_when_it_arrives() {
    let mut net = Net::new(2);
    let id = DocumentId::random();
    net.find(1, id);
    net.run_until_quiet();
    assert_eq!(net.clients[1].unavailable, vec![id]);
    assert!(
        net.log.is_empty(),
        "nothing stored for a document that does not exist"
    );

    // Alice uploads a document with that id; Bob, still subscribed, receives it.
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "late", 7).expect("put");
    net.clients[0].docs.insert(id, (doc, sync::State::new()));
    net.client_sync(0, id, SyncKind::Sync);
    net.run_until_quiet();
    assert_eq!(net.value(1, id, "late"), Some(7));
    assert_eq!(
        net.clients[1].unavailable.len(),
        1,
        "doc-unavailable is sent once"
    );
}

#[test]
fn nothing_reveals_a_change_before_it_is_durable() {
    let mut net = Net::new(2);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.run_until_quiet();

    net.hold_durability = true;
    net.edit(0, id, "v", 2);
    for _ in 0..5 {
        net.round();
    }
    assert_eq!(net.pending_appends.len(), 1, "the change waits for the log");
    assert_eq!(net.value(1, id, "v"), Some(1), "Bob must not see it yet");
    // Bob edits meanwhile: his message is queued, not answered with the undurable heads.
    net.edit(1, id, "w", 5);
    for _ in 0..5 {
        net.round();
    }
    assert_eq!(net.value(1, id, "v"), Some(1));
    assert_eq!(net.value(0, id, "w"), None);

    net.hold_durability = false;
    net.run_until_quiet();
    for c in 0..2 {
        assert_eq!(
            (net.value(c, id, "v"), net.value(c, id, "w")),
            (Some(2), Some(5))
        );
    }
}

#[test]
fn a_failed_append_closes_everyone_and_reveals_nothing() {
    let mut net = Net::new(2);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.run_until_quiet();
    net.hold_durability = true;
    net.edit(0, id, "v", 2);
    net.round();
    net.round();
    let actions = net
        .engines
        .get_mut(&id)
        .expect("engine")
        .commit_failed("disk on fire");
    assert_eq!(actions.len(), 2);
    assert!(actions.iter().all(|a| matches!(a, Action::Close { .. })));
    assert!(net.engines.get(&id).expect("engine").is_poisoned());
    assert_eq!(net.value(1, id, "v"), Some(1));
}

#[test]
fn ephemeral_messages_reach_each_other_subscriber_once() {
    let mut net = Net::new(3);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.find(2, id);
    net.run_until_quiet();

    let sender = net.clients[0].peer.clone();
    for _ in 0..3 {
        // The same message three times (JS clients echo what they receive).
        net.to_server.push_back((
            ConnId(1),
            Message::Ephemeral {
                sender_id: sender.clone(),
                target_id: net.server.clone(),
                document_id: id,
                count: 1,
                session_id: "s1".into(),
                data: vec![1],
            },
        ));
    }
    // An echo of it from Bob: same sender, session and count.
    net.to_server.push_back((
        ConnId(2),
        Message::Ephemeral {
            sender_id: sender.clone(),
            target_id: net.server.clone(),
            document_id: id,
            count: 1,
            session_id: "s1".into(),
            data: vec![1],
        },
    ));
    net.run_until_quiet();
    assert!(
        net.clients[0].ephemeral_seen.is_empty(),
        "never sent back to its author"
    );
    assert_eq!(net.clients[1].ephemeral_seen, vec![("s1".to_string(), 1)]);
    assert_eq!(net.clients[2].ephemeral_seen, vec![("s1".to_string(), 1)]);
}

#[test]
fn garbage_sync_data_closes_only_its_sender() {
    let mut net = Net::new(2);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.to_server.push_back((
        ConnId(2),
        Message::Sync {
            sender_id: net.clients[1].peer.clone(),
            target_id: net.server.clone(),
            document_id: id,
            data: vec![0x42, 0xff, 0xff],
        },
    ));
    net.edit(0, id, "v", 2);
    net.run_until_quiet();
    assert!(net.clients[1].closed.is_some());
    assert!(net.clients[0].closed.is_none());
    assert_eq!(
        net.log.len(),
        2,
        "Alice's edit in the same batch was still applied"
    );
}

#[test]
fn a_batch_of_many_senders_is_one_append_attributed_per_change() {
    let mut net = Net::new(4);
    let id = net.create(0, "init", 0);
    net.run_until_quiet();
    for c in 1..4 {
        net.find(c, id);
    }
    net.run_until_quiet();
    net.hold_durability = true;
    for c in 0..4 {
        net.edit(c, id, &format!("k{c}"), c as i64);
    }
    // Usually all four messages carry their change; after a Bloom-filter false positive a
    // client sends only its heads first and the change a round later.
    let carrying = net
        .to_server
        .iter()
        .filter(|(_, m)| match m {
            Message::Sync { data, .. } => !sync::Message::decode(data)
                .expect("decode")
                .changes
                .is_empty(),
            _ => false,
        })
        .count();
    assert!(carrying >= 2, "several senders in one batch");
    net.round();
    assert_eq!(
        net.pending_appends.len(),
        1,
        "one append for the whole batch"
    );
    let (_, _, changes) = &net.pending_appends[0];
    assert_eq!(changes.len(), carrying);
    for ch in changes {
        let c = net.client_index(ch.conn);
        assert_eq!(ch.peer, net.clients[c].peer);
        // The change's actor is the client's own actor: attribution is right.
        let (doc, _) = net.clients[c].docs.get_mut(&id).expect("doc");
        assert_eq!(ch.actor, doc.get_actor().to_bytes().to_vec());
    }
    net.hold_durability = false;
    net.run_until_quiet();
}

#[test]
fn a_second_join_closes_only_that_connection_and_its_documents_forget_it() {
    let mut net = Net::new(2);
    let id = net.create(0, "v", 1);
    net.run_until_quiet();
    net.find(1, id);
    net.run_until_quiet();
    let peer = net.clients[1].peer.clone();
    net.to_server.push_back((
        ConnId(2),
        Message::Join {
            sender_id: peer,
            supported_protocol_versions: None,
            peer_metadata: None,
        },
    ));
    net.run_until_quiet();
    assert_eq!(net.clients[1].closed.as_deref(), Some("already joined"));
    // The document forgot Bob: Alice's next edit is logged and nothing waits for him.
    net.edit(0, id, "v", 2);
    net.run_until_quiet();
    assert_eq!(net.log.len(), 2);
    assert!(net.acknowledged(0, id));
    assert_eq!(net.value(1, id, "v"), Some(1), "Bob no longer hears of it");
}

impl Net {
    /// Another node's log delivers `changes` of `id` to this one (a cluster).
    fn logged(&mut self, id: DocumentId, changes: Vec<Vec<u8>>) {
        let server = self.server.clone();
        let (engine, _) = self.engines.get_or_open(id, || {
            DocEngine::new(
                id,
                server,
                automerge::Automerge::new(),
                EngineConfig::default(),
            )
        });
        engine.push(Input::Logged { changes });
    }

    fn log_of(&self, id: DocumentId) -> Vec<Vec<u8>> {
        self.log
            .iter()
            .filter(|c| c.document_id == id)
            .map(|c| c.bytes.clone())
            .collect()
    }
}

/// Two nodes of a cluster, each its own server with its own client, joined only by their
/// logs: what one node logged reaches the other's subscriber, and is never logged twice.
#[test]
fn changes_another_node_logged_reach_this_nodes_subscribers_and_are_not_logged_again() {
    let (mut a, mut b) = (Net::new(1), Net::new(1));
    let id = a.create(0, "title", 1);
    a.run_until_quiet();
    b.find(0, id);
    b.run_until_quiet();
    assert_eq!(b.clients[0].unavailable, vec![id], "node B has nothing yet");

    b.logged(id, a.log_of(id));
    b.run_until_quiet();
    assert_eq!(
        b.value(0, id, "title"),
        Some(1),
        "B's reader got A's change"
    );
    assert!(b.log.is_empty(), "B did not log what A had logged");

    b.edit(0, id, "b", 2);
    b.run_until_quiet();
    assert_eq!(b.log.len(), 1, "B logged only its own client's change");
    a.logged(id, b.log_of(id));
    // Delivered twice (a consumer redelivering): skipped the second time.
    a.logged(id, b.log_of(id));
    a.run_until_quiet();
    assert_eq!(a.value(0, id, "b"), Some(2), "A's writer got B's change");
    assert!(a.acknowledged(0, id), "A's client is told the new heads");
    assert_eq!(a.log.len(), 1, "A logged only its own client's change");
}
