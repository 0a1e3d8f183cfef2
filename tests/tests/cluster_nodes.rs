//! Toron nodes in a cluster (issue 20): three real `nats-server` processes hold the log (a
//! JetStream stream, three replicas); two Toron servers join it, each with its own sled as a
//! replica. What is written through one node is read through the other, live; the registry
//! is shared; both nodes' logs are the same records; a revocation made on one node closes the
//! participant's socket on the other.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use toron_cli::sync_client::{url_with_token, Connection, Event};
use toron_server::config::ClusterConfig;
use toron_server::Running;
use toron_tests::nats::NatsCluster;
use toron_tests::{add_participant, create, int_at, secure_config, start_with, RawPeer, LIMIT};

const ADMIN: &str = "toron_cluster-test-admin-token";

async fn node(nats: &NatsCluster, dir: &std::path::Path, name: &str) -> Running {
    let mut c = secure_config(dir);
    c.admin_token = Some(ADMIN.into());
    c.cluster = Some(ClusterConfig {
        urls: nats.urls().split(',').map(str::to_string).collect(),
        node: name.into(),
        stream: "TORON".into(),
        replicas: 3,
    });
    start_with(c).await
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
