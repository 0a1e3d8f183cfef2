//! Issue 16's acceptance: one session of the example series played through the real server
//! by the three kinds of client people use — the `toron` CLI, the official JavaScript
//! automerge-repo client (which writes every string as collaborative text) and samod — after
//! an import, and told right: the timeline names each act with its kind and fields, in the
//! order it happened; `--kind triage.status_set` finds the triage decisions; and the question
//! queue's statuses at three moments read the same from the timeline as from the documents'
//! state at those moments.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use samod::{BackoffConfig, Repo};
use serde_json::{json, Value};
use toron_cli::admin::Admin;
use toron_domain::policy::DocKey;
use toron_server::Running;
use toron_tests::{secured, LIMIT};

const ADMIN: &str = "toron_admin_for_the_three_clients_test";
const SESSION: &str = "S-LIB";

async fn toron(server: &Running, token: &str, args: &[&str]) -> String {
    let (ok, out, err) = toron_tests::toron(server, token, args).await;
    assert!(ok, "toron {args:?}: {err}");
    out
}

/// The official JavaScript client, as participant `me`, through `tests/node/hall-client.mjs`.
fn javascript_client(server: &Running, token: &str, me: &str, question: &str, ids: &[String]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    toron_tests::npm_ci(&dir, "@automerge/automerge-repo");
    let notes = DocKey::Notes {
        session: SESSION.into(),
        participant: me.into(),
    };
    let eval = DocKey::Eval {
        case: "C-LIB-HB".into(),
        evaluator: me.into(),
    };
    let mut cmd = Command::new("node");
    cmd.arg("hall-client.mjs")
        .current_dir(&dir)
        .env("TORON_URL", server.url())
        .env("TOKEN", token)
        .env("ME", me)
        .env("SESSION", SESSION)
        .env("NOTES_DOC", notes.document_id().to_string())
        .env("EVAL_DOC", eval.document_id().to_string())
        .env("QUESTION", question)
        .env("IDS", ids.join(","));
    let (ok, stdout, stderr) =
        toron_tests::run_bounded(&mut cmd, Duration::from_secs(60), "the JavaScript client");
    assert!(
        ok && stdout.contains("hall client: ok"),
        "the JavaScript client:\n{stdout}\n{stderr}"
    );
}

/// The chair's triage decision through samod: `annotation` → `status`.
async fn samod_triage(server: &Running, token: &str, annotation: &str, status: &str) {
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial_websocket(
            samod::Url::parse(&format!("{}/sync?token={token}", server.url())).expect("url"),
            BackoffConfig::default(),
        )
        .expect("dial");
    tokio::time::timeout(LIMIT, dialer.established())
        .await
        .expect("handshake in time")
        .expect("handshake");
    let conn = dialer.connection_id().expect("connected");
    let triage = DocKey::Triage {
        session: SESSION.into(),
    }
    .document_id();
    let url = samod::AutomergeUrl::from_str(&triage.url().to_string()).expect("url");
    let handle = tokio::time::timeout(LIMIT, repo.find(url.document_id().clone()))
        .await
        .expect("find in time")
        .expect("repo running")
        .expect("the triage document");
    handle.with_document(|d| {
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            let items = match tx.get(ROOT, "items")? {
                Some((automerge::Value::Object(ObjType::Map), o)) => o,
                _ => tx.put_object(ROOT, "items", ObjType::Map)?,
            };
            let item = tx.put_object(&items, annotation, ObjType::Map)?;
            tx.put(&item, "status", status)?;
            tx.put(&item, "by", "P-MOON")?;
            tx.put(&item, "note", "발표자가 현장에서 답변")?;
            Ok(())
        })
        .expect("triage");
    });
    tokio::time::timeout(LIMIT, handle.they_have_our_changes(conn))
        .await
        .expect("the server has the chair's decision");
    repo.stop().await;
}

/// The session's timeline as the CLI gives it (`--json`).
async fn timeline(server: &Running, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["history", SESSION, "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&toron(server, ADMIN, &a).await).expect("timeline json")
}

/// Polls the timeline (bounded) until `done` holds.
async fn timeline_until(server: &Running, what: &str, done: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if done(&timeline(server, &[]).await) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the timeline never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// A moment between two stages: after everything before it was received, before anything
/// after it is.
async fn moment() -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let m = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    m
}

/// The question queue at `at` (received clock) as the timeline tells it: every question
/// created by then, with the last status set for it by then ("open" if none).
fn queue_from_timeline(entries: &[Value], at: u64) -> BTreeMap<String, String> {
    let mut q = BTreeMap::new();
    let by_then = entries
        .iter()
        .filter(|e| e["time_ms"].as_u64().is_some_and(|t| t <= at));
    let mut statuses: Vec<(u64, u64, String, String)> = Vec::new();
    for e in by_then {
        let d = &e["detail"];
        match e["kind"].as_str() {
            Some("annotation.created") if d["annotation_kind"] == "question" => {
                q.insert(
                    d["annotation"].as_str().expect("id").to_string(),
                    "open".into(),
                );
            }
            Some("triage.status_set") => statuses.push((
                e["time_ms"].as_u64().unwrap_or_default(),
                e["global_seq"].as_u64().unwrap_or_default(),
                d["annotation"].as_str().expect("id").to_string(),
                d["status"].as_str().expect("status").to_string(),
            )),
            _ => {}
        }
    }
    statuses.sort();
    for (_, _, id, status) in statuses {
        if let Some(s) = q.get_mut(&id) {
            *s = status;
        }
    }
    q
}

/// The question queue at `at` as the documents held it then: the questions in every notes
/// layer of the session, and the triage document's status for each.
fn queue_from_state(api: &Admin, layers: &[String], at: u64) -> BTreeMap<String, String> {
    let state = |doc: &str| {
        api.call(
            "GET",
            &format!("/api/v1/documents/{doc}/state?at={at}"),
            None,
        )
        .expect("state")["state"]
            .clone()
    };
    let triage = state(
        &DocKey::Triage {
            session: SESSION.into(),
        }
        .document_id()
        .to_string(),
    );
    let mut q = BTreeMap::new();
    for l in layers {
        let layer = state(l);
        for (id, a) in layer["annotations"].as_object().into_iter().flatten() {
            if a["kind"] == "question" {
                let status = triage["items"][id]["status"].as_str().unwrap_or("open");
                q.insert(id.clone(), status.to_string());
            }
        }
    }
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_three_clients_and_an_import_is_told_right() {
    let (_dir, server) = secured(ADMIN).await;
    // The import: the example series, every act of its debate.
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    toron(&server, ADMIN, &["import", bundle.to_str().expect("path")]).await;
    toron(
        &server,
        ADMIN,
        &["admin", "session", "phase", SESSION, "live", "--force"],
    )
    .await;
    let token = |p: &'static str| {
        let reg = server.registry().clone();
        async move { reg.issue_token("admin", p).await.expect("token") }
    };
    let (kim, park, moon, han) = (
        token("P-KIM").await,
        token("P-PARK").await,
        token("P-MOON").await,
        token("P-HAN").await,
    );
    let live_from = now_ms();

    // The CLI: an activist asks a question.
    let q1 = toron(
        &server,
        &kim,
        &[
            "annotate",
            "case:C-LIB-HB",
            "--session",
            SESSION,
            "--path",
            "sections.results",
            "--quote",
            "평일 저녁 이용은 여전히 적다",
            "--kind",
            "question",
            "--body",
            "저녁 운영을 위한 인력 계획이 있습니까?",
        ],
    )
    .await
    .trim()
    .to_string();

    // The JavaScript client: an expert's own question, a gap for a department, a reply and
    // agreement with the activist's question, the evaluation reopened and submitted again.
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (q2, gap, reply) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    {
        let (srv, park, q1, ids) = (&server, park.clone(), q1.clone(), ids.clone());
        tokio::task::block_in_place(|| javascript_client(srv, &park, "P-PARK", &q1, &ids));
    }
    timeline_until(&server, "the JavaScript client's submission", |t| {
        t.iter()
            .any(|e| e["kind"] == "evaluation.submitted" && e["participant"] == "P-PARK")
    })
    .await;
    let m1 = moment().await;

    // samod: the chair marks the activist's question answered.
    samod_triage(&server, &moon, &q1, "answered").await;
    timeline_until(&server, "the chair's decision", |t| {
        t.iter()
            .any(|e| e["kind"] == "triage.status_set" && e["participant"] == "P-MOON")
    })
    .await;
    let m2 = moment().await;

    // The CLI again: the organizer accepts the expert's question into a finding, moves the
    // agenda and closes the session.
    toron(
        &server,
        &han,
        &[
            "triage",
            &q2,
            "--session",
            SESSION,
            "--status",
            "accepted",
            "--finding",
            "F-LIB-01",
            "--note",
            "보고서에 반영",
        ],
    )
    .await;
    let session_doc = DocKey::Session {
        session: SESSION.into(),
    };
    toron(
        &server,
        ADMIN,
        &["admin", "doc", "register", &session_doc.to_string()],
    )
    .await;
    toron(
        &server,
        &han,
        &[
            "set",
            "--create",
            &session_doc.document_id().url().to_string(),
            "current_item",
            "\"AG-LIB-3\"",
        ],
    )
    .await;
    let m3 = moment().await;
    toron(
        &server,
        ADMIN,
        &["admin", "session", "phase", SESSION, "closed"],
    )
    .await;

    // The timeline: the import's acts first (on the clock of what happened), then each live
    // act in the order it was made, named with its kind and fields.
    let all = timeline(&server, &[]).await;
    assert!(
        all.iter().any(|e| e["kind"] == "annotation.created"
            && e["role"] == "importer"
            && e["detail"]["annotation_kind"] == "gap"
            && e["detail"]["ref"] == "L-04"),
        "the import's gap L-04 is in the timeline with its kind"
    );
    let live: Vec<&Value> = all
        .iter()
        .filter(|e| e["time_ms"].as_u64().is_some_and(|t| t >= live_from))
        .filter(|e| {
            !matches!(
                e["kind"].as_str(),
                Some("participant.joined" | "participant.left")
            )
        })
        .collect();
    let told: Vec<(String, String)> = live
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["participant"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = vec![
        ("annotation.created", "P-KIM"),
        ("annotation.created", "P-PARK"),
        ("annotation.created", "P-PARK"),
        ("reply.created", "P-PARK"),
        ("reaction.added", "P-PARK"),
        ("evaluation.reopened", "P-PARK"),
        ("evaluation.submitted", "P-PARK"),
        ("triage.status_set", "P-MOON"),
        ("triage.status_set", "P-HAN"),
        ("finding.linked", "P-HAN"),
        ("document.created", "P-HAN"),
        ("agenda.advanced", "P-HAN"),
        ("session.phase_changed", "admin"),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
    for e in &live {
        println!(
            "{} {} ({}): {}",
            e["kind"].as_str().unwrap_or_default(),
            e["participant"].as_str().unwrap_or_default(),
            e["role"].as_str().unwrap_or_default(),
            e["summary"].as_str().unwrap_or_default()
        );
    }
    assert_eq!(told, expected, "the live acts in order: {live:#?}");
    // Their fields: real kinds, the reply's and the reaction's annotation named by its text,
    // the triage decisions with status, role and note, the finding, the agenda item, the phase.
    let d = |i: usize| &live[i]["detail"];
    assert_eq!(d(0)["annotation"], q1.as_str());
    assert_eq!(d(0)["annotation_kind"], "question");
    assert_eq!(live[0]["role"], "activist");
    assert_eq!(d(1)["annotation"], q2.as_str());
    assert_eq!(
        d(1)["annotation_kind"],
        "question",
        "text written by JS reads as a kind"
    );
    assert_eq!(d(1)["body"], "순회 사서의 인건비는 누가 부담합니까?");
    assert_eq!(d(2)["annotation"], gap.as_str());
    assert_eq!(d(2)["annotation_kind"], "gap");
    assert_eq!(d(2)["severity"], "high");
    assert_eq!(d(3)["annotation"], reply.as_str());
    assert_eq!(d(3)["parent"], q1.as_str());
    assert_eq!(
        d(3)["parent_text"],
        "저녁 운영을 위한 인력 계획이 있습니까?"
    );
    assert_eq!(d(4)["annotation"], q1.as_str());
    assert!(
        live[4]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("저녁 운영을 위한")),
        "{}",
        live[4]
    );
    assert_eq!(d(7)["annotation"], q1.as_str());
    assert_eq!(d(7)["status"], "answered");
    assert_eq!(d(7)["note"], "발표자가 현장에서 답변");
    assert_eq!(live[7]["role"], "facilitator");
    assert_eq!(d(8)["annotation"], q2.as_str());
    assert_eq!(d(8)["status"], "accepted");
    assert_eq!(live[8]["role"], "organizer");
    assert_eq!(
        d(9),
        &json!({ "annotation": q2, "finding": "F-LIB-01", "annotation_text": "순회 사서의 인건비는 누가 부담합니까?" })
    );
    assert_eq!(d(11)["item"], "AG-LIB-3");
    assert_eq!(d(12)["from"], "live");
    assert_eq!(d(12)["to"], "closed");
    // No triage decision told as edits of the triage document's fields.
    toron_tests::assert_no_triage_told_as_edits(&all);

    // `--kind triage.status_set` finds every triage decision: the import's and both live ones.
    let decisions = timeline(&server, &["--kind", "triage.status_set"]).await;
    assert!(decisions.iter().all(|e| e["kind"] == "triage.status_set"));
    let decided: Vec<(&str, &str)> = decisions
        .iter()
        .map(|e| {
            (
                e["detail"]["annotation"].as_str().unwrap_or_default(),
                e["detail"]["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(decided.contains(&(q1.as_str(), "answered")), "{decided:?}");
    assert!(decided.contains(&(q2.as_str(), "accepted")), "{decided:?}");
    assert!(
        decisions.iter().any(|e| e["role"] == "importer"
            && e["detail"]["annotation_ref"] == "L-09"
            && e["detail"]["status"] == "deferred"),
        "the import's decisions too: {decided:?}"
    );

    // The queue at three moments: from the timeline and from the documents, alike.
    let api = Admin::new(&server.url(), Some(ADMIN.into()), LIMIT);
    let mine = api
        .call("GET", "/api/v1/me/sessions", None)
        .expect("sessions");
    let layers: Vec<String> = toron_tests::items(&mine["sessions"])
        .iter()
        .find(|s| s["key"] == SESSION)
        .expect("S-LIB")["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["doc"].as_str().map(str::to_string))
        .collect();
    let expected = [
        (m1, "open", "open"),
        (m2, "answered", "open"),
        (m3, "answered", "accepted"),
    ];
    for (i, (m, s1, s2)) in expected.into_iter().enumerate() {
        let from_timeline = queue_from_timeline(&all, m);
        let from_state = tokio::task::block_in_place(|| queue_from_state(&api, &layers, m));
        assert_eq!(
            from_timeline,
            from_state,
            "moment {}: the timeline and the documents disagree",
            i + 1
        );
        assert_eq!(
            from_timeline.get(&q1).map(String::as_str),
            Some(s1),
            "moment {}",
            i + 1
        );
        assert_eq!(
            from_timeline.get(&q2).map(String::as_str),
            Some(s2),
            "moment {}",
            i + 1
        );
        // The import's questions are in the queue with their statuses (L-02 answered, L-09
        // deferred), the same way.
        assert!(from_timeline.len() >= 4, "{from_timeline:?}");
        // The replay's one request per move: every document of the session at that moment,
        // each as its own state endpoint gives it.
        let all = tokio::task::block_in_place(|| {
            api.call(
                "GET",
                &format!("/api/v1/sessions/{SESSION}/state?at={m}"),
                None,
            )
        })
        .expect("session state");
        let docs = all["documents"].as_object().expect("documents");
        for l in &layers {
            let one = tokio::task::block_in_place(|| {
                api.call("GET", &format!("/api/v1/documents/{l}/state?at={m}"), None)
            })
            .expect("state");
            let found = docs.iter().find(|(_, d)| d["doc"] == l.as_str());
            // A layer nobody had written by then (each role holder has one from the import)
            // is empty, and left out of the session's state.
            if one["seq"] == 0 {
                assert!(found.is_none(), "an empty layer is left out");
                assert_eq!(one["state"], serde_json::json!({}), "empty until written");
                continue;
            }
            let (_, whole) = found.expect("the layer is in the session's state");
            assert_eq!(whole["state"], one["state"], "moment {}", i + 1);
        }
    }
    // A participant who takes no part in the session is not told it exists.
    let stranger = toron_tests::token_of(&server, "P-SEO").await;
    let not_in = Admin::new(&server.url(), Some(stranger), LIMIT);
    let refused =
        tokio::task::block_in_place(|| not_in.call("GET", "/api/v1/sessions/S-CARE/state", None));
    assert!(
        refused.is_err_and(|e| e.to_string().contains("404")),
        "a session one takes no part in"
    );
    server.shutdown().await.expect("shutdown");
}
