//! Backup and restore (issue 8, point 8): a backup taken from the real server binary while
//! writers keep writing restores into a new directory that `verify`s, and a server on it
//! serves every document with everything acknowledged before the backup and a consistent cut
//! of what came after. Damaged, cut-short or misdirected backups are refused without writing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::DocumentId;
use toron_tests::LIMIT;

const SERVER: &str = env!("CARGO_BIN_EXE_e2e-toron-server");
const WRITERS: usize = 4;
/// Documents written once before the load starts (a debate's many quiet documents).
const QUIET_DOCS: usize = 40;

async fn server_command(dir: &Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    toron_tests::server_command(SERVER, dir, args).await
}

fn key(n: usize) -> String {
    format!("k{n:06}")
}

/// One writer: puts `k000000`, `k000001`, … into its own document, one push at a time, and
/// counts what the server acknowledged.
async fn write_until(
    url: String,
    id: DocumentId,
    acked: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let mut conn = Connection::connect(&url, LIMIT)
        .await
        .expect("writer connects");
    let mut d = DocSync::new(id, AutoCommit::new());
    let mut n = 0;
    while !*stop.borrow() && n < 20_000 {
        d.doc.put(ROOT, key(n), n as i64).expect("put");
        d.doc.commit();
        conn.push(&mut d, LIMIT).await.expect("acknowledged");
        n += 1;
        acked.store(n, Ordering::SeqCst);
    }
    n
}

/// The data directory, the one to restore into, and the backup file `name`, in `tmp`.
fn places(tmp: &tempfile::TempDir, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = tmp.path();
    (p.join("data"), p.join("restored"), p.join(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_a_server_that_verifies_and_serves_every_document() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, restored, file) = places(&tmp, "debate.backup");
    let (mut server, url) = toron_tests::spawn_open_server(SERVER, &data, true).await;

    // Quiet documents, written before the load.
    let mut conn = Connection::connect(&url, LIMIT).await.expect("connect");
    let mut quiet = Vec::new();
    for i in 0..QUIET_DOCS {
        let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
        d.doc.put(ROOT, "title", format!("사례 {i}")).expect("put");
        d.doc.commit();
        conn.push(&mut d, LIMIT).await.expect("pushed");
        quiet.push(d.id);
    }

    // The load: writers push as fast as the server acknowledges.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ids: Vec<DocumentId> = (0..WRITERS).map(|_| DocumentId::random()).collect();
    let counters: Vec<Arc<AtomicUsize>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let tasks: Vec<_> = ids
        .iter()
        .zip(&counters)
        .map(|(id, acked)| tokio::spawn(write_until(url.clone(), *id, acked.clone(), stop.clone())))
        .collect();
    let until = tokio::time::Instant::now() + LIMIT;
    while counters.iter().any(|c| c.load(Ordering::SeqCst) < 20) {
        assert!(tokio::time::Instant::now() < until, "writers got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The backup, taken by the binary while the server runs and the writers write.
    let before: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let (ok, out) = server_command(&data, &["backup".as_ref(), file.as_os_str()]).await;
    let after: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(ok, "backup failed: {out}");
    assert!(out.contains("backup of "), "{out}");
    let during: usize = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    assert!(
        during > 0,
        "the writers kept being acknowledged while the backup ran"
    );

    // The load goes on a little after it, then stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_tx.send(true);
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    server.kill().await.expect("kill");
    let _ = server.wait().await;

    // Restore into a new directory: verify runs as part of it, and again on its own.
    let (ok, out) = server_command(&restored, &["restore".as_ref(), file.as_os_str()]).await;
    assert!(ok, "restore failed: {out}");
    assert!(out.contains("verify: ok"), "{out}");
    assert!(
        out.contains(&format!("({} documents)", QUIET_DOCS + WRITERS)),
        "{out}"
    );
    let (ok, out) = toron_tests::server_offline(SERVER, &restored, "verify").await;
    assert!(ok, "verify of the restored directory: {out}");

    // A server on the restored directory serves every document: each quiet one whole, each
    // writer's with everything acknowledged before the backup began, and a cut of its later
    // writes that is a prefix of them (a consistent cut: nothing after a missing key).
    let (_restored_server, url) = toron_tests::spawn_open_server(SERVER, &restored, true).await;
    let mut reader = Connection::connect(&url, LIMIT).await.expect("connect");
    for (i, id) in quiet.iter().enumerate() {
        let d = reader
            .find(*id, LIMIT)
            .await
            .expect("quiet document served");
        let title = d
            .doc
            .get(ROOT, "title")
            .expect("read")
            .map(|(v, _)| v.to_string());
        assert_eq!(title, Some(format!("\"사례 {i}\"")), "quiet document {i}");
    }
    let mut in_backup_after = 0;
    for (w, id) in ids.iter().enumerate() {
        let d = reader
            .find(*id, LIMIT)
            .await
            .expect("writer's document served");
        let have: BTreeSet<String> = d.doc.keys(ROOT).collect();
        let n = have.len();
        let prefix: BTreeSet<String> = (0..n).map(key).collect();
        assert_eq!(
            have, prefix,
            "writer {w}: the restored keys are a prefix of its writes"
        );
        assert!(
            n >= before[w],
            "writer {w}: {} acknowledged before the backup, {n} restored",
            before[w]
        );
        in_backup_after += n - before[w];
    }
    assert!(
        total > after.iter().sum::<usize>(),
        "writes continued after the backup"
    );
    eprintln!(
        "backup under load: {total} changes written; {} acknowledged before the backup began, {during} while it ran; {in_backup_after} acknowledged after it began are in it",
        before.iter().sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_cut_short_or_misdirected_backups_are_refused_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = toron_tests::start(&data).await;
    let mut conn = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("connect");
    for i in 0..5 {
        let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
        d.doc.put(ROOT, "n", i).expect("put");
        d.doc.commit();
        conn.push(&mut d, LIMIT).await.expect("pushed");
    }
    // Taken through the control socket of the in-process server.
    let file = tmp.path().join("b");
    let (d2, f2) = (data.clone(), file.clone());
    let s = tokio::task::spawn_blocking(move || toron_server::ops::backup::run_backup(&d2, &f2))
        .await
        .expect("join")
        .expect("backup");
    assert_eq!((s.header.records, s.documents), (5, 5));
    // A second backup to the same name is refused; the first stays as it was.
    let first = std::fs::read(&file).expect("read");
    let (d2, f2) = (data.clone(), file.clone());
    let again =
        tokio::task::spawn_blocking(move || toron_server::ops::backup::run_backup(&d2, &f2))
            .await
            .expect("join");
    let err = again.expect_err("refused").to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&file).expect("read"), first);
    server.shutdown().await.expect("shutdown");

    let restore = |bytes: &[u8], name: &str| {
        let path = tmp.path().join(format!("{name}.backup"));
        std::fs::write(&path, bytes).expect("write");
        let target = tmp.path().join(name);
        let result = toron_server::ops::backup::run_restore(&path, &target);
        (result.map(|r| r.report.ok()), target)
    };
    // One byte changed in the middle.
    let mut damaged = first.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    let (r, target) = restore(&damaged, "damaged");
    let err = r.expect_err("damaged backup refused").to_string();
    assert!(
        err.contains("damaged") || err.contains("not a Toron backup"),
        "{err}"
    );
    assert!(!target.exists(), "nothing written for a damaged backup");
    // Cut short.
    let (r, target) = restore(&first[..first.len() - 40], "short");
    let err = r.expect_err("short backup refused").to_string();
    assert!(err.contains("incomplete"), "{err}");
    assert!(!target.exists());
    // Not a backup at all.
    let (r, _) = restore(b"{\"version\":1}", "json");
    let err = r.expect_err("refused").to_string();
    assert!(err.contains("not a Toron backup"), "{err}");
    // Into a directory that is not empty: the live data directory.
    let path = tmp.path().join("b");
    let err = toron_server::ops::backup::run_restore(&path, &data)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("not empty"), "{err}");
    // And the intact file restores.
    let (r, target) = restore(&first, "intact");
    assert!(r.expect("restored"), "verify ok");
    assert!(target.join("db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_and_their_tokens_survive_a_restore_and_the_store_gets_a_new_identity() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, restored, file) = places(&tmp, "b");
    let mut config = toron_tests::secure_config(&data);
    config.admin_token = Some("organizer-secret-token-0123456789".into());
    let server = toron_tests::start_with(config).await;
    let old_id = server.store().storage_id().to_string();
    assert_eq!(
        server
            .registry()
            .authenticate("organizer-secret-token-0123456789")
            .as_deref(),
        Some("admin")
    );
    server.shutdown().await.expect("shutdown");
    // Offline this time: no server holds the directory.
    let s = toron_server::ops::backup::run_backup(&data, &file).expect("offline backup");
    assert_eq!(s.header.source_storage_id, old_id);
    let r = toron_server::ops::backup::run_restore(&file, &restored).expect("restore");
    assert!(r.report.ok(), "{:?}", r.report.problems);
    let server = toron_tests::start_with(toron_tests::secure_config(&restored)).await;
    assert_eq!(
        server
            .registry()
            .authenticate("organizer-secret-token-0123456789")
            .as_deref(),
        Some("admin"),
        "the organizer's token works on the restored server"
    );
    assert_ne!(
        server.store().storage_id(),
        old_id,
        "clients resync from scratch against a restored store"
    );
    server.shutdown().await.expect("shutdown");
}
