//! Interoperability with `samod`, an independent Rust implementation of automerge-repo:
//! samod creates a document through toron-server that the `toron` CLI reads, and edits one
//! that the CLI created.

use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc, ROOT};
use samod::{BackoffConfig, Repo};
use serde_json::{json, Value};
use tokio::process::Command;
use toron_tests::LIMIT;

async fn toron(server: &str, token: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2e-toron"));
    cmd.args(["--server", server]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let out = tokio::time::timeout(LIMIT, cmd.args(args).output())
        .await
        .expect("toron in time")
        .expect("run toron");
    assert!(
        out.status.success(),
        "toron {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_and_the_cli_share_documents_through_toron_server_in_open_mode() {
    let (dir, server) = toron_tests::fresh().await;
    let url = server.url();
    exchange(&server, &url, &url, None, dir.path()).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_and_the_cli_share_documents_through_toron_server_with_a_token() {
    let token = "toron_samod_test_token_0123456789abcdef";
    let (dir, server) = toron_tests::secured(token).await;
    let url = server.url();
    // samod cannot set headers: the token rides in the URL, as for browsers.
    let samod_url = format!("{url}/sync?token={token}");
    exchange(&server, &samod_url, &url, Some(token), dir.path()).await;
    // Without the token samod is refused before the upgrade.
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial_websocket(
            samod::Url::parse(&format!("{url}/sync")).expect("url"),
            BackoffConfig {
                initial_delay: std::time::Duration::from_millis(50),
                max_delay: std::time::Duration::from_millis(50),
                max_retries: Some(0),
            },
        )
        .expect("dial");
    let refused = tokio::time::timeout(LIMIT, dialer.established())
        .await
        .expect("answered in time");
    assert!(refused.is_err(), "connected without a token");
    repo.stop().await;
}

async fn exchange(
    server: &toron_server::Running,
    samod_url: &str,
    url: &str,
    token: Option<&str>,
    dir: &std::path::Path,
) {
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial_websocket(
            samod::Url::parse(samod_url).expect("url"),
            BackoffConfig::default(),
        )
        .expect("dial");
    let peer = tokio::time::timeout(LIMIT, dialer.established())
        .await
        .expect("handshake in time")
        .expect("handshake");
    assert_eq!(
        peer.peer_id.to_string(),
        server.hub().server_peer().as_str()
    );
    let conn = dialer.connection_id().expect("connected");

    // 1. samod creates; the CLI reads.
    let mut initial = Automerge::new();
    initial
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "author", "samod")?;
            tx.put(ROOT, "count", 7)?;
            Ok(())
        })
        .expect("initial content");
    let handle = repo.create(initial).await.expect("create");
    tokio::time::timeout(LIMIT, handle.they_have_our_changes(conn))
        .await
        .expect("server has samod's document");
    let doc_url = handle.url().to_string();
    let got: Value =
        serde_json::from_str(&toron(url, token, &["get", &doc_url]).await).expect("json");
    assert_eq!(got, json!({"author": "samod", "count": 7}));

    // 2. The CLI creates; samod finds it and edits it; the CLI sees the edit.
    let file = dir.join("doc.json");
    std::fs::write(
        &file,
        json!({"author": "toron", "items": [1, 2]}).to_string(),
    )
    .expect("write");
    let cli_url = toron(url, token, &["new", "--json", file.to_str().expect("path")]).await;
    let doc_id = samod::AutomergeUrl::from_str(&cli_url).expect("samod parses our URL");
    let found = tokio::time::timeout(LIMIT, repo.find(doc_id.document_id().clone()))
        .await
        .expect("find in time")
        .expect("repo running")
        .expect("samod found the CLI's document");
    let author = found.with_document(|d| {
        d.get(ROOT, "author").expect("get").map(|(v, id)| match v {
            automerge::Value::Object(_) => d.text(&id).expect("text"),
            automerge::Value::Scalar(s) => s.to_string(),
        })
    });
    assert_eq!(author.as_deref(), Some("toron"));
    found.with_document(|d| {
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "edited_by", "samod")?;
            Ok(())
        })
        .expect("edit");
    });
    tokio::time::timeout(LIMIT, found.they_have_our_changes(conn))
        .await
        .expect("server has samod's edit");
    let got: Value =
        serde_json::from_str(&toron(url, token, &["get", &cli_url]).await).expect("json");
    assert_eq!(
        got,
        json!({"author": "toron", "items": [1, 2], "edited_by": "samod"})
    );

    repo.stop().await;
}
