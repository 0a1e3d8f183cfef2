//! The crash harness (issue 8, point 1): real clients write and follow while the real server
//! binary is killed with SIGKILL at random moments, 50 times. After each kill `verify` passes
//! on the data directory; after each restart every change a writer saw acknowledged, and every
//! change a follower saw, is there; and every client resyncs what it holds.

use std::collections::BTreeSet;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use rand::Rng;
use tokio::process::Child;
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::DocumentId;
use toron_tests::LIMIT;

const CYCLES: usize = 50;
const WRITERS: usize = 3;

async fn spawn_server(dir: &std::path::Path) -> (Child, String) {
    toron_tests::spawn_open_server(env!("CARGO_BIN_EXE_e2e-toron-server"), dir, true).await
}

async fn verify(dir: &std::path::Path) -> (bool, String) {
    toron_tests::server_offline(env!("CARGO_BIN_EXE_e2e-toron-server"), dir, "verify").await
}

/// The keys `w{i}-{n}` of a document.
fn keys(doc: &AutoCommit) -> BTreeSet<String> {
    doc.keys(ROOT).collect()
}

/// One writer: its document, and the keys the server acknowledged.
struct Writer {
    doc: DocSync,
    next: usize,
    acked: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_kills_under_load_lose_no_acknowledged_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rng();
    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|_| Writer {
            doc: DocSync::new(DocumentId::random(), AutoCommit::new()),
            next: 0,
            acked: BTreeSet::new(),
        })
        .collect();
    // What the follower saw, per document, over all cycles.
    let mut seen: Vec<BTreeSet<String>> = vec![BTreeSet::new(); WRITERS];
    let started = std::time::Instant::now();
    for cycle in 0..CYCLES {
        let (mut child, url) = spawn_server(dir.path()).await;

        // 1. Everyone resyncs: each writer pushes what it holds (acknowledged or not) with a
        //    fresh sync state, and the server must then hold all of it.
        let mut conns = Vec::new();
        for w in &mut writers {
            let mut conn = Connection::connect(&url, LIMIT)
                .await
                .expect("writer connects");
            w.doc.state = automerge::sync::State::new();
            if cycle == 0 {
                w.doc.doc.put(ROOT, "start", 0).expect("put");
                w.doc.doc.commit();
            }
            conn.push(&mut w.doc, LIMIT)
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: resync failed: {e}"));
            w.acked = keys(&w.doc.doc);
            conns.push(conn);
        }
        // 2. A fresh reader finds every acknowledged and every seen change.
        let mut checker = Connection::connect(&url, LIMIT).await.expect("checker");
        for (i, w) in writers.iter().enumerate() {
            let d = checker.find(w.doc.id, LIMIT).await.expect("find");
            let have = keys(&d.doc);
            let lost: Vec<_> = w
                .acked
                .union(&seen[i])
                .filter(|k| !have.contains(*k))
                .collect();
            assert!(
                lost.is_empty(),
                "cycle {cycle}: lost {lost:?} of document {i}"
            );
        }
        checker.close().await;

        // 3. Load: writers edit as fast as acknowledgements come; a follower reads all three.
        let ids: Vec<DocumentId> = writers.iter().map(|w| w.doc.id).collect();
        let mut tasks = Vec::new();
        for (w, mut conn) in writers.drain(..).zip(conns) {
            tasks.push(tokio::spawn(async move {
                let mut w = w;
                loop {
                    let key = format!("w{}-{}", w.doc.id, w.next);
                    w.next += 1;
                    w.doc
                        .doc
                        .put(ROOT, key.as_str(), w.next as i64)
                        .expect("put");
                    w.doc.doc.commit();
                    match conn.push(&mut w.doc, Duration::from_secs(5)).await {
                        Ok(()) => {
                            w.acked.insert(key);
                        }
                        // Killed: the edit stays in the writer's copy for the next resync.
                        Err(_) => return w,
                    }
                }
            }));
        }
        let follower = {
            let url = url.clone();
            tokio::spawn(async move {
                let mut got: Vec<BTreeSet<String>> = vec![BTreeSet::new(); WRITERS];
                let Ok(mut conn) = Connection::connect(&url, LIMIT).await else {
                    return got;
                };
                let mut docs = Vec::new();
                for id in &ids {
                    match conn.find(*id, LIMIT).await {
                        Ok(d) => docs.push(d),
                        Err(_) => return got,
                    }
                }
                loop {
                    for (i, d) in docs.iter().enumerate() {
                        got[i].extend(keys(&d.doc));
                    }
                    let mut refs: Vec<&mut DocSync> = docs.iter_mut().collect();
                    if conn.next_event(&mut refs).await.is_err() {
                        return got;
                    }
                }
            })
        };

        // 4. SIGKILL at a random moment.
        let wait = rng.random_range(20..250);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.start_kill().expect("SIGKILL");
        let status = tokio::time::timeout(LIMIT, child.wait())
            .await
            .expect("died")
            .expect("status");
        assert!(!status.success());
        for t in tasks {
            let w = tokio::time::timeout(LIMIT, t)
                .await
                .expect("writer stopped")
                .expect("task");
            writers.push(w);
        }
        let got = tokio::time::timeout(LIMIT, follower)
            .await
            .expect("follower stopped")
            .expect("task");
        for (i, g) in got.into_iter().enumerate() {
            seen[i].extend(g);
        }

        // 5. The log verifies after every kill.
        let (ok, out) = verify(dir.path()).await;
        assert!(ok, "cycle {cycle}: verify failed after SIGKILL:\n{out}");
    }
    let total: usize = writers.iter().map(|w| w.acked.len()).sum();
    assert!(
        total > CYCLES,
        "too little load: {total} acknowledged changes"
    );
    eprintln!(
        "{CYCLES} kills, {total} acknowledged changes, {:?}",
        started.elapsed()
    );
}
