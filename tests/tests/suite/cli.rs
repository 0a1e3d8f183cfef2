//! The `toron` command line against a real server: new, get, set, watch, and its errors.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use toron_tests::LIMIT;

async fn toron(server: &str, args: &[&str]) -> Output {
    toron_tests::toron_output(&["--server", server, "--timeout", "5"], args).await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_get_set_and_watch() {
    let (dir, server) = toron_tests::fresh().await;
    let url = server.url();
    let file = dir.path().join("case.json");
    let content =
        json!({"government": "성북구", "sections": {"summary": "도서관 네트워크"}, "score": 3});
    std::fs::write(&file, content.to_string()).expect("write");

    let created = toron(&url, &["new", "--json", file.to_str().expect("path")]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let doc_url = stdout(&created);
    assert!(doc_url.starts_with("automerge:"), "{doc_url}");

    let got = toron(&url, &["get", &doc_url]).await;
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&got)).expect("json"),
        content
    );

    // Follow the document while somebody edits it.
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
        .args(["--server", &url, "watch", &doc_url, "--count", "1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch");
    let mut lines = BufReader::new(watcher.stdout.take().expect("stdout")).lines();
    let first = toron_tests::next_line(&mut lines).await;
    assert_eq!(
        serde_json::from_str::<Value>(&first).expect("json"),
        content
    );

    let set = toron(&url, &["set", &doc_url, "sections.gaps", "\"예산 부족\""]).await;
    assert!(set.status.success(), "{}", stderr(&set));
    let set = toron(&url, &["set", &doc_url, "score", "4"]).await;
    assert!(set.status.success(), "{}", stderr(&set));

    let update = toron_tests::next_line(&mut lines).await;
    let update: Value = serde_json::from_str(&update).expect("json");
    assert_eq!(update["sections"]["gaps"], json!("예산 부족"));
    let status = tokio::time::timeout(LIMIT, watcher.wait())
        .await
        .expect("watch ended")
        .expect("status");
    assert!(status.success(), "watch --count 1 ends by itself");

    let got = toron(&url, &["get", &doc_url]).await;
    let v: Value = serde_json::from_str(&stdout(&got)).expect("json");
    assert_eq!(v["score"], json!(4));
    assert_eq!(v["sections"]["summary"], json!("도서관 네트워크"));

    // `new` without content makes an empty document that exists.
    let empty = toron(&url, &["new"]).await;
    assert!(empty.status.success(), "{}", stderr(&empty));
    let got = toron(&url, &["get", &stdout(&empty)]).await;
    assert_eq!(stdout(&got), "{}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn clear_errors_and_exit_codes() {
    let (_dir, server) = toron_tests::fresh().await;
    let url = server.url();

    let unknown = toron(&url, &["get", "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("does not have document 4NMNnkMhL8jXrdJ9jamS58PAVdXu"),
        "{}",
        stderr(&unknown)
    );

    let bad_url = toron(&url, &["get", "automerge:nonsense"]).await;
    assert_eq!(bad_url.status.code(), Some(2), "usage error");

    // A port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let refused = toron(
        &format!("ws://127.0.0.1:{port}"),
        &["get", "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("could not connect"),
        "{}",
        stderr(&refused)
    );

    // A server that accepts and never answers: a timeout, not a hang.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("ws://{}", silent.local_addr().expect("addr"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
        .args([
            "--server",
            &silent_url,
            "--timeout",
            "1",
            "get",
            "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu",
        ])
        .output();
    let timed_out = tokio::time::timeout(LIMIT, out)
        .await
        .expect("in time")
        .expect("run");
    assert_eq!(timed_out.status.code(), Some(1));
    assert!(
        stderr(&timed_out).contains("timed out"),
        "{}",
        stderr(&timed_out)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.abort();
    server.shutdown().await.expect("shutdown");
}

/// Issue 16's small ones: a refused token says where tokens come from, an `http://` address
/// (what a person copies from the browser) works, and `toron … | head` ends quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_addresses_and_pipes_as_people_use_them() {
    let admin = "toron_admin_for_the_cli_usage_test";
    let (_dir, server) = toron_tests::secured(admin).await;
    let http = server.url().replace("ws://", "http://");
    let run = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
            .args(args)
            .output()
    };
    let args = |token: &str, rest: &[&str]| {
        let mut v = vec![
            "--server".to_string(),
            http.clone(),
            "--token".to_string(),
            token.to_string(),
        ];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    // A wrong token, on the WebSocket and on the HTTP API.
    for rest in [
        &["get", "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"][..],
        &["admin", "participant", "list"][..],
    ] {
        let out = tokio::time::timeout(LIMIT, run(args("toron_wrong", rest)))
            .await
            .expect("in time")
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("401") && err.contains("TORON_TOKEN") && err.contains("admin-token"),
            "{rest:?}: {err}"
        );
    }
    // The right token with an http:// address: a document made and read back.
    let made = tokio::time::timeout(LIMIT, run(args(admin, &["new"])))
        .await
        .expect("in time")
        .expect("run");
    assert!(made.status.success(), "{}", stderr(&made));
    let url = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let got = tokio::time::timeout(LIMIT, run(args(admin, &["get", &url])))
        .await
        .expect("in time")
        .expect("run");
    assert!(got.status.success(), "{}", stderr(&got));
    // A reader that stops after one line: `watch` prints, its pipe closes, it ends at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
        .args(args(admin, &["watch", &url, "--count", "1000"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("in time")
        .expect("read");
    assert!(first.is_some());
    drop(lines);
    // Something to print into the closed pipe.
    let set = tokio::time::timeout(LIMIT, run(args(admin, &["set", &url, "k", "1"])))
        .await
        .expect("in time")
        .expect("run");
    assert!(set.status.success(), "{}", stderr(&set));
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("ends once its reader is gone")
        .expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    server.shutdown().await.expect("shutdown");
}
