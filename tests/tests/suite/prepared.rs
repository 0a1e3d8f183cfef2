//! Issue 30: a session prepared the way a district prepares one — not yet held, no notes, no
//! triage, no forms — has every document it needs from the moment its session, case and
//! grants exist, however they were made; and a data directory of an older build, whose
//! sessions have no such documents, gets them when the server starts.
//!
//! Before: the chair's `toron triage` answered "the server does not have document …", the
//! evaluators' forms were empty (the hall skipped them), and the series' first finding could
//! not be written.

use serde_json::Value;
use toron_domain::policy::DocKey;
use toron_server::Running;
use toron_tests::{token_of, toron_line};

const ADMIN: &str = "admin-token-of-the-planning-officer-0123456789";

async fn admin(server: &Running, line: &str) {
    let (ok, out, err) = toron_line(server, ADMIN, line).await;
    assert!(ok, "`toron {line}`: {err}{out}");
}

/// `toron get` of the document of `key`, as the holder of `token`: its content, or why not.
async fn get(server: &Running, token: &str, key: &str) -> Result<Value, String> {
    let key: DocKey = key.parse().expect("a key");
    let url = key.document_id().url().to_string();
    let (ok, out, err) = toron_tests::toron(server, token, &["get", &url]).await;
    if ok {
        serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
    } else {
        Err(err)
    }
}

/// The 8th session, prepared with the CLI alone: three people, a session, a case, grants.
async fn prepare(server: &Running) {
    for line in [
        "admin participant add P-CHAIR --name '사회자' --kind official",
        "admin participant add P-EV --name '평가위원' --kind expert",
        "admin participant add P-ACT --name '활동가' --kind activist",
        "admin session add S8 --series BM8 --title '제8차 복지' --phase scheduled --facilitator P-CHAIR",
        "admin case add C8 --session S8",
        "admin grant P-CHAIR facilitator --session S8",
        "admin grant P-EV evaluator --session S8",
        "admin grant P-ACT activist --session S8",
    ] {
        admin(server, line).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_prepared_with_the_cli_has_every_document_it_needs() {
    let (_dir, server) = toron_tests::secured(ADMIN).await;
    prepare(&server).await;
    let chair = token_of(&server, "P-CHAIR").await;
    let evaluator = token_of(&server, "P-EV").await;
    let activist = token_of(&server, "P-ACT").await;

    // The chair's triage: there, empty, ready for the queue.
    let triage = get(&server, &chair, "triage:S8").await.expect("the triage");
    assert_eq!(triage["schema"], "triage/1", "{triage}");
    assert!(triage["items"].as_object().is_some_and(|m| m.is_empty()));
    // The evaluator's form for the case: a draft, for that case and evaluator.
    let form = get(&server, &evaluator, "eval:C8:P-EV")
        .await
        .expect("the form");
    assert_eq!(form["status"], "draft", "{form}");
    assert_eq!(form["case"], "C8");
    assert_eq!(form["evaluator"], "P-EV");
    // The activist's notes layer, and the series' report, which the organizer reads.
    let layer = get(&server, &activist, "notes:S8:P-ACT")
        .await
        .expect("the layer");
    assert_eq!(layer["owner"], "P-ACT", "{layer}");
    assert!(layer["annotations"].is_object());
    let report = get(&server, ADMIN, "report:BM8").await.expect("the report");
    assert_eq!(report["status"], "drafting", "{report}");
    assert!(report["findings"].is_object());

    // A second evaluator granted later gets a form at once.
    admin(
        &server,
        "admin participant add P-EV2 --name '평가위원2' --kind expert",
    )
    .await;
    admin(&server, "admin grant P-EV2 evaluator --session S8").await;
    let ev2 = token_of(&server, "P-EV2").await;
    let form2 = get(&server, &ev2, "eval:C8:P-EV2").await.expect("form 2");
    assert_eq!(form2["status"], "draft", "{form2}");

    server.shutdown().await.expect("shutdown");
}

/// A data directory made by an older build: its session, case and grants were written to the
/// registry without any of the documents. The server, started on it, makes them before anyone
/// connects — once: a second start writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_directory_gets_its_missing_documents_on_start() {
    use toron_domain::policy::{Phase, Role, Scope};
    use toron_domain::vocab::ParticipantKind;
    use toron_server::registry::{Case, Participant, Registry, Session};
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // What an older build left: the registry's records, no documents.
        let store = toron_server::store::Store::open(dir.path(), None).expect("store");
        let clock = toron_tests::config(dir.path()).clock;
        let reg = Registry::load(store.clone(), clock).expect("registry");
        for (key, kind) in [
            ("P-CHAIR", ParticipantKind::Official),
            ("P-EV", ParticipantKind::Expert),
        ] {
            reg.add_participant("admin", Participant::new(key, key, kind))
                .await
                .expect("participant");
        }
        reg.put_session(
            "admin",
            Session {
                key: "S8".into(),
                series: "BM8".into(),
                title: "제8차".into(),
                phase: Phase::Scheduled,
                facilitator: Some("P-CHAIR".into()),
                item: None,
            },
        )
        .await
        .expect("session");
        reg.put_case(
            "admin",
            Case {
                key: "C8".into(),
                session: "S8".into(),
                presenters: vec![],
            },
        )
        .await
        .expect("case");
        for (who, role) in [("P-CHAIR", Role::Facilitator), ("P-EV", Role::Evaluator)] {
            reg.grant("admin", who, role, Scope::Session("S8".into()))
                .await
                .expect("grant");
        }
        assert!(
            store.documents().expect("documents").is_empty(),
            "the older directory has no documents"
        );
        store.close();
    }
    let mut config = toron_tests::secure_config(dir.path());
    config.admin_token = Some(ADMIN.into());
    let server = toron_tests::start_with(config.clone()).await;
    let chair = token_of(&server, "P-CHAIR").await;
    let evaluator = token_of(&server, "P-EV").await;
    let triage = get(&server, &chair, "triage:S8").await.expect("the triage");
    assert_eq!(triage["schema"], "triage/1", "{triage}");
    let form = get(&server, &evaluator, "eval:C8:P-EV")
        .await
        .expect("the form");
    assert_eq!(form["status"], "draft", "{form}");
    server.shutdown().await.expect("shutdown");

    // Started again: nothing more to make; each document holds its one skeleton.
    let server = toron_tests::start_with(config).await;
    for key in ["triage:S8", "eval:C8:P-EV", "notes:S8:P-EV", "report:BM8"] {
        let id = key.parse::<DocKey>().expect("key").document_id();
        let n = server
            .hub()
            .store
            .document_records(&id)
            .expect("records")
            .len();
        assert_eq!(n, 1, "{key} has its skeleton once");
    }
    server.shutdown().await.expect("shutdown");
}

/// The same session prepared with a bundle: the example series with its debate taken out —
/// no notes, reactions, triage, forms, findings or answers, every session `scheduled`. After
/// `toron import`, the chair's queue, the evaluators' forms (for the roles the bundle gives),
/// the layers, the report and every department's response document are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_prepared_with_a_bundle_has_every_document_it_needs() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let mut b: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    b["findings"] = serde_json::json!([]);
    b["department_responses"] = serde_json::json!([]);
    for s in b["sessions"].as_array_mut().expect("sessions") {
        for k in ["annotations", "reactions", "triage", "evaluations"] {
            s[k] = serde_json::json!([]);
        }
        s["phase"] = serde_json::json!("scheduled");
        let roles = s["roles"].as_array_mut().expect("roles");
        roles.push(serde_json::json!({ "participant": "P-PARK", "role": "evaluator" }));
        roles.push(serde_json::json!({ "participant": "P-LEE", "role": "department_reviewer" }));
        roles.push(serde_json::json!({ "participant": "P-FAM", "role": "department_reviewer" }));
    }
    // A reviewer of the assisting department.
    let people = b["participants"].as_array_mut().expect("participants");
    let mut fam = people
        .iter()
        .find(|p| p["key"] == "P-LEE")
        .expect("P-LEE")
        .clone();
    fam["key"] = serde_json::json!("P-FAM");
    fam["name"] = serde_json::json!("정가족");
    fam["department"] = serde_json::json!("DEP-FAM");
    people.push(fam);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prepared.json");
    std::fs::write(&file, serde_json::to_vec(&b).expect("json")).expect("write");
    let (_data, server) = toron_tests::secured(ADMIN).await;
    let (ok, out, err) =
        toron_tests::toron(&server, ADMIN, &["import", file.to_str().expect("path")]).await;
    assert!(ok, "import: {err}{out}");

    let chair = token_of(&server, "P-MOON").await;
    let evaluator = token_of(&server, "P-PARK").await;
    let activist = token_of(&server, "P-KIM").await;
    let triage = get(&server, &chair, "triage:S-LIB")
        .await
        .expect("the triage");
    assert!(
        triage["items"].as_object().is_some_and(|m| m.is_empty()),
        "{triage}"
    );
    let form = get(&server, &evaluator, "eval:C-LIB-HB:P-PARK")
        .await
        .expect("the form");
    assert_eq!(form["status"], "draft", "{form}");
    let layer = get(&server, &activist, "notes:S-LIB:P-KIM")
        .await
        .expect("the layer");
    assert!(layer["annotations"]
        .as_object()
        .is_some_and(|m| m.is_empty()));
    let report = get(&server, ADMIN, "report:HB-BENCH-2012")
        .await
        .expect("report");
    assert!(
        report["findings"].as_object().is_some_and(|m| m.is_empty()),
        "{report}"
    );
    for d in b["departments"].as_array().expect("departments") {
        let key = format!("response:HB-BENCH-2012:{}", d["key"].as_str().expect("key"));
        let r = get(&server, ADMIN, &key)
            .await
            .expect("a response document");
        assert_eq!(r["department"], d["key"], "{key}: {r}");
    }
    // The case's content came in over its skeleton.
    let case = get(&server, &activist, "case:C-LIB-HB")
        .await
        .expect("case");
    assert!(
        case["sections"].as_object().is_some_and(|m| !m.is_empty()),
        "the case's sections were written over its skeleton: {case}"
    );

    // The session runs, with the CLI: live; a question on the passage that opens a section;
    // the chair answers it in the queue; the planning officer promotes it to the series'
    // first finding, for a lead and an assisting department; both departments answer.
    admin(&server, "admin session phase S-LIB live").await;
    let (ok, id, err) = toron_line(
        &server,
        &activist,
        "annotate case:C-LIB-HB --session S-LIB --path sections.background \
         --quote '한빛구는 2011년' --kind question --body '장서 확충 예산은 어디서 나옵니까?'",
    )
    .await;
    assert!(ok, "the question: {err}");
    let id = id.trim().to_string();
    let (ok, _, err) = toron_line(
        &server,
        &chair,
        &format!("triage {id} --session S-LIB --status answered --note '구비로 충당'"),
    )
    .await;
    assert!(ok, "the chair runs the queue: {err}");
    admin(&server, "admin session phase S-LIB closed").await;
    let (ok, finding, err) = toron_line(
        &server,
        ADMIN,
        &format!(
            "promote --session S-LIB --from {id} --type gap --title '장서 확충 재원이 불안정하다' \
             --department DEP-CULT --department DEP-FAM"
        ),
    )
    .await;
    assert!(ok, "the series' first finding: {err}");
    let finding = finding.trim().to_string();
    for (who, dept, plan) in [
        ("P-LEE", "DEP-CULT", "2013년 장서 구입비 본예산 반영"),
        ("P-FAM", "DEP-FAM", "아동 도서 기증 연계"),
    ] {
        let token = token_of(&server, who).await;
        let (ok, _, err) = toron_line(
            &server,
            &token,
            &format!(
                "respond {finding} --series HB-BENCH-2012 --department {dept} \
                 --stance accepted --plan '{plan}'"
            ),
        )
        .await;
        assert!(ok, "{dept} answers: {err}");
    }
    let (ok, md, err) = toron_tests::toron(
        &server,
        ADMIN,
        &["report", "HB-BENCH-2012", "--format", "md"],
    )
    .await;
    assert!(ok, "{err}");
    for text in [
        "장서 확충 예산은 어디서 나옵니까?",
        "장서 확충 재원이 불안정하다",
        "2013년 장서 구입비 본예산 반영",
        "아동 도서 기증 연계",
    ] {
        assert!(md.contains(text), "the report holds “{text}”:\n{md}");
    }
    server.shutdown().await.expect("shutdown");
}

/// `--public-url`: every link the server makes uses the address participants open, whatever
/// address the organizer's page or command came by — the invite sheet's links and QR codes
/// and the report's links. Before, a sheet made on the server itself pointed all of them at
/// 127.0.0.1, with no warning; without the flag the sheet now says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_uses_the_public_url() {
    const PUBLIC: &str = "https://toron.example.go.kr";
    let (_dir, server) = toron_tests::secured_with(ADMIN, |c| {
        c.public_url = Some(PUBLIC.into());
    })
    .await;
    prepare(&server).await;
    let (ok, out, err) = toron_line(&server, ADMIN, "admin invites S8").await;
    assert!(ok, "{err}");
    let sheet: Value = serde_json::from_str(&out).expect("json");
    let links: Vec<&str> = toron_tests::items(&sheet["invites"])
        .iter()
        .filter_map(|i| i["link"].as_str())
        .collect();
    assert_eq!(links.len(), 3, "{sheet}");
    assert!(
        links
            .iter()
            .all(|l| l.starts_with(&format!("{PUBLIC}/#/join/"))),
        "{links:?}"
    );
    assert_eq!(sheet["loopback"], false);
    let (ok, md, err) =
        toron_tests::toron(&server, ADMIN, &["report", "BM8", "--format", "md"]).await;
    assert!(ok, "{err}");
    assert!(
        !md.contains("127.0.0.1"),
        "no link to the server's own address:\n{md}"
    );
    server.shutdown().await.expect("shutdown");

    // Without it, a sheet made by the server's own address says its links open only there.
    let (_dir, server) = toron_tests::secured(ADMIN).await;
    prepare(&server).await;
    let (ok, out, err) = toron_line(&server, ADMIN, "admin invites S8").await;
    assert!(ok, "{err}");
    let sheet: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(sheet["loopback"], true, "{sheet}");
    server.shutdown().await.expect("shutdown");
}

/// The chair runs the session from where they are (issue 30): the facilitator the session
/// names starts and closes it and sets the agenda item — logged, in the timeline — but moves it
/// no further (reporting is the organizers'); an activist runs nothing; an item the session's
/// agenda does not have is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chair_starts_closes_and_sets_the_item_and_nobody_else_does() {
    let (_dir, server) = toron_tests::secured(ADMIN).await;
    prepare(&server).await;
    let chair = token_of(&server, "P-CHAIR").await;
    let activist = token_of(&server, "P-ACT").await;
    let as_ = |token: &str, line: &str| {
        let (server, token, line) = (&server, token.to_string(), line.to_string());
        async move { toron_line(server, &token, &line).await }
    };
    let (ok, _, err) = as_(&activist, "admin session phase S8 live").await;
    assert!(
        !ok && err.contains("facilitator"),
        "an activist runs nothing: {err}"
    );
    let (ok, out, err) = as_(&chair, "admin session phase S8 live").await;
    assert!(ok, "the chair starts the session: {err}");
    assert!(out.contains("\"live\""), "{out}");
    let (ok, _, err) = as_(&chair, "admin session item S8 AG-9").await;
    assert!(!ok && err.contains("no agenda item AG-9"), "{err}");
    let (ok, _, err) = as_(&chair, "admin session phase S8 closed").await;
    assert!(ok, "the chair closes it: {err}");
    let (ok, _, err) = as_(&chair, "admin session phase S8 reporting").await;
    assert!(
        !ok && err.contains("forward only"),
        "reporting is the organizers': {err}"
    );
    admin(&server, "admin session phase S8 reporting").await;

    // The chair's moves are theirs in the session's timeline.
    let (ok, out, err) = toron_line(
        &server,
        ADMIN,
        "history S8 --kind session.phase_changed --json",
    )
    .await;
    assert!(ok, "{err}");
    let read: Value = serde_json::from_str(&out).expect("json");
    let entries = read
        .as_array()
        .or_else(|| read["entries"].as_array())
        .cloned()
        .unwrap_or_default();
    let moves: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["participant"].as_str().unwrap_or_default().to_string(),
                e["detail"]["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in [
        ("P-CHAIR", "live"),
        ("P-CHAIR", "closed"),
        ("admin", "reporting"),
    ] {
        assert!(
            moves.iter().any(|(p, to)| p == want.0 && to == want.1),
            "{want:?} in {moves:?}"
        );
    }
    server.shutdown().await.expect("shutdown");
}
