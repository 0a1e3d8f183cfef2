//! The cluster's crash harness (issue 20): three `nats-server`s, three Toron node processes
//! (the real binary with `--cluster`), one writer per node editing its own document all the
//! while. Twenty times a random Toron node is killed with SIGKILL and started again on its
//! data directory; five times a random NATS server is killed and started again. Writers whose
//! node died reconnect to another node and resync. At the end: every change a writer had
//! acknowledged is on every node, every writer is back in sync, the three logs are the same
//! records, and `verify` passes on every node's replica.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::ReadDoc;
use rand::{Rng, SeedableRng};
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_tests::nats::NatsCluster;
use toron_tests::{create, spawn_server, LIMIT};

const ADMIN: &str = "toron_crash-harness-admin";
const NODE_KILLS: usize = 20;
const NATS_KILLS: usize = 5;
const WRITERS: usize = 3;

struct Node {
    name: String,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

async fn start(
    bin: &str,
    nats: &str,
    node: &mut Node,
    urls: &Mutex<Vec<Option<String>>>,
    i: usize,
) {
    let args = [
        "--cluster",
        nats,
        "--node",
        node.name.as_str(),
        "--admin-token",
        ADMIN,
        "--presence-grace-secs",
        "0",
        "--cluster-key",
        toron_tests::nats::CLUSTER_KEY,
    ];
    let (child, url) = spawn_server(
        bin,
        node.dir.path(),
        &args,
        "warn",
        std::process::Stdio::null(),
    )
    .await;
    node.child = Some(child);
    urls.lock().unwrap()[i] = Some(url_with_token(&url, Some(ADMIN)));
}

/// One writer: an edit every few milliseconds to its own document, pushed until the node
/// acknowledges it; on any error it reconnects — to the next node that answers — and resyncs.
/// Returns the last edit acknowledged and the longest time it was without a node.
async fn writer(
    w: usize,
    mut d: DocSync,
    urls: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> (DocSync, Duration) {
    let mut conn: Option<Connection> = None;
    let mut n: u64 = 0;
    let mut longest = Duration::ZERO;
    let mut lost_at: Option<Instant> = None;
    let mut next = w;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = conn.as_mut() else {
            let candidates: Vec<String> = urls.lock().unwrap().iter().flatten().cloned().collect();
            next += 1;
            let Some(url) = candidates.get(next % candidates.len().max(1)).cloned() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            if let Ok(c) = Connection::connect(&url, Duration::from_secs(2)).await {
                d.state = automerge::sync::State::new();
                conn = Some(c);
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        };
        d.doc
            .put(automerge::ROOT, format!("w{w}-{n}"), n as i64)
            .expect("put");
        match c.push(&mut d, Duration::from_secs(15)).await {
            Ok(()) => {
                acked.store(n, Ordering::SeqCst);
                n += 1;
                if let Some(at) = lost_at.take() {
                    longest = longest.max(at.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(_) => {
                // The edit stays in our copy and goes with the resync on the next node.
                lost_at.get_or_insert_with(Instant::now);
                n += 1;
                conn = None;
            }
        }
    }
    // Back in sync at the end: everything of ours acknowledged by some node.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let candidates: Vec<String> = urls.lock().unwrap().iter().flatten().cloned().collect();
        for url in candidates {
            if let Ok(mut c) = Connection::connect(&url, LIMIT).await {
                d.state = automerge::sync::State::new();
                if c.push(&mut d, Duration::from_secs(15)).await.is_ok() {
                    c.close().await;
                    return (d, longest);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "writer {w} not back in sync within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_node_kills_and_five_nats_kills_lose_nothing_acknowledged() {
    let bin = env!("CARGO_BIN_EXE_e2e-toron-server");
    let mut nats = NatsCluster::start(3);
    let nats_urls = nats.urls();
    let urls = Arc::new(Mutex::new(vec![None; 3]));
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node {
            name: format!("n{}", i + 1),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        })
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        start(bin, &nats_urls, n, &urls, i).await;
    }

    // One document per writer, made through node 1.
    let first = urls.lock().unwrap()[0].clone().unwrap();
    let mut maker = Connection::connect(&first, LIMIT).await.expect("connect");
    let mut docs = Vec::new();
    for w in 0..WRITERS {
        docs.push(create(&mut maker, &format!("writer{w}"), 0).await);
    }
    maker.close().await;
    let ids: Vec<_> = docs.iter().map(|d| d.id).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Vec<Arc<AtomicU64>> = (0..WRITERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = docs
        .into_iter()
        .enumerate()
        .map(|(w, d)| tokio::spawn(writer(w, d, urls.clone(), stop.clone(), acked[w].clone())))
        .collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let started = Instant::now();
    for cycle in 0..NODE_KILLS + NATS_KILLS {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if cycle % 5 == 4 {
            let i = rng.random_range(0..3);
            eprintln!("cycle {cycle}: killing nats-server {}", i + 1);
            tokio::task::block_in_place(|| {
                nats.kill(i);
                std::thread::sleep(Duration::from_millis(500));
                nats.restart(i);
            });
            // Let its replica catch up before anything else dies.
            tokio::time::sleep(Duration::from_secs(2)).await;
        } else {
            let i = rng.random_range(0..3);
            eprintln!("cycle {cycle}: killing Toron node {}", nodes[i].name);
            urls.lock().unwrap()[i] = None;
            if let Some(mut c) = nodes[i].child.take() {
                c.start_kill().expect("SIGKILL");
                let _ = c.wait().await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            start(bin, &nats_urls, &mut nodes[i], &urls, i).await;
        }
    }
    let acked_before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    eprintln!(
        "{} cycles in {:?}; acknowledged edits per writer: {acked_before:?}",
        NODE_KILLS + NATS_KILLS,
        started.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    let mut finals = Vec::new();
    for w in writers {
        let (d, longest) = w.await.expect("writer");
        eprintln!("a writer was without a node for at most {longest:?}");
        finals.push(d);
    }
    assert!(
        acked_before.iter().all(|&n| n > 20),
        "the writers made progress through the kills: {acked_before:?}"
    );

    // Every node holds every acknowledged edit, and what each writer finally has.
    let node_urls: Vec<String> = urls.lock().unwrap().iter().flatten().cloned().collect();
    for url in &node_urls {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (w, id) in ids.iter().enumerate() {
            loop {
                let mut c = Connection::connect(url, LIMIT).await.expect("connect");
                let d = c.find(*id, LIMIT).await.expect("find");
                c.close().await;
                let want = finals[w].doc.get_heads();
                if d.doc.get_missing_deps(&want).is_empty() {
                    for n in 0..=acked_before[w] {
                        assert!(
                            d.doc
                                .get(automerge::ROOT, format!("w{w}-{n}"))
                                .unwrap()
                                .is_some(),
                            "{url}: writer {w}'s acknowledged edit {n} is missing"
                        );
                    }
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{url} did not get writer {w}'s edits"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // Stopped gracefully, each replica verifies, and the three logs are the same records.
    for n in nodes.iter_mut() {
        if let Some(mut c) = n.child.take() {
            let pid = c.id().expect("pid").to_string();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
    }
    let mut logs = Vec::new();
    for n in &nodes {
        let store = toron_server::ops::verify::open(n.dir.path()).expect("open");
        let report = toron_server::ops::verify::verify(&store).expect("verify");
        assert!(report.ok(), "{}: {:?}", n.name, report.problems);
        let records: Vec<Vec<u8>> = store
            .global_seqs()
            .expect("seqs")
            .into_iter()
            .map(|g| store.raw_record(g).expect("read").expect("record"))
            .collect();
        logs.push(records);
        store.close();
    }
    let shortest = logs.iter().map(Vec::len).min().unwrap_or(0);
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(
            l[..shortest],
            logs[0][..shortest],
            "node {} and node 1 hold the same records",
            i + 1
        );
    }
}
