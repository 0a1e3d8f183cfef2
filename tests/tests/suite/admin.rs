//! `toron admin …` against a real, secured server: a debate set up from the command line, then
//! used by a participant with her own token; every admin change is a record in the log.

use serde_json::Value;
use toron_protocol::Event;
use toron_server::Running;
use toron_tests::{secured, LIMIT};

/// Runs `toron` with the words of `line` (none holds a space) as its arguments.
async fn toron(server: &Running, token: &str, line: &str) -> (i32, Value, String) {
    toron_args(server, token, &line.split_whitespace().collect::<Vec<_>>()).await
}

/// Runs `toron` with `args`: whether it succeeded, its output as JSON (or as a string when
/// it is not JSON), its standard error.
async fn toron_args(server: &Running, token: &str, args: &[&str]) -> (i32, Value, String) {
    let bin = env!("CARGO_BIN_EXE_e2e-toron");
    let (code, stdout, stderr) =
        toron_tests::run_toron_code(bin, server, token, ("20", LIMIT), args).await;
    let json = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.trim().to_string()));
    (code, json, stderr)
}

/// Asserts that the run failed (exit code 1) with an error naming `status` and `detail`.
fn refused(r: &(i32, Value, String), status: &str, detail: &str) {
    assert_eq!(r.0, 1, "{}", r.2);
    assert!(r.2.contains(status) && r.2.contains(detail), "{}", r.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_sets_up_a_debate_from_the_command_line() {
    let admin = "toron_admin_for_the_cli_admin_test";
    let (dir, server) = secured(admin).await;
    let url = server.url();
    let before = server.store().last_global_seq().expect("seq");

    let ok = |r: &(i32, Value, String)| assert_eq!(r.0, 0, "{}", r.2);
    // The facilitator is a participant before the session names them.
    let session_add =
        "admin session add S05 --series BM-2026 --phase scheduled --facilitator P-lee";
    let r = toron(&server, admin, session_add).await;
    assert!(r.0 != 0 && r.2.contains("P-lee"), "{}", r.2);
    ok(&toron(
        &server,
        admin,
        "admin participant add P-lee --name 이수진 --kind official",
    )
    .await);
    ok(&toron(
        &server,
        admin,
        "admin session add S05 --series BM-2026 --phase scheduled --facilitator P-lee",
    )
    .await);
    let kim = toron(
        &server,
        admin,
        "admin participant add P-kim --name 김민지 --affiliation 주민자치회",
    )
    .await;
    ok(&kim);
    assert_eq!(
        kim.1["participant"]["attribution"], "affiliation_only",
        "private citizens default to their affiliation"
    );
    let kim_token = kim.1["token"].as_str().expect("token").to_string();
    ok(&toron(&server, admin, "admin grant P-kim activist --session S05").await);
    // The grant gave her a notes layer (the hall client writes there); registering it again
    // is harmless.
    let docs = toron(&server, &kim_token, "admin docs").await;
    ok(&docs);
    assert_eq!(docs.1[0]["key"], "notes:S05:P-kim", "{}", docs.1);
    let notes = toron(&server, admin, "admin doc register notes:S05:P-kim").await;
    ok(&notes);
    let notes_url = notes.1["url"].as_str().expect("url").to_string();

    // Kim sees who she is and her document; she may not administer.
    let me = toron(&server, &kim_token, "admin whoami").await;
    ok(&me);
    assert_eq!(me.1["participant"], "P-kim");
    assert_eq!(me.1["roles"][0]["role"], "activist");
    let docs = toron(&server, &kim_token, "admin docs").await;
    ok(&docs);
    assert_eq!(docs.1[0]["key"], "notes:S05:P-kim");
    assert_eq!(
        docs.1[0]["access"], "read",
        "activists annotate only once the session is live"
    );
    let denied = toron(&server, &kim_token, "admin participant list").await;
    refused(&denied, "403", "");

    // Live: she writes her own layer.
    ok(&toron(&server, admin, "admin session phase S05 live").await);
    let docs = toron(&server, &kim_token, "admin docs").await;
    assert_eq!(docs.1[0]["access"], "write");
    ok(&toron_args(
        &server,
        &kim_token,
        &[
            "set",
            "--create",
            &notes_url,
            "annotations.a1.body",
            "\"좋은 사례\"",
        ],
    )
    .await);
    let got = toron(&server, &kim_token, &format!("get {notes_url}")).await;
    assert_eq!(got.1["annotations"]["a1"]["body"], "좋은 사례");
    let rec = server
        .store()
        .document_records(
            &notes_url
                .trim_start_matches("automerge:")
                .parse()
                .expect("id"),
        )
        .expect("records");
    // The layer's skeleton, made when P-kim was granted the role, then P-kim's note.
    assert_eq!(rec.len(), 2, "{rec:?}");
    assert_eq!(rec[1].change.by.participant.as_deref(), Some("P-kim"));
    assert_eq!(rec[1].change.by.role.as_deref(), Some("activist"));

    // Bad input gets a clear error and changes nothing.
    let bad = toron(&server, admin, "admin grant P-kim emperor --session S05").await;
    refused(&bad, "400", "unknown role");
    let bad = toron(&server, admin, "admin doc register case:nope").await;
    assert!(bad.2.contains("add it first"), "{}", bad.2);

    // Revoking the role takes the document away.
    ok(&toron(&server, admin, "admin revoke P-kim activist --session S05").await);
    let docs = toron(&server, &kim_token, "admin docs").await;
    assert_eq!(docs.1, serde_json::json!([]));

    // Every admin change is a record in the log.
    let admin_records = server
        .store()
        .events(before + 1, 1000)
        .expect("events")
        .into_iter()
        .filter(|e| matches!(e, Event::Admin { .. }))
        .count();
    // P-lee and her token, session (with its triage and the series' report, registered with
    // it), P-kim and her token, grant, document, phase, revoke (the refused session added
    // nothing)
    assert_eq!(admin_records, 11);

    // A phase does not go back by mistake (issue 16): it takes rights away from the hall.
    let back = toron(&server, admin, "admin session phase S05 scheduled").await;
    refused(&back, "409", "--force");
    assert_eq!(server.registry().session("S05").expect("S05").phase, "live");
    ok(&toron(&server, admin, "admin session phase S05 scheduled --force").await);
    assert_eq!(
        server.registry().session("S05").expect("S05").phase,
        "scheduled"
    );
    let told = toron(
        &server,
        admin,
        "history S05 --kind session.phase_changed --json",
    )
    .await;
    let last = told.1.as_array().and_then(|l| l.last()).cloned();
    assert_eq!(
        last.as_ref()
            .map(|e| (e["detail"]["from"].clone(), e["detail"]["to"].clone())),
        Some((serde_json::json!("live"), serde_json::json!("scheduled"))),
        "logged: {last:?}"
    );

    // The invite sheet from the command line: everyone gets a one-time link (a join code, not
    // a token: a browser keeps the addresses it opened), and Kim, who joined already, stays
    // signed in; `--reissue` also ends her token. A link's code is exchanged once.
    ok(&toron(&server, admin, "admin grant P-kim activist --session S05").await);
    let csv_path = dir.path().join("invites.csv");
    let csv = csv_path.to_str().expect("path");
    let sheet = toron(&server, admin, &format!("admin invites S05 --csv {csv}")).await;
    ok(&sheet);
    let row = |sheet: &Value| {
        sheet["invites"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["participant"] == "P-kim").cloned())
            .expect("Kim is on the sheet")
    };
    let link = row(&sheet.1)["link"].as_str().expect("a link").to_string();
    assert!(
        link.starts_with(&url.replacen("ws://", "http://", 1)),
        "{link}"
    );
    let code = link.rsplit("#/join/").next().expect("code").to_string();
    assert!(code.starts_with("j_"), "a join code, not a token: {link}");
    assert_ne!(
        toron(&server, &code, "admin whoami").await.0,
        0,
        "a code is no token"
    );
    let csv = std::fs::read_to_string(&csv_path).expect("csv written");
    assert!(
        csv.starts_with('\u{feff}') && csv.contains("P-kim,김민지") && csv.contains(&code),
        "{csv}"
    );
    assert_eq!(
        toron(&server, &kim_token, "admin whoami").await.0,
        0,
        "Kim stays signed in"
    );
    let exchange = |code: String| {
        let http = url.replacen("ws://", "http://", 1);
        tokio::task::spawn_blocking(move || {
            ureq::post(&format!("{http}/api/v1/join"))
                .config()
                .http_status_as_error(false)
                .build()
                .send_json(serde_json::json!({ "code": code }))
                .map(|mut r| {
                    (
                        r.status().as_u16(),
                        r.body_mut().read_json::<Value>().unwrap_or_default(),
                    )
                })
        })
    };
    let (status, joined) = exchange(code.clone()).await.expect("join").expect("answer");
    assert_eq!(status, 200, "{joined}");
    let device = joined["token"].as_str().expect("a token").to_string();
    assert_eq!(
        toron(&server, &device, "admin whoami").await.1["participant"],
        "P-kim"
    );
    let (status, again) = exchange(code).await.expect("join").expect("answer");
    assert_eq!(status, 401, "a code is spent once used: {again}");
    assert_eq!(
        toron(&server, &kim_token, "admin whoami").await.0,
        0,
        "both devices in"
    );
    ok(&toron(&server, admin, "admin invites S05 --reissue").await);
    for old in [&kim_token, &device] {
        assert_ne!(
            toron(&server, old, "admin whoami").await.0,
            0,
            "--reissue ends her tokens"
        );
    }

    server.shutdown().await.expect("shutdown");
}
