//! Real peers across a Toron cluster (issue 20): the official JavaScript client creates a
//! document through node 1 (and reads it back through node 3); samod finds it through node 3
//! and edits it; the JavaScript client on node 1 sees samod's edit.

use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use samod::{BackoffConfig, Repo};
use tokio::io::{AsyncBufReadExt, BufReader};
use toron_tests::nats::NatsCluster;
use toron_tests::LIMIT;

const ADMIN: &str = "toron_cluster-interop-admin";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_javascript_client_writes_on_node_1_and_samod_reads_and_answers_on_node_3() {
    let nats = NatsCluster::start(3);
    let (_dirs, nodes) = nats.toron_nodes(3, ADMIN).await;
    let sync_url = |i: usize| format!("{}/sync?token={ADMIN}", nodes[i].url());

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    toron_tests::npm_ci(&dir, "@automerge/automerge-repo");
    let mut js = tokio::process::Command::new("node")
        .arg("cluster.mjs")
        .current_dir(&dir)
        .env("NODE1_URL", sync_url(0))
        .env("NODE3_URL", sync_url(2))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(js.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the JavaScript client created and read back its document in time")
        .expect("read")
        .expect("a line");
    let doc_url = first
        .strip_prefix("url ")
        .unwrap_or_else(|| panic!("the JavaScript client said {first:?}"))
        .to_string();

    // samod through node 3: reads what JavaScript wrote through node 1 (strings as Text).
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial_websocket(
            samod::Url::parse(&sync_url(2)).expect("url"),
            BackoffConfig::default(),
        )
        .expect("dial");
    tokio::time::timeout(LIMIT, dialer.established())
        .await
        .expect("handshake in time")
        .expect("handshake");
    let conn = dialer.connection_id().expect("connected");
    let id = samod::AutomergeUrl::from_str(&doc_url).expect("url");
    let found = tokio::time::timeout(LIMIT, repo.find(id.document_id().clone()))
        .await
        .expect("find in time")
        .expect("repo running")
        .expect("node 3 serves the JavaScript client's document to samod");
    let title = found.with_document(|d| {
        d.get(ROOT, "title").expect("get").map(|(v, obj)| match v {
            automerge::Value::Object(_) => d.text(&obj).expect("text"),
            automerge::Value::Scalar(s) => s.as_str().unwrap_or_default().to_string(),
        })
    });
    assert_eq!(title.as_deref(), Some("도서관 사례"));
    found.with_document(|d| {
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "samod", "노드 3에서")?;
            Ok(())
        })
        .expect("edit");
    });
    tokio::time::timeout(LIMIT, found.they_have_our_changes(conn))
        .await
        .expect("node 3 stored samod's edit");

    // The JavaScript client on node 1 sees it.
    let said = tokio::time::timeout(Duration::from_secs(40), lines.next_line())
        .await
        .expect("the JavaScript client heard back in time")
        .expect("read");
    assert_eq!(said.as_deref(), Some("ok"));
    let status = tokio::time::timeout(LIMIT, js.wait())
        .await
        .expect("node ended")
        .expect("wait");
    assert!(status.success());
    repo.stop().await;
    for n in nodes {
        n.shutdown().await.expect("stop");
    }
}
