//! The sync server over real sockets: create, find, edit, converge, doc-unavailable, rejoin,
//! ephemeral relay, restart.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use toron_cli::sync_client::{ClientError, Connection, DocSync, Event};
use toron_protocol::{DocumentId, Message};
use toron_tests::{create, int_at, peer, start, RawPeer, LIMIT};

/// Receives until `d` satisfies `done`, within `LIMIT`.
async fn until(conn: &mut Connection, d: &mut DocSync, done: impl FnMut(&mut DocSync) -> bool) {
    toron_tests::receive_until(conn, d, done).await
}

#[tokio::test]
async fn create_find_and_edit_between_separate_clients() {
    let (_dir, server) = toron_tests::fresh().await;
    let mut alice = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("alice");
    let mut bob = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("bob");

    let mut a = create(&mut alice, "votes", 1).await;
    let mut b = bob.find(a.id, LIMIT).await.expect("bob finds it");
    assert_eq!(int_at(&b.doc, "votes"), Some(1));

    // Bob edits; Alice, who is subscribed, receives it.
    b.doc.put(ROOT, "votes", 2).expect("put");
    bob.push(&mut b, LIMIT).await.expect("stored");
    until(&mut alice, &mut a, |d| int_at(&d.doc, "votes") == Some(2)).await;

    // A third client sees both, and the log holds both changes, attributed.
    let mut carol = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("carol");
    let c = carol.find(a.id, LIMIT).await.expect("carol finds it");
    assert_eq!(int_at(&c.doc, "votes"), Some(2));
    let records = server.store().document_records(&a.id).expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].change.peer, alice.peer_id);
    assert_eq!(records[1].change.peer, bob.peer_id);
    assert_eq!((records[0].doc_seq, records[1].doc_seq), (1, 2));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_editors_converge() {
    let (_dir, server) = toron_tests::fresh().await;
    let mut owner = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("owner");
    let d = create(&mut owner, "init", 0).await;
    let id = d.id;
    let url = server.url();
    const EDITORS: usize = 20;
    const EDITS: i64 = 5;
    let mut tasks = Vec::new();
    for i in 0..EDITORS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&url, LIMIT).await.expect("connect");
            let mut d = conn.find(id, LIMIT).await.expect("find");
            for n in 1..=EDITS {
                d.doc.put(ROOT, format!("editor{i}"), n).expect("put");
                conn.push(&mut d, LIMIT).await.expect("push");
            }
            // Wait until this editor has everybody's last edit.
            until(&mut conn, &mut d, |d| {
                (0..EDITORS).all(|j| int_at(&d.doc, &format!("editor{j}")) == Some(EDITS))
            })
            .await;
            d.doc.get_heads()
        }));
    }
    let mut heads = Vec::new();
    for t in tasks {
        heads.push(t.await.expect("editor task"));
    }
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]),
        "every editor ends with the same heads"
    );
    let records = server.store().document_records(&id).expect("records");
    assert_eq!(
        records.len(),
        1 + EDITORS * EDITS as usize,
        "every change logged once"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_missing_document_is_unavailable_within_a_second_and_arrives_later() {
    let (_dir, server) = toron_tests::fresh().await;
    let mut bob = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("bob");
    let id = DocumentId::random();
    let started = std::time::Instant::now();
    match bob.find(id, Duration::from_secs(1)).await {
        Err(ClientError::Unavailable(u)) => assert_eq!(u, id),
        other => panic!("expected doc-unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered in {:?}",
        started.elapsed()
    );
    assert!(
        !server.store().exists(&id).expect("exists"),
        "nothing persisted for a missing document"
    );

    // Bob stays subscribed: when Alice uploads a document with that id, Bob receives it.
    let mut alice = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("alice");
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "late", 1).expect("put");
    let mut a = DocSync::new(id, doc);
    alice.push(&mut a, LIMIT).await.expect("push");
    let mut b = DocSync::new(id, AutoCommit::new());
    // The request's sync state lives on the server side; our fresh state just applies.
    until(&mut bob, &mut b, |d| int_at(&d.doc, "late") == Some(1)).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_rejoining_peer_id_replaces_its_old_connection_without_a_sync_loop() {
    let (_dir, server) = toron_tests::fresh().await;
    let mut alice = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("alice");
    let a = create(&mut alice, "v", 1).await;

    let mut first = RawPeer::joined(&server.url(), "peer-rejoin")
        .await
        .expect("first");
    let mut d1 = DocSync::new(a.id, AutoCommit::new());
    {
        // Sync the document over the first socket by hand.
        use automerge::sync::SyncDoc;
        let m = d1
            .doc
            .sync()
            .generate_sync_message(&mut d1.state)
            .expect("first message");
        first
            .send(&Message::Request {
                sender_id: peer("peer-rejoin"),
                target_id: peer("server"),
                document_id: a.id,
                data: m.encode(),
            })
            .await
            .expect("send");
        let reply = first.recv(LIMIT).await.expect("recv").expect("a reply");
        assert!(matches!(reply, Message::Sync { .. }), "{reply:?}");
    }

    // The same peer id joins on a new socket (a network blip): the old socket is closed.
    let mut second = Connection::connect_as(&server.url(), peer("peer-rejoin"), LIMIT)
        .await
        .expect("second");
    assert!(
        first.ending(LIMIT).await.is_ok(),
        "the old connection was closed"
    );
    let mut d2 = second
        .find(a.id, LIMIT)
        .await
        .expect("find on the new socket");
    assert_eq!(int_at(&d2.doc, "v"), Some(1));

    // The conversation settles: at most a last acknowledgement, then nothing (a sync loop
    // would keep both sides sending empty messages forever).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    let mut trailing = 0;
    while let Ok(ev) = tokio::time::timeout_at(deadline, second.next_event(&mut [&mut d2])).await {
        ev.expect("event");
        trailing += 1;
    }
    assert!(trailing <= 1, "{trailing} messages after the sync finished");

    // And the new connection still receives changes.
    let mut a = a;
    a.doc.put(ROOT, "v", 2).expect("put");
    alice.push(&mut a, LIMIT).await.expect("push");
    until(&mut second, &mut d2, |d| int_at(&d.doc, "v") == Some(2)).await;
    let frames_after = server
        .hub()
        .stats
        .frames_in
        .load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames_later = server
        .hub()
        .stats
        .frames_in
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        frames_later - frames_after <= 2,
        "{} frames arrived while idle",
        frames_later - frames_after
    );
    server.shutdown().await.expect("shutdown");
}

/// Every ephemeral message `conn` receives within `window` (sync traffic is applied, not counted).
async fn ephemera_within(
    conn: &mut Connection,
    d: &mut DocSync,
    window: Duration,
) -> Vec<(toron_protocol::PeerId, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    while let Ok(ev) = tokio::time::timeout_at(deadline, conn.next_event(&mut [&mut *d])).await {
        if let Event::Ephemeral { sender, data, .. } = ev.expect("event") {
            got.push((sender, data));
        }
    }
    got
}

#[tokio::test]
async fn an_ephemeral_message_reaches_each_other_subscriber_exactly_once() {
    let (_dir, server) = toron_tests::fresh().await;
    let mut alice = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("alice");
    let a = create(&mut alice, "v", 1).await;
    let mut bob = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("bob");
    let mut b = bob.find(a.id, LIMIT).await.expect("bob");
    let mut carol = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("carol");
    let mut c = carol.find(a.id, LIMIT).await.expect("carol");
    // A client that never asked for the document must not receive its ephemera.
    let mut dave = RawPeer::joined(&server.url(), "dave").await.expect("dave");

    let cursor = Message::Ephemeral {
        sender_id: alice.peer_id.clone(),
        target_id: alice.server_id.clone(),
        document_id: a.id,
        count: 1,
        session_id: "session-a".into(),
        data: vec![0xa1, 0x61, b'x', 0x07],
    };
    alice.send(&cursor).await.expect("send");
    for (conn, d) in [(&mut bob, &mut b), (&mut carol, &mut c)] {
        let got = ephemera_within(conn, d, Duration::from_millis(700)).await;
        assert_eq!(
            got,
            vec![(alice.peer_id.clone(), vec![0xa1, 0x61, b'x', 0x07])]
        );
    }
    // Bob echoes it back, as JS clients do, and Alice resends it by mistake: nobody gets it again.
    bob.send(&cursor).await.expect("echo");
    alice.send(&cursor).await.expect("resend");
    for (conn, d) in [(&mut bob, &mut b), (&mut carol, &mut c)] {
        let again = ephemera_within(conn, d, Duration::from_millis(500)).await;
        assert!(again.is_empty(), "delivered twice: {again:?}");
    }
    assert_eq!(
        dave.recv(Duration::from_millis(200)).await.expect("dave"),
        None
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_restart_serves_every_document_with_its_whole_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut expected = Vec::new();
    {
        let mut config = toron_tests::config(dir.path());
        config.snapshot_every = 3; // so that some documents load from a snapshot + tail
        let server = toron_tests::start_with(config).await;
        let mut conn = Connection::connect(&server.url(), LIMIT)
            .await
            .expect("connect");
        for n in 0..4 {
            let mut d = create(&mut conn, "n", 0).await;
            for i in 1..=(n * 3 + 1) {
                d.doc.put(ROOT, format!("k{i}"), i).expect("put");
                conn.push(&mut d, LIMIT).await.expect("push");
            }
            let history = d.doc.get_changes(&[]).len();
            expected.push((
                d.id,
                d.doc.get_heads(),
                history,
                toron_cli::json::doc_to_json(&d.doc),
            ));
        }
        server.shutdown().await.expect("shutdown");
    }
    for clear_snapshots in [false, true] {
        let server = start(dir.path()).await;
        if clear_snapshots {
            // Snapshots are a cache: without them every document is rebuilt from the log.
            server.store().clear_snapshots().expect("clear");
        }
        let mut conn = Connection::connect(&server.url(), LIMIT)
            .await
            .expect("connect");
        for (id, heads, history, json) in &expected {
            let mut d = conn.find(*id, LIMIT).await.expect("served after restart");
            assert_eq!(&d.doc.get_heads(), heads);
            assert_eq!(d.doc.get_changes(&[]).len(), *history, "whole history");
            assert_eq!(&toron_cli::json::doc_to_json(&d.doc), json);
        }
        server.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn healthz_reports_ok() {
    let (_dir, server) = toron_tests::fresh().await;
    let body = toron_tests::http_get(server.addr(), "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    assert!(body.contains(server.store().storage_id()), "{body}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped_and_an_active_one_is_kept() {
    let (_dir, server) =
        toron_tests::fresh_with(|config| config.ping_interval = Duration::from_millis(100)).await;
    let connections = || {
        server
            .hub()
            .stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    // An active client: its socket is read all the time, so pings get their pongs.
    let mut active = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("active");
    let reader = tokio::spawn(async move {
        let r = tokio::time::timeout(Duration::from_millis(1500), active.recv()).await;
        (r.is_err(), active)
    });
    // A silent one: joined, then never reads again, so it never answers a ping.
    let _silent = RawPeer::joined(&server.url(), "silent")
        .await
        .expect("silent");
    assert_eq!(connections(), 2);

    let deadline = tokio::time::Instant::now() + LIMIT;
    while connections() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent peer was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (still_waiting, active) = reader.await.expect("reader");
    assert!(still_waiting, "the active client's connection stayed open");
    assert_eq!(connections(), 1);
    drop(active);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn idle_documents_leave_memory_and_come_back_from_the_log() {
    let (_dir, server) =
        toron_tests::fresh_with(|config| config.idle_evict = Duration::from_millis(100)).await;
    let mut alice = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("alice");
    let a = create(&mut alice, "kept", 42).await;
    assert_eq!(server.hub().open_documents(), 1);
    alice.close().await;

    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.hub().open_documents() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle document stayed in memory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut bob = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("bob");
    let b = bob.find(a.id, LIMIT).await.expect("reloaded from the log");
    assert_eq!(int_at(&b.doc, "kept"), Some(42));
    server.shutdown().await.expect("shutdown");
}
