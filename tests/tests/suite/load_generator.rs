//! The load generator's light followers against the real server: a follower that keeps only
//! the change graph must get every edit, in a state the server treats as in sync, or the rate
//! benchmarks that use it would measure nothing.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::ROOT;
use tokio::time::{timeout, Instant};
use toron_cli::bench::{self, BenchConfig};
use toron_cli::light_follower::LightFollower;
use toron_cli::sync_client::Connection;
use toron_protocol::{Message, SyncKind};
use toron_tests::{create, LIMIT};

/// `toron bench --writers-per-doc 3 --light-followers` on a real server: three writers edit
/// concurrently (so the document keeps several heads), nine light followers and every writer
/// must see every edit of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_followers_receive_every_edit() {
    let (_dir, server) = toron_tests::fresh().await;
    let cfg = BenchConfig {
        server: server.url(),
        clients: 12,
        docs: 1,
        interval: Duration::from_millis(20),
        duration: Duration::from_secs(3),
        drain: Duration::from_secs(8),
        server_pid: None,
        writers_per_doc: Some(3),
        text: false,
        light_followers: true,
    };
    let report = timeout(Duration::from_secs(60), bench::run(cfg, |_| {}))
        .await
        .expect("bench finished in time")
        .expect("bench ran");
    assert_eq!(report.errors, 0, "{:?}", report.first_errors);
    assert_eq!(report.writers, 3);
    assert!(report.edits >= 300, "{} edits", report.edits);
    assert_eq!(report.expected_deliveries, report.edits * 11);
    assert_eq!(report.deliveries, report.expected_deliveries);
    server.shutdown().await.expect("clean shutdown");
}

/// A light follower and a full follower on one document: after a writer's bursts of edits,
/// both hold the writer's heads, and the light one took in exactly the writer's changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_follower_ends_where_a_full_one_does() {
    let (_dir, server) = toron_tests::fresh().await;
    let url = server.url();
    let mut writer = Connection::connect(&url, LIMIT).await.expect("writer");
    let mut w = create(&mut writer, "title", 0).await;
    let id = w.id;

    let mut full_conn = Connection::connect(&url, LIMIT).await.expect("full");
    let mut full = full_conn.find(id, LIMIT).await.expect("find");
    let mut light_conn = Connection::connect(&url, LIMIT).await.expect("light");
    let mut found = light_conn.find(id, LIMIT).await.expect("find");
    let mut light = LightFollower::from_document(found.doc.document());
    let start_len = light.len();

    for burst in 0..10i64 {
        for k in 0..5i64 {
            w.doc.put(ROOT, format!("k{k}"), burst).expect("put");
            w.doc.commit();
        }
        writer.sync_doc(&mut w, false).await.expect("sync");
    }
    writer.push(&mut w, LIMIT).await.expect("acknowledged");
    let want = w.heads();

    let deadline = Instant::now() + LIMIT;
    let mut joined = 0;
    while light.heads() != want {
        let msg = tokio::time::timeout_at(deadline, light_conn.recv())
            .await
            .expect("the light follower caught up in time")
            .expect("recv");
        if let Message::Sync { data, .. } = msg {
            let m = automerge::sync::Message::decode(&data).expect("decode");
            joined += light.receive(&m).expect("changes check").len();
            if let Some(reply) = light.reply(&m.heads) {
                light_conn
                    .send_sync(SyncKind::Sync, id, reply)
                    .await
                    .expect("reply");
            }
        }
    }
    while full.heads() != want {
        let ev = tokio::time::timeout_at(deadline, full_conn.next_event(&mut [&mut full]))
            .await
            .expect("the full follower caught up in time");
        ev.expect("event");
    }
    assert_eq!(joined, 50);
    assert_eq!(light.len(), start_len + 50);
    assert_eq!(light.heads(), full.heads());
    server.shutdown().await.expect("clean shutdown");
}
