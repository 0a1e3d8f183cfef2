//! The findings of the red-team pass (issue 15) that concern what the record says: the report
//! believes the log and the document keys, never what participants write about themselves;
//! one bad note costs only itself, and organizers can repair it; vocabulary values cannot be
//! edited in place or written as objects. Each runs the example series through the real
//! server, the real `toron` binary and real sync clients.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use toron_cli::sync_client::{url_with_token, ClientError, Connection, DocSync};
use toron_domain::policy::DocKey;
use toron_protocol::json::put_json;
use toron_protocol::Event;
use toron_server::Running;
use toron_tests::{secured, token_of, LIMIT};

const ADMIN: &str = "toron_admin_for_the_red_team_test";
const SERIES: &str = "HB-BENCH-2012";

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

/// A server with the example series imported and `S-LIB` live again.
async fn series_live() -> (tempfile::TempDir, Running) {
    let (dir, server) = secured(ADMIN).await;
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let (ok, _, err) = toron(&server, &["import", bundle.to_str().expect("path")]).await;
    assert!(ok, "import: {err}");
    set_phase(&server, "live").await;
    (dir, server)
}

async fn set_phase(server: &Running, phase: &str) {
    toron_tests::set_phase(server, "S-LIB", phase).await;
}

/// P-KIM's notes layer in S-LIB, opened with her own token.
async fn kims_layer(server: &Running) -> (Connection, DocSync) {
    let kim = token_of(server, "P-KIM").await;
    open(server, &kim, &notes("P-KIM")).await
}

async fn open(server: &Running, token: &str, key: &DocKey) -> (Connection, DocSync) {
    let mut conn = Connection::connect(&url_with_token(&server.url(), Some(token)), LIMIT)
        .await
        .expect("connect");
    let d = conn.find(key.document_id(), LIMIT).await.expect("find");
    (conn, d)
}

fn notes(participant: &str) -> DocKey {
    DocKey::Notes {
        session: "S-LIB".into(),
        participant: participant.into(),
    }
}

/// Writes a new annotation with these scalar fields into `d` (strings as collaborative text,
/// as the JavaScript client writes them).
/// Writes annotation `id`, the JSON object `fields`, into the layer as the JS client would
/// (strings as Text).
fn annotate(d: &mut DocSync, id: &str, fields: Value) {
    let anns = match d.doc.get(ROOT, "annotations").expect("get") {
        Some((_, anns)) => anns,
        None => d
            .doc
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("annotations"),
    };
    put_json(&mut d.doc, &anns, id.into(), &fields).expect("annotation");
    d.doc.commit();
}

async fn export(server: &Running) -> Value {
    let (ok, out, err) = toron(server, &["export", SERIES]).await;
    assert!(ok, "export: {err}");
    serde_json::from_str(&out).expect("export is JSON")
}

fn annotation_with_body<'a>(bundle: &'a Value, body: &str) -> Option<&'a Value> {
    bundle["sessions"]
        .as_array()?
        .iter()
        .flat_map(|s| s["annotations"].as_array().into_iter().flatten())
        .find(|a| a["body"] == body)
}

/// The "weighted total" rows of the Markdown report: (government, value), in order.
fn totals(md: &str) -> Vec<(String, String)> {
    toron_tests::report_totals(md)
}

/// Critical finding: an activist writes an annotation claiming an expert said it (with the
/// expert's role and an old date); an evaluator moves his evaluation to another case. The
/// export and the report name the activist, with her role and the server's time, keep the
/// evaluation on its case, leave every official total as it was, and list both in the
/// report's data checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_believes_the_log_and_the_keys_not_the_content() {
    let (_dir, server) = series_live().await;
    let (ok, before, err) = toron(&server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "{err}");
    let totals_before = totals(&before);
    assert_eq!(totals_before.len(), 3, "{before}");

    let (mut conn, mut layer) = kims_layer(&server).await;
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000001",
        json!({
            "session": "S-LIB", "kind": "comment",
            "author": "P-MOON", "author_role": "evaluator",
            "created_at": "2001-01-01T09:00:00+09:00",
            "body": "전문가가 한 말처럼 꾸민 의견",
        }),
    );
    // A note written offline twenty minutes ago (issue 30) keeps its own time: it lies within
    // the session's span, before it arrived.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let offline_kst = chrono::DateTime::from_timestamp(now - 20 * 60, 0)
        .expect("a time")
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("KST"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000009",
        json!({
            "session": "S-LIB", "kind": "comment", "author": "P-KIM", "author_role": "activist",
            "created_at": offline_kst, "body": "지하철에서 쓴 의견",
        }),
    );
    conn.push(&mut layer, LIMIT)
        .await
        .expect("her own layer takes it");
    conn.close().await;

    let park = token_of(&server, "P-PARK").await;
    let eval = DocKey::Eval {
        case: "C-LIB-HB".into(),
        evaluator: "P-PARK".into(),
    };
    let (mut conn, mut e) = open(&server, &park, &eval).await;
    // (A submitted form is changed only after it is reopened: issue 29.)
    e.doc.put(ROOT, "status", "draft").expect("reopen");
    e.doc.commit();
    conn.push(&mut e, LIMIT).await.expect("reopened");
    let t = e.doc.put_object(ROOT, "case", ObjType::Text).expect("case");
    e.doc.splice_text(&t, 0, 0, "C-LIB-NR").expect("splice");
    let t = e
        .doc
        .put_object(ROOT, "evaluator", ObjType::Text)
        .expect("ev");
    e.doc.splice_text(&t, 0, 0, "P-JUNG").expect("splice");
    e.doc
        .put(ROOT, "status", "submitted")
        .expect("submitted again");
    e.doc.commit();
    conn.push(&mut e, LIMIT)
        .await
        .expect("his own evaluation takes it");
    conn.close().await;

    let b = export(&server).await;
    let a = annotation_with_body(&b, "전문가가 한 말처럼 꾸민 의견").expect("exported");
    assert_eq!(a["author"], "P-KIM", "{a}");
    assert_eq!(a["author_role"], "activist", "{a}");
    assert!(
        !a["created_at"].as_str().expect("time").starts_with("2001"),
        "the time is the server's: {a}"
    );
    let offline_note = annotation_with_body(&b, "지하철에서 쓴 의견").expect("exported");
    assert_eq!(
        offline_note["created_at"], offline_kst,
        "a note written offline keeps its own time: {offline_note}"
    );
    let evals: Vec<(&str, &str)> = toron_tests::items(&b["sessions"][0]["evaluations"])
        .iter()
        .map(|e| {
            (
                e["case"].as_str().unwrap_or(""),
                e["evaluator"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        evals.iter().filter(|(c, _)| *c == "C-LIB-HB").count(),
        2,
        "{evals:?}"
    );
    assert!(evals.contains(&("C-LIB-HB", "P-PARK")), "{evals:?}");
    let flagged: Vec<&str> = toron_tests::items(&b["integrity"])
        .iter()
        .filter_map(|p| p["doc"].as_str())
        .collect();
    assert!(flagged.contains(&"notes:S-LIB:P-KIM"), "{flagged:?}");
    assert!(flagged.contains(&"eval:C-LIB-HB:P-PARK"), "{flagged:?}");

    let (ok, md, err) = toron(&server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        totals(&md),
        totals_before,
        "the official totals did not move"
    );
    let row = md
        .lines()
        .find(|l| l.contains("전문가가 한 말처럼 꾸민 의견"))
        .expect("the annotation is in the appendix");
    assert!(!row.contains("문서윤"), "not the expert's: {row}");
    assert!(
        row.contains("한빛 책읽는 주민모임"),
        "hers, attributed as she chose (affiliation only): {row}"
    );
    assert!(md.contains("부록. 데이터 점검"), "{md}");
    assert!(
        md.lines()
            .any(|l| l.contains("eval:C-LIB-HB:P-PARK") && l.contains("C-LIB-NR")),
        "the moved evaluation is listed"
    );
}

/// High finding: an annotation without `session`, or whose text and target are not of their
/// type, no longer breaks the report of the series or of the session: the session comes from
/// the layer, what does not read is listed and left out. Organizers repair it with an
/// attributed change, also after `published`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_note_costs_only_itself_and_organizers_repair_it() {
    let (_dir, server) = series_live().await;
    let (mut conn, mut layer) = kims_layer(&server).await;
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000002",
        json!({ "kind": "comment", "body": "세션 없는 의견" }),
    );
    let bad = "f0e1d2c3-0000-4000-8000-000000000003";
    annotate(
        &mut layer,
        bad,
        json!({ "session": "S-LIB", "kind": "comment", "body": {}, "target": {} }),
    );
    conn.push(&mut layer, LIMIT).await.expect("stored");
    conn.close().await;

    for args in [
        &["report", SERIES, "--format", "md"][..],
        &["report", "S-LIB", "--format", "md"][..],
        &["report", SERIES, "--format", "html"][..],
        &["report", SERIES, "--format", "csv"][..],
    ] {
        let (ok, out, err) = toron(&server, args).await;
        assert!(ok, "{args:?}: {err}");
        if args[3] == "md" {
            assert!(
                out.contains("세션 없는 의견"),
                "the session came from the layer"
            );
            assert!(
                // (Named by its id's start: a report never prints a whole UUID.)
                out.lines()
                    .any(|l| l.contains(&bad[..8]) && l.contains("제외")),
                "the unreadable one is listed as left out:\n{out}"
            );
        }
    }
    let b = export(&server).await;
    let a = annotation_with_body(&b, "세션 없는 의견").expect("kept");
    assert_eq!(a["session"], "S-LIB", "{a}");
    assert!(
        b["integrity"]
            .as_array()
            .expect("integrity")
            .iter()
            .any(|p| p["item"] == bad && p["doc"] == "notes:S-LIB:P-KIM"),
        "{}",
        b["integrity"]
    );

    // After `published`, an organizer removes it; the log says who did.
    set_phase(&server, "published").await;
    let (mut conn, mut layer) = open(&server, ADMIN, &notes("P-KIM")).await;
    let (_, anns) = layer
        .doc
        .get(ROOT, "annotations")
        .expect("get")
        .expect("annotations");
    layer.doc.delete(&anns, bad).expect("delete");
    layer.doc.commit();
    conn.push(&mut layer, LIMIT)
        .await
        .expect("an organizer may repair any notes layer");
    conn.close().await;
    let id = notes("P-KIM").document_id();
    let last = server
        .store()
        .events(1, 1_000_000)
        .expect("events")
        .into_iter()
        .rev()
        .find_map(|e| match e {
            Event::Change(c) if c.change.document_id == id => Some(c),
            _ => None,
        })
        .expect("a change");
    assert_eq!(last.change.by.participant.as_deref(), Some("admin"));
    assert_eq!(last.change.by.role.as_deref(), Some("organizer"));
    let (ok, md, err) = toron(&server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "{err}");
    assert!(!md.contains(bad), "repaired: nothing left to list");

    // The activist herself cannot write after `published`.
    let (mut conn, mut layer) = kims_layer(&server).await;
    layer.doc.put(ROOT, "late", 1).expect("put");
    layer.doc.commit();
    assert!(matches!(
        conn.push(&mut layer, LIMIT).await,
        Err(ClientError::Server(_))
    ));
}

/// Medium finding: a vocabulary value edited in place, or written as an object, is refused
/// over the wire like any other vocabulary violation; the document keeps what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vocabulary_values_cannot_be_spliced_or_made_objects() {
    let (_dir, server) = series_live().await;
    let (mut conn, mut layer) = kims_layer(&server).await;
    let id = "f0e1d2c3-0000-4000-8000-000000000004";
    annotate(
        &mut layer,
        id,
        json!({ "session": "S-LIB", "kind": "gap", "body": "있는 그대로" }),
    );
    conn.push(&mut layer, LIMIT).await.expect("stored");
    // Splice "poem" into the existing kind.
    let (_, anns) = layer.doc.get(ROOT, "annotations").expect("g").expect("a");
    let (_, a) = layer.doc.get(&anns, id).expect("g").expect("ann");
    let (_, kind) = layer.doc.get(&a, "kind").expect("g").expect("kind");
    layer.doc.splice_text(&kind, 0, 3, "poem").expect("splice");
    layer.doc.commit();
    let refused = conn.push(&mut layer, LIMIT).await;
    assert!(
        matches!(&refused, Err(ClientError::Server(m)) if m.contains("whole")),
        "{refused:?}"
    );

    let park = token_of(&server, "P-PARK").await;
    let eval = DocKey::Eval {
        case: "C-LIB-HB".into(),
        evaluator: "P-PARK".into(),
    };
    let (mut conn, mut e) = open(&server, &park, &eval).await;
    let (_, criteria) = e.doc.get(ROOT, "criteria").expect("g").expect("criteria");
    let (_, c) = e.doc.get(&criteria, "relevance").expect("g").expect("c");
    e.doc.put_object(&c, "score", ObjType::List).expect("list");
    e.doc.commit();
    assert!(matches!(
        conn.push(&mut e, LIMIT).await,
        Err(ClientError::Server(_))
    ));

    // What the server holds is unchanged.
    let b = export(&server).await;
    let a = annotation_with_body(&b, "있는 그대로").expect("there");
    assert_eq!(a["kind"], "gap");
    let ev = toron_tests::items(&b["sessions"][0]["evaluations"])
        .iter()
        .find(|e| e["case"] == "C-LIB-HB" && e["evaluator"] == "P-PARK")
        .expect("the evaluation");
    assert_eq!(ev["criteria"]["relevance"]["score"], 4);
}

/// Low finding: an import cut off after its first step (the registry) gave a report without a
/// word about the content it lacked. Now the report's data checks name the unfinished batch
/// until an import of it runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_finished_import_is_named_in_the_report() {
    let (_dir, server) = secured(ADMIN).await;
    let bundle_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let bundle = std::fs::read(&bundle_path).expect("bundle");
    // The first step only, as a `toron import` killed after it would leave it.
    let admin = toron_cli::admin::Admin::new(&server.url(), Some(ADMIN.into()), LIMIT);
    tokio::task::spawn_blocking(move || admin.post_bytes("/api/v1/import", bundle))
        .await
        .expect("task")
        .expect("the registry step");
    let (ok, md, err) = toron(&server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "{err}");
    let warned = |md: &str| md.lines().any(|l| l.contains("did not finish"));
    assert!(
        warned(&md),
        "the report says the import is unfinished: {md}"
    );
    // The whole import, run again: the warning is gone.
    let (ok, _, err) = toron(&server, &["import", bundle_path.to_str().expect("path")]).await;
    assert!(ok, "import: {err}");
    let (ok, md, err) = toron(&server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "{err}");
    assert!(!warned(&md), "{md}");
}
