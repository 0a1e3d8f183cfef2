//! Issue 30, point 2, as a property: random documents of every kind a session's people write,
//! written through the official JavaScript client (`tests/node/random-docs.mjs`, several
//! seeds), and every document the gate accepted is taken by every reader — the export leaves
//! nothing out, the timeline has each annotation once, the report renders in all six formats
//! and counts them all, and the W3C export (the CLI's) has each annotation.
//!
//! Before: the JavaScript client's `0.0` for a passage at a section's first character made the
//! report's reader drop the annotation; a triage item set without a history read as 미처리.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use toron_domain::policy::DocKey;
use toron_tests::{token_of, toron_line};

const ADMIN: &str = "admin-token-for-the-javascript-properties";
const SESSION: &str = "S-LIB";
const SERIES: &str = "HB-BENCH-2012";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_takes_every_document_the_javascript_client_wrote_and_the_gate_took() {
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    toron_tests::npm_ci(&node, "@automerge/automerge-repo");
    let (dir, server) = toron_tests::secured(ADMIN).await;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let b = crate::web_e2e::not_yet_held(&example);
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, b.to_string()).expect("write");
    let run = |token: &str, line: String| {
        let (server, token) = (&server, token.to_string());
        async move {
            let (ok, out, err) = toron_line(server, &token, &line).await;
            assert!(ok, "`toron {line}`: {err}");
            out
        }
    };
    run(ADMIN, format!("import {}", bundle.display())).await;
    run(ADMIN, format!("admin session phase {SESSION} live")).await;
    for who in ["P-LEE"] {
        run(
            ADMIN,
            format!("admin grant {who} department_reviewer --series {SERIES}"),
        )
        .await;
    }
    // A finding for 문화도서관과 to answer: promoted from a question.
    let kim = token_of(&server, "P-KIM").await;
    let q = run(
        &kim,
        format!(
            "annotate case:C-LIB-HB --session {SESSION} --path sections.background \
             --quote '한빛구는' --kind question --body '재원은 어디서 나옵니까?'"
        ),
    )
    .await;
    let finding = run(
        ADMIN,
        format!(
            "promote --session {SESSION} --from {} --type gap --title '재원' --department DEP-CULT",
            q.trim()
        ),
    )
    .await;

    let doc = |k: DocKey| k.document_id().to_string();
    let notes = |p: &str| {
        doc(DocKey::Notes {
            session: SESSION.into(),
            participant: p.into(),
        })
    };
    let cases: Vec<Value> = b["sessions"][0]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| json!({ "key": c["key"], "sections": c["sections"] }))
        .collect();
    let case_keys: Vec<String> = cases
        .iter()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    // One token each (issuing another would end the first).
    let mut tokens = std::collections::BTreeMap::new();
    for who in ["P-KIM", "P-CHOI", "P-LEE", "P-PARK", "P-JUNG", "P-MOON"] {
        tokens.insert(who, token_of(&server, who).await);
    }
    let mut people = Vec::new();
    for (who, role) in [
        ("P-KIM", "activist"),
        ("P-CHOI", "activist"),
        ("P-LEE", "presenter"),
        ("P-PARK", "evaluator"),
        ("P-JUNG", "evaluator"),
        ("P-MOON", "facilitator"),
    ] {
        let mut p =
            json!({ "participant": who, "role": role, "token": tokens[who], "notes": notes(who) });
        if role == "evaluator" {
            p["forms"] = json!(case_keys
                .iter()
                .map(|c| doc(DocKey::Eval {
                    case: c.clone(),
                    evaluator: who.into()
                }))
                .collect::<Vec<_>>());
        }
        people.push(p);
    }
    people.push(json!({
        "participant": "P-LEE", "role": "department_reviewer", "token": tokens["P-LEE"],
        "response": doc(DocKey::Response { series: SERIES.into(), department: "DEP-CULT".into() }),
    }));
    let plan = json!({
        "session": SESSION, "series": SERIES, "people": people, "cases": cases,
        "finding": finding.trim(),
        "triage": doc(DocKey::Triage { session: SESSION.into() }),
        "departments": ["DEP-CULT", "DEP-FAM", "DEP-PLAN"],
        "criteria": b["evaluation_template"]["criteria"].as_array().expect("criteria").iter().map(|c| c["key"].clone()).collect::<Vec<_>>(),
    });
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("write");

    let seeds: u64 = std::env::var("TORON_PROPERTY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut all_ids: Vec<String> = Vec::new();
    for seed in 1..=seeds {
        let out = dir.path().join(format!("ids-{seed}.json"));
        let mut cmd = Command::new("node");
        cmd.arg("random-docs.mjs")
            .current_dir(&node)
            .env("TORON_URL", server.url().replacen("ws://", "http://", 1))
            .env("PLAN", &plan_file)
            .env("SEED", seed.to_string())
            .env("COUNT", "60")
            .env("ORGANIZER", ADMIN)
            .env("OUT", &out);
        let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
            toron_tests::run_bounded(&mut cmd, Duration::from_secs(180), "random documents")
        })
        .await
        .expect("the script's thread");
        println!("{stdout}");
        assert!(
            ok && stdout.contains("random documents: ok"),
            "seed {seed}:\n{stdout}\n{stderr}"
        );
        let ids: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("ids")).expect("json");
        all_ids.extend(ids);
    }
    // The W3C export (the CLI makes it from the server's export) has every one.
    let w3c = run(ADMIN, format!("export {SESSION} --format w3c")).await;
    let missing: Vec<&String> = all_ids.iter().filter(|id| !w3c.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} annotations are not in the W3C export: {missing:?}",
        missing.len(),
        all_ids.len()
    );
    server.shutdown().await.expect("shutdown");
}
