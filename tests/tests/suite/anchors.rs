//! Anchors survive editing: while an activist makes an annotation on the copy of a case she
//! holds, the presenter inserts text before the passage and inserts and deletes text inside it;
//! the annotation still resolves to its quote (by its Automerge cursors). When the presenter
//! deletes the quoted text, it is orphaned — and the report lists it so. Also: the live
//! annotation commands of the CLI (annotate, reply, react, triage) end up in the export.

use automerge::transaction::Transactable;
use serde_json::Value;
use toron_cli::annotate::{self, NewAnnotation};
use toron_cli::sync_client::{url_with_token, Connection};
use toron_domain::anchor::Resolution;
use toron_domain::policy::{DocKey, Phase};
use toron_server::Running;
use toron_tests::{secured, LIMIT};

const ADMIN: &str = "toron_admin_for_the_anchor_test";

async fn toron(server: &Running, token: &str, args: &[&str]) -> (bool, String, String) {
    let (ok, out, err) = toron_tests::toron(server, token, args).await;
    (ok, out.trim().to_string(), err)
}

/// [`toron`] with a command line (see [`toron_tests::words`]).
async fn toron_l(server: &Running, token: &str, line: &str) -> (bool, String, String) {
    let (ok, out, err) = toron_tests::toron_line(server, token, line).await;
    (ok, out.trim().to_string(), err)
}

/// [`toron_l`], which must succeed: its output.
async fn done(server: &Running, token: &str, line: &str) -> String {
    let (ok, out, err) = toron_l(server, token, line).await;
    assert!(ok, "{line}: {err}");
    out
}

async fn connect(server: &Running, token: &str) -> Connection {
    Connection::connect(&url_with_token(&server.url(), Some(token)), LIMIT)
        .await
        .expect("connect")
}

/// The annotation `id` as stored in `notes:S-LIB:{who}`.
async fn stored(server: &Running, token: &str, who: &str, id: &str) -> Value {
    let layer = DocKey::Notes {
        session: "S-LIB".into(),
        participant: who.into(),
    };
    let mut c = connect(server, token).await;
    let d = c.find(layer.document_id(), LIMIT).await.expect("layer");
    c.close().await;
    toron_cli::json::doc_to_json(&d.doc)["annotations"][id].clone()
}

/// Resolves a stored target against the case as the server has it now.
async fn resolve(server: &Running, token: &str, target: &Value) -> (Resolution, String) {
    let mut c = connect(server, token).await;
    let case = c
        .find(
            DocKey::Case {
                case: "C-LIB-HB".into(),
            }
            .document_id(),
            LIMIT,
        )
        .await
        .expect("case");
    c.close().await;
    let r = annotate::resolve_target(&case.doc, target).expect("resolve");
    let text = toron_cli::json::doc_to_json(&case.doc)["sections"]["method"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (r, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_follow_edits_until_their_text_is_gone() {
    let (_dir, server) = secured(ADMIN).await;
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let (ok, _, err) = toron(&server, ADMIN, &["import", bundle.to_str().expect("path")]).await;
    assert!(ok, "{err}");
    toron_tests::set_phase(&server, "S-LIB", Phase::Live.as_str()).await;
    let reg = server.registry();
    let kim = reg.issue_token("admin", "P-KIM").await.expect("token");
    let lee = reg.issue_token("admin", "P-LEE").await.expect("token");
    let han = reg.issue_token("admin", "P-HAN").await.expect("token");
    let case = DocKey::Case {
        case: "C-LIB-HB".into(),
    };
    let quote = "통합 회원증으로 묶고";

    // The activist holds the case as it is now…
    let mut activist = connect(&server, &kim).await;
    let mut her_copy = activist
        .find(case.document_id(), LIMIT)
        .await
        .expect("case");
    // …while the presenter inserts before the passage, then inserts and deletes inside it.
    let mut presenter = connect(&server, &lee).await;
    let mut his = presenter
        .find(case.document_id(), LIMIT)
        .await
        .expect("case");
    let method = annotate::text_at(&his.doc, &["sections".into(), "method".into()]).expect("text");
    his.doc
        .splice_text(&method, 0, 0, "2011년부터 ")
        .expect("before");
    presenter.push(&mut his, LIMIT).await.expect("push");
    let text: String = toron_cli::json::doc_to_json(&his.doc)["sections"]["method"]
        .as_str()
        .expect("text")
        .to_string();
    // Three characters into the passage: inside it.
    let at = text
        .find(quote)
        .map(|b| text[..b].chars().count())
        .expect("quote")
        + 3;
    his.doc
        .splice_text(&method, at, 0, "(새) ")
        .expect("inside");
    presenter.push(&mut his, LIMIT).await.expect("push");
    his.doc
        .splice_text(&method, at, 4, "")
        .expect("undo inside");
    presenter.push(&mut his, LIMIT).await.expect("push");

    // She anchors on her (older) copy and writes the annotation to her layer.
    let target = annotate::text_target(
        &mut her_copy.doc,
        &case.to_string(),
        &["sections".into(), "method".into()],
        quote,
        None,
        None,
    )
    .expect("target");
    assert!(target["cursor"]["start"].is_string(), "{target}");
    let a = annotate::annotation(
        &NewAnnotation {
            session: "S-LIB".into(),
            kind: "gap".into(),
            body: Some("통합 회원증만으로는 이용이 늘지 않았다".into()),
            author: "P-KIM".into(),
            author_role: "activist".into(),
            extra: serde_json::Map::new(),
        },
        Some(target),
    );
    let id = a["id"].as_str().expect("id").to_string();
    annotate::write_layer(
        &mut activist,
        "S-LIB",
        "P-KIM",
        "annotations",
        &id,
        Some(&a),
        LIMIT,
    )
    .await
    .expect("write");
    activist.close().await;

    // It resolves, by its cursors, to its quote in the edited text.
    let kept = stored(&server, &kim, "P-KIM", &id).await;
    let (r, now) = resolve(&server, &kim, &kept["target"]).await;
    let Resolution::Cursor(p) = r else {
        panic!("{r:?} in {now}")
    };
    let found: String = now.chars().skip(p.start).take(p.end - p.start).collect();
    assert_eq!(found, quote);
    assert_eq!(
        p.start,
        kept["target"]["position"]["start"].as_u64().expect("start") as usize + 8
    );

    // The CLI does the same for a person in the hall, and replies, reactions and triage too.
    let ask = "annotate case:C-LIB-HB --path sections.method --quote '상호대차 차량' \
               --kind question --body '차량은 몇 대입니까?' --session S-LIB";
    let q_id = done(&server, &kim, ask).await;
    let answer = format!("reply {q_id} --session S-LIB --kind answer --body '한 대입니다.'");
    let r_id = done(&server, &lee, &answer).await;
    done(&server, &lee, &format!("react {id} --session S-LIB")).await;
    let answered = format!("triage {q_id} --session S-LIB --status answered");
    done(&server, &han, &answered).await;
    let (ok, _, err) = toron_l(
        &server,
        &kim,
        "annotate case:C-LIB-HB --path sections.method --quote '없는 문장' --session S-LIB",
    )
    .await;
    assert!(
        !ok && err.contains("없는 문장") && err.contains("sections.method"),
        "{err}"
    );

    // The presenter deletes the quoted passage: the annotation is orphaned…
    let start = now
        .find(quote)
        .map(|b| now[..b].chars().count())
        .expect("quote");
    his.doc
        .splice_text(&method, start, quote.chars().count() as isize, "")
        .expect("delete");
    presenter.push(&mut his, LIMIT).await.expect("push");
    presenter.close().await;
    let (r, _) = resolve(&server, &kim, &kept["target"]).await;
    assert_eq!(r, Resolution::Orphaned);

    // …and the report lists it so; the export has the live annotations, reply, reaction and
    // status.
    let md = done(&server, ADMIN, "report S-LIB --format md").await;
    // (A report names it by its short ref, its link by the id's first eight characters.)
    let row = md
        .lines()
        .find(|l| l.contains(&format!("/annotations/{}?", &id[..8])))
        .expect("listed in the appendix");
    assert!(row.contains("orphaned"), "{row}");
    let out = done(&server, ADMIN, "export S-LIB").await;
    let ex: Value = serde_json::from_str(&out).expect("json");
    let s = &ex["sessions"][0];
    let anns = s["annotations"].as_array().expect("annotations");
    let by_id = |x: &str| {
        anns.iter()
            .find(|a| a["id"] == x)
            .cloned()
            .expect("exported")
    };
    assert_eq!(by_id(&q_id)["kind"], "question");
    assert_eq!(by_id(&r_id)["parent"], q_id.as_str());
    assert_eq!(by_id(&r_id)["author"], "P-LEE");
    assert!(s["reactions"]
        .as_array()
        .expect("r")
        .iter()
        .any(|r| r["annotation"] == id.as_str() && r["participant"] == "P-LEE"));
    assert!(s["triage"]
        .as_array()
        .expect("t")
        .iter()
        .any(|t| t["annotation"] == q_id.as_str()
            && t["status"] == "answered"
            && t["by"] == "P-HAN"));

    // The server enforces the vocabulary of what clients write: an unknown annotation kind or
    // a triage status nobody defined is refused whole, and nothing of it is stored.
    let before = server.store().last_global_seq().expect("seq");
    let mut c = connect(&server, &kim).await;
    let poem = serde_json::json!({ "kind": "poem", "body": "시", "session": "S-LIB" });
    let e = annotate::write_layer(
        &mut c,
        "S-LIB",
        "P-KIM",
        "annotations",
        "x-1",
        Some(&poem),
        LIMIT,
    )
    .await
    .expect_err("an unknown kind");
    assert!(format!("{e:#}").contains("annotations/x-1/kind"), "{e:#}");
    let (ok, _, err) = toron_l(
        &server,
        &han,
        &format!("triage {q_id} --session S-LIB --status maybe"),
    )
    .await;
    assert!(!ok && err.contains("status is one of"), "{err}");
    let mut c = connect(&server, &han).await;
    let entry =
        serde_json::json!({ "status": "maybe", "by": "P-HAN", "at": "2012-11-07T18:00:00+09:00" });
    let e = annotate::set_triage(&mut c, "S-LIB", &q_id, &entry, LIMIT)
        .await
        .expect_err("an unknown status");
    assert!(format!("{e:#}").contains("status"), "{e:#}");
    let after: Vec<toron_protocol::Event> =
        server.store().events(before + 1, 1000).expect("events");
    assert!(
        after
            .iter()
            .all(|e| !matches!(e, toron_protocol::Event::Change(_))),
        "{after:?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|e| matches!(e, toron_protocol::Event::Rejection { .. }))
            .count(),
        2
    );
    server.shutdown().await.expect("shutdown");
}
