//! The same answers from every node of a cluster (issue 20): the example debate imported
//! through node 1; then the report, the export, a session's timeline, a document's history,
//! its state at a change and a diff, asked of each of the three nodes, are the same (the
//! report's links name the node asked, as they name the server's own address).

use std::time::{Duration, Instant};

use toron_server::Running;
use toron_tests::nats::NatsCluster;
use toron_tests::toron;

const ADMIN: &str = "toron_cluster-views-admin";

fn bundle() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/debate-bundle.json")
        .to_string_lossy()
        .into_owned()
}

/// `toron ARGS` against `node`, which must succeed; its standard output with the node's own
/// address made neutral.
async fn ask(node: &Running, args: &[&str]) -> String {
    let (ok, out, err) = toron(node, ADMIN, args).await;
    assert!(ok, "toron {args:?} on {}: {err}", node.url());
    out.replace(&node.addr().to_string(), "NODE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_gives_the_same_report_export_timeline_and_history() {
    let nats = NatsCluster::start(3);
    let (_dirs, nodes) = nats.toron_nodes(3, ADMIN).await;
    let imported = ask(&nodes[0], &["import", &bundle()]).await;
    assert!(imported.contains("batch"), "{imported}");
    let end = nodes[0].store().replica_position();
    let start = Instant::now();
    while nodes.iter().any(|n| n.store().replica_position() < end) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nodes did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let case = toron_domain::policy::DocKey::Case {
        case: "C-LIB-HB".into(),
    }
    .document_id()
    .url()
    .to_string();
    // The session's triage, which the import wrote change by change.
    let triage = toron_domain::policy::DocKey::Triage {
        session: "S-LIB".into(),
    }
    .document_id()
    .url()
    .to_string();
    let questions: Vec<Vec<&str>> = vec![
        vec!["report", "HB-BENCH-2012", "--format", "md"],
        vec!["report", "HB-BENCH-2012", "--format", "csv"],
        vec!["export", "HB-BENCH-2012"],
        vec!["history", "S-LIB"],
        vec!["history", &case],
        vec!["at", &triage, "--seq", "2"],
        vec!["diff", &triage, "1", "3"],
    ];
    for q in &questions {
        let first = ask(&nodes[0], q).await;
        assert!(first.len() > 20, "{q:?} answered {first:?}");
        for (i, n) in nodes.iter().enumerate().skip(1) {
            let other = ask(n, q).await;
            assert_eq!(other, first, "node {} answers {q:?} as node 1 does", i + 1);
        }
    }
    for n in nodes {
        n.shutdown().await.expect("stop");
    }
}

/// A single node's backup restored into a new cluster's stream: the nodes started on it give
/// the report, the export and the timeline the single node gave; a second restore into the
/// same stream is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_nodes_backup_restored_into_a_cluster_answers_as_it_did() {
    let (single_dir, single) = toron_tests::secured(ADMIN).await;
    ask(&single, &["import", &bundle()]).await;
    let questions: Vec<Vec<&str>> = vec![
        vec!["report", "HB-BENCH-2012", "--format", "md"],
        vec!["export", "HB-BENCH-2012"],
        vec!["history", "S-LIB"],
    ];
    let mut before = Vec::new();
    for q in &questions {
        before.push(ask(&single, q).await);
    }
    single.shutdown().await.expect("stop");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("single.backup");
    toron_server::ops::backup::run_backup(single_dir.path(), &file).expect("backup");

    let nats = NatsCluster::start(3);
    let restore = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-toron-server"))
            .args(["--cluster", &nats.urls(), "--node", "restorer", "--data"])
            .env("TORON_CLUSTER_KEY", toron_tests::nats::CLUSTER_KEY)
            .arg(work.path().join("unused"))
            .arg("restore")
            .arg(&file)
            .output()
            .await
            .expect("run restore")
    };
    let out = restore().await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("into the cluster's log"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_dirs, nodes) = nats.toron_nodes(2, ADMIN).await;
    for (q, was) in questions.iter().zip(&before) {
        for n in &nodes {
            assert_eq!(&ask(n, q).await, was, "{q:?} after the restore");
        }
    }
    let again = restore().await;
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "a second restore into the same log: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    for n in nodes {
        n.shutdown().await.expect("stop");
    }
}
