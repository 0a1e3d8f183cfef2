//! A session's annotations as W3C Web Annotations (issue 19): `toron export S --format w3c`
//! writes the Web Annotation JSON-LD shape, and `toron import --format w3c FILE --session S`
//! brings it into a fresh server's session, where every annotation resolves to the same quote
//! — re-anchored by its quote first, so a stale position does not move it — and a second
//! import creates nothing.

use serde_json::{json, Value};
use toron_server::Running;
use toron_tests::secured;

const ADMIN: &str = "toron_admin_for_the_w3c_test";

fn example() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

async fn import(server: &Running, dir: &tempfile::TempDir, name: &str, bundle: &Value) {
    let path = dir.path().join(name);
    std::fs::write(&path, bundle.to_string()).expect("write");
    let (ok, _, err) = toron(server, &["import", path.to_str().expect("path")]).await;
    assert!(ok, "{err}");
}

async fn w3c_export(server: &Running, dir: &tempfile::TempDir, name: &str) -> Value {
    let path = dir.path().join(name);
    let (ok, _, err) = toron(
        server,
        &[
            "export",
            "S-LIB",
            "--format",
            "w3c",
            "-o",
            path.to_str().expect("path"),
        ],
    )
    .await;
    assert!(ok, "{err}");
    serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("json")
}

/// `toron import --format w3c FILE --session S-LIB`, with `--json` when `json`.
async fn import_w3c(
    server: &Running,
    path: &std::path::Path,
    json: bool,
) -> (bool, String, String) {
    let file = path.to_str().expect("path");
    let mut args = vec!["import", "--format", "w3c", file, "--session", "S-LIB"];
    if json {
        args.push("--json");
    }
    toron(server, &args).await
}

fn items(collection: &Value) -> &Vec<Value> {
    collection["first"]["items"].as_array().expect("items")
}

fn selector<'v>(item: &'v Value, kind: &str) -> Option<&'v Value> {
    item["target"]["selector"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["type"] == kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_round_trip_through_web_annotation_json_ld() {
    let files = tempfile::tempdir().expect("files");
    let (_a_dir, a) = secured(ADMIN).await;
    import(&a, &files, "full.json", &example()).await;
    let exported = w3c_export(&a, &files, "a.jsonld").await;

    // The Web Annotation shape.
    let context = exported["@context"].as_array().expect("@context");
    assert_eq!(context[0], "http://www.w3.org/ns/anno.jsonld");
    assert_eq!(exported["type"], "AnnotationCollection");
    assert_eq!(exported["first"]["type"], "AnnotationPage");
    let library = example()["sessions"][0]["annotations"]
        .as_array()
        .expect("annotations")
        .len();
    assert_eq!(items(&exported).len(), library);
    assert_eq!(exported["total"], json!(library));
    let motivations = [
        "commenting",
        "questioning",
        "replying",
        "highlighting",
        "assessing",
    ];
    for item in items(&exported) {
        assert_eq!(item["type"], "Annotation");
        assert!(item["id"].as_str().expect("id").starts_with("urn:uuid:"));
        let m = item["motivation"].as_str().expect("motivation");
        assert!(motivations.contains(&m), "{m}");
        assert!(item["creator"]["name"].is_string(), "{item}");
        match item["toron:kind"].as_str().expect("kind") {
            "reply" | "answer" => {
                assert_eq!(m, "replying");
                assert!(item["target"]
                    .as_str()
                    .expect("a reply targets its parent")
                    .starts_with("urn:uuid:"));
            }
            "score" => assert_eq!(m, "assessing"),
            _ => {}
        }
        if let Some(q) = selector(item, "TextQuoteSelector") {
            assert!(q["exact"].is_string() && q["prefix"].is_string() && q["suffix"].is_string());
            let p = selector(item, "TextPositionSelector").expect("a position beside the quote");
            assert!(p["end"].as_u64() > p["start"].as_u64());
            assert!(item["target"]["source"]
                .as_str()
                .expect("source")
                .contains("/docs/"));
        }
    }

    // A stale position in the file: the quote decides where the annotation goes.
    let mut file = exported.clone();
    let stale = file["first"]["items"]
        .as_array_mut()
        .expect("items")
        .iter_mut()
        .find(|i| i["toron:ref"] == "L-04")
        .expect("L-04");
    let sel = stale["target"]["selector"]
        .as_array_mut()
        .expect("selectors");
    for s in sel
        .iter_mut()
        .filter(|s| s["type"] == "TextPositionSelector")
    {
        s["start"] = json!(3);
        s["end"] = json!(19);
    }
    let path = files.path().join("stale.jsonld");
    std::fs::write(&path, file.to_string()).expect("write");

    // A fresh server holding the library session without its annotations (and what refers
    // to them).
    let (_b_dir, b) = secured(ADMIN).await;
    let mut bare = example();
    for session in 0..2 {
        for k in ["annotations", "reactions", "triage"] {
            bare["sessions"][session][k] = json!([]);
        }
    }
    bare["findings"] = json!([]);
    bare["department_responses"] = json!([]);
    import(&b, &files, "bare.json", &bare).await;
    let (ok, out, err) = import_w3c(&b, &path, true).await;
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        summary["content"]["created"]["annotations"],
        json!(library),
        "{summary}"
    );

    // The same annotations, on the same quotes at the same places, by the same people.
    let again = w3c_export(&b, &files, "b.jsonld").await;
    assert_eq!(items(&again).len(), library);
    for before in items(&exported) {
        let after = items(&again)
            .iter()
            .find(|i| i["id"] == before["id"])
            .unwrap_or_else(|| panic!("{} lost", before["id"]));
        for key in [
            "motivation",
            "created",
            "body",
            "creator",
            "toron:kind",
            "toron:ref",
        ] {
            assert_eq!(after[key], before[key], "{key} of {}", before["id"]);
        }
        assert_eq!(
            selector(after, "TextQuoteSelector"),
            selector(before, "TextQuoteSelector")
        );
        assert_eq!(
            selector(after, "TextPositionSelector"),
            selector(before, "TextPositionSelector"),
            "{} resolves where it was",
            before["toron:ref"]
        );
        if before["target"].is_string() {
            assert_eq!(
                after["target"], before["target"],
                "a reply keeps its parent"
            );
        }
    }

    // Importing the file again creates nothing.
    let (ok, out, err) = import_w3c(&b, &path, true).await;
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        summary["content"]["created"]["annotations"],
        Value::Null,
        "{summary}"
    );

    // A quote no longer in the text is named, and nothing is imported.
    let mut gone = exported.clone();
    let first = &mut gone["first"]["items"][0];
    first["id"] = json!("urn:uuid:00000000-0000-4000-8000-000000000001");
    for s in first["target"]["selector"]
        .as_array_mut()
        .expect("selectors")
    {
        if s["type"] == "TextQuoteSelector" {
            s["exact"] = json!("자료집에 없는 문장");
        }
    }
    let path = files.path().join("gone.jsonld");
    std::fs::write(&path, gone.to_string()).expect("write");
    let (ok, _, err) = import_w3c(&b, &path, false).await;
    assert!(!ok && err.contains("자료집에 없는 문장"), "{err}");
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// Issue 29 (low findings): a W3C file cannot give its author a role they do not hold (nor
/// name an author who holds none in the session), and what it brings says where it came from
/// — the report marks it as the file's word; and an import into one session of a series of
/// several, whose findings name annotations of the other sessions, goes through. (Before: the
/// file's role was taken as written, and the import failed on the other session's findings.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_w3c_file_gives_no_role_and_joins_a_series_of_several_sessions() {
    let files = tempfile::tempdir().expect("files");
    let (_dir, server) = secured(ADMIN).await;
    import(&server, &files, "full.json", &example()).await;
    let exported = w3c_export(&server, &files, "s.jsonld").await;
    let template = items(&exported)
        .iter()
        .find(|i| i["toron:ref"] == "L-04")
        .expect("L-04")
        .clone();
    let new_item = |id: &str, role: &str, body: &str| {
        let mut item = template.clone();
        item["id"] = json!(format!("urn:uuid:{id}"));
        item["toron:author_role"] = json!(role);
        item.as_object_mut().expect("item").remove("toron:ref");
        item["body"] = json!({ "type": "TextualBody", "value": body });
        item
    };
    let write = |name: &str, list: Vec<Value>| {
        let mut file = exported.clone();
        file["first"]["items"] = json!(list);
        file["total"] = json!(1);
        let path = files.path().join(name);
        std::fs::write(&path, file.to_string()).expect("write");
        path
    };
    // P-KIM is an activist in S-LIB, not its organizer.
    let path = write(
        "role.jsonld",
        vec![new_item(
            "00000000-0000-4000-8000-0000000000a1",
            "organizer",
            "운영자인 척",
        )],
    );
    let (ok, _, err) = import_w3c(&server, &path, false).await;
    assert!(
        !ok && err.contains("does not hold the role `organizer`"),
        "{err}"
    );
    // In her own role, into S-LIB of a series of two sessions with findings: taken.
    let path = write(
        "ok.jsonld",
        vec![new_item(
            "00000000-0000-4000-8000-0000000000a2",
            "activist",
            "다른 도구에서 쓴 의견",
        )],
    );
    let (ok, _, err) = import_w3c(&server, &path, false).await;
    assert!(ok, "{err}");
    let (ok, md, err) = toron(&server, &["report", "HB-BENCH-2012", "--format", "md"]).await;
    assert!(ok, "{err}");
    let row = md
        .lines()
        .find(|l| l.contains("다른 도구에서 쓴 의견"))
        .expect("in the report");
    assert!(row.contains("W3C 파일에서 가져옴"), "{row}");
    server.shutdown().await.expect("shutdown");
}
