//! The hall drill (issue 30): a session prepared without any hall content, then at least thirty
//! participants through the official JavaScript automerge-repo client acting at once —
//! questions, comments, gaps, replies and answers, 공감, the chair's triage, the evaluators'
//! forms, some pages reloaded — while the server is SIGKILLed midway and started again on the
//! same data directory and port. `tests/node/drill.mjs` then checks every acknowledged act
//! against the session's timeline (exactly once) and the report (counts by kind, each
//! question's final status, times in KST, authors as consented).
//!
//! CI runs the short form (30 participants, 20 s). The long form is a benchmark:
//! `TORON_DRILL_SECONDS=180 TORON_DRILL_PEOPLE=50 cargo test --release -p toron-tests --test
//! suite drill:: -- --nocapture` (BENCHMARKS.md, "The hall drill").

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use toron_cli::admin::Admin;
use toron_domain::policy::DocKey;

use crate::web_e2e::{issue_token, not_yet_held, start_on, toron, ADMIN};

const SESSION: &str = "S-LIB";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn thirty_official_clients_and_a_sigkill_lose_nothing_acknowledged() {
    // Not beside a browser test (see `ONE_BROWSER`).
    let _one = crate::web_e2e::ONE_BROWSER
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let seconds = env_number("TORON_DRILL_SECONDS", 20);
    let activists = env_number("TORON_DRILL_PEOPLE", 30);
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    toron_tests::npm_ci(&node, "@automerge/automerge-repo");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    if std::env::var_os("TORON_DRILL_KEEP").is_some() {
        println!("the drill's data directory: {}", data.display());
    }
    let server_bin = Path::new(env!("CARGO_BIN_EXE_e2e-toron-server"));
    let (server, url) = start_on(server_bin, &data, "127.0.0.1:0", &[]);

    // The session, not yet held, with the drill's activists: half shown by role only.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let mut b = not_yet_held(&example);
    for i in 1..=activists {
        let key = format!("P-D{i:02}");
        let attribution = if i % 2 == 0 {
            "role_only"
        } else {
            "name_and_affiliation"
        };
        b["participants"]
            .as_array_mut()
            .expect("participants")
            .push(json!({ "key": key, "name": format!("훈련참가자{i:02}"), "affiliation": "한빛구 주민",
                "kind": "activist", "department": null, "government": null, "attribution": attribution }));
        b["sessions"][0]["roles"]
            .as_array_mut()
            .expect("roles")
            .push(json!({ "participant": key, "role": "activist" }));
    }
    let bundle = dir.path().join("drill.json");
    std::fs::write(&bundle, b.to_string()).expect("write");
    toron(&url, &["import", bundle.to_str().expect("path")]);
    toron(&url, &["admin", "session", "phase", SESSION, "live"]);

    let api = Admin::new(&url, Some(ADMIN.into()), Duration::from_secs(20));
    let token = |p: &str| issue_token(&api, p);
    let notes = |p: &str| {
        DocKey::Notes {
            session: SESSION.into(),
            participant: p.into(),
        }
        .document_id()
        .to_string()
    };
    let session = &b["sessions"][0];
    let case_keys: Vec<String> = session["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    let form = |c: &str, e: &str| {
        DocKey::Eval {
            case: c.into(),
            evaluator: e.into(),
        }
        .document_id()
        .to_string()
    };
    let mut people = Vec::new();
    for p in &b["participants"].as_array().expect("participants")[..] {
        let key = p["key"].as_str().expect("key");
        let role = match key {
            "P-MOON" => "facilitator",
            "P-PARK" | "P-JUNG" => "evaluator",
            "P-LEE" => "presenter",
            k if k.starts_with("P-D") => "activist",
            _ => continue,
        };
        let mut person = json!({
            "participant": key, "token": token(key), "role": role,
            "name": p["name"], "attribution": p["attribution"],
            "notes": if role == "facilitator" { Value::Null } else { json!(notes(key)) },
        });
        if role == "evaluator" {
            person["forms"] = json!(case_keys.iter().map(|c| form(c, key)).collect::<Vec<_>>());
        }
        people.push(person);
    }
    let plan = json!({
        "session": SESSION,
        "people": people,
        "triage": DocKey::Triage { session: SESSION.into() }.document_id().to_string(),
        "departments": b["departments"].as_array().expect("departments").iter().map(|d| d["key"].clone()).collect::<Vec<_>>(),
        "criteria": b["evaluation_template"]["criteria"].as_array().expect("criteria").iter().map(|c| c["key"].clone()).collect::<Vec<_>>(),
        "cases": session["cases"].as_array().expect("cases").iter().map(|c| json!({ "key": c["key"], "sections": c["sections"] })).collect::<Vec<_>>(),
    });
    let plan_file = dir.path().join("people.json");
    std::fs::write(&plan_file, plan.to_string()).expect("write");

    // The participants act; midway the server is SIGKILLed and started again where it was.
    let port = url.rsplit(':').next().expect("port").to_string();
    let drill = {
        let mut cmd = Command::new("node");
        cmd.arg("drill.mjs")
            .current_dir(&node)
            .env("TORON_URL", &url)
            .env("PEOPLE", &plan_file)
            .env("SECONDS", seconds.to_string())
            .env("ORGANIZER", ADMIN)
            .env("OUT", dir.path().join("acked.json"));
        std::thread::spawn(move || {
            toron_tests::run_bounded(&mut cmd, Duration::from_secs(seconds + 240), "the drill")
        })
    };
    std::thread::sleep(Duration::from_millis(seconds * 450));
    let mut server = server;
    server.0.kill().expect("SIGKILL");
    let _ = server.0.wait();
    std::thread::sleep(Duration::from_millis(800));
    let (again, url2) = start_on(server_bin, &data, &format!("127.0.0.1:{port}"), &[]);
    assert_eq!(url2, url, "started again where it was");
    let (ok, stdout, stderr) = drill.join().expect("the drill's thread");
    println!("{stdout}");
    if !ok && std::env::var_os("TORON_DRILL_KEEP").is_some() {
        drop(again);
        let kept = dir.keep();
        panic!(
            "the drill failed (kept {}):\n{stdout}\n{stderr}",
            kept.display()
        );
    }
    assert!(
        ok && stdout.contains("drill: ok"),
        "the drill:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("drill summary"))
        .unwrap_or_default();
    // Something was done on both sides of the kill.
    assert!(summary.contains("acknowledged"), "{summary}");
    drop(again);
    if std::env::var_os("TORON_DRILL_KEEP").is_some() {
        let _ = dir.keep();
    }
}
