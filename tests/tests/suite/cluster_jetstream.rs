//! Issue 20, first step: what a Toron cluster will stand on, checked against the real thing —
//! three Debian `nats-server` 2.9 processes in one cluster on loopback, a JetStream stream
//! with three replicas on file storage, and the `async-nats` client (its `server_2_10`…
//! features off: 2.9 refuses stream fields it does not know). Each property the cluster's
//! invariants will rely on is shown here before any Toron code relies on it:
//!
//! - per-document optimistic appends: `Nats-Expected-Last-Subject-Sequence` refuses an
//!   append made against a stale view of the document (two writers cannot interleave);
//! - one record for a change delivered twice, even through two servers (`Nats-Msg-Id`);
//! - with one server of three killed, appends are still acknowledged;
//! - with two killed, an append is refused with an error — never acknowledged — and nothing
//!   acknowledged before is lost once the quorum is back.

use std::time::{Duration, Instant};

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use toron_tests::nats::NatsCluster;

/// The stream the tests write: one subject per document.
const STREAM: &str = "TORON_TEST";
/// Every wait for the cluster (a leader elected, a server back) is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);

async fn client(url: &str) -> jetstream::Context {
    let (options, urls) = toron_server::cluster::nats_options(&[url.to_string()]);
    let c = options
        .connection_timeout(Duration::from_secs(5))
        .connect(urls)
        .await
        .expect("connect to nats");
    let mut js = jetstream::new(c);
    // An append that gets no acknowledgement within this is an error to the writer.
    js.set_timeout(Duration::from_secs(3));
    js
}

/// Creates the stream (three replicas, on file) once the cluster has elected its JetStream
/// leader; retries until then, within [`LIMIT`].
async fn stream_on(js: &jetstream::Context) -> stream::Stream {
    let start = Instant::now();
    loop {
        let config = stream::Config {
            name: STREAM.into(),
            subjects: vec!["toron.doc.>".into()],
            num_replicas: 3,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        match js.get_or_create_stream(config).await {
            Ok(s) => return s,
            Err(e) if start.elapsed() < LIMIT => {
                eprintln!("stream not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("no stream within {LIMIT:?}: {e}"),
        }
    }
}

/// Appends `payload` to document `doc` if its last record is still `expected` (0: none), as
/// change `id`; the acknowledged sequence and whether it was a duplicate.
async fn append(
    js: &jetstream::Context,
    doc: &str,
    expected: Option<u64>,
    id: &str,
    payload: &str,
) -> Result<(u64, bool), String> {
    let mut headers = HeaderMap::new();
    if let Some(e) = expected {
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, e.to_string().as_str());
    }
    headers.insert(NATS_MESSAGE_ID, id);
    let ack = js
        .publish_with_headers(
            format!("toron.doc.{doc}"),
            headers,
            payload.to_string().into(),
        )
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok((ack.sequence, ack.duplicate))
}

/// Appends until one is acknowledged (the cluster settling after a server came or went),
/// within [`LIMIT`]; how long it took.
async fn append_when_ready(js: &jetstream::Context, doc: &str, id: &str) -> Duration {
    let start = Instant::now();
    loop {
        match append(js, doc, None, id, "x").await {
            Ok(_) => return start.elapsed(),
            Err(e) if start.elapsed() < LIMIT => {
                eprintln!("append not acknowledged yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no append acknowledged within {LIMIT:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_gives_what_the_cluster_needs() {
    let mut cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3))
        .await
        .expect("cluster");
    let js1 = client(&cluster.url(0)).await;
    let js3 = client(&cluster.url(2)).await;
    let mut s = stream_on(&js1).await;
    assert_eq!(s.info().await.expect("info").config.num_replicas, 3);

    // Optimistic appends per document: the second writer, who has not seen the first's
    // record, is refused; after reading it, it appends.
    let (first, _) = append(&js1, "A", Some(0), "A-1", "first")
        .await
        .expect("first append");
    let stale = append(&js3, "A", Some(0), "A-2", "stale").await;
    assert!(
        stale
            .as_ref()
            .is_err_and(|e| e.contains("wrong last sequence")),
        "a stale append is refused: {stale:?}"
    );
    let (second, _) = append(&js3, "A", Some(first), "A-2", "second")
        .await
        .expect("an append on the latest record");
    assert!(second > first);
    // Another document's appends do not move A's last sequence.
    append(&js1, "B", Some(0), "B-1", "b").await.expect("B");
    let (third, _) = append(&js1, "A", Some(second), "A-3", "third")
        .await
        .expect("A goes on after B");

    // The same change delivered twice, through two servers, is one record.
    let (once, dup) = append(&js1, "C", None, "C-same", "c").await.expect("C");
    assert!(!dup);
    let (again, dup) = append(&js3, "C", None, "C-same", "c")
        .await
        .expect("C again");
    assert!(dup, "the second delivery is known as a duplicate");
    assert_eq!(once, again, "…and answered with the first one's sequence");

    // One server of three killed: appends go on.
    cluster.kill(1);
    let settle = append_when_ready(&js1, "D", "D-1").await;
    println!("one server killed: appends acknowledged again after {settle:?}");

    // Two killed: an append is refused with an error, not acknowledged.
    cluster.kill(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = append(&js1, "D", None, "D-2", "without a quorum").await;
    assert!(
        refused.is_err(),
        "no quorum, no acknowledgement: {refused:?}"
    );
    println!("two servers killed: the append is refused: {refused:?}");

    // The quorum back: appends are acknowledged, and every record acknowledged before is
    // there, in order.
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(1);
        cluster
    })
    .await
    .expect("restart");
    let settle = append_when_ready(&js1, "D", "D-3").await;
    println!("the quorum back: appends acknowledged after {settle:?}");
    for (seq, body) in [(first, "first"), (second, "second"), (third, "third")] {
        let m = s
            .get_raw_message(seq)
            .await
            .expect("an acknowledged record");
        assert_eq!(m.subject.as_str(), "toron.doc.A");
        assert_eq!(&m.payload[..], body.as_bytes());
    }
    let last = s
        .get_last_raw_message_by_subject("toron.doc.A")
        .await
        .expect("A's last record");
    assert_eq!(last.sequence, third);

    // The third server back: it catches up — every replica current, none offline.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(2);
        cluster
    })
    .await
    .expect("restart");
    let start = Instant::now();
    loop {
        let info = s.info().await.expect("info").clone();
        let replicas = info.cluster.map(|c| c.replicas).unwrap_or_default();
        if replicas.len() == 2 && replicas.iter().all(|r| r.current && !r.offline) {
            println!(
                "every replica current {:?} after the restart",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "the restarted server did not catch up within {LIMIT:?}: {replicas:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(js3);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("stop");
}
