//! History through the API: a document's events with who and in which role, its state at
//! chosen points, the difference between two points — for readers only, and unchanged when
//! every snapshot is deleted.

use automerge::transaction::Transactable;
use automerge::ROOT;
use serde_json::{json, Value};
use toron_cli::admin::Admin;
use toron_cli::json::doc_to_json;
use toron_domain::policy::{DocKey, Phase, Role};
use toron_tests::roster::{self, connect, set_phase, who, CASE};
use toron_tests::{secured_with, LIMIT};

async fn get(server: &toron_server::Running, token: &str, path: &str) -> anyhow::Result<Value> {
    let (url, token, path) = (server.url(), token.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || {
        Admin::new(&url, Some(token), LIMIT).call("GET", &path, None)
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_states_and_differences_of_a_document() {
    let (_dir, server) = secured_with("toron_admin_for_the_history_test", |c| {
        c.snapshot_every = 2;
    })
    .await;
    let tokens = roster::set_up(&server).await;
    set_phase(&server, Phase::Live).await;
    let tok = |r: Role| roster::token(&tokens, r);
    let case = DocKey::Case { case: CASE.into() };
    let id = case.document_id();
    let path = format!("/api/v1/documents/{id}");

    // The importer seeded it (seq 1); now the presenter and the importer take turns.
    let mut states = vec![Value::Null];
    let first = get(
        &server,
        &tok(Role::Activist),
        &format!("{path}/state?seq=1"),
    )
    .await
    .expect("state 1");
    states.push(first["state"].clone());
    for (i, role) in [Role::Presenter, Role::Importer, Role::Presenter]
        .into_iter()
        .enumerate()
    {
        let mut conn = connect(&server, &tok(role)).await.expect("connect");
        let mut d = conn.find(id, LIMIT).await.expect("find");
        d.doc
            .put(ROOT, format!("step{i}"), role.as_str())
            .expect("put");
        conn.push(&mut d, LIMIT).await.expect("push");
        states.push(doc_to_json(&d.doc));
    }

    // Events: every change once, in order, with participant and role.
    let events = get(&server, &tok(Role::Activist), &format!("{path}/events"))
        .await
        .expect("events");
    let evs = events["events"].as_array().expect("array");
    let seen: Vec<(u64, &str, &str)> = evs
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().expect("seq"),
                e["participant"].as_str().expect("p"),
                e["role"].as_str().expect("r"),
            )
        })
        .collect();
    let (imp, pres) = (who(Role::Importer), who(Role::Presenter));
    assert_eq!(
        seen,
        vec![
            (1, imp.as_str(), "importer"),
            (2, pres.as_str(), "presenter"),
            (3, imp.as_str(), "importer"),
            (4, pres.as_str(), "presenter")
        ]
    );
    let activist = tok(Role::Activist);
    let events_of = |query: &str| format!("{path}/events?{query}");
    let only_presenter = get(&server, &activist, &events_of("role=presenter"))
        .await
        .expect("filtered");
    assert_eq!(only_presenter["events"].as_array().expect("array").len(), 2);
    let paged = get(&server, &activist, &events_of("limit=3"))
        .await
        .expect("page");
    assert_eq!(paged["events"].as_array().expect("array").len(), 3);
    assert_eq!(paged["next_after"], json!(3));

    let check = |server: &toron_server::Running| {
        let (server_url, states, path, evs, token) = (
            server.url(),
            states.clone(),
            path.clone(),
            evs.clone(),
            tok(Role::Activist),
        );
        async move {
            let api = |p: String| {
                let (u, t) = (server_url.clone(), token.clone());
                async move {
                    tokio::task::spawn_blocking(move || {
                        Admin::new(&u, Some(t), LIMIT).call("GET", &p, None)
                    })
                    .await
                    .expect("join")
                    .expect("call")
                }
            };
            // The state after each change is what its author held right after it.
            for (seq, expected) in states.iter().enumerate().skip(1) {
                let got = api(format!("{path}/state?seq={seq}")).await;
                assert_eq!(&got["state"], expected, "state at seq {seq}");
                let at = evs[seq - 1]["time_ms"].as_u64().expect("time");
                let got = api(format!("{path}/state?at={at}")).await;
                assert!(
                    got["seq"].as_u64().expect("seq") >= seq as u64,
                    "state at the moment of seq {seq}"
                );
            }
            // The difference between two points is exactly the changes in between.
            let d = api(format!("{path}/diff?from=2&to=4")).await;
            let keys: Vec<&str> = toron_tests::items(&d["patches"])
                .iter()
                .filter_map(|p| p["key"].as_str())
                .collect();
            assert_eq!(keys, vec!["step1", "step2"]);
        }
    };
    check(&server).await;
    // Snapshots are a cache: without them every answer is the same.
    server.store().clear_snapshots().expect("clear");
    check(&server).await;

    // Somebody who may not read the document sees no history of it, as if it did not exist.
    toron_tests::add_participant(&server, "P-out", "o", "resident").await;
    let outsider = toron_tests::token_of(&server, "P-out").await;
    for q in ["events", "state?seq=1", "diff?from=1&to=2"] {
        let r = get(&server, &outsider, &format!("{path}/{q}")).await;
        assert!(
            matches!(&r, Err(e) if e.to_string().contains("404")),
            "{q}: {r:?}"
        );
    }
    let r = get(
        &server,
        &tok(Role::Activist),
        "/api/v1/documents/4NMNnkMhL8jXrdJ9jamS58PAVdXu/events",
    )
    .await;
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("404")),
        "{r:?}"
    );
    server.shutdown().await.expect("shutdown");
}
