//! Durable before visible: a change another client has seen survives SIGKILL, and no sync
//! message reveals a change before the log has made it durable.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use tokio::process::{Child, Command};
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::DocumentId;
use toron_server::store::DurabilityGate;
use toron_tests::{int_at, LIMIT};

/// Starts the real server binary on a free port; returns it and its URL.
async fn spawn_server(dir: &std::path::Path) -> (Child, String) {
    toron_tests::spawn_open_server(env!("CARGO_BIN_EXE_e2e-toron-server"), dir, false).await
}

async fn wait_for(conn: &mut Connection, d: &mut DocSync, key: &str, value: i64) {
    toron_tests::receive_until(conn, d, |d| int_at(&d.doc, key) == Some(value)).await
}

#[tokio::test]
async fn a_change_another_client_has_seen_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = DocumentId::random();
    for round in 1..=3i64 {
        let (mut child, url) = spawn_server(dir.path()).await;
        let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
        let mut a = if round == 1 {
            let mut doc = AutoCommit::new();
            doc.put(ROOT, "round", 0).expect("put");
            let mut d = DocSync::new(id, doc);
            alice.push(&mut d, LIMIT).await.expect("create");
            d
        } else {
            let d = alice.find(id, LIMIT).await.expect("find after restart");
            assert_eq!(
                int_at(&d.doc, "round"),
                Some(round - 1),
                "the change seen before the kill is there"
            );
            d
        };
        let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
        let mut b = bob.find(id, LIMIT).await.expect("bob finds");

        // Alice edits and sends; the moment Bob has the change, kill -9. Alice keeps serving
        // the sync conversation meanwhile (after a Bloom-filter false positive the server has
        // to ask her for the change explicitly), but nobody waits for her acknowledgement.
        a.doc.put(ROOT, "round", round).expect("put");
        let alice_task = tokio::spawn(async move {
            let _ = alice.push(&mut a, LIMIT).await;
        });
        wait_for(&mut bob, &mut b, "round", round).await;
        child.start_kill().expect("SIGKILL");
        alice_task.abort();
        let status = tokio::time::timeout(LIMIT, child.wait())
            .await
            .expect("died")
            .expect("status");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }
    let (_child, url) = spawn_server(dir.path()).await;
    let mut carol = Connection::connect(&url, LIMIT).await.expect("carol");
    let c = carol.find(id, LIMIT).await.expect("find");
    assert_eq!(int_at(&c.doc, "round"), Some(3));
}

/// A server whose log commits pass a test-held [`DurabilityGate`], and `alice`, who created
/// document `a` with `v = 1` on it.
struct Gated {
    dir: tempfile::TempDir,
    gate: DurabilityGate,
    server: toron_server::Running,
    url: String,
    alice: Connection,
    a: DocSync,
}

async fn gated_server_with_a_document() -> Gated {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = DurabilityGate::default();
    let mut config = toron_tests::config(dir.path());
    config.durability_gate = Some(gate.clone());
    let server = toron_tests::start_with(config).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let a = toron_tests::create(&mut alice, "v", 1).await;
    Gated {
        dir,
        gate,
        server,
        url,
        alice,
        a,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sync_message_reveals_a_change_before_it_is_durable() {
    let Gated {
        dir: _dir,
        gate,
        server,
        url,
        mut alice,
        mut a,
    } = gated_server_with_a_document().await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut b = bob.find(a.id, LIMIT).await.expect("find");

    // The log writes the next change but may not declare it durable.
    let held = gate.hold();
    a.doc.put(ROOT, "v", 2).expect("put");
    let id = a.id;
    // Alice pushes and waits for the server's acknowledgement, which must wait for the log.
    let alice_task = tokio::spawn(async move {
        alice
            .push(&mut a, LIMIT)
            .await
            .expect("Alice acknowledged after durability");
        (std::time::Instant::now(), a)
    });
    let hold = Duration::from_millis(600);
    // Wait until the change is written and held at the gate.
    let deadline = std::time::Instant::now() + LIMIT;
    while !gate.is_holding_a_commit() {
        assert!(
            std::time::Instant::now() < deadline,
            "Alice's change never reached the log"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A newcomer asking now must not be shown it either.
    let carol_url = url.clone();
    let carol = tokio::spawn(async move {
        let mut carol = Connection::connect(&carol_url, LIMIT).await.expect("carol");
        let d = carol.find(id, LIMIT).await.expect("carol finds");
        (std::time::Instant::now(), int_at(&d.doc, "v"))
    });

    // Bob hears nothing while the change is not durable; Alice is not acknowledged.
    let bob_heard = tokio::time::timeout(hold, bob.next_event(&mut [&mut b])).await;
    assert!(
        bob_heard.is_err(),
        "Bob got a message before the change was durable: {bob_heard:?}"
    );
    assert_eq!(int_at(&b.doc, "v"), Some(1));
    assert!(
        !alice_task.is_finished(),
        "Alice was acknowledged before the change was durable"
    );
    assert!(!carol.is_finished(), "Carol was served the undurable state");

    let released_at = std::time::Instant::now();
    held.release();
    wait_for(&mut bob, &mut b, "v", 2).await;
    let (acked_at, a) = alice_task.await.expect("alice task");
    assert!(
        acked_at >= released_at,
        "Alice was acknowledged before the release"
    );
    let (served_at, carol_v) = carol.await.expect("carol task");
    assert!(
        served_at >= released_at,
        "Carol was answered before the release"
    );
    assert_eq!(carol_v, Some(2));
    let records = server.store().document_records(&a.id).expect("records");
    assert_eq!(records.len(), 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_with_exit_code_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = spawn_server(dir.path()).await;
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "kept", 1).expect("put");
    let mut a = DocSync::new(DocumentId::random(), doc);
    alice.push(&mut a, LIMIT).await.expect("create");
    // An edit on its way when the signal comes: if the server acknowledges it, it must be
    // in the log after the restart.
    a.doc.put(ROOT, "late", 2).expect("put");
    a.doc.commit();
    let late = a.doc.get_heads();
    alice.sync_doc(&mut a, false).await.expect("send");

    let pid = child.id().expect("pid").to_string();
    let signalled = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    // The client is told why, then the socket closes with 1001 "going away".
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut told = None;
    loop {
        let mut docs = [&mut a];
        match tokio::time::timeout_at(deadline, alice.next_event(&mut docs))
            .await
            .expect("closed in time")
        {
            Ok(_) => continue,
            Err(toron_cli::sync_client::ClientError::Server(m)) => told = Some(m),
            Err(_) => break,
        }
    }
    assert!(
        told.as_deref().is_some_and(|m| m.contains("shutting down")),
        "{told:?}"
    );
    assert_eq!(alice.closed_with.as_ref().map(|c| c.0), Some(1001));
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exited in time")
        .expect("status");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "graceful exit");
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    let acknowledged = a.server_has(&late);

    let (_child, url) = spawn_server(dir.path()).await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let b = bob.find(a.id, LIMIT).await.expect("find");
    assert_eq!(int_at(&b.doc, "kept"), Some(1));
    if acknowledged {
        assert_eq!(
            int_at(&b.doc, "late"),
            Some(2),
            "an acknowledged change was lost"
        );
    }
}

/// Where the injected storage failure strikes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// A full disk: every commit fails before it writes anything.
    FullDisk,
    /// A failing flush or fsync: the batch is in sled's memory, never made durable.
    FailedFlush,
}

/// The writer gets an `error` and its change is not acknowledged; nothing partial is logged or
/// shown — not even what sled holds in memory after a failed flush; documents already stored
/// are still served to readers; `/healthz` says `failing` (503); after a restart the log
/// verifies and holds what was acknowledged.
async fn storage_fault_refuses_writes_and_keeps_serving_reads(fault: Fault) {
    let g = gated_server_with_a_document().await;
    let (dir, gate, server, url) = (g.dir, g.gate, g.server, g.url);
    let (mut alice, mut a) = (g.alice, g.a);
    let before = server.store().last_global_seq().expect("seq");

    let expected = match fault {
        Fault::FullDisk => {
            gate.fail_writes();
            "No space left"
        }
        Fault::FailedFlush => {
            gate.fail_flushes();
            "Input/output error"
        }
    };
    a.doc.put(ROOT, "v", 2).expect("put");
    a.doc.commit();
    let refused = alice.push(&mut a, LIMIT).await;
    assert!(
        matches!(&refused, Err(toron_cli::sync_client::ClientError::Server(m)) if m.contains(expected)),
        "{refused:?}"
    );
    assert_eq!(
        server.store().last_global_seq().expect("seq"),
        before,
        "nothing partial is logged or visible"
    );

    // Reads go on: a reader gets the stored document, without the refused change (which,
    // after a failed flush, sled holds in memory: the document is loaded afresh from it).
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let b = bob.find(a.id, LIMIT).await.expect("still served");
    assert_eq!(int_at(&b.doc, "v"), Some(1));

    // /healthz reports it.
    let body = toron_tests::http_get(server.addr(), "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 503"), "{body}");
    assert!(body.contains("\"status\":\"failing\""), "{body}");
    server.shutdown().await.expect("shutdown");

    // After a restart (the disk works again), the log verifies and has v = 1 — or, after a
    // failed flush, possibly v = 2 if sled's own writes got it to the disk: it was never
    // acknowledged, so either is a consistent log.
    let (ok, out) =
        toron_tests::server_offline(env!("CARGO_BIN_EXE_e2e-toron-server"), dir.path(), "verify")
            .await;
    assert!(ok, "{out}");
    let (_child, url) = spawn_server(dir.path()).await;
    let mut carol = Connection::connect(&url, LIMIT).await.expect("carol");
    let c = carol.find(a.id, LIMIT).await.expect("find");
    let v = int_at(&c.doc, "v");
    match fault {
        Fault::FullDisk => assert_eq!(v, Some(1)),
        Fault::FailedFlush => assert!(matches!(v, Some(1 | 2)), "{v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_serving_reads_and_shows_on_healthz() {
    storage_fault_refuses_writes_and_keeps_serving_reads(Fault::FullDisk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_shows_nothing_it_did_not_make_durable() {
    storage_fault_refuses_writes_and_keeps_serving_reads(Fault::FailedFlush).await;
}
