//! Server benchmarks of issue 7 that need no fan-out: *ingest* and *cold start*.
//!
//! - `ingest CLIENTS SECONDS BATCH`: CLIENTS sync clients, one document each, against the
//!   release `toron-server` binary; each commits BATCH one-edit changes, sends them and waits
//!   until the server acknowledges them (durable), again and again for SECONDS. Reports durable
//!   accepted changes per second (counted from the server's log afterwards).
//! - `cold-start DOCS`: a data directory with DOCS documents; then the time from starting the
//!   binary until it accepts connections, and until a client has a random document.
//!
//! Run: `cargo run --release -p toron-tests --bin bench-server -- ingest 32 20 20` and
//! `… -- cold-start 10000`; add `--reference` to run the same against the automerge-repo
//! reference server (`bench/reference-server.mjs`, after `npm ci` in `bench/`). The clients
//! share the machine's cores with the server.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::DocumentId;

const LIMIT: Duration = Duration::from_secs(60);

fn server_binary() -> std::path::PathBuf {
    let me = std::env::current_exe().expect("path");
    me.with_file_name("e2e-toron-server")
}

/// Which server runs: ours, or the automerge-repo reference (`bench/reference-server.mjs`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Toron,
    Reference,
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: both servers finish what they were writing and exit.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Starts the server on `data`; returns it and the time until it listened.
fn start(target: Target, data: &std::path::Path) -> anyhow::Result<(Server, Duration)> {
    let t = Instant::now();
    let mut command = match target {
        Target::Toron => {
            let mut c = Command::new(server_binary());
            c.args(["--open", "--listen", "127.0.0.1:0", "--data"])
                .arg(data)
                .env("RUST_LOG", "error");
            c
        }
        Target::Reference => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let mut c = Command::new("node");
            c.arg(root.join("bench/reference-server.mjs"))
                .arg(data)
                .arg("0");
            c
        }
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start the server (build it: cargo build --release -p toron-tests; for the reference: npm ci in bench/)")?;
    let url = toron_tests::printed_url(&mut child)?;
    let listened = t.elapsed();
    Ok((Server(child, url), listened))
}

async fn ingest(target: Target, clients: usize, seconds: u64, batch: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, _) = start(target, dir.path())?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = server.1.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&url, LIMIT).await?;
            let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
            let mut n = 0u64;
            while Instant::now() < until {
                for _ in 0..batch {
                    n += 1;
                    d.doc.put(ROOT, "n", n as i64)?;
                    d.doc.commit();
                }
                conn.push(&mut d, LIMIT).await?;
            }
            conn.close().await;
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let started = Instant::now();
    let mut sent = 0;
    for t in tasks {
        sent += t.await??;
    }
    let took = started.elapsed().as_secs_f64();
    drop(server);
    if target == Target::Reference {
        // The reference acknowledges what it holds in memory and saves later (throttled):
        // its count is of acknowledged changes, not of durable ones.
        println!(
            "ingest (reference): {clients} clients × batches of {batch}: {sent} changes \
             acknowledged in {took:.1} s = {:.0} acknowledged changes/s",
            sent as f64 / took
        );
        return Ok(());
    }
    let store = toron_server::store::Store::open(dir.path(), None)?;
    let logged = store.last_global_seq()?;
    store.close();
    println!(
        "ingest: {clients} clients × batches of {batch}: {sent} changes acknowledged in {took:.1} s \
         = {:.0} durable changes/s ({logged} records in the log)",
        sent as f64 / took
    );
    Ok(())
}

async fn cold_start(target: Target, docs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut ids = Vec::with_capacity(docs);
    {
        // Fill the log through the server itself, 64 documents at a time.
        let (server, _) = start(target, dir.path())?;
        let mut conn = Connection::connect(&server.1, LIMIT).await?;
        let t = Instant::now();
        for chunk in 0..docs.div_ceil(64) {
            let mut pending = Vec::new();
            for _ in 0..64.min(docs - chunk * 64) {
                let mut doc = AutoCommit::new();
                doc.put(ROOT, "case", "작은도서관 통합 회원제")?;
                doc.put(ROOT, "n", chunk as i64)?;
                let id = DocumentId::random();
                ids.push(id);
                pending.push(DocSync::new(id, doc));
            }
            for d in &mut pending {
                conn.push(d, LIMIT).await?;
            }
        }
        conn.close().await;
        eprintln!(
            "filled {docs} documents in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        if target == Target::Reference {
            // Let its throttled saves reach the disk before it stops.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    let mut listen = Vec::new();
    let mut first = Vec::new();
    for round in 0..3 {
        let (server, listened) = start(target, dir.path())?;
        let t = Instant::now();
        let mut conn = Connection::connect(&server.1, LIMIT).await?;
        let id = ids[(round * 7919) % ids.len()];
        let mut d = conn.find(id, LIMIT).await?;
        anyhow::ensure!(d.doc.get_heads().len() == 1, "the document has its content");
        first.push(t.elapsed());
        listen.push(listened);
        conn.close().await;
    }
    listen.sort();
    first.sort();
    println!(
        "cold start of {target:?} with {docs} documents (3 starts): accepting after {:.0} / {:.0} / {:.0} ms; \
         first document served {:.1} / {:.1} / {:.1} ms after connecting (best / median / worst)",
        listen[0].as_secs_f64() * 1000.0,
        listen[1].as_secs_f64() * 1000.0,
        listen[2].as_secs_f64() * 1000.0,
        first[0].as_secs_f64() * 1000.0,
        first[1].as_secs_f64() * 1000.0,
        first[2].as_secs_f64() * 1000.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let target = if let Some(i) = args.iter().position(|a| a == "--reference") {
        args.remove(i);
        Target::Reference
    } else {
        Target::Toron
    };
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("ingest") => {
            ingest(target, num(1, 32) as usize, num(2, 20), num(3, 20) as usize).await
        }
        Some("cold-start") => cold_start(target, num(1, 10_000) as usize).await,
        _ => anyhow::bail!(
            "usage: bench-server ingest [CLIENTS SECONDS BATCH] | cold-start [DOCS]  [--reference]"
        ),
    }
}
