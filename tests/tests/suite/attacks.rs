//! Attacks through real sockets: each is refused, the log holds only the rejection record, no
//! other client receives any of it, and the other clients keep working. Plus: revoking a
//! token closes the participant's connections within a second; tokens never reach the logs.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use toron_cli::sync_client::{
    url_with_token, ClientError, Connection, DocSync, Event as ClientEvent,
};
use toron_domain::policy::{DocKey, Phase, Role, Scope};
use toron_domain::vocab::ParticipantKind;
use toron_protocol::Event;
use toron_server::registry::Participant;
use toron_server::Running;
use toron_tests::roster::{self, connect, set_phase, who, CASE, SESSION};
use toron_tests::{int_at, secure_config, secured, start_with, LIMIT};

fn token(tokens: &[(Role, String)], role: Role) -> String {
    roster::token(tokens, role)
}

/// What the log holds since `from`, but for the attacker's own "joined"/"left" the session
/// (taking part is not an attack).
fn events_since(server: &Running, from: u64) -> Vec<Event> {
    let mut evs = server.store().events(from, 10_000).expect("events");
    evs.retain(|e| !matches!(e, Event::Presence { .. }));
    evs
}

fn next_seq(server: &Running) -> u64 {
    server.store().last_global_seq().expect("seq") + 1
}

/// A client that keeps `id` open and must never see the attacker's change.
struct Watcher {
    conn: Connection,
    doc: DocSync,
}

impl Watcher {
    async fn open(server: &Running, token: &str, id: toron_protocol::DocumentId) -> Self {
        let mut conn = connect(server, token).await.expect("watcher connects");
        let doc = conn.find(id, LIMIT).await.expect("watcher reads");
        Self { conn, doc }
    }

    /// Asserts that nothing changed the document for `window`.
    async fn saw_nothing(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(ev) =
            tokio::time::timeout_at(deadline, self.conn.next_event(&mut [&mut self.doc])).await
        {
            if let ClientEvent::Synced { changed: true, .. } = ev.expect("watcher event") {
                panic!(
                    "the watcher received a change: {}",
                    toron_cli::json::doc_to_json(&self.doc.doc)
                );
            }
        }
        assert_eq!(
            int_at(&self.doc.doc, "score"),
            None,
            "no attacker value arrived"
        );
    }
}

/// Sends `key = value` into document `id` with `actor` (or a fresh one), as `token`; returns
/// the server's answer to it.
async fn attack(
    server: &Running,
    token: &str,
    id: toron_protocol::DocumentId,
    actor: Option<automerge::ActorId>,
) -> Result<(), ClientError> {
    let mut conn = connect(server, token).await?;
    let mut d = match conn.find(id, LIMIT).await {
        Ok(d) => d,
        Err(ClientError::Unavailable(_)) => DocSync::new(id, AutoCommit::new()),
        Err(e) => return Err(e),
    };
    if let Some(a) = actor {
        d.doc.set_actor(a);
    }
    d.doc.put(ROOT, "score", 1).expect("put");
    conn.push(&mut d, LIMIT).await
}

/// Exactly one rejection, for `doc`, by `participant`, and nothing else, since `from`.
fn only_a_rejection(server: &Running, from: u64, doc: &DocKey, participant: &str) {
    let evs = events_since(server, from);
    assert_eq!(
        evs.len(),
        1,
        "exactly one record after the attack on {doc}: {evs:?}"
    );
    match &evs[0] {
        Event::Rejection { rejection, .. } => {
            assert_eq!(rejection.document_id, doc.document_id());
            assert_eq!(rejection.by.participant.as_deref(), Some(participant));
            assert!(
                !rejection.hashes.is_empty(),
                "the refused change hashes are recorded"
            );
            assert!(!rejection.reason.is_empty());
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused_logged_and_invisible() {
    let (_dir, server) = secured("toron_admin_for_the_attack_suite").await;
    let tokens = roster::set_up(&server).await;
    set_phase(&server, Phase::Live).await;
    attack_suite(&server, &tokens, "").await;
    server.shutdown().await.expect("shutdown");
}

/// Every attack of the suite against a cluster's three nodes in turn (the roster made
/// through node 1): each node refuses each attack the same way, logs only the rejection, and
/// shows nothing of it to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_attack_is_refused_the_same_way_on_every_node_of_a_cluster() {
    let nats = toron_tests::nats::NatsCluster::start(3);
    let (_dirs, nodes) = nats
        .toron_nodes(3, "toron_admin_for_the_cluster_attack_suite")
        .await;
    let tokens = roster::set_up(&nodes[0]).await;
    set_phase(&nodes[0], Phase::Live).await;
    for (i, node) in nodes.iter().enumerate() {
        // The other nodes' records (their attackers leaving) are applied here first.
        let end = nodes[0].store().replica_position();
        let start = Instant::now();
        while node.store().replica_position() < end {
            assert!(start.elapsed() < LIMIT, "node {} did not catch up", i + 1);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        attack_suite(node, &tokens, &format!("-n{}", i + 1)).await;
    }
    for n in nodes {
        n.shutdown().await.expect("shutdown");
    }
}

/// The attacks, against `server`; `tag` makes the participants it adds its own.
async fn attack_suite(server: &Running, tokens: &[(Role, String)], tag: &str) {
    let tokens = tokens.to_vec();
    let activist = token(&tokens, Role::Activist);
    let evaluator = token(&tokens, Role::Evaluator);
    let eval_key = DocKey::Eval {
        case: CASE.into(),
        evaluator: who(Role::Evaluator),
    };
    let eval_id = eval_key.document_id();

    // The evaluator writes once (binding its actor id) and keeps the document open; so does
    // an observer.
    let mut ev_conn = connect(server, &evaluator).await.expect("evaluator");
    let mut ev_doc = ev_conn.find(eval_id, LIMIT).await.expect("evaluator reads");
    ev_doc.doc.put(ROOT, "criteria", "draft").expect("put");
    ev_conn
        .push(&mut ev_doc, LIMIT)
        .await
        .expect("evaluator writes");
    let evaluator_actor = ev_doc.doc.get_actor().clone();
    let mut observer = Watcher::open(server, &token(&tokens, Role::Observer), eval_id).await;

    // 1–2. An activist writes into the evaluator's evaluation, with its own actor id and with
    // the evaluator's.
    for actor in [None, Some(evaluator_actor.clone())] {
        let from = next_seq(server);
        let r = attack(server, &activist, eval_id, actor).await;
        assert!(
            matches!(&r, Err(ClientError::Server(m)) if m.contains("refused")),
            "{r:?}"
        );
        only_a_rejection(server, from, &eval_key, &who(Role::Activist));
    }
    // The evaluator's actor id, even in the activist's own notes layer.
    let own_notes = DocKey::Notes {
        session: SESSION.into(),
        participant: who(Role::Activist),
    };
    let from = next_seq(server);
    let r = attack(
        server,
        &activist,
        own_notes.document_id(),
        Some(evaluator_actor),
    )
    .await;
    assert!(
        matches!(&r, Err(ClientError::Server(m)) if m.contains("belongs to another participant")),
        "{r:?}"
    );
    only_a_rejection(server, from, &own_notes, &who(Role::Activist));
    // Counted by kind, as the engine typed them (not read back from the wording).
    let metrics = toron_tests::http_get(server.addr(), "/metrics").await;
    for kind in ["read_only", "actor"] {
        let line = format!("toron_changes_refused_by_kind_total{{kind=\"{kind}\"}} ");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&line) && !l.ends_with(" 0")),
            "{kind} refusals counted: {metrics}"
        );
    }

    // 3–5. The triage document, another participant's notes, an observer writing anything.
    let triage = DocKey::Triage {
        session: SESSION.into(),
    };
    let others_notes = DocKey::Notes {
        session: SESSION.into(),
        participant: who(Role::Evaluator),
    };
    for (tok, role, key) in [
        (&activist, Role::Activist, &triage),
        (&activist, Role::Activist, &others_notes),
        (
            &token(&tokens, Role::Observer),
            Role::Observer,
            &DocKey::Case { case: CASE.into() },
        ),
        (&token(&tokens, Role::Observer), Role::Observer, &triage),
    ] {
        let from = next_seq(server);
        let r = attack(server, tok, key.document_id(), None).await;
        assert!(
            matches!(&r, Err(ClientError::Server(m)) if m.contains("refused")),
            "{role} on {key}: {r:?}"
        );
        only_a_rejection(server, from, key, &who(role));
    }

    // 6. Unknown, revoked and truncated tokens: refused before the upgrade, nothing logged.
    let revoked_holder = &format!("P-revoked{tag}");
    let reg = server.registry();
    reg.add_participant(
        "admin",
        Participant::new(revoked_holder, "x", ParticipantKind::Activist),
    )
    .await
    .expect("participant");
    reg.grant(
        "admin",
        revoked_holder,
        Role::Activist,
        Scope::Session(SESSION.into()),
    )
    .await
    .expect("grant");
    let revoked = reg
        .issue_token("admin", revoked_holder)
        .await
        .expect("token");
    reg.revoke_token("admin", revoked_holder)
        .await
        .expect("revoke");
    let from = next_seq(server);
    for bad in [
        "toron_unknown_0000000000000000000000000000".to_string(),
        revoked,
        activist[..activist.len() - 3].to_string(),
    ] {
        let r = Connection::connect(&url_with_token(&server.url(), Some(&bad)), LIMIT).await;
        assert!(
            matches!(&r, Err(ClientError::Connect { reason, .. }) if reason.contains("401")),
            "{r:?}"
        );
    }
    assert!(
        events_since(server, from).is_empty(),
        "failed logins leave no record"
    );

    // 7. A token for another session sees nothing here and can change nothing.
    let p_s2 = format!("P-s2{tag}");
    reg.add_participant(
        "admin",
        Participant::new(&p_s2, "y", ParticipantKind::Activist),
    )
    .await
    .expect("participant");
    reg.grant("admin", &p_s2, Role::Activist, Scope::Session("S2".into()))
        .await
        .expect("grant");
    let s2 = reg.issue_token("admin", &p_s2).await.expect("token");
    let from = next_seq(server);
    for key in [&eval_key, &triage, &DocKey::Case { case: CASE.into() }] {
        let r = attack(server, &s2, key.document_id(), None).await;
        assert!(
            matches!(r, Err(ClientError::Unavailable(_))),
            "{key}: {r:?}"
        );
    }
    assert!(
        events_since(server, from).is_empty(),
        "nothing stored for an invisible document"
    );

    // 8. Creating a document nobody registered: only organizers and importers may.
    let from = next_seq(server);
    let fresh = toron_protocol::DocumentId::random();
    let r = attack(server, &activist, fresh, None).await;
    assert!(matches!(r, Err(ClientError::Unavailable(_))), "{r:?}");
    assert!(
        events_since(server, from).is_empty(),
        "nothing stored for a refused creation"
    );
    attack(server, &token(&tokens, Role::Importer), fresh, None)
        .await
        .expect("an importer creates it");
    assert!(
        server.registry().document(&fresh).is_some(),
        "registered as an ad-hoc document"
    );
    let r = attack(server, &activist, fresh, None).await;
    assert!(
        matches!(r, Err(ClientError::Unavailable(_))),
        "still invisible to the activist: {r:?}"
    );

    // Nobody else received any of it, and everybody keeps working.
    observer.saw_nothing(Duration::from_millis(300)).await;
    ev_doc.doc.put(ROOT, "criteria", "final").expect("put");
    ev_conn
        .push(&mut ev_doc, LIMIT)
        .await
        .expect("the evaluator still writes");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while toron_cli::json::doc_to_json(&observer.doc.doc)["criteria"] != serde_json::json!("final")
    {
        tokio::time::timeout_at(deadline, observer.conn.next_event(&mut [&mut observer.doc]))
            .await
            .expect("in time")
            .expect("event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_closes_the_participants_connections_within_a_second() {
    let admin_token = "toron_admin_for_the_revocation_test";
    let (_dir, server) = secured(admin_token).await;
    let tokens = roster::set_up(&server).await;
    set_phase(&server, Phase::Live).await;
    let activist = token(&tokens, Role::Activist);
    let case = DocKey::Case { case: CASE.into() }.document_id();
    let mut conns = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&server, &activist).await.expect("connect");
        let d = c.find(case, LIMIT).await.expect("read");
        conns.push((c, d));
    }

    let api = toron_cli::admin::Admin::new(&server.url(), Some(admin_token.into()), LIMIT);
    let path = format!("/api/v1/participants/{}/token", who(Role::Activist));
    let answer = tokio::task::spawn_blocking(move || api.call("DELETE", &path, None))
        .await
        .expect("join")
        .expect("revoke");
    let revoked_at = Instant::now();
    assert_eq!(answer["connections_closed"], serde_json::json!(2));
    for (mut c, mut d) in conns {
        let ended = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Err(e) = c.next_event(&mut [&mut d]).await {
                    return e;
                }
            }
        })
        .await
        .expect("closed within a second");
        assert!(
            matches!(&ended, ClientError::Server(m) if m.contains("revoked")),
            "{ended:?}"
        );
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    let again = connect(&server, &activist).await;
    assert!(
        matches!(&again, Err(ClientError::Connect { reason, .. }) if reason.contains("401")),
        "{again:?}"
    );
    server.shutdown().await.expect("shutdown");
}

/// An Automerge actor id becomes a participant's only once the change that introduced it is
/// in the log: while the batch waits for durability the registry does not show the binding,
/// and a batch the log could not store (a full disk) binds nothing. (That nobody else may take
/// the id meanwhile is `registry::tests::a_held_actor_id_is_nobody_elses`.) (`RegistryGate::bind` used to write the binding into the registry
/// during the engine's step, before the append: both `actor_owner` checks below failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_id_is_bound_only_by_a_durable_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = toron_server::store::DurabilityGate::default();
    let mut config = secure_config(dir.path());
    config.admin_token = Some("toron_admin_for_the_binding_test".into());
    config.durability_gate = Some(gate.clone());
    let server = start_with(config).await;
    let tokens = roster::set_up(&server).await;
    set_phase(&server, Phase::Live).await;
    let notes_of = |role: Role| {
        DocKey::Notes {
            session: SESSION.into(),
            participant: who(role),
        }
        .document_id()
    };
    let activist = token(&tokens, Role::Activist);
    let actor = automerge::ActorId::random();

    // 1. The activist is in (her arrival logged), then the log holds her first change with
    //    `actor` back from durability.
    let mut conn = connect(&server, &activist).await.expect("connect");
    let mut notes = conn
        .find(notes_of(Role::Activist), LIMIT)
        .await
        .expect("her notes");
    notes.doc.set_actor(actor.clone());
    notes.doc.put(ROOT, "score", 1).expect("put");
    let held = gate.hold();
    // (Driven beside the checks below, which open the gate.)
    let writing = conn.push(&mut notes, LIMIT);
    let checks = async {
        let deadline = Instant::now() + LIMIT;
        while !gate.is_holding_a_commit() {
            assert!(
                Instant::now() < deadline,
                "the change never reached the log"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            server.registry().actor_owner(actor.to_bytes()),
            None,
            "not bound while the change is not durable"
        );
        held.release();
    };
    let (written, ()) = tokio::join!(writing, checks);
    written.expect("the activist's change is stored once the gate opens");
    assert_eq!(
        server.registry().actor_owner(actor.to_bytes()).as_deref(),
        Some(who(Role::Activist).as_str()),
        "bound once durable"
    );

    // 2. A full disk: the change with a new id is not stored, and binds nothing.
    let other = automerge::ActorId::random();
    gate.fail_writes();
    let r = async {
        let mut conn = connect(&server, &activist).await?;
        let mut d = conn.find(notes_of(Role::Activist), LIMIT).await?;
        d.doc.set_actor(other.clone());
        d.doc.put(ROOT, "score", 2).expect("put");
        conn.push(&mut d, LIMIT).await
    }
    .await;
    assert!(r.is_err(), "the change could not be stored: {r:?}");
    assert_eq!(
        server.registry().actor_owner(other.to_bytes()),
        None,
        "nothing was bound by a change that is not in the log"
    );
    drop(server);
}
