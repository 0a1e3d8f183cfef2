//! A scripted ten-minute session under a clock the test controls: participants in different
//! roles annotate, reply, react, edit a case, score, triage, withdraw and submit through real
//! sync clients; then the session's timeline, the documents' states at chosen moments, the
//! difference between two moments and the streaming replay are checked against what the
//! clients did and held.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjType, ReadDoc, ROOT};
use serde_json::Value;
use toron_cli::admin::Admin;
use toron_cli::json::doc_to_json;
use toron_cli::sync_client::{Connection, DocSync};
use toron_domain::policy::{DocKey, Phase, Role};
use toron_server::clock::Clock;
use toron_server::Running;
use toron_tests::roster::{self, connect, set_phase, who, CASE, SESSION};
use toron_tests::{secure_config, start_with, LIMIT};

/// 2026-11-26 16:00 KST.
const T0: u64 = 1_795_676_400_000;
const MIN: u64 = 60_000;

async fn api(server: &Running, token: &str, path: &str) -> anyhow::Result<Value> {
    let (url, token, path) = (server.url(), token.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || {
        Admin::new(&url, Some(token), LIMIT).call("GET", &path, None)
    })
    .await?
}

/// Every entry of the session's timeline that `token` may see, following the cursor.
async fn timeline(server: &Running, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = api(
            server,
            token,
            &format!("/api/v1/sessions/{SESSION}/timeline?limit=7{query}{cursor}"),
        )
        .await
        .expect("timeline");
        out.extend(page["entries"].as_array().expect("entries").iter().cloned());
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => return out,
        }
    }
    panic!("the timeline did not end within 100 pages");
}

type Line = (String, Option<String>, Option<String>, Option<String>);

fn line(kind: &str, role: Option<Role>, doc: Option<&DocKey>) -> Line {
    (
        kind.to_string(),
        role.map(who),
        role.map(|r| r.as_str().to_string()),
        doc.map(|d| d.to_string()),
    )
}

fn left(role: Role) -> Line {
    ("participant.left".into(), Some(who(role)), None, None)
}

fn as_line(e: &Value) -> Line {
    let s = |k: &str| e[k].as_str().map(str::to_string);
    (
        s("kind").unwrap_or_default(),
        s("participant"),
        s("role"),
        s("document"),
    )
}

struct Actor {
    conn: Connection,
    role: Role,
}

impl Actor {
    async fn join(server: &Running, tokens: &[(Role, String)], role: Role) -> Self {
        let token = &tokens.iter().find(|(r, _)| *r == role).expect("token").1;
        Self {
            conn: connect(server, token).await.expect("connect"),
            role,
        }
    }

    async fn open(&mut self, key: &DocKey) -> DocSync {
        self.conn
            .find(key.document_id(), LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{} opens {key}: {e}", self.role))
    }

    async fn push(&mut self, d: &mut DocSync) {
        self.conn
            .push(d, LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{} pushes: {e}", self.role));
    }
}

fn text_at(doc: &AutoCommit, path: &[&str]) -> automerge::ObjId {
    let mut obj = ROOT;
    for p in path {
        obj = doc.get(&obj, *p).expect("get").expect("present").1;
    }
    obj
}

/// Waits (bounded) until every connection of `role` that joined the session has left it.
async fn wait_for_left(server: &Running, token: &str, role: Role) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let seen = timeline(server, token, "&kind=participant").await;
        let count = |k: &str| {
            seen.iter()
                .filter(|e| e["participant"] == who(role).as_str() && e["kind"] == k)
                .count()
        };
        if count("participant.joined") > 0
            && count("participant.joined") == count("participant.left")
        {
            return;
        }
        assert!(Instant::now() < deadline, "{role} never left the timeline");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_is_told_replayed_and_reconstructed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::manual(T0);
    let mut config = secure_config(dir.path());
    config.clock = clock.clone();
    config.snapshot_every = 3;
    let server = start_with(config).await;
    let tokens = roster::set_up(&server).await;
    let tok = |r: Role| roster::token(&tokens, r);
    set_phase(&server, Phase::Live).await;

    let case = DocKey::Case { case: CASE.into() };
    let eval = DocKey::Eval {
        case: CASE.into(),
        evaluator: who(Role::Evaluator),
    };
    let notes = |r: Role| DocKey::Notes {
        session: SESSION.into(),
        participant: who(r),
    };
    let private = DocKey::NotesPrivate {
        session: SESSION.into(),
        participant: who(Role::Evaluator),
    };
    let triage = DocKey::Triage {
        session: SESSION.into(),
    };
    server
        .registry()
        .register("admin", &private, roster::SERIES)
        .await
        .expect("register private notes");

    // Before the session (still at T0) the importer lays out the documents.
    {
        let mut imp = Actor::join(&server, &tokens, Role::Importer).await;
        let mut d = imp.open(&case).await;
        let s = d
            .doc
            .put_object(ROOT, "sections", ObjType::Map)
            .expect("sections");
        let r = d
            .doc
            .put_object(&s, "results", ObjType::Text)
            .expect("results");
        d.doc
            .splice_text(&r, 0, 0, "이용자 만족도 87%")
            .expect("text");
        imp.push(&mut d).await;
        for who_ in [Role::Activist, Role::Evaluator] {
            let mut d = imp.open(&notes(who_)).await;
            toron_tests::begin_layer(&mut d.doc);
            imp.push(&mut d).await;
        }
        let mut d = imp.open(&triage).await;
        d.doc
            .put_object(ROOT, "items", ObjType::Map)
            .expect("items");
        imp.push(&mut d).await;
        let mut d = imp.open(&eval).await;
        let c = d
            .doc
            .put_object(ROOT, "criteria", ObjType::Map)
            .expect("criteria");
        d.doc
            .put_object(&c, "effectiveness", ObjType::Map)
            .expect("crit");
        imp.push(&mut d).await;
        imp.conn.close().await;
    }
    wait_for_left(&server, &tok(Role::Organizer), Role::Importer).await;

    let mut expected: Vec<Line> = Vec::new();
    let mut moments: Vec<(u64, DocKey, Value)> = Vec::new();
    let (a, p, e, f) = (
        Role::Activist,
        Role::Presenter,
        Role::Evaluator,
        Role::Facilitator,
    );

    // 16:01 — an activist raises a gap.
    clock.set_ms(T0 + MIN);
    let mut act = Actor::join(&server, &tokens, a).await;
    let mut an = act.open(&notes(a)).await;
    let anns = text_at(&an.doc, &["annotations"]);
    let ann = an.doc.put_object(&anns, "a-1", ObjType::Map).expect("ann");
    an.doc.put(&ann, "kind", "gap").expect("kind");
    let body = an
        .doc
        .put_object(&ann, "body", ObjType::Text)
        .expect("body");
    an.doc
        .splice_text(&body, 0, 0, "주말 돌봄 공백 😀 해소 필요")
        .expect("body");
    act.push(&mut an).await;
    let heads_created: Vec<ChangeHash> = an.doc.get_heads();
    expected.push(line("participant.joined", Some(a), None));
    expected.push(line("annotation.created", Some(a), Some(&notes(a))));
    moments.push((T0 + MIN + 30_000, notes(a), doc_to_json(&an.doc)));

    // 16:02 — the presenter corrects the case.
    clock.set_ms(T0 + 2 * MIN);
    let mut pre = Actor::join(&server, &tokens, p).await;
    let mut cd = pre.open(&case).await;
    let results = text_at(&cd.doc, &["sections", "results"]);
    cd.doc.splice_text(&results, 0, 3, "주민 ").expect("edit");
    pre.push(&mut cd).await;
    expected.push(line("participant.joined", Some(p), None));
    expected.push(line("section.edited", Some(p), Some(&case)));
    moments.push((T0 + 2 * MIN + 59_000, case.clone(), doc_to_json(&cd.doc)));

    // 16:03 — the evaluator scores; 16:04 replies; 16:04:30 a private note.
    clock.set_ms(T0 + 3 * MIN);
    let mut ev = Actor::join(&server, &tokens, e).await;
    let mut ed = ev.open(&eval).await;
    let eff = text_at(&ed.doc, &["criteria", "effectiveness"]);
    ed.doc.put(&eff, "score", 4).expect("score");
    ev.push(&mut ed).await;
    expected.push(line("participant.joined", Some(e), None));
    expected.push(line("score.set", Some(e), Some(&eval)));
    moments.push((T0 + 3 * MIN + 1, eval.clone(), doc_to_json(&ed.doc)));

    clock.set_ms(T0 + 4 * MIN);
    let mut en = ev.open(&notes(e)).await;
    let anns_e = text_at(&en.doc, &["annotations"]);
    let reply = en
        .doc
        .put_object(&anns_e, "r-1", ObjType::Map)
        .expect("reply");
    en.doc.put(&reply, "kind", "reply").expect("kind");
    en.doc.put(&reply, "parent", "a-1").expect("parent");
    en.doc.put(&reply, "body", "동의합니다").expect("body");
    ev.push(&mut en).await;
    expected.push(line("reply.created", Some(e), Some(&notes(e))));

    clock.set_ms(T0 + 4 * MIN + 30_000);
    let mut pd = DocSync::new(private.document_id(), AutoCommit::new());
    let pa = pd
        .doc
        .put_object(ROOT, "annotations", ObjType::Map)
        .expect("map");
    let mine = pd.doc.put_object(&pa, "m-1", ObjType::Map).expect("ann");
    pd.doc.put(&mine, "kind", "comment").expect("kind");
    ev.push(&mut pd).await;
    let private_line = line("document.created", Some(e), Some(&private));
    let private_line2 = line("annotation.created", Some(e), Some(&private));
    expected.push(private_line.clone());
    expected.push(private_line2.clone());

    // 16:05 — the activist sharpens the wording.
    clock.set_ms(T0 + 5 * MIN);
    an.doc.splice_text(&body, 0, 2, "토요일").expect("edit");
    act.push(&mut an).await;
    expected.push(line("annotation.edited", Some(a), Some(&notes(a))));

    // 16:06 — the facilitator marks it answered.
    clock.set_ms(T0 + 6 * MIN);
    let mut fac = Actor::join(&server, &tokens, f).await;
    let mut td = fac.open(&triage).await;
    let items = text_at(&td.doc, &["items"]);
    let it = td
        .doc
        .put_object(&items, "a-1", ObjType::Map)
        .expect("item");
    td.doc.put(&it, "status", "answered").expect("status");
    fac.push(&mut td).await;
    expected.push(line("participant.joined", Some(f), None));
    expected.push(line("triage.status_set", Some(f), Some(&triage)));

    // 16:07 — the evaluator agrees with the gap and submits.
    clock.set_ms(T0 + 7 * MIN);
    let reacts = text_at(&en.doc, &["reactions"]);
    let r = en
        .doc
        .put_object(&reacts, "a-1", ObjType::Map)
        .expect("react");
    en.doc.put(&r, "kind", "agree").expect("kind");
    ev.push(&mut en).await;
    ed.doc.put(ROOT, "status", "submitted").expect("submit");
    ev.push(&mut ed).await;
    expected.push(line("reaction.added", Some(e), Some(&notes(e))));
    expected.push(line("evaluation.submitted", Some(e), Some(&eval)));

    // 16:08 — the activist withdraws the annotation.
    clock.set_ms(T0 + 8 * MIN);
    let heads_before_withdrawal: Vec<ChangeHash> = an.doc.get_heads();
    an.doc.put(&ann, "withdrawn", true).expect("withdraw");
    act.push(&mut an).await;
    expected.push(line("annotation.withdrawn", Some(a), Some(&notes(a))));
    moments.push((T0 + 8 * MIN + 30_000, notes(a), doc_to_json(&an.doc)));

    // 16:09 — the organizer closes the session; 16:10 everybody leaves.
    clock.set_ms(T0 + 9 * MIN);
    set_phase(&server, Phase::Closed).await;
    expected.push((
        "session.phase_changed".into(),
        Some("admin".into()),
        None,
        None,
    ));
    clock.set_ms(T0 + 10 * MIN);
    for (actor, role) in [(act, a), (pre, p), (ev, e), (fac, f)] {
        actor.conn.close().await;
        wait_for_left(&server, &tok(Role::Organizer), role).await;
        expected.push(left(role));
    }

    let ctx = Expect {
        expected,
        moments,
        private: [private_line, private_line2],
        heads_created,
        heads_before_withdrawal,
        activist_notes: an.doc.clone(),
        organizer: tok(Role::Organizer),
        activist: tok(Role::Activist),
        evaluator: tok(Role::Evaluator),
    };
    check(&server, &ctx).await;
    // Snapshots are a cache: without them every answer is the same.
    server.store().clear_snapshots().expect("clear");
    server.hub().history.clear();
    check(&server, &ctx).await;

    // Replay: as fast as possible gives the same entries in the same order; ×16 of these
    // ten minutes takes 600 s / 16 = 37.5 s.
    let all = timeline(&server, &tok(Role::Evaluator), "").await;
    let fast = replay(&server, &tok(Role::Evaluator), "max").await;
    assert_eq!(fast.0, all);
    assert!(fast.1 < Duration::from_secs(5), "{:?}", fast.1);
    let (entries, took) = replay(&server, &tok(Role::Evaluator), "16").await;
    assert_eq!(entries, all);
    assert!(
        took >= Duration::from_secs(37) && took <= Duration::from_secs(40),
        "×16 took {took:?}"
    );
    server.shutdown().await.expect("shutdown");
}

/// Plays the session back through the CLI's client; returns the entries and how long the
/// stream took.
async fn replay(server: &Running, token: &str, speed: &str) -> (Vec<Value>, Duration) {
    let (url, token, speed) = (server.url(), token.to_string(), speed.to_string());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut entries = Vec::new();
        let n = toron_cli::history::replay(&url, Some(&token), SESSION, &speed, None, |e| {
            entries.push(e.clone())
        })
        .expect("replay");
        assert_eq!(n as usize, entries.len());
        (entries, started.elapsed())
    })
    .await
    .expect("join")
}

/// What the script did and what its clients held.
struct Expect {
    expected: Vec<Line>,
    moments: Vec<(u64, DocKey, Value)>,
    private: [Line; 2],
    heads_created: Vec<ChangeHash>,
    heads_before_withdrawal: Vec<ChangeHash>,
    activist_notes: AutoCommit,
    organizer: String,
    activist: String,
    evaluator: String,
}

fn after_setup(entries: &[Value]) -> Vec<Line> {
    entries
        .iter()
        .filter(|e| e["time_ms"].as_u64().expect("time") > T0)
        .map(as_line)
        .collect()
}

async fn check(server: &Running, x: &Expect) {
    // Every action exactly once, in order, with participant, role and document — as the
    // evaluator sees it, who may read every document the script touched (their private
    // notes included).
    let all = timeline(server, &x.evaluator, "").await;
    assert_eq!(after_setup(&all), x.expected);
    let times: Vec<u64> = all
        .iter()
        .map(|e| e["time_ms"].as_u64().expect("t"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(times.first(), Some(&T0));
    assert_eq!(times.last(), Some(&(T0 + 10 * MIN)));

    // Nobody else may read the evaluator's private notes, the organizer included: those
    // entries are not theirs to see, and nothing else is missing.
    let without_private: Vec<Line> = x
        .expected
        .iter()
        .filter(|l| !x.private.contains(l))
        .cloned()
        .collect();
    for token in [&x.activist, &x.organizer] {
        assert_eq!(
            after_setup(&timeline(server, token, "").await),
            without_private
        );
    }

    // The state at four moments is what the clients held then.
    for (at, key, held) in &x.moments {
        let path = format!("/api/v1/documents/{}/state?at={at}", key.document_id());
        let got = api(server, &x.organizer, &path).await.expect("state");
        assert_eq!(&got["state"], held, "{key} at {at}");
    }

    // The difference between 16:01:30 and 16:08:30 on the activist's layer is exactly the
    // changes made between them: the edit and the withdrawal, as the client's own copy
    // tells them.
    let nid = DocKey::Notes {
        session: SESSION.into(),
        participant: who(Role::Activist),
    }
    .document_id();
    // The layer's own events, by kind: what the activist did to their annotation.
    let evs = api(
        server,
        &x.organizer,
        &format!("/api/v1/documents/{nid}/events?kind=annotation"),
    )
    .await
    .expect("events by kind");
    let kinds: Vec<&str> = toron_tests::items(&evs["events"])
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "annotation.created",
            "annotation.edited",
            "annotation.withdrawn"
        ]
    );
    let paged = api(
        server,
        &x.organizer,
        &format!("/api/v1/documents/{nid}/events?kind=annotation&limit=2"),
    )
    .await
    .expect("page");
    assert_eq!(paged["events"].as_array().expect("events").len(), 2);
    let mut seqs = Vec::new();
    for at in [T0 + MIN + 30_000, T0 + 8 * MIN + 30_000] {
        let path = format!("/api/v1/documents/{nid}/state?at={at}");
        let got = api(server, &x.organizer, &path).await.expect("state");
        seqs.push(got["seq"].as_u64().expect("seq"));
    }
    let path = format!(
        "/api/v1/documents/{nid}/diff?from={}&to={}",
        seqs[0], seqs[1]
    );
    let got = api(server, &x.organizer, &path).await.expect("diff");
    let mut mine = x.activist_notes.clone();
    let now = mine.get_heads();
    let expect = toron_protocol::history::diff_between(mine.document(), &x.heads_created, &now);
    assert_eq!(got["patches"], Value::Array(expect.clone()));
    let actions: Vec<&str> = expect.iter().filter_map(|p| p["action"].as_str()).collect();
    assert!(
        actions.contains(&"splice") && actions.contains(&"put"),
        "{actions:?}"
    );
    let last =
        toron_protocol::history::diff_between(mine.document(), &x.heads_before_withdrawal, &now);
    assert_eq!(last.len(), 1, "the withdrawal alone: {last:?}");
}

async fn toron(server: &Running, token: &str, args: &[&str]) -> (bool, String, String) {
    toron_tests::run_toron(
        env!("CARGO_BIN_EXE_e2e-toron"),
        server,
        token,
        ("5", LIMIT),
        args,
    )
    .await
}

/// An importer loads paper opinions of a historical session: the log keeps when the server
/// received them, the timeline also shows when they happened and is ordered by that; the
/// CLI shows both clocks and replays in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_importers_times_order_the_timeline_and_both_clocks_are_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::manual(T0);
    let mut config = secure_config(dir.path());
    config.clock = clock.clone();
    let server = start_with(config).await;
    let tokens = roster::set_up(&server).await;
    let tok = |r: Role| roster::token(&tokens, r);
    let mut imp = Actor::join(&server, &tokens, Role::Importer).await;
    let layer = DocKey::Notes {
        session: SESSION.into(),
        participant: who(Role::Activist),
    };
    let mut d = imp.open(&layer).await;
    let anns = d
        .doc
        .put_object(ROOT, "annotations", ObjType::Map)
        .expect("map");
    imp.push(&mut d).await;
    // 2026-10-01 17:40 and 17:20 KST, imported in that order, a minute apart.
    let (late, early) = (1_790_844_000_i64, 1_790_842_800_i64);
    for (id, when) in [("paper-2", late), ("paper-1", early)] {
        clock.advance_ms(MIN);
        let a = d.doc.put_object(&anns, id, ObjType::Map).expect("ann");
        d.doc.put(&a, "kind", "comment").expect("kind");
        d.doc
            .put(&a, "body", format!("서면 의견 {id}"))
            .expect("body");
        d.doc
            .commit_with(automerge::transaction::CommitOptions::default().with_time(when));
        imp.push(&mut d).await;
    }
    imp.conn.close().await;

    let entries = timeline(&server, &tok(Role::Organizer), "&kind=annotation.created").await;
    let seen: Vec<(&str, u64, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["detail"]["annotation"].as_str().expect("id"),
                e["occurred_ms"].as_u64().expect("occurred"),
                e["time_ms"].as_u64().expect("received"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("paper-1", early as u64 * 1000, T0 + 2 * MIN),
            ("paper-2", late as u64 * 1000, T0 + MIN),
        ]
    );

    // The CLI: a table with both clocks, JSON, and a replay in the same order.
    let org = tok(Role::Organizer);
    let (ok, out, err) = toron(&server, &org, &["history", SESSION, "--kind", "annotation"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("received (KST)"), "{out}");
    assert!(out.contains("happened (KST)"), "{out}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("2026-10-01 17:20:00.000") && rows[0].contains("paper-1"),
        "{out}"
    );
    assert!(rows[0].contains("2026-11-26 16:02:00.000"), "{out}");
    assert!(
        rows[1].contains("2026-10-01 17:40:00.000") && rows[1].contains("paper-2"),
        "{out}"
    );
    let (ok, out, err) = toron(
        &server,
        &org,
        &[
            "history",
            SESSION,
            "--json",
            "--participant",
            &who(Role::Importer),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let json: Vec<Value> = serde_json::from_str(&out).expect("json");
    assert!(json
        .iter()
        .all(|e| e["participant"] == who(Role::Importer).as_str()));
    assert!(json.iter().any(|e| e["kind"] == "annotation.created"));

    let (ok, out, err) = toron(&server, &org, &["replay", SESSION, "--speed", "max"]).await;
    assert!(ok, "{err}");
    let p1 = out.find("paper-1").expect("paper-1 replayed");
    let p2 = out.find("paper-2").expect("paper-2 replayed");
    assert!(p1 < p2, "{out}");
    assert!(err.contains("replayed"), "{err}");
    // From 17:30 on that day only the later opinion is left.
    let (ok, out, err) = toron(
        &server,
        &org,
        &[
            "replay",
            SESSION,
            "--speed",
            "max",
            "--from",
            "17:30",
            "--date",
            "2026-10-01",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(!out.contains("paper-1") && out.contains("paper-2"), "{out}");
    // The layer at 16:01:30 on the server's clock (on the document's first day by that
    // clock): the opinion received at 16:01 is there, the one received at 16:02 is not yet.
    let url = format!("automerge:{}", layer.document_id());
    let (ok, out, err) = toron(
        &server,
        &org,
        &["at", &url, "--time", "16:01:30", "--clock", "received"],
    )
    .await;
    assert!(ok, "{err}");
    let state: Value = serde_json::from_str(&out).expect("json");
    let ids: Vec<&String> = state["annotations"]
        .as_object()
        .expect("map")
        .keys()
        .collect();
    assert_eq!(ids, vec!["paper-2"], "{state}");
    // A session nobody has is not found.
    let (ok, _, err) = toron(&server, &org, &["replay", "S-none", "--speed", "max"]).await;
    assert!(!ok && err.contains("404"), "{err}");
    server.shutdown().await.expect("shutdown");
}
