//! `toron-server verify` passes on a data directory made by a randomised workload, and fails,
//! naming the record, after one byte of a stored record is flipped. `rebuild` makes snapshots
//! that verify.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use rand::Rng;
use tokio::process::Command;
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::{DocumentId, Event};
use toron_tests::{config, start_with, LIMIT};

async fn offline(dir: &std::path::Path, command: &str) -> (bool, String) {
    let out = tokio::time::timeout(
        LIMIT,
        Command::new(env!("CARGO_BIN_EXE_e2e-toron-server"))
            .arg("--data")
            .arg(dir)
            .arg(command)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("in time")
    .expect("run");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_a_random_workload_and_names_a_damaged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.snapshot_every = 7;
    let server = start_with(cfg).await;
    let mut rng = rand::rng();
    let ids: Vec<DocumentId> = (0..4).map(|_| DocumentId::random()).collect();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(
            Connection::connect(&server.url(), LIMIT)
                .await
                .expect("connect"),
        );
    }
    let mut docs: Vec<Vec<Option<DocSync>>> =
        (0..3).map(|_| ids.iter().map(|_| None).collect()).collect();
    for step in 0..60 {
        let (c, d) = (rng.random_range(0..3), rng.random_range(0..4));
        let conn = &mut clients[c];
        let slot = &mut docs[c][d];
        if slot.is_none() {
            *slot = Some(match conn.find(ids[d], LIMIT).await {
                Ok(found) => found,
                Err(_) => DocSync::new(ids[d], AutoCommit::new()),
            });
        }
        let ds = slot.as_mut().expect("doc");
        ds.doc
            .put(ROOT, format!("k{}", rng.random_range(0..10)), step)
            .expect("put");
        conn.push(ds, LIMIT).await.expect("push");
    }
    let events = server.store().events(0, 10_000).expect("events");
    server.shutdown().await.expect("shutdown");

    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "{out}");
    assert!(out.contains("60 changes, 4 documents"), "{out}");

    let (ok, out) = offline(dir.path(), "rebuild").await;
    assert!(ok && out.contains("4 documents"), "{out}");
    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "after rebuild: {out}");

    // Flip one byte of one stored change record.
    let victim = events
        .iter()
        .filter_map(|e| {
            if let Event::Change(c) = e {
                Some(c.global_seq)
            } else {
                None
            }
        })
        .nth(17)
        .expect("a change");
    {
        let store = toron_server::store::Store::open(dir.path(), None).expect("open");
        store.damage_record_for_tests(victim, 40).expect("damage");
        store.close();
    }
    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(!ok, "verify passed a damaged log: {out}");
    assert!(
        out.contains(&format!("record {victim}")),
        "the damaged record is named: {out}"
    );
}
