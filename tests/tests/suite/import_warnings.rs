//! What an import says besides yes or no (issue 19): every error of a bad bundle at once,
//! so whoever fixes the file fixes it in one go; and what is valid but suspicious — an
//! evaluation changed after it was submitted with no reopening on record, a reaction or a
//! triage decision dated before its annotation, a reply dated before its parent, a quote that
//! occurs twice with nothing to choose — as warnings with their places, on the terminal and in
//! `--json`, the import going ahead; `--strict` refuses them and writes nothing.

use serde_json::{json, Value};
use toron_server::Running;
use toron_tests::{secured, LIMIT};

const ADMIN: &str = "toron_admin_for_the_import_warnings_test";

fn example() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

/// Writes `bundle` to a file in `dir` and returns its path.
fn file(dir: &tempfile::TempDir, name: &str, bundle: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bundle.to_string()).expect("write");
    path.to_str().expect("path").to_string()
}

/// Whether the server holds the example's series (an import wrote something).
async fn series_exists(server: &Running) -> bool {
    let (url, admin) = (server.url(), ADMIN.to_string());
    tokio::task::spawn_blocking(move || {
        toron_cli::admin::Admin::new(&url, Some(admin), LIMIT)
            .call("GET", "/api/v1/export/HB-BENCH-2012", None)
            .is_ok()
    })
    .await
    .expect("join")
}

/// The example with one of each suspicious thing, and the places the warnings must name.
fn suspicious() -> (Value, Vec<&'static str>) {
    let mut v = example();
    let s = &mut v["sessions"][0];
    // Submitted on the 5th, changed on the 8th, never reopened.
    s["evaluations"][0]["updated_at"] = json!("2012-11-08T10:00:00+09:00");
    // Changed after submission too, but reopened first: no warning.
    s["evaluations"][1]["updated_at"] = json!("2012-11-08T10:00:00+09:00");
    s["evaluations"][1]["reopened_at"] = json!("2012-11-08T09:00:00+09:00");
    // «작은도서관» is twice in the section, and nothing says which.
    let quote = &mut s["annotations"][1]["target"];
    quote["quote"]["prefix"] = json!("");
    quote["quote"]["suffix"] = json!("");
    quote.as_object_mut().expect("target").remove("position");
    // L-10 replies to L-09 (17:20) at 17:10.
    s["annotations"][9]["created_at"] = json!("2012-11-07T17:10:00+09:00");
    // An agreement with L-04 (16:20) at 16:10; L-02 (16:15) triaged at 16:05.
    s["reactions"][0]["at"] = json!("2012-11-07T16:10:00+09:00");
    s["triage"][0]["at"] = json!("2012-11-07T16:05:00+09:00");
    (
        v,
        vec![
            "sessions[0].evaluations[0].updated_at",
            "sessions[0].annotations[1].target.quote",
            "sessions[0].annotations[9].created_at",
            "sessions[0].reactions[0].at",
            "sessions[0].triage[0].at",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_bundle_is_refused_with_every_error_it_has() {
    let (_dir, server) = secured(ADMIN).await;
    let files = tempfile::tempdir().expect("files");
    let mut v = example();
    v["sessions"][0]["cases"][0]["government"] = json!("G-NOWHERE");
    v["sessions"][1]["phase"] = json!("party");
    v["findings"][2]["departments"] = json!(["DEP-NOWHERE"]);
    let expected = [
        ("sessions[0].cases[0].government", "G-NOWHERE"),
        ("sessions[1].phase", "party"),
        ("findings[2].departments[0]", "DEP-NOWHERE"),
    ];
    let path = file(&files, "three.json", &v);
    let (ok, _, err) = toron(&server, &["import", &path]).await;
    assert!(!ok, "accepted");
    assert!(err.contains("3 problems"), "{err}");
    for (place, what) in expected {
        let line = err
            .lines()
            .find(|l| l.contains(place))
            .unwrap_or_else(|| panic!("{place} not reported: {err}"));
        assert!(line.contains(what), "{line}");
    }
    // The server, sent the file directly, reports the same three.
    let (url, body) = (server.url(), v.to_string().into_bytes());
    let r = tokio::task::spawn_blocking(move || {
        toron_cli::admin::Admin::new(&url, Some(ADMIN.into()), LIMIT)
            .post_bytes("/api/v1/import", body)
    })
    .await
    .expect("join");
    let e = r.expect_err("refused").to_string();
    assert!(e.starts_with("422"), "{e}");
    for (place, _) in expected {
        assert!(e.contains(place), "{place} not in {e}");
    }
    assert!(!series_exists(&server).await, "nothing was written");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspicious_content_is_imported_with_warnings_or_refused_when_strict() {
    let (_dir, server) = secured(ADMIN).await;
    let files = tempfile::tempdir().expect("files");
    let (v, places) = suspicious();
    let path = file(&files, "suspicious.json", &v);

    // --strict: refused before anything is sent, every warning named.
    let (ok, _, err) = toron(&server, &["import", "--strict", &path]).await;
    assert!(!ok, "--strict accepted a bundle with warnings");
    assert!(err.contains("5 warnings"), "{err}");
    for p in &places {
        assert!(err.contains(p), "{p} not in: {err}");
    }
    assert!(!series_exists(&server).await, "--strict wrote nothing");
    // The server is strict on its own for whoever posts with `strict=true`.
    let (url, body) = (server.url(), v.to_string().into_bytes());
    let r = tokio::task::spawn_blocking(move || {
        toron_cli::admin::Admin::new(&url, Some(ADMIN.into()), LIMIT)
            .post_bytes("/api/v1/import?dry_run=true&strict=true", body)
    })
    .await
    .expect("join");
    let e = r.expect_err("strict refuses").to_string();
    assert!(e.starts_with("422") && e.contains(places[0]), "{e}");

    // Without --strict: imported, and the terminal says each warning with its place.
    let (ok, out, err) = toron(&server, &["import", &path]).await;
    assert!(ok, "{err}");
    assert!(out.contains("5 warnings"), "{out}");
    for p in &places {
        let line = out
            .lines()
            .find(|l| l.contains("warning:") && l.contains(p))
            .unwrap_or_else(|| panic!("no warning at {p}: {out}"));
        assert!(line.len() > p.len() + 12, "the warning says what: {line}");
    }
    assert!(
        !out.contains("evaluations[1]"),
        "a change after a recorded reopening is not suspicious: {out}"
    );
    assert!(series_exists(&server).await, "the import went ahead");

    // --json carries the same warnings (a re-import: nothing new, the same warnings).
    let (ok, out, err) = toron(&server, &["import", "--json", &path]).await;
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    let told: Vec<&str> = summary["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["place"].as_str())
        .collect();
    assert_eq!(told, places);

    // The example itself has nothing suspicious.
    let clean = file(&files, "clean.json", &example());
    let (ok, out, err) = toron(&server, &["import", "--strict", "--json", &clean]).await;
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(summary["warnings"], json!([]));
    server.shutdown().await.expect("shutdown");
}
