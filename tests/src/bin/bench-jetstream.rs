//! Issue 20's first measurements, before the cluster is built: what a JetStream
//! acknowledgement costs beside a local `fdatasync`, and what every node appending to one
//! document (optimistic, `Nats-Expected-Last-Subject-Sequence`) costs beside one writer per
//! document — the figures the ownership decision is taken on (ARCHITECTURE.md).
//!
//! Run: `cargo run --release -p toron-tests --bin bench-jetstream -- 2000` (appends per
//! scenario). It starts three Debian `nats-server` 2.9 processes on loopback (`apt-get install
//! nats-server`); they, the benchmark and its clients share the machine's cores, and all three
//! replicas share one disk.

use std::io::Write;
use std::time::{Duration, Instant};

use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use toron_tests::nats::NatsCluster;

const LIMIT: Duration = Duration::from_secs(30);

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
    };
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        v.len()
    )
}

async fn context(url: &str) -> anyhow::Result<jetstream::Context> {
    let (options, urls) = toron_server::cluster::nats_options(&[url.to_string()]);
    let c = options.connect(urls).await?;
    let mut js = jetstream::new(c);
    js.set_timeout(Duration::from_secs(5));
    Ok(js)
}

/// A stream of `replicas` on file for `subjects`, once the cluster has a JetStream leader.
async fn stream_of(
    js: &jetstream::Context,
    name: &str,
    subjects: &str,
    replicas: usize,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let config = stream::Config {
            name: name.into(),
            subjects: vec![subjects.into()],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        match js.get_or_create_stream(config).await {
            Ok(_) => return Ok(()),
            Err(_) if start.elapsed() < LIMIT => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => anyhow::bail!("no stream {name} within {LIMIT:?}: {e}"),
        }
    }
}

/// `n` appends one after the other (each waits for its acknowledgement) to `subject`.
async fn sequential(
    js: &jetstream::Context,
    subject: &str,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        js.publish(subject.to_string(), format!("change {i}").into())
            .await?
            .await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// One writer's `n` appends to `subject`, each only on top of the record it last saw: a
/// refusal (another writer was first) costs a read of the last record and a retry. The
/// latency of each append until acknowledged, and how many refusals there were.
async fn optimistic(
    js: jetstream::Context,
    subject: String,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let stream = js.get_stream_no_info("CONTENDED").await?;
    let mut last = 0u64;
    let mut refused = 0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        loop {
            let mut h = HeaderMap::new();
            h.insert(
                NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                last.to_string().as_str(),
            );
            let ack = js
                .publish_with_headers(subject.clone(), h, format!("change {i}").into())
                .await?
                .await;
            match ack {
                Ok(a) => {
                    last = a.sequence;
                    break;
                }
                Err(e) if e.to_string().contains("wrong last sequence") => {
                    refused += 1;
                    last = stream
                        .get_last_raw_message_by_subject(&subject)
                        .await?
                        .sequence;
                }
                Err(e) => return Err(e.into()),
            }
        }
        out.push(t.elapsed());
    }
    Ok((out, refused))
}

/// `n` writes of 200 bytes to a file in `dir`, each followed by `fdatasync`: what one Toron
/// node waits for before it acknowledges (its group commit makes one per batch).
fn fdatasync(dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut f = std::fs::File::create(dir.join("log"))?;
    let record = [7u8; 200];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&record)?;
        f.sync_data()?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Writer `i` (on server `i`) appends `n` times to `subjects[i]`, all at once: the rate, the
/// refusals and the latencies, in words.
async fn writers(
    js: &[jetstream::Context],
    subjects: Vec<String>,
    n: usize,
) -> anyhow::Result<String> {
    let t = Instant::now();
    let runs: Vec<_> = js
        .iter()
        .zip(subjects)
        .map(|(c, subject)| tokio::spawn(optimistic(c.clone(), subject, n)))
        .collect();
    let (mut all, mut refused) = (Vec::new(), 0);
    for r in runs {
        let (lat, x) = r.await??;
        all.extend(lat);
        refused += x;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        "{:.0} appends/s, {refused} refusals for {} appends; {}",
        all.len() as f64 / secs,
        all.len(),
        percentiles(all)
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = toron_tests::first_arg_or(2000, "the number of appends")?;
    let cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3)).await?;
    let js: Vec<jetstream::Context> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(context(&cluster.url(i)).await?);
        }
        v
    };
    stream_of(&js[0], "R3", "r3.>", 3).await?;
    stream_of(&js[0], "R1", "r1.>", 1).await?;
    stream_of(&js[0], "CONTENDED", "c.>", 3).await?;

    let dir = tempfile::tempdir()?;
    println!(
        "local write + fdatasync: {}",
        percentiles(fdatasync(dir.path(), n)?)
    );
    println!(
        "JetStream R1 ack, one writer: {}",
        percentiles(sequential(&js[0], "r1.doc", n).await?)
    );
    println!(
        "JetStream R3 ack, one writer: {}",
        percentiles(sequential(&js[0], "r3.doc", n).await?)
    );

    // One document, three writers (one per server), each appending on top of what it saw;
    // then three documents, one writer each (an owner per document).
    let same = vec!["c.same".to_string(); 3];
    println!(
        "one document, three writers (optimistic): {}",
        writers(&js, same, n / 3).await?
    );
    let own = (0..3).map(|i| format!("c.own{i}")).collect();
    println!(
        "three documents, one writer each: {}",
        writers(&js, own, n / 3).await?
    );
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}
