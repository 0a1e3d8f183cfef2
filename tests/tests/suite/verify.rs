//! `toron-server verify` passes on a data directory made by a randomised workload, and fails,
//! naming the record, after one byte of a stored record is flipped. `rebuild` makes snapshots
//! that verify.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use rand::Rng;
use toron_cli::sync_client::{Connection, DocSync};
use toron_protocol::{DocumentId, Event};
use toron_tests::{start_with, LIMIT};

async fn offline(dir: &std::path::Path, command: &str) -> (bool, String) {
    toron_tests::server_offline(env!("CARGO_BIN_EXE_e2e-toron-server"), dir, command).await
}

/// `verify` fails on damaged data, naming what it found damaged (`named`).
async fn verify_names(dir: &std::path::Path, named: &str) {
    let (ok, out) = offline(dir, "verify").await;
    assert!(!ok, "verify passed damaged data: {out}");
    assert!(out.contains(named), "the damage is named ({named}): {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_a_random_workload_and_names_a_damaged_record() {
    let (dir, server) = toron_tests::fresh_with(|cfg| cfg.snapshot_every = 7).await;
    let mut rng = rand::rng();
    let ids: Vec<DocumentId> = (0..4).map(|_| DocumentId::random()).collect();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(
            Connection::connect(&server.url(), LIMIT)
                .await
                .expect("connect"),
        );
    }
    let mut docs: Vec<Vec<Option<DocSync>>> =
        (0..3).map(|_| ids.iter().map(|_| None).collect()).collect();
    for step in 0..60 {
        let (c, d) = (rng.random_range(0..3), rng.random_range(0..4));
        let conn = &mut clients[c];
        let slot = &mut docs[c][d];
        if slot.is_none() {
            *slot = Some(match conn.find(ids[d], LIMIT).await {
                Ok(found) => found,
                Err(_) => DocSync::new(ids[d], AutoCommit::new()),
            });
        }
        let ds = slot.as_mut().expect("doc");
        ds.doc
            .put(ROOT, format!("k{}", rng.random_range(0..10)), step)
            .expect("put");
        conn.push(ds, LIMIT).await.expect("push");
    }
    let events = server.store().events(0, 10_000).expect("events");
    server.shutdown().await.expect("shutdown");

    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "{out}");
    assert!(out.contains("60 changes, 4 documents"), "{out}");

    let (ok, out) = offline(dir.path(), "rebuild").await;
    assert!(ok && out.contains("4 documents"), "{out}");
    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "after rebuild: {out}");

    // Flip one byte of one stored change record.
    let victim = events
        .iter()
        .filter_map(|e| {
            if let Event::Change(c) = e {
                Some(c.global_seq)
            } else {
                None
            }
        })
        .nth(17)
        .expect("a change");
    {
        let store = toron_server::store::Store::open(dir.path(), None).expect("open");
        store.damage_record_for_tests(victim, 40).expect("damage");
        store.close();
    }
    verify_names(dir.path(), &format!("record {victim}")).await;
}

/// A random session: several roles annotate, reply, react and triage in their own documents.
/// The stored timeline verifies against the log, a damaged entry is named, and `rebuild`
/// projects it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_the_timeline_projection_against_the_log() {
    use automerge::{ObjType, ReadDoc};
    use toron_domain::policy::{DocKey, Phase, Role};
    use toron_tests::roster::{self, connect, set_phase, who, SESSION};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = toron_tests::secure_config(dir.path());
    cfg.snapshot_every = 5;
    let server = start_with(cfg).await;
    let tokens = roster::set_up(&server).await;
    set_phase(&server, Phase::Live).await;
    let roles = [Role::Activist, Role::Evaluator, Role::Official];
    let mut rng = rand::rng();
    let mut conns = Vec::new();
    let mut layers = Vec::new();
    for r in roles {
        let token = &tokens.iter().find(|(x, _)| *x == r).expect("token").1;
        let mut conn = connect(&server, token).await.expect("connect");
        let key = DocKey::Notes {
            session: SESSION.into(),
            participant: who(r),
        };
        let mut d = conn.find(key.document_id(), LIMIT).await.expect("find");
        toron_tests::begin_layer(&mut d.doc);
        conn.push(&mut d, LIMIT).await.expect("push");
        conns.push(conn);
        layers.push(d);
    }
    for step in 0..40 {
        let i = rng.random_range(0..roles.len());
        let d = &mut layers[i];
        let anns = d.doc.get(ROOT, "annotations").expect("get").expect("map").1;
        let existing: Vec<String> = d.doc.keys(&anns).collect();
        match rng.random_range(0..4) {
            0 | 1 => {
                let a = d
                    .doc
                    .put_object(&anns, format!("a-{step}"), ObjType::Map)
                    .expect("ann");
                let kind = ["comment", "question", "gap", "lesson"][rng.random_range(0..4)];
                d.doc.put(&a, "kind", kind).expect("kind");
                let body = d.doc.put_object(&a, "body", ObjType::Text).expect("body");
                d.doc
                    .splice_text(&body, 0, 0, "의견 😀 하나")
                    .expect("text");
            }
            2 if !existing.is_empty() => {
                let id = &existing[rng.random_range(0..existing.len())];
                let a = d.doc.get(&anns, id.as_str()).expect("get").expect("ann").1;
                d.doc.put(&a, "withdrawn", true).expect("withdraw");
            }
            _ => {
                let reacts = d.doc.get(ROOT, "reactions").expect("get").expect("map").1;
                let r = d
                    .doc
                    .put_object(&reacts, format!("x-{step}"), ObjType::Map)
                    .expect("r");
                d.doc.put(&r, "kind", "agree").expect("kind");
            }
        }
        conns[i].push(d, LIMIT).await.expect("push");
    }
    for c in conns {
        c.close().await;
    }
    let hub = server.hub().clone();
    let checkpoint = tokio::task::spawn_blocking(move || hub.projection.catch_up())
        .await
        .expect("join")
        .expect("projection");
    server.shutdown().await.expect("shutdown");

    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("timeline checked up to record {checkpoint}")),
        "{out}"
    );

    let damaged = {
        let store = toron_server::store::Store::open(dir.path(), None).expect("open");
        let g = store
            .damage_timeline_for_tests(25)
            .expect("damage")
            .expect("an entry");
        store.close();
        g
    };
    verify_names(
        dir.path(),
        &format!("timeline: the entry of record {damaged} differs"),
    )
    .await;
    let (ok, out) = offline(dir.path(), "rebuild").await;
    assert!(ok && out.contains("timeline entries"), "{out}");
    let (ok, out) = offline(dir.path(), "verify").await;
    assert!(ok, "after rebuild: {out}");
}

/// A timeline projected by an earlier version of the naming (issue 16: strings written as
/// text were misread) is projected again from the log at the first timeline read after the
/// upgrade; `verify` says so until then instead of listing every entry as different.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_of_an_earlier_version_is_projected_again() {
    use toron_tests::roster;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::secure_config(dir.path())).await;
    roster::set_up(&server).await;
    // The roster's connections close as it ends: their "left" records are written a moment
    // later. Wait until the log is quiet, so that "before" holds them too.
    let deadline = std::time::Instant::now() + toron_tests::LIMIT;
    let mut last = server.store().last_global_seq().expect("seq");
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = server.store().last_global_seq().expect("seq");
        if now == last || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let read = |server: &toron_server::Running| {
        let p = server.hub().projection.catch_up().expect("projected");
        let entries = server
            .store()
            .timeline_entries(&[], &[], usize::MAX)
            .expect("entries");
        (p, entries)
    };
    let (checkpoint, before) = read(&server);
    assert!(before.len() > 5, "{}", before.len());
    // What an earlier version left: another version number, and an entry that reads wrong.
    server
        .store()
        .timeline_write(
            &[],
            &[(b"version".to_vec(), 1u64.to_be_bytes().to_vec())],
            checkpoint,
        )
        .expect("write");
    server
        .store()
        .damage_timeline_for_tests(2)
        .expect("damage")
        .expect("an entry");
    let problems =
        toron_server::views::projection::verify(server.store(), server.registry()).expect("verify");
    assert!(
        problems.len() == 1 && problems[0].contains("earlier version"),
        "{problems:?}"
    );
    let (_, after) = read(&server);
    assert_eq!(after, before, "projected again, as it was");
    let problems =
        toron_server::views::projection::verify(server.store(), server.registry()).expect("verify");
    assert!(problems.is_empty(), "{problems:?}");
}
