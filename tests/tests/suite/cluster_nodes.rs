//! Toron nodes in a cluster (issue 20): three real `nats-server` processes hold the log (a
//! JetStream stream, three replicas); two Toron servers join it, each with its own sled as a
//! replica. What is written through one node is read through the other, live; the registry
//! is shared; both nodes' logs are the same records; a revocation made on one node closes the
//! participant's socket on the other.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use toron_cli::sync_client::{url_with_token, Connection, Event};
use toron_server::Running;
use toron_tests::nats::NatsCluster;
use toron_tests::{add_participant, create, int_at, start_with, RawPeer, LIMIT};

const ADMIN: &str = "toron_cluster-test-admin-token";

async fn node(nats: &NatsCluster, dir: &std::path::Path, name: &str) -> Running {
    start_with(nats.node_config(dir, name, ADMIN)).await
}

/// Waits (within `limit`) until `ok` holds; how long that took.
async fn within(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Receives on `conn` until `d` holds `key: value`, within `limit`.
async fn until_value(
    conn: &mut Connection,
    d: &mut toron_cli::sync_client::DocSync,
    key: &str,
    value: i64,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    while int_at(&d.doc, key) != Some(value) {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, conn.next_event(&mut [&mut *d])).await {
            Ok(Ok(Event::Synced { .. })) | Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("connection failed while waiting for {key}: {e}"),
            Err(_) => panic!("{key} = {value} did not arrive within {limit:?}"),
        }
    }
    start.elapsed()
}

/// Every record of a node's log, as stored (numbers, attribution, heads, bytes).
fn records(server: &Running) -> Vec<Vec<u8>> {
    let store = server.store();
    store
        .global_seqs()
        .expect("sequence numbers")
        .into_iter()
        .map(|g| store.raw_record(g).expect("read").expect("record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_log_the_registry_and_live_changes() {
    let nats = NatsCluster::start(3);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&nats, da.path(), "a").await;
    let b = node(&nats, db.path(), "b").await;

    // The registry is the cluster's: a participant and token made on A work on B.
    add_participant(&a, "P-KIM", "김활동", "activist").await;
    let token = a
        .registry()
        .issue_token("admin", "P-KIM")
        .await
        .expect("token");
    let took = within(Duration::from_secs(1), "the token known on B", || {
        b.registry().authenticate(&token).as_deref() == Some("P-KIM")
    })
    .await;
    eprintln!("a token issued on A authenticates on B after {took:?}");

    // A document made through A is read through B; then each node's subscriber sees the
    // other's writer's change, live.
    let mut on_a = Connection::connect(&url_with_token(&a.url(), Some(ADMIN)), LIMIT)
        .await
        .expect("connect to A");
    let mut doc_a = create(&mut on_a, "title", 1).await;
    let id = doc_a.id;
    let mut on_b = Connection::connect(&url_with_token(&b.url(), Some(ADMIN)), LIMIT)
        .await
        .expect("connect to B");
    let mut doc_b = on_b.find(id, LIMIT).await.expect("B serves A's document");
    assert_eq!(int_at(&doc_b.doc, "title"), Some(1));

    doc_a.doc.put(automerge::ROOT, "a", 2).expect("put");
    on_a.push(&mut doc_a, LIMIT).await.expect("A stores it");
    let took = until_value(&mut on_b, &mut doc_b, "a", 2, Duration::from_secs(1)).await;
    eprintln!("a change acknowledged on A reached B's subscriber after {took:?}");

    doc_b.doc.put(automerge::ROOT, "b", 3).expect("put");
    on_b.push(&mut doc_b, LIMIT).await.expect("B stores it");
    until_value(&mut on_a, &mut doc_a, "b", 3, Duration::from_secs(1)).await;
    assert_eq!(doc_a.doc.get_heads(), doc_b.doc.get_heads(), "converged");

    // An ephemeral message (a cursor) sent through A reaches B's subscriber, once.
    let cursor = toron_protocol::Message::Ephemeral {
        sender_id: on_a.peer_id.clone(),
        target_id: toron_protocol::PeerId::new("anyone").unwrap(),
        document_id: id,
        count: 1,
        session_id: "cursor-session".into(),
        data: b"\xa1fcursor\x07".to_vec(),
    };
    on_a.send(&cursor).await.expect("send");
    let sent = Instant::now();
    let mut heard = Vec::new();
    let window = Duration::from_millis(1500);
    while sent.elapsed() < window {
        let left = window.saturating_sub(sent.elapsed());
        match tokio::time::timeout(left, on_b.next_event(&mut [&mut doc_b])).await {
            Ok(Ok(Event::Ephemeral { data, .. })) => heard.push((sent.elapsed(), data)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("B's connection failed: {e}"),
            Err(_) => break,
        }
    }
    assert_eq!(
        heard.len(),
        1,
        "B's subscriber heard A's cursor once: {heard:?}"
    );
    assert_eq!(heard[0].1, b"\xa1fcursor\x07".to_vec());
    assert!(
        heard[0].0 < Duration::from_secs(1),
        "within a second: {:?}",
        heard[0].0
    );

    // Both nodes hold the same log: the same records under the same numbers, each change
    // once, and the same heads stored with each.
    let target = a
        .store()
        .replica_position()
        .max(b.store().replica_position());
    within(
        Duration::from_secs(2),
        "both nodes at the stream's end",
        || a.store().replica_position() == target && b.store().replica_position() == target,
    )
    .await;
    let (ra, rb) = (records(&a), records(&b));
    assert!(!ra.is_empty());
    assert_eq!(ra, rb, "both nodes' logs are the same records");
    let changes = a.store().document_records(&id).expect("records");
    assert_eq!(changes.len(), 3, "three changes, each once: {changes:?}");
    assert_eq!(
        changes.last().map(|r| {
            let mut h = r.change.heads_after.clone();
            h.sort();
            h
        }),
        Some({
            let mut h: Vec<[u8; 32]> = doc_a.doc.get_heads().iter().map(|h| h.0).collect();
            h.sort();
            h
        }),
        "the last record stores the document's heads"
    );

    // The CLI given every node's address uses the first that answers.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
        .args(["--server", &format!("ws://127.0.0.1:9,{}", b.url())])
        .args(["--token", ADMIN, "get", &format!("automerge:{id}")])
        .output()
        .await
        .expect("run toron");
    let got = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
    assert!(
        out.status.success() && json["b"] == 3,
        "toron with a list of nodes: {got} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Each node's metrics show its replica beside the stream, and the quorum.
    let start = Instant::now();
    loop {
        let m = toron_tests::http_get(b.addr(), "/metrics").await;
        if m.contains("toron_cluster_quorum 1") && m.contains("toron_cluster_lag_entries 0") {
            assert!(m.contains("toron_cluster_replica_position"), "{m}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no quorum shown: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A revocation made on A closes the participant's socket on B within a second.
    let mut kim = RawPeer::joined(&url_with_token(&b.url(), Some(&token)), "kim-phone")
        .await
        .expect("P-KIM joins on B");
    let revoked = Instant::now();
    assert!(a
        .registry()
        .revoke_token("admin", "P-KIM")
        .await
        .expect("revoke"));
    kim.ending(Duration::from_secs(1))
        .await
        .expect("B closed P-KIM's socket");
    eprintln!("revoked on A, closed on B after {:?}", revoked.elapsed());
    assert_eq!(b.registry().authenticate(&token), None);

    on_a.close().await;
    on_b.close().await;
    a.shutdown().await.expect("A stops");
    b.shutdown().await.expect("B stops");
}

/// A node's data directory, checked offline as an operator would (`toron-server verify`).
fn verify(dir: &std::path::Path) {
    let store = toron_server::ops::verify::open(dir).expect("open the replica");
    let report = toron_server::ops::verify::verify(&store).expect("verify");
    assert!(report.ok(), "verify found problems: {:?}", report.problems);
    store.close();
}

/// Twenty editors spread over three nodes write one document at once: every node ends with
/// every change, each once in its log, the three logs the same, and each replica verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_editors_on_three_nodes_converge_with_each_change_once() {
    const EDITORS: usize = 20;
    const EDITS: i64 = 5;
    let nats = NatsCluster::start(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        nodes.push(node(&nats, d.path(), &format!("n{}", i + 1)).await);
    }
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| url_with_token(&n.url(), Some(ADMIN)))
        .collect();
    let mut first = Connection::connect(&urls[0], LIMIT).await.expect("connect");
    let id = create(&mut first, "title", 0).await.id;

    let mut editors = Vec::new();
    for e in 0..EDITORS {
        let url = urls[e % 3].clone();
        editors.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&url, LIMIT).await.expect("connect");
            // The node may not have applied the creation yet: ask again until it has.
            let mut d = None;
            for _ in 0..100 {
                match conn.find(id, LIMIT).await {
                    Ok(found) => {
                        d = Some(found);
                        break;
                    }
                    Err(_) => {
                        conn = Connection::connect(&url, LIMIT).await.expect("connect");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            let mut d = d.expect("the document reached this node");
            for k in 0..EDITS {
                d.doc.put(automerge::ROOT, format!("e{e}"), k).expect("put");
                conn.push(&mut d, LIMIT).await.expect("stored");
            }
            conn.close().await;
        }));
    }
    for e in editors {
        e.await.expect("editor");
    }

    let expected = 1 + EDITORS * EDITS as usize;
    let stream_end = nodes
        .iter()
        .map(|n| n.store().replica_position())
        .max()
        .unwrap_or(0);
    within(
        Duration::from_secs(5),
        "every node at the stream's end",
        || {
            nodes
                .iter()
                .all(|n| n.store().replica_position() >= stream_end)
        },
    )
    .await;
    for (i, n) in nodes.iter().enumerate() {
        let mut conn = Connection::connect(&urls[i], LIMIT).await.expect("connect");
        let d = conn.find(id, LIMIT).await.expect("find");
        for e in 0..EDITORS {
            assert_eq!(
                int_at(&d.doc, &format!("e{e}")),
                Some(EDITS - 1),
                "node {i}: editor {e}'s last edit"
            );
        }
        conn.close().await;
        let recs = n.store().document_records(&id).expect("records");
        let mut hashes: Vec<[u8; 32]> = recs.iter().map(|r| r.change.hash).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!(
            (recs.len(), hashes.len()),
            (expected, expected),
            "node {i}: every change once"
        );
    }
    let logs: Vec<Vec<Vec<u8>>> = nodes.iter().map(records).collect();
    assert_eq!(logs[0], logs[1], "nodes 1 and 2 hold the same log");
    assert_eq!(logs[0], logs[2], "nodes 1 and 3 hold the same log");
    first.close().await;
    for n in nodes {
        n.shutdown().await.expect("stop");
    }
    for d in &dirs {
        verify(d.path());
    }
    // Each replica against the stream, as an operator checks a stopped node.
    for d in &dirs {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-toron-server"))
            .args(["--cluster", &nats.urls(), "--data"])
            .env("TORON_CLUSTER_KEY", toron_tests::nats::CLUSTER_KEY)
            .arg(d.path())
            .arg("verify")
            .output()
            .await
            .expect("run verify");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("against the stream"),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A record damaged in one replica is named.
    {
        let store = toron_server::ops::verify::open(dirs[1].path()).expect("open");
        store.damage_record_for_tests(5, 40).expect("damage");
        let urls: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
        let key = toron_server::cluster::auth::ClusterKey::new(toron_tests::nats::CLUSTER_KEY)
            .expect("key");
        let check = toron_server::cluster::verify::against_stream(&store, &urls, "TORON", &key)
            .await
            .expect("compare");
        assert!(
            check
                .problems
                .iter()
                .any(|p| p.contains("record 5 differs")),
            "{:?}",
            check.problems
        );
        store.close();
    }
    // A node's data directory holds the whole log: its backup restores as a single node
    // that serves every editor's last edit.
    let single = tempfile::tempdir().unwrap();
    let file = single.path().join("cluster.backup");
    toron_server::ops::backup::run_backup(dirs[2].path(), &file).expect("backup of node 3");
    let restored = single.path().join("data");
    let r = toron_server::ops::backup::run_restore(&file, &restored).expect("restore");
    assert!(r.report.ok(), "{:?}", r.report.problems);
    let mut c = toron_tests::secure_config(&restored);
    c.admin_token = Some(ADMIN.into());
    let one = start_with(c).await;
    let mut conn = Connection::connect(&url_with_token(&one.url(), Some(ADMIN)), LIMIT)
        .await
        .expect("connect");
    let d = conn
        .find(id, LIMIT)
        .await
        .expect("the restored node serves it");
    assert_eq!(
        int_at(&d.doc, &format!("e{}", EDITORS - 1)),
        Some(EDITS - 1)
    );
    conn.close().await;
    one.shutdown().await.expect("stop");
}

/// Two of three NATS servers down: a write is refused with an error that says so, never
/// acknowledged; reads go on through the nodes' replicas; with the quorum back, writing
/// resumes, and everything acknowledged before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_writes_are_refused_reads_go_on_and_writing_resumes() {
    let mut nats = NatsCluster::start(3);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&nats, da.path(), "a").await;
    let b = node(&nats, db.path(), "b").await;
    let (url_a, url_b) = (
        url_with_token(&a.url(), Some(ADMIN)),
        url_with_token(&b.url(), Some(ADMIN)),
    );
    let mut on_a = Connection::connect(&url_a, LIMIT).await.expect("connect");
    let mut doc = create(&mut on_a, "before", 1).await;
    let id = doc.id;
    within(Duration::from_secs(2), "B has the document", || {
        b.store().document_len(&id).unwrap_or(0) == 1
    })
    .await;

    nats.kill(1);
    nats.kill(2);
    // The operator sees it: /healthz says there is no quorum (reads go on, so still 200).
    let start = Instant::now();
    loop {
        let h = toron_tests::http_get(b.addr(), "/healthz").await;
        if h.contains("\"quorum\":false") {
            assert!(h.starts_with("HTTP/1.1 200"), "{h}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "quorum still shown: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    doc.doc.put(automerge::ROOT, "during", 2).expect("put");
    let refused = on_a.push(&mut doc, Duration::from_secs(20)).await;
    let Err(e) = refused else {
        panic!("a write was acknowledged without a quorum");
    };
    let said = e.to_string();
    eprintln!("without a quorum the writer is told: {said}");
    assert!(said.contains("cluster's log"), "the error says why: {said}");

    // Reads go on: B serves what it holds.
    let mut on_b = Connection::connect(&url_b, LIMIT)
        .await
        .expect("connect to B");
    let read = on_b
        .find(id, LIMIT)
        .await
        .expect("B still serves the document");
    assert_eq!(int_at(&read.doc, "before"), Some(1));
    on_b.close().await;

    nats.restart(1);
    nats.restart(2);
    let back = Instant::now();
    let mut resumed = None;
    while back.elapsed() < Duration::from_secs(60) {
        let Ok(mut conn) = Connection::connect(&url_a, LIMIT).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(mut d) = conn.find(id, LIMIT).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        d.doc.put(automerge::ROOT, "after", 3).expect("put");
        match conn.push(&mut d, Duration::from_secs(10)).await {
            Ok(()) => {
                resumed = Some(d);
                break;
            }
            Err(e) => eprintln!("not yet, {:?} after: {e}", back.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let d = resumed.expect("writing resumed once the quorum was back");
    eprintln!(
        "writing resumed {:?} after the quorum was back",
        back.elapsed()
    );
    assert_eq!(
        int_at(&d.doc, "before"),
        Some(1),
        "the acknowledged change is there"
    );
    let took = within(Duration::from_secs(30), "B has the new change", || {
        b.store().document_len(&id).unwrap_or(0) == a.store().document_len(&id).unwrap_or(0)
    })
    .await;
    eprintln!("B applied it {took:?} later");
    assert_eq!(records(&a), records(&b), "the same log on both nodes");
    a.shutdown().await.expect("stop");
    b.shutdown().await.expect("stop");
    verify(da.path());
    verify(db.path());
}

/// Who is present is the cluster's: an activist in the session through node B is in the list
/// node A gives (and pushes to its clients), and out of it once they leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_through_one_node_is_seen_through_the_other() {
    use toron_domain::policy::{DocKey, Phase, Role};
    use toron_tests::roster;
    let nats = NatsCluster::start(3);
    let (_dirs, nodes) = nats.toron_nodes(2, ADMIN).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let tokens = roster::set_up(a).await;
    roster::set_phase(a, Phase::Live).await;
    let activist = roster::who(Role::Activist);
    let triage = DocKey::Triage {
        session: roster::SESSION.into(),
    }
    .document_id();
    let end = a.store().replica_position();
    within(Duration::from_secs(2), "B caught up", || {
        b.store().replica_position() >= end
    })
    .await;

    let mut on_b = roster::connect(b, &roster::token(&tokens, Role::Activist))
        .await
        .expect("the activist connects to B");
    let _ = on_b.find(triage, LIMIT).await;
    let took = within(Duration::from_secs(1), "A lists the activist", || {
        a.hub().present_in(roster::SESSION).contains(&activist)
    })
    .await;
    eprintln!("present through B, listed on A after {took:?}");
    on_b.close().await;
    within(
        Duration::from_secs(1),
        "A no longer lists the activist",
        || !a.hub().present_in(roster::SESSION).contains(&activist),
    )
    .await;
    for n in nodes {
        n.shutdown().await.expect("stop");
    }
}

/// Issue 29: a cluster whose NATS servers ask no credentials let any local user read the whole
/// log and publish a registry entry every node applied (a token of their choosing for `admin`
/// was accepted by every node). Now the NATS servers let only the nodes' user in, and every
/// entry a node applies must carry the HMAC of the cluster's key: somebody with the NATS
/// password but not the key publishes an entry that no node applies. (Before: the forged token
/// authenticated on every node.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_client_without_the_clusters_credentials_reads_and_writes_nothing() {
    let nats = NatsCluster::start(3);
    let (_dirs, nodes) = nats.toron_nodes(2, ADMIN).await;
    // Anyone on the machine, without the nodes' NATS user: not even a connection.
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.anonymous_url(0))
        .await;
    assert!(anonymous.is_err(), "an anonymous client connected");

    // With the NATS user but without the cluster's key: an entry that would give `admin` a
    // token of the forger's choosing, claiming to come from node n1.
    let forged = "toron_forged_admin_token_for_the_cluster_test";
    let hash: String = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        forged.as_bytes(),
    ))
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect();
    let entry = toron_server::store::LogEntry::Event {
        event: toron_server::store::PendingEvent::Admin(toron_protocol::AdminAction {
            at_ms: 0,
            by: "server".into(),
            action: r#"{"token_issued":{"participant":"admin"}}"#.into(),
        }),
        registry: vec![toron_server::store::RegistryOp::Put(
            format!("token/{hash}"),
            serde_json::json!({ "participant": "admin", "issued_at_ms": 0 })
                .to_string()
                .into_bytes(),
        )],
    };
    let (options, urls) = toron_server::cluster::nats_options(&[nats.url(0)]);
    let insider = options.connect(urls).await.expect("the NATS user");
    let js = async_nats::jetstream::new(insider);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Toron-Node", "n1");
    headers.insert("Toron-Mac", "00".repeat(32).as_str());
    let ack = js
        .publish_with_headers("toron.log.event", headers, entry.encode().into())
        .await
        .expect("publish")
        .await
        .expect("the stream took it");
    // Every node has read past it…
    let deadline = Instant::now() + LIMIT;
    for n in &nodes {
        while n.store().replica_position() < ack.sequence {
            assert!(Instant::now() < deadline, "a node did not read the stream");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // …and applied nothing of it.
    for n in &nodes {
        assert!(
            n.registry().authenticate(forged).is_none(),
            "the forged token works"
        );
        let said = toron_tests::http_get_with_token(n.addr(), "/api/v1/whoami", forged).await;
        assert!(said.starts_with("HTTP/1.1 401"), "{said}");
    }
    for n in nodes {
        n.shutdown().await.expect("shutdown");
    }
}
