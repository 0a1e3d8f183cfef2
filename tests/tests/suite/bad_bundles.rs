//! Bad bundles — an unknown field type, a wrong value type, a dangling reference, an anchor
//! that does not match, a duplicate key, a truncated file, a 100 MB file — get an error that
//! names the place, and nothing is written (through the CLI and straight to the API). A bundle
//! whose Korean text arrived decomposed (NFD) imports as NFC and its anchors hold.

use serde_json::{json, Value};
use toron_server::Running;
use toron_tests::{secured, LIMIT};
use unicode_normalization::UnicodeNormalization;

const ADMIN: &str = "toron_admin_for_the_bad_bundle_test";

fn example() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

fn nfd_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = s.nfd().collect(),
        Value::Array(a) => a.iter_mut().for_each(nfd_strings),
        Value::Object(m) => m.values_mut().for_each(nfd_strings),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bundles_are_refused_whole_with_the_place_named() {
    let (_dir, server) = secured(ADMIN).await;
    let files = tempfile::tempdir().expect("files");
    let good = example();

    let mut cases: Vec<(&str, Vec<u8>, Vec<&str>)> = Vec::new();
    let mut v = good.clone();
    v["sessions"][0]["annotations"][0]["target"]["type"] = json!("image");
    cases.push((
        "unknown target type",
        v.to_string().into_bytes(),
        vec!["sessions[0].annotations[0].target", "image"],
    ));
    let mut v = good.clone();
    v["sessions"][0]["evaluations"][0]["criteria"]["relevance"]["score"] = json!("four");
    cases.push((
        "wrong value type",
        v.to_string().into_bytes(),
        vec!["sessions[0].evaluations[0].criteria.relevance.score"],
    ));
    let mut v = good.clone();
    v["sessions"][0]["cases"][0]["government"] = json!("G-NOWHERE");
    cases.push((
        "dangling reference",
        v.to_string().into_bytes(),
        vec!["sessions[0].cases[0].government", "G-NOWHERE"],
    ));
    let mut v = good.clone();
    v["sessions"][0]["annotations"][3]["target"]["quote"]["exact"] = json!("자료집에 없는 문장");
    cases.push((
        "anchor that does not match",
        v.to_string().into_bytes(),
        vec![
            "sessions[0].annotations[3].target.quote",
            "L-04",
            "자료집에 없는 문장",
        ],
    ));
    let mut v = good.clone();
    let dup = v["participants"][0].clone();
    v["participants"].as_array_mut().expect("list").push(dup);
    cases.push((
        "duplicate key",
        v.to_string().into_bytes(),
        vec!["participants[8]", "duplicate key `P-HAN`"],
    ));
    let whole = serde_json::to_vec_pretty(&good).expect("bytes");
    cases.push((
        "truncated file",
        whole[..whole.len() / 2].to_vec(),
        vec!["line", "column", "truncated"],
    ));

    let before = server.store().last_global_seq().expect("seq");
    for (what, bytes, expected) in &cases {
        let path = files
            .path()
            .join(format!("{}.json", what.replace(' ', "-")));
        std::fs::write(&path, bytes).expect("write");
        for dry in [false, true] {
            let mut args = vec!["import", path.to_str().expect("path")];
            if dry {
                args.push("--dry-run");
            }
            let (ok, _, err) = toron(&server, &args).await;
            assert!(!ok, "{what}: accepted");
            for e in expected {
                assert!(err.contains(e), "{what}: `{e}` not in: {err}");
            }
        }
        // The server refuses it the same way when sent directly.
        let (url, body) = (server.url(), bytes.clone());
        let r = tokio::task::spawn_blocking(move || {
            toron_cli::admin::Admin::new(&url, Some(ADMIN.into()), LIMIT)
                .post_bytes("/api/v1/import", body)
        })
        .await
        .expect("join");
        let e = r.expect_err(what).to_string();
        assert!(e.starts_with("422"), "{what}: {e}");
        assert!(e.contains(expected[0]), "{what}: {e}");
    }
    // 100 MB: refused before it is read.
    let big = files.path().join("big.json");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(100 * 1024 * 1024)
        .expect("size");
    let (ok, _, err) = toron(&server, &["import", big.to_str().expect("path")]).await;
    assert!(
        !ok && err.contains("100.0 MB") && err.contains("big.json"),
        "{err}"
    );

    // Nothing of any of them was written.
    assert_eq!(server.store().last_global_seq().expect("seq"), before);
    assert!(server.registry().participant("P-HAN").is_none());

    // Decomposed Korean (NFD) — text and quotes — imports as NFC, and the anchors hold.
    let mut v = good.clone();
    nfd_strings(&mut v);
    assert_ne!(v, good);
    let path = files.path().join("nfd.json");
    std::fs::write(&path, v.to_string()).expect("write");
    let (ok, out, err) = toron(&server, &["import", path.to_str().expect("path"), "--json"]).await;
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(summary["content"]["created"]["annotations"], json!(12));
    let (ok, out, err) = toron(&server, &["export", "HB-BENCH-2012"]).await;
    assert!(ok, "{err}");
    let exported: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        exported["sessions"][0]["cases"][0]["sections"],
        good["sessions"][0]["cases"][0]["sections"],
        "stored as NFC"
    );
    let (ok, md, err) = toron(&server, &["report", "HB-BENCH-2012", "--format", "md"]).await;
    assert!(ok, "{err}");
    assert!(!md.contains("orphaned"), "every anchor resolves: {md}");
    server.shutdown().await.expect("shutdown");
}
