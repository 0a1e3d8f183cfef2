//! History benchmark (issue 4): a notes layer of N one-edit changes (default 100,000) pushed
//! through a real secured server, then
//! - rebuild: the document's snapshot made again from its log (offline, as `rebuild` does);
//! - state at a point: `GET …/state?seq=` at random points over HTTP, p50/p99, first (cold)
//!   request apart;
//! - timeline: projecting the whole log, and a replay "as fast as possible" read by the CLI's
//!   client, in entries per second.
//!
//! Run: `cargo run --release -p toron-tests --bin bench-history -- [N]`
//! (the load generator and the server share the machine's cores).

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use rand::Rng;
use toron_cli::admin::Admin;
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_domain::policy::{DocKey, Role, Scope};
use toron_server::registry::{Participant, Session};
use toron_server::{Config, Running};

const TOKEN: &str = "toron_admin_for_the_history_benchmark";
const LIMIT: Duration = Duration::from_secs(120);

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn start(dir: &std::path::Path) -> anyhow::Result<Running> {
    let mut c = Config::new("127.0.0.1:0".parse()?, dir.to_path_buf());
    c.admin_token = Some(TOKEN.into());
    // It pushes 100,000 changes as fast as it can with one token: not what the rate bound
    // is for, nor what this measures.
    c.max_changes_per_sec_per_token = 1_000_000;
    toron_server::start(c).await
}

/// Session S1 with one activist, their token and their notes layer.
async fn bench_layer(server: &Running) -> anyhow::Result<(String, toron_protocol::DocumentId)> {
    let reg = server.registry();
    reg.put_session(
        "admin",
        Session {
            key: "S1".into(),
            series: "BM".into(),
            title: "bench".into(),
            phase: toron_domain::policy::Phase::Live,
            facilitator: None,
            item: None,
        },
    )
    .await?;
    reg.add_participant(
        "admin",
        Participant::new(
            "P-bench",
            "bench",
            toron_domain::vocab::ParticipantKind::Activist,
        ),
    )
    .await?;
    reg.grant(
        "admin",
        "P-bench",
        Role::Activist,
        Scope::Session("S1".into()),
    )
    .await?;
    let token = reg.issue_token("admin", "P-bench").await?;
    let key = DocKey::Notes {
        session: "S1".into(),
        participant: "P-bench".into(),
    };
    let id = reg.register("admin", &key, "BM").await?;
    Ok((token, id))
}

/// `n` changes of one edit each: one character typed into an annotation's body.
async fn push_changes(
    server: &Running,
    token: &str,
    id: toron_protocol::DocumentId,
    n: usize,
) -> anyhow::Result<()> {
    eprintln!("pushing {n} one-edit changes…");
    let mut conn = Connection::connect(&url_with_token(&server.url(), Some(token)), LIMIT).await?;
    let mut d = DocSync::new(id, AutoCommit::new());
    let anns = d.doc.put_object(ROOT, "annotations", ObjType::Map)?;
    let a = d.doc.put_object(&anns, "a-1", ObjType::Map)?;
    d.doc.put(&a, "kind", "comment")?;
    let body = d.doc.put_object(&a, "body", ObjType::Text)?;
    d.doc.commit();
    let syllables: Vec<char> = "토론회의견돌봄도서관교육".chars().collect();
    let mut made = 1;
    while made < n {
        for _ in 0..1_000.min(n - made) {
            let len = made - 1;
            let c = syllables[made % syllables.len()];
            d.doc.splice_text(&body, len, 0, &c.to_string())?;
            d.doc.commit();
            made += 1;
        }
        conn.push(&mut d, LIMIT).await?;
    }
    conn.close().await;
    Ok(())
}

/// Five rebuilds of the document, offline (read its log, assemble, save the snapshot), sorted.
fn rebuild_times(
    data: &std::path::Path,
    id: toron_protocol::DocumentId,
) -> anyhow::Result<Vec<Duration>> {
    let store = toron_server::store::Store::open(data, None)?;
    let mut rebuilds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let records = store.document_records(&id)?;
        let upto = records.last().map(|r| r.doc_seq).unwrap_or(0);
        let doc = toron_protocol::engine::assemble(
            None,
            records.into_iter().map(|r| r.change.bytes).collect(),
        )?;
        store.save_snapshot(&id, upto, &doc.save())?;
        rebuilds.push(t.elapsed());
    }
    rebuilds.sort();
    store.close();
    drop(store);
    Ok(rebuilds)
}

/// The state at random points over HTTP: the first request (cold cache), then 300 (sorted).
async fn states(
    url: String,
    token: String,
    id: toron_protocol::DocumentId,
    doc_len: u64,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let api = Admin::new(&url, Some(token.clone()), LIMIT);
        let mut rng = rand::rng();
        let path = |s: u64| format!("/api/v1/documents/{id}/state?seq={s}");
        let t = Instant::now();
        let first = api.call("GET", &path(rng.random_range(1..=doc_len)), None)?;
        anyhow::ensure!(first["state"].is_object(), "no state");
        let cold = t.elapsed();
        let mut warm = Vec::new();
        for _ in 0..300 {
            let s = rng.random_range(1..=doc_len);
            let t = Instant::now();
            let got = api.call("GET", &path(s), None)?;
            warm.push(t.elapsed());
            // The body at change s holds s − 1 characters (change 1 made the layer).
            let text = got["state"]["annotations"]["a-1"]["body"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .count() as u64;
            anyhow::ensure!(text == s - 1, "state at {s} has {text} characters");
        }
        warm.sort();
        Ok((cold, warm))
    })
    .await?
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = toron_tests::first_arg_or(100_000, "N (changes)")?;
    let dir = tempfile::tempdir()?;
    let server = start(dir.path()).await?;
    let (token, id) = bench_layer(&server).await?;

    // N changes of one edit each: one character typed into an annotation's body.
    let t = Instant::now();
    push_changes(&server, &token, id, n).await?;
    let doc_len = server.store().document_len(&id)?;
    eprintln!(
        "  {doc_len} changes logged in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let last_g = server.store().last_global_seq()?;
    server.shutdown().await?;

    // Rebuild of this document, offline: read its log, assemble, save the snapshot.
    let rebuilds = rebuild_times(dir.path(), id)?;

    // State at random points, over HTTP, on a fresh server (cold cache for the first).
    let server = start(dir.path()).await?;
    let (cold, warm) = states(server.url(), token, id, doc_len).await?;

    // Timeline: project the whole log, then replay it as fast as possible.
    let hub = server.hub().clone();
    let t = Instant::now();
    let checkpoint = tokio::task::spawn_blocking(move || hub.projection.catch_up()).await??;
    let projected = t.elapsed();
    anyhow::ensure!(
        checkpoint >= last_g,
        "projected up to {checkpoint} of {last_g}"
    );
    let last_g = checkpoint;
    let admin_url = server.url();
    let mut replays = Vec::new();
    let mut entries = 0;
    for _ in 0..3 {
        let u = admin_url.clone();
        let (count, took) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let t = Instant::now();
            let mut count = 0u64;
            toron_cli::history::replay(&u, Some(TOKEN), "S1", "max", None, |_| count += 1)?;
            Ok((count, t.elapsed()))
        })
        .await??;
        entries = count;
        replays.push(took);
    }
    replays.sort();
    server.shutdown().await?;

    let rate = |d: Duration| entries as f64 / d.as_secs_f64();
    println!("| measure ({n} one-edit changes) | result |");
    println!("|---|---|");
    println!(
        "| rebuild of the document (read log, assemble, save snapshot), best / median / worst of 5 | {} / {} / {} |",
        ms(rebuilds[0]),
        ms(rebuilds[2]),
        ms(rebuilds[4])
    );
    println!(
        "| state at a random point, first request (cold: snapshot + tail loaded) | {} |",
        ms(cold)
    );
    println!(
        "| state at a random point, 300 requests: p50 / p99 / max | {} / {} / {} |",
        ms(pct(&warm, 0.5)),
        ms(pct(&warm, 0.99)),
        ms(*warm.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "| timeline projection of the whole log ({last_g} records) | {} ({:.0} records/s) |",
        ms(projected),
        last_g as f64 / projected.as_secs_f64()
    );
    println!(
        "| replay `max`, {entries} entries over HTTP (SSE), best / median / worst of 3 | {:.0} / {:.0} / {:.0} entries/s |",
        rate(replays[0]),
        rate(replays[1]),
        rate(replays[2])
    );
    Ok(())
}
