//! `/metrics`: scraped like Prometheus would, before and after real traffic.

use std::collections::HashMap;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_protocol::DocumentId;
use toron_server::Running;
use toron_tests::{secured, RawPeer, LIMIT};

/// GET /metrics; every sample line as `name{labels}` → value.
async fn scrape(server: &Running) -> HashMap<String, f64> {
    let text = toron_tests::http_get(server.addr(), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/openmetrics-text"), "{text}");
    let body = text.split_once("\r\n\r\n").map(|b| b.1).unwrap_or_default();
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", m.keys().collect::<Vec<_>>()))
}

#[tokio::test]
async fn metrics_move_with_connections_changes_and_errors() {
    let token = "toron_metrics_test_token_0123456789abcdef";
    let (_dir, server) = secured(token).await;
    let url = url_with_token(&server.url(), Some(token));

    let before = scrape(&server).await;
    assert_eq!(value(&before, "toron_connections"), 0.0);
    assert_eq!(value(&before, "toron_changes_accepted_total"), 0.0);
    assert_eq!(value(&before, "toron_fanout_seconds_count"), 0.0);

    // Two clients; one document created and edited five times.
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 0).expect("put");
    let mut a = DocSync::new(DocumentId::random(), doc);
    alice.push(&mut a, LIMIT).await.expect("create");
    let _b = bob.find(a.id, LIMIT).await.expect("find");
    for n in 1..=5 {
        a.doc.put(ROOT, "n", n).expect("put");
        a.doc.commit();
        alice.push(&mut a, LIMIT).await.expect("edit");
    }
    let during = scrape(&server).await;
    assert_eq!(value(&during, "toron_connections"), 2.0);
    assert_eq!(value(&during, "toron_open_documents"), 1.0);
    assert_eq!(value(&during, "toron_changes_accepted_total"), 6.0);
    assert!(value(&during, "toron_fanout_seconds_count") >= 6.0);
    assert!(value(&during, "toron_group_commit_seconds_count") >= 6.0);
    assert!(value(&during, "toron_group_commit_records_sum") >= 6.0);
    assert!(value(&during, "toron_log_records") >= 6.0);
    assert!(value(&during, "toron_log_bytes") > 0.0);

    // A broken frame, and a connection without a token, are counted by kind.
    let mut raw = RawPeer::connect(&url).await.expect("raw");
    raw.send_bytes(vec![0xff, 0x00, 0x13]).await.expect("send");
    let _ = raw.ending(LIMIT).await;
    assert!(RawPeer::connect(&server.url()).await.is_err());
    let after = scrape(&server).await;
    assert_eq!(value(&after, "toron_errors_total{kind=\"bad_frame\"}"), 1.0);
    assert_eq!(
        value(&after, "toron_errors_total{kind=\"unauthorized\"}"),
        1.0
    );

    // Closing goes back to zero connections.
    alice.close().await;
    bob.close().await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if value(&scrape(&server).await, "toron_connections") == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections never went back to 0"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await.expect("shutdown");
}

/// `--log-format json`: one JSON object per line, and a line about a connection names it.
#[tokio::test]
async fn json_logs_name_the_connection() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = toron_tests::spawn_server(
        env!("CARGO_BIN_EXE_e2e-toron-server"),
        dir.path(),
        &["--open", "--log-format", "json"],
        "info",
        std::process::Stdio::piped(),
    )
    .await;
    let mut raw = RawPeer::connect(&url).await.expect("raw");
    raw.send_bytes(vec![0xff, 0x00, 0x13]).await.expect("send");
    let _ = raw.ending(LIMIT).await;
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut lines = 0;
    let named = loop {
        let Ok(Ok(Some(l))) = tokio::time::timeout_at(deadline, err.next_line()).await else {
            panic!("no log line about the broken frame");
        };
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
        lines += 1;
        if v["fields"]["message"] == "protocol error; closing" {
            break v["span"]["conn"].clone();
        }
    };
    assert!(lines >= 3, "start-up lines are JSON too");
    assert!(
        named.as_str().is_some_and(|c| c.starts_with('c')),
        "{named}"
    );
}
