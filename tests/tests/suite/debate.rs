//! The project's example bundle through a running server: `toron import` (twice: the second
//! run creates nothing), the report's counts, groupings and weighted scores against figures
//! computed here from the bundle file itself, byte-identical reruns, and the export that gives
//! the bundle back.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use toron_server::Running;
use toron_tests::{secured, LIMIT};

const ADMIN: &str = "toron_admin_for_the_debate_test";

/// The passage of the library case about weekday evenings, as `annotate` names it.
const EVENINGS: &str =
    "case:C-LIB-HB --session S-LIB --path sections.results --quote '평일 저녁 이용은 여전히 적다'";

fn bundle_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json")
}

fn bundle() -> Value {
    serde_json::from_slice(&std::fs::read(bundle_path()).expect("read bundle")).expect("json")
}

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

async fn started() -> (tempfile::TempDir, Running) {
    let (dir, server) = secured(ADMIN).await;
    (dir, server)
}

/// A case's official total computed here: Σ wᵢ(sᵢ − 1)/4 over scored criteria, rescaled for
/// N/A, averaged over evaluators, shown rounded half up to one decimal. In units of 1/400 000
/// so that every step is an integer.
fn expected_total(b: &Value, case: &str) -> String {
    let weights: BTreeMap<String, i64> = toron_tests::items(&b["evaluation_template"]["criteria"])
        .iter()
        .map(|c| {
            (
                c["key"].as_str().expect("key").to_string(),
                c["weight"].as_i64().expect("w"),
            )
        })
        .collect();
    let all: i64 = weights.values().sum();
    let mut totals: Vec<(i64, i64)> = Vec::new(); // numerator, denominator
    for s in b["sessions"].as_array().expect("sessions") {
        for e in s["evaluations"].as_array().expect("evals") {
            if e["case"] != case {
                continue;
            }
            let (mut sum, mut scored) = (0, 0);
            for (k, w) in &weights {
                if let Some(x) = e["criteria"][k]["score"].as_i64() {
                    sum += w * (x - 1);
                    scored += w;
                }
            }
            totals.push((sum * all, 4 * scored));
        }
    }
    // mean = Σ (num/den) / n; with a common denominator.
    let lcm = totals.iter().fold(1i64, |l, (_, d)| l * d / gcd(l, *d));
    let num: i64 = totals.iter().map(|(n, d)| n * (lcm / d)).sum();
    let den = lcm * totals.len() as i64;
    let tenths = (20 * num + den) / (2 * den); // round half up to 0.1
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// JSON without nulls, entity lists in a stable order (an export may order them otherwise).
fn normal(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                // Absent, null and empty lists mean the same; `events` are not imported.
                .filter(|(k, x)| !x.is_null() && *x != &json!([]) && k.as_str() != "events")
                .map(|(k, x)| (k.clone(), normal(x)))
                .collect(),
        ),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normal).collect();
            items.sort_by_key(|x| {
                let f = |k: &str| x.get(k).map(|v| v.to_string()).unwrap_or_default();
                (
                    f("key"),
                    f("ref"),
                    f("at"),
                    f("case"),
                    f("evaluator"),
                    f("finding"),
                    f("annotation"),
                    f("participant"),
                )
            });
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_bundle_imports_reports_and_exports() {
    let (_dir, server) = started().await;
    let b = bundle();
    let path = bundle_path();
    let path = path.to_str().expect("path");

    // Import: everything is created once; a second run creates nothing.
    let (ok, out, err) = toron(&server, &["import", path, "--json"]).await;
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(&out).expect("summary");
    assert_eq!(first["content"]["created"]["annotations"], json!(12));
    assert_eq!(first["content"]["created"]["evaluation forms"], json!(5));
    assert_eq!(first["registry"]["created"]["participants"], json!(8));
    let seq_after_first = server.store().last_global_seq().expect("seq");
    let (ok, out, err) = toron(&server, &["import", path, "--json"]).await;
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(&out).expect("summary");
    assert_eq!(second["content"]["created"], json!({}), "{second}");
    assert_eq!(second["registry"]["created"], json!({}), "{second}");
    assert_eq!(second["batch"], first["batch"]);
    // Only the importer's new token and its presence were logged the second time, no content.
    let changes_after = server
        .store()
        .events(seq_after_first + 1, 100_000)
        .expect("events")
        .iter()
        .filter(|e| matches!(e, toron_protocol::Event::Change(_)))
        .count();
    assert_eq!(changes_after, 0);

    // The report, in Markdown: weighted totals equal those computed here from the file.
    let (ok, md, err) = toron(&server, &["report", "HB-BENCH-2012", "--format", "md"]).await;
    assert!(ok, "{err}");
    // Sessions by their number, each host government first, named as people call them.
    let totals = toron_tests::report_totals(&md);
    let expected: Vec<(String, String)> = [
        ("한빛구", "C-LIB-HB"),
        ("누리구", "C-LIB-NR"),
        ("한빛구", "C-CARE-HB"),
    ]
    .into_iter()
    .map(|(g, case)| (g.to_string(), expected_total(&b, case)))
    .collect();
    assert_eq!(totals, expected, "{md}");
    assert_eq!(expected_total(&b, "C-LIB-HB"), "57.5");
    assert_eq!(expected_total(&b, "C-LIB-NR"), "80.6");
    // N/A was rescaled, and the report says so.
    assert!(md.contains("57.5 (해당없음 제외 환산)"), "{md}");

    // Counts: annotations by kind, findings by type.
    let anns: Vec<&Value> = toron_tests::items(&b["sessions"])
        .iter()
        .flat_map(|s| s["annotations"].as_array().expect("a"))
        .collect();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &anns {
        *kinds.entry(a["kind"].as_str().expect("kind")).or_default() += 1;
    }
    assert!(md.contains(&format!("- 주석: {} (", anns.len())), "{md}");
    // Counted in the Korean report's words, as the hall's client says them.
    let korean = |k: &str| match k {
        "comment" => "의견",
        "question" => "질의",
        "answer" => "답변",
        "reply" => "댓글",
        "highlight" => "하이라이트",
        "strength" => "강점",
        "gap" => "부족한 점",
        "lesson" => "배울 점",
        "score" => "참고 점수",
        other => panic!("a kind the test does not know: {other}"),
    };
    for (k, n) in &kinds {
        let said = format!("{} {n}", korean(k));
        assert!(md.contains(&said), "{said} in the summary");
    }
    let findings = b["findings"].as_array().expect("findings");
    assert!(md.contains(&format!("- 결과 항목: {} (", findings.len())));

    // Groupings: each department's table lists exactly its findings (CSV), with responses.
    let (ok, csv, err) = toron(&server, &["report", "HB-BENCH-2012", "--format", "csv"]).await;
    assert!(ok, "{err}");
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
    let mut per_dept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        per_dept
            .entry(r[0].to_string())
            .or_default()
            .push(r[1].to_string());
    }
    // The CSV names a department as the office does (문화도서관과), not by its key.
    let name_of = |key: &str| -> String {
        b["departments"]
            .as_array()
            .expect("departments")
            .iter()
            .find(|d| d["key"] == key)
            .and_then(|d| d["name_ko"].as_str())
            .expect("every finding's department is listed")
            .to_string()
    };
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in findings {
        for d in f["departments"].as_array().expect("deps") {
            expected
                .entry(name_of(d.as_str().expect("d")))
                .or_default()
                .push(f["key"].as_str().expect("k").to_string());
        }
    }
    for v in expected.values_mut() {
        v.sort();
    }
    assert_eq!(per_dept, expected);
    let f_lib_01 = rows.iter().find(|r| &r[1] == "F-LIB-01").expect("F-LIB-01");
    assert_eq!(&f_lib_01[8], "주관", "문화도서관과 leads F-LIB-01");
    assert_eq!(&f_lib_01[9], "일부수용");
    assert_eq!(&f_lib_01[11], "2013-03");
    let f_lib_02 = rows.iter().find(|r| &r[1] == "F-LIB-02").expect("F-LIB-02");
    assert_eq!(
        &f_lib_02[2], "배울 점(누리구)",
        "a lesson names its source government"
    );

    // Reference scores apart: one counted (median 2.0), one excluded (conflict of interest).
    assert!(md.contains("| 한빛구 | 지속가능성 | 1 | 2.0 | 1 |"), "{md}");
    // Names as each person consented: an activist by affiliation, a role_only official by
    // role; links to the replay moment; the deferred question under further review.
    assert!(md.contains("제기: 한빛 책읽는 주민모임"), "{md}");
    assert!(!md.contains("최가람"), "a role_only name never appears");
    assert!(md.contains("/sessions/S-LIB/annotations/"), "{md}");
    assert!(md.contains("?at=2012-11-07T16:20:00%2B09:00"), "{md}");
    let further = md.split("#### 추가 검토 사항").nth(1).expect("section");
    assert!(further.contains("L-09"), "{further}");

    // Same inputs, same bytes; HTML and English too; a session's own report.
    let (_, md2, _) = toron(&server, &["report", "HB-BENCH-2012", "--format", "md"]).await;
    assert_eq!(md, md2);
    let (ok, html, err) = toron(
        &server,
        &[
            "report",
            "HB-BENCH-2012",
            "--format",
            "html",
            "--lang",
            "en",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        html.starts_with("<!doctype html>") && html.contains("Weighted total"),
        "{html}"
    );
    let (ok, one, err) = toron(&server, &["report", "S-CARE", "--format", "md"]).await;
    assert!(ok, "{err}");
    // One session's report: its case (by title, as the office names it), not the other's.
    assert!(
        one.contains("동 주민센터 시간제 보육실")
            && !one.contains("작은도서관 통합 회원제와 상호대차"),
        "{one}"
    );

    // Export gives the bundle back; importing the export creates nothing.
    let (ok, out, err) = toron(&server, &["export", "HB-BENCH-2012"]).await;
    assert!(ok, "{err}");
    let mut exported: Value = serde_json::from_str(&out).expect("export");
    // What the export derives from the log, beside the bundle's content: the series'
    // sessions with their phases, and each session's attendance from the presence record.
    let registered = exported["series"]
        .as_object_mut()
        .expect("series")
        .remove("sessions_registered");
    assert_eq!(
        registered.and_then(|r| r.as_array().map(Vec::len)),
        Some(2),
        "every session of the series, for a report of one of them"
    );
    for s in exported["sessions"].as_array_mut().expect("sessions") {
        s.as_object_mut().expect("session").remove("attended");
        for a in s["annotations"].as_array_mut().expect("annotations") {
            a.as_object_mut().expect("object").remove("id");
        }
        // The sections' order, which the file gives by the order it writes them in, is
        // exported as a list (a JSON object read back would sort it).
        for c in s["cases"].as_array_mut().expect("cases") {
            let order = c.as_object_mut().expect("case").remove("section_order");
            if c["key"] == "C-LIB-HB" {
                assert_eq!(
                    order,
                    Some(json!([
                        "background",
                        "method",
                        "results",
                        "challenges",
                        "예산"
                    ]))
                );
            }
        }
    }
    assert_eq!(normal(&exported), normal(&b));
    server.shutdown().await.expect("shutdown");
}

/// CSV: participants, then annotations (paper opinions) join an imported series; the rows are
/// checked against what the server has, a bad row is named by its line, and a second run
/// creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_participants_and_annotations_join_a_series() {
    let (_dir, server) = imported().await;
    let files = tempfile::tempdir().expect("files");
    let people = files.path().join("people.csv");
    std::fs::write(
        &people,
        "key,name,affiliation,kind,department,government,attribution,session,role\n\
         P-NEW,윤새봄,새봄 마을 도서관 모임,activist,,,affiliation_only,S-LIB,activist\n",
    )
    .expect("write");
    let notes = files.path().join("notes.csv");
    std::fs::write(
        &notes,
        "ref,session,kind,author,author_role,created_at,doc,path,quote,body,departments\n\
         P-01,S-LIB,gap,P-NEW,activist,2012-11-08T10:00:00+09:00,case:C-LIB-HB,sections.results,\"평일 저녁 이용은 여전히 적다\",\"서면 의견: 저녁 운영 인력이 없습니다.\",DEP-CULT\n\
         P-02,S-LIB,comment,P-KIM,activist,2012-11-08T10:05:00+09:00,case:C-LIB-HB,,,\"서면 의견: 순회 사서를 늘려 주세요.\",\n",
    )
    .expect("write");
    // A row that refers to nobody is refused, naming its line; nothing is written.
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        "ref,session,kind,author,author_role,created_at,body\nP-09,S-LIB,comment,P-NOBODY,activist,2012-11-08T10:00:00+09:00,x\n",
    )
    .expect("write");
    let before = server.store().last_global_seq().expect("seq");
    let (ok, _, err) = csv_import(&server, &bad, "annotations").await;
    assert!(
        !ok && err.contains("bad.csv line 2, column author") && err.contains("P-NOBODY"),
        "{err}"
    );
    assert_eq!(server.store().last_global_seq().expect("seq"), before);

    let (ok, out, err) = csv_import(&server, &people, "participants").await;
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(s["registry"]["created"]["participants"], json!(1), "{s}");
    let (ok, out, err) = csv_import(&server, &notes, "annotations").await;
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(s["content"]["created"]["annotations"], json!(2), "{s}");
    let (ok, out, err) = csv_import(&server, &notes, "annotations").await;
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        s["content"]["created"],
        json!({}),
        "a second run creates nothing: {s}"
    );

    // They are in the report, the new participant shown by affiliation.
    let (ok, md, err) = toron(&server, &["report", "S-LIB", "--format", "md"]).await;
    assert!(ok, "{err}");
    let row = md
        .lines()
        .find(|l| l.contains("[P-01]"))
        .expect("P-01 listed");
    assert!(
        row.contains("새봄 마을 도서관 모임") && row.contains("저녁 운영 인력"),
        "{row}"
    );
    assert!(md.lines().any(|l| l.contains("[P-02]")), "{md}");
    server.shutdown().await.expect("shutdown");
}

async fn csv_import(
    server: &Running,
    file: &std::path::Path,
    kind: &str,
) -> (bool, String, String) {
    let f = file.to_str().expect("path");
    toron(
        server,
        &[
            "import",
            f,
            "--csv",
            kind,
            "--series",
            "HB-BENCH-2012",
            "--json",
        ],
    )
    .await
}

/// Issue 16: re-importing — even a one-row CSV adding a walk-in participant — moved a `live`
/// session back to the bundle's phase, and the whole hall lost the right to annotate. Now an
/// import sets the phase only of the sessions it creates (or, asked with `--set-phases`, of
/// all), leaves every live change alone, and its summary lists what it changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reimport_during_a_live_session_leaves_it_live() {
    use automerge::transaction::Transactable;
    let (_dir, server) = imported().await;
    let path = bundle_path();
    let phase = |server: &Running| server.registry().session("S-LIB").expect("S-LIB").phase;
    assert_eq!(
        phase(&server),
        "reporting",
        "a new session takes the bundle's phase"
    );
    // The debate goes live again and an activist writes a note.
    toron_tests::set_phase(&server, "S-LIB", "live").await;
    let kim = toron_tests::token_of(&server, "P-KIM").await;
    let notes = toron_domain::policy::DocKey::Notes {
        session: "S-LIB".into(),
        participant: "P-KIM".into(),
    };
    let mut conn = toron_cli::sync_client::Connection::connect(
        &toron_cli::sync_client::url_with_token(&server.url(), Some(&kim)),
        LIMIT,
    )
    .await
    .expect("connect");
    let mut layer = conn.find(notes.document_id(), LIMIT).await.expect("find");
    layer
        .doc
        .put(automerge::ROOT, "live_mark", "실시간 메모")
        .expect("put");
    layer.doc.commit();
    conn.push(&mut layer, LIMIT).await.expect("a live change");
    conn.close().await;

    // A walk-in joins by CSV; then the whole bundle again.
    let files = tempfile::tempdir().expect("files");
    let people = files.path().join("walk-in.csv");
    std::fs::write(
        &people,
        "key,name,affiliation,kind,department,government,attribution,session,role\n\
         P-WALKIN,현장참여,동네 모임,activist,,,affiliation_only,S-LIB,activist\n",
    )
    .expect("write");
    let (ok, out, err) = csv_import(&server, &people, "participants").await;
    assert!(ok, "{err}");
    assert_eq!(phase(&server), "live", "the CSV left the session live");
    let summary: Value = serde_json::from_str(&out).expect("json");
    let changes = summary["registry"]["changes"].to_string();
    assert!(changes.contains("participant P-WALKIN added"), "{summary}");
    let (ok, out, err) = toron(&server, &["import", path.to_str().expect("path")]).await;
    assert!(ok, "{err}");
    assert_eq!(phase(&server), "live", "the bundle left the session live");
    assert!(
        out.contains("phase of S-LIB kept: live") && out.contains("--set-phases"),
        "the summary says so: {out}"
    );
    // The live change is there.
    let mut conn = toron_cli::sync_client::Connection::connect(
        &toron_cli::sync_client::url_with_token(&server.url(), Some(ADMIN)),
        LIMIT,
    )
    .await
    .expect("connect");
    let layer = conn.find(notes.document_id(), LIMIT).await.expect("find");
    assert!(
        automerge::ReadDoc::get(&layer.doc, automerge::ROOT, "live_mark")
            .expect("get")
            .is_some(),
        "the live note survived"
    );
    // Asked to, the import moves the phase.
    let (ok, out, err) = toron(
        &server,
        &["import", path.to_str().expect("path"), "--set-phases"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(phase(&server), "reporting", "{out}");
    assert!(out.contains("phase of S-LIB: live → reporting"), "{out}");
    server.shutdown().await.expect("shutdown");
}

/// Issue 16: `toron replay S-LIB --from 16:10` replayed nothing (the day came from the import's
/// receive time) and `toron at … --time` read the receive clock (`{}` for imported documents).
/// A clock time now falls on the session's own date, on the clock of what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_times_fall_on_the_session_s_day() {
    let (_dir, server) = imported().await;
    let (ok, out, err) = toron(
        &server,
        &[
            "replay", "S-LIB", "--from", "16:10", "--speed", "max", "--json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let entries: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry"))
        .collect();
    assert!(
        entries.iter().any(|e| e["kind"] == "annotation.created"),
        "annotations made from 16:10 on: {out}"
    );
    assert!(
        err.contains(&format!("replayed {} entries", entries.len())),
        "{err}"
    );
    // The case as it stood at 16:30 that day (imported: its content came with the import).
    let case = toron_domain::policy::DocKey::Case {
        case: "C-LIB-HB".into(),
    }
    .document_id();
    let (ok, out, err) = toron(
        &server,
        &["at", &format!("automerge:{case}"), "--time", "16:30"],
    )
    .await;
    assert!(ok, "{err}");
    let state: Value = serde_json::from_str(&out).expect("json");
    assert!(
        state.get("sections").is_some(),
        "the case's sections at 16:30: {state}"
    );
    // The receive clock stays available.
    let (ok, out, err) = toron(
        &server,
        &[
            "at",
            &format!("automerge:{case}"),
            "--time",
            "16:30",
            "--date",
            "2012-11-07",
            "--clock",
            "received",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "{}", "nothing was received by then");
    // The timeline between two clock times of the session's own day, on the clock of what
    // happened; on the receive clock the same hours of that day hold nothing (it was imported
    // years later).
    let window = history(&server, "S-LIB --since 16:10 --until 16:30").await;
    let refs: Vec<&str> = window
        .iter()
        .filter(|e| e["kind"] == "annotation.created")
        .filter_map(|e| e["detail"]["ref"].as_str())
        .collect();
    // L-04 (16:20) and L-05 (16:30) are in it; L-03 (16:40) and L-09 (17:20) are not.
    assert!(refs.contains(&"L-04") && refs.contains(&"L-05"), "{refs:?}");
    assert!(
        !refs.contains(&"L-03") && !refs.contains(&"L-09"),
        "{refs:?}"
    );
    for e in &window {
        let t = e["occurred_ms"]
            .as_u64()
            .or(e["time_ms"].as_u64())
            .expect("time");
        let kst = toron_cli::history::kst_date(t).expect("date");
        assert_eq!(kst, "2012-11-07", "{e}");
    }
    let received = history(
        &server,
        "S-LIB --since 16:10 --until 16:30 --clock received",
    )
    .await;
    assert!(received.is_empty(), "nothing was received in those hours");
    server.shutdown().await.expect("shutdown");
}

/// Issue 16: `toron triage W-04` — the ref people see in the report — exited 0 and wrote an
/// item for no annotation. It now takes the ref as well as the id, and names one nobody has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_takes_the_refs_people_see() {
    let (_dir, server) = imported_live().await;
    let chair = toron_tests::token_of(&server, "P-MOON").await;
    let (ok, _, err) = toron_tests::toron_line(
        &server,
        &chair,
        "triage L-09 --session S-LIB --status answered",
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = toron_tests::toron_line(
        &server,
        &chair,
        "triage W-99 --session S-LIB --status noted",
    )
    .await;
    assert!(!ok && err.contains("W-99"), "{err}");
    // The item is the annotation's, and the timeline tells the decision.
    let entries = history(&server, "S-LIB --kind triage.status_set").await;
    let last = entries.last().expect("a triage decision");
    assert_eq!(last["detail"]["status"], "answered", "{last}");
    let id = last["detail"]["annotation"].as_str().expect("id");
    assert_ne!(id, "L-09", "the annotation's id, not its ref");
    let b: Value = serde_json::from_str(&toron(&server, &["export", "HB-BENCH-2012"]).await.1)
        .expect("export");
    let l09 = toron_tests::items(&b["sessions"])
        .iter()
        .flat_map(|s| s["annotations"].as_array().into_iter().flatten())
        .find(|a| a["ref"] == "L-09")
        .expect("L-09");
    assert_eq!(l09["id"], id, "{l09}");
    server.shutdown().await.expect("shutdown");
}

/// Issue 16: the report's links answered 404, and in a mailed file they were relative links
/// to nowhere. Every link of the Markdown, HTML and CSV reports is now absolute — to the
/// server the report was asked of, or to `--base-url` — and answers 200 with the page that
/// opens the replay at that moment (followed in a browser by `web_e2e`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_of_the_reports_answers() {
    let (_dir, server) = imported().await;
    let own = server.url().replace("ws://", "http://");
    let mut links: Vec<String> = Vec::new();
    for format in ["md", "html", "csv"] {
        let (ok, text, err) =
            toron(&server, &["report", "HB-BENCH-2012", "--format", format]).await;
        assert!(ok, "{err}");
        let found: Vec<String> = match format {
            "md" => text
                .split("](")
                .skip(1)
                .filter_map(|x| x.split(')').next())
                .map(str::to_string)
                .collect(),
            "html" => text
                .split("href=\"")
                .skip(1)
                .filter_map(|x| x.split('"').next())
                .map(|h| h.replace("&amp;", "&"))
                .collect(),
            _ => {
                let mut rd = csv::Reader::from_reader(text.as_bytes());
                let head = rd.headers().expect("head").clone();
                assert_eq!(head.iter().next_back(), Some("출처 링크"), "{head:?}");
                rd.records()
                    .flat_map(|r| {
                        let r = r.expect("row");
                        r.iter()
                            .next_back()
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            }
        };
        assert!(
            found.iter().any(|l| l.contains("/annotations/")),
            "{format}: links to annotations"
        );
        assert!(
            found.iter().any(|l| l.contains("/docs/eval:")),
            "{format}: a link to an evaluation's passage"
        );
        for l in &found {
            assert!(l.starts_with(&format!("{own}/sessions/")), "{format}: {l}");
        }
        links.extend(found);
    }
    links.sort();
    links.dedup();
    let agent = ureq::Agent::new_with_defaults();
    for l in &links {
        let r = agent.get(l).call().unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{l}");
        let page = r.into_body().read_to_string().expect("page");
        assert!(page.contains("/assets/app."), "{l}: the web client's page");
    }
    // A file for readers elsewhere links to the address they use; a bad one is refused.
    let (ok, md, err) = toron(
        &server,
        &[
            "report",
            "HB-BENCH-2012",
            "--format",
            "md",
            "--base-url",
            "https://toron.example.go.kr/",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        md.contains("](https://toron.example.go.kr/sessions/S-LIB/annotations/"),
        "{md}"
    );
    let (ok, _, err) = toron(
        &server,
        &[
            "report",
            "HB-BENCH-2012",
            "--base-url",
            "javascript:alert(1)",
        ],
    )
    .await;
    assert!(!ok && err.contains("base"), "{err}");
    server.shutdown().await.expect("shutdown");
}

/// A server with the example series imported.
async fn imported() -> (tempfile::TempDir, Running) {
    let (dir, server) = started().await;
    let path = bundle_path();
    let (ok, _, err) = toron(&server, &["import", path.to_str().expect("path")]).await;
    assert!(ok, "{err}");
    (dir, server)
}

/// A server with the example series imported and its S-LIB session live.
async fn imported_live() -> (tempfile::TempDir, Running) {
    let (dir, server) = imported().await;
    toron_tests::set_phase(&server, "S-LIB", "live").await;
    (dir, server)
}

/// Issue 16: a department typed in Korean was accepted and then broke every export and CSV
/// import of the series; an unknown finding, a grant in a series or to a participant that does
/// not exist were accepted too. Each is now refused with a message naming it, where it is given
/// (CLI, HTTP API, sync changes); a department's name is taken for its key where a person
/// types it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_are_checked_where_they_are_given() {
    let (dir, server) = imported_live().await;
    // A participant's department by its Korean name is stored as its key; an unknown one is
    // refused by name.
    let (ok, _, err) = toron(
        &server,
        &[
            "admin",
            "participant",
            "add",
            "P-NEW",
            "--name",
            "신참",
            "--kind",
            "official",
            "--department",
            "문화도서관과",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let p = server.registry().participant("P-NEW").expect("P-NEW");
    assert_eq!(p.department.as_deref(), Some("DEP-CULT"));
    let (ok, _, err) = toron(
        &server,
        &["admin", "grant", "P-NEW", "official", "--session", "S-LIB"],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = toron(
        &server,
        &[
            "admin",
            "participant",
            "add",
            "P-X",
            "--name",
            "엑스",
            "--kind",
            "official",
            "--department",
            "복지정책과",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("복지정책과") && err.contains("DEP-CULT (문화도서관과)"),
        "{err}"
    );
    assert!(server.registry().participant("P-X").is_none());
    // Dangling series and participants.
    for (args, named) in [
        (
            vec![
                "admin",
                "grant",
                "P-KIM",
                "activist",
                "--series",
                "NO-SUCH-SERIES",
            ],
            "NO-SUCH-SERIES",
        ),
        (
            vec![
                "admin",
                "grant",
                "P-GHOST",
                "activist",
                "--session",
                "S-LIB",
            ],
            "P-GHOST",
        ),
        (
            vec![
                "admin",
                "session",
                "add",
                "S-X",
                "--series",
                "HB-BENCH-2012",
                "--facilitator",
                "P-GHOST",
            ],
            "P-GHOST",
        ),
        (
            vec![
                "admin",
                "case",
                "add",
                "C-X",
                "--session",
                "S-LIB",
                "--presenter",
                "P-GHOST",
            ],
            "P-GHOST",
        ),
        (
            vec!["admin", "doc", "register", "report:NO-SUCH-SERIES"],
            "NO-SUCH-SERIES",
        ),
        (
            vec![
                "admin",
                "doc",
                "register",
                "response:HB-BENCH-2012:DEP-NONE",
            ],
            "DEP-NONE",
        ),
    ] {
        let (ok, _, err) = toron(&server, &args).await;
        assert!(!ok && err.contains(named), "{args:?}: {err}");
    }
    assert!(server.registry().session("S-X").is_none());
    // An activist routes a gap to departments by name or key; an unknown name is refused
    // before anything is written.
    let kim = toron_tests::token_of(&server, "P-KIM").await;
    let gap = |deps: &str| {
        format!("annotate {EVENINGS} --kind gap --body '저녁 운영' --departments {deps}")
    };
    let (ok, id, err) = toron_tests::toron_line(&server, &kim, &gap("문화도서관과,DEP-PLAN")).await;
    assert!(ok, "{err}");
    let (ok, _, err) = toron_tests::toron_line(&server, &kim, &gap("복지정책과")).await;
    assert!(!ok && err.contains("복지정책과"), "{err}");
    // A peer that writes a name (or anything else) where a key belongs is refused by the
    // server, and the refusal names it.
    let notes = toron_domain::policy::DocKey::Notes {
        session: "S-LIB".into(),
        participant: "P-KIM".into(),
    }
    .document_id();
    let (url, ann) = (notes.url(), id.trim());
    let set = format!(r#"set {url} annotations.{ann}.departments '["DEP-CULT", "복지정책과"]'"#);
    let (ok, _, err) = toron_tests::toron_line(&server, &kim, &set).await;
    assert!(!ok && err.contains("복지정책과"), "{err}");
    // So the export is a bundle the import takes, the gap routed to the keys.
    let (ok, out, err) = toron(&server, &["export", "HB-BENCH-2012"]).await;
    assert!(ok, "{err}");
    let b: Value = serde_json::from_str(&out).expect("export");
    let mine = toron_tests::items(&b["sessions"])
        .iter()
        .flat_map(|s| s["annotations"].as_array().into_iter().flatten())
        .find(|a| a["id"] == id.trim())
        .expect("the gap");
    assert_eq!(
        mine["departments"],
        json!(["DEP-CULT", "DEP-PLAN"]),
        "{mine}"
    );
    assert!(b["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .any(|p| p["key"] == "P-NEW" && p["department"] == "DEP-CULT"));
    let again = dir.path().join("again.json");
    std::fs::write(&again, &out).expect("write");
    let (ok, _, err) = toron(&server, &["import", again.to_str().expect("path")]).await;
    assert!(ok, "the export imports again: {err}");
    // A CSV row's department by name too; an unknown one names its line.
    let csv = dir.path().join("walk-in.csv");
    std::fs::write(
        &csv,
        "key,name,affiliation,kind,department,government,attribution\n\
         P-WALK,워크인,한빛구,official,가족정책과,G-HANBIT,name_and_affiliation\n\
         P-BAD,배드,한빛구,official,복지정책과,G-HANBIT,name_and_affiliation\n",
    )
    .expect("csv");
    let (ok, _, err) = csv_import(&server, &csv, "participants").await;
    assert!(
        !ok && err.contains("line 3") && err.contains("복지정책과"),
        "{err}"
    );
    std::fs::write(
        &csv,
        "key,name,affiliation,kind,department,government,attribution\n\
         P-WALK,워크인,한빛구,official,가족정책과,G-HANBIT,name_and_affiliation\n",
    )
    .expect("csv");
    let (ok, _, err) = csv_import(&server, &csv, "participants").await;
    assert!(ok, "{err}");
    let walk = server.registry().participant("P-WALK").expect("P-WALK");
    assert_eq!(walk.department.as_deref(), Some("DEP-FAM"));
    // A finding that does not exist is named; one that does is linked.
    let han = toron_tests::token_of(&server, "P-HAN").await;
    let triage = |f: &str| format!("triage L-09 --session S-LIB --status accepted --finding {f}");
    let (ok, _, err) = toron_tests::toron_line(&server, &han, &triage("F-LIB-99")).await;
    assert!(
        !ok && err.contains("F-LIB-99") && err.contains("F-LIB-01"),
        "{err}"
    );
    let (ok, _, err) = toron_tests::toron_line(&server, &han, &triage("F-LIB-01")).await;
    assert!(ok, "{err}");
    // A client that links an unknown finding itself is refused by the server, naming it.
    let triage_doc = toron_domain::policy::DocKey::Triage {
        session: "S-LIB".into(),
    }
    .document_id();
    let (url, id) = (triage_doc.url(), id.trim());
    let set = format!(r#"set {url} items.{id}.finding '"F-LIB-99"'"#);
    let (ok, _, err) = toron_tests::toron_line(&server, &han, &set).await;
    assert!(
        !ok && err.contains("F-LIB-99") && err.contains("F-LIB-01"),
        "{err}"
    );
    server.shutdown().await.expect("shutdown");
}

/// `toron history ARGS --json` as the first organizer: the timeline entries it prints.
async fn history(server: &Running, args: &str) -> Vec<Value> {
    let (ok, out, err) =
        toron_tests::toron_line(server, ADMIN, &format!("history {args} --json")).await;
    assert!(ok, "history {args}: {err}");
    serde_json::from_str(&out).expect("json")
}

/// Issue 16: a live score annotation anchored to a passage had an empty case in the reference
/// scores, and one by an official of a responsible department was counted. The case is the
/// document's it is anchored in, and the official's score is excluded as a conflict of
/// interest, as an imported one would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_score_by_a_responsible_official_is_excluded_and_its_case_named() {
    let (_dir, server) = imported_live().await;
    // An official of the department responsible for the case joins during the debate, and a
    // resident too.
    for (key, kind, department) in [
        ("P-CULT-OFFICER", "official", Some("DEP-CULT")),
        ("P-RESIDENT", "resident", None),
    ] {
        let mut add = vec![
            "admin",
            "participant",
            "add",
            key,
            "--name",
            key,
            "--kind",
            kind,
        ];
        if let Some(d) = department {
            add.extend(["--department", d]);
        }
        let (ok, _, err) = toron(&server, &add).await;
        assert!(ok, "{err}");
        let role = if kind == "official" {
            "official"
        } else {
            "activist"
        };
        let (ok, _, err) = toron(
            &server,
            &["admin", "grant", key, role, "--session", "S-LIB"],
        )
        .await;
        assert!(ok, "{err}");
        let (ok, _, err) = toron(
            &server,
            &["admin", "doc", "register", &format!("notes:S-LIB:{key}")],
        )
        .await;
        assert!(ok, "{err}");
        let token = toron_tests::token_of(&server, key).await;
        let score = "--kind score --criterion effectiveness --value 5 --body '효과가 크다'";
        let (ok, _, err) =
            toron_tests::toron_line(&server, &token, &format!("annotate {EVENINGS} {score}")).await;
        assert!(ok, "{key}: {err}");
    }
    let (ok, md, err) = toron(&server, &["report", "HB-BENCH-2012", "--format", "md"]).await;
    assert!(ok, "{err}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| 한빛구 | 효과성"))
        .unwrap_or_else(|| panic!("a reference row for the case's effectiveness: {md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | the case's government | criterion | n | median | excluded |
    assert_eq!(cells[3], "1", "the resident's score counts: {row}");
    assert_eq!(cells[5], "1", "the official's is excluded: {row}");
    assert!(
        !md.lines().any(|l| l.starts_with("|  | ")),
        "no reference row without its case"
    );
}

/// Issue 16: the session timeline misnamed the debate — every annotation a comment, answers
/// as annotations, triage decisions as section edits, reactions as `agreed with <uuid>`. The
/// example series' timeline now tells each act by its kind and names annotations by their ref.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_names_the_debate_as_it_happened() {
    let (_dir, server) = imported().await;
    let entries = history(&server, "S-LIB").await;
    let of = |kind: &str| -> Vec<&Value> { entries.iter().filter(|e| e["kind"] == kind).collect() };
    // Annotations with their real kinds; answers and replies as replies to their parent.
    let kinds: std::collections::BTreeSet<&str> = of("annotation.created")
        .iter()
        .filter_map(|e| e["detail"]["annotation_kind"].as_str())
        .collect();
    for k in ["highlight", "question", "gap", "lesson", "score", "comment"] {
        assert!(kinds.contains(k), "{k} among {kinds:?}");
    }
    let replies = of("reply.created");
    assert_eq!(replies.len(), 2, "L-03 and L-10: {replies:?}");
    assert!(
        replies
            .iter()
            .any(|e| e["detail"]["parent_ref"] == "L-02"
                && e["detail"]["annotation_kind"] == "answer"),
        "{replies:?}"
    );
    // Reactions and triage decisions name the annotation as people know it.
    let reactions = of("reaction.added");
    assert!(!reactions.is_empty());
    for r in &reactions {
        let named = r["detail"]["annotation_ref"].as_str().expect("a ref");
        assert!(
            r["summary"].as_str().expect("summary").contains(named),
            "{r}"
        );
    }
    let triage = history(&server, "S-LIB --kind triage.status_set").await;
    assert!(
        triage
            .iter()
            .any(|e| e["detail"]["annotation_ref"] == "L-04" && e["detail"]["status"] == "accepted"),
        "{triage:?}"
    );
    toron_tests::assert_no_triage_told_as_edits(&entries);
    // A highlight has no words of its own: it is named by its passage, there and in the
    // decision about it.
    let b = bundle();
    let l01 = toron_tests::items(&b["sessions"][0]["annotations"])
        .iter()
        .find(|a| a["ref"] == "L-01")
        .expect("L-01");
    let passage = l01["target"]["quote"]["exact"].as_str().expect("quote");
    assert!(
        entries.iter().any(|e| e["kind"] == "annotation.created"
            && e["detail"]["ref"] == "L-01"
            && e["detail"]["body"] == passage),
        "L-01 named by its passage"
    );
    assert!(
        entries.iter().any(|e| e["kind"] == "triage.status_set"
            && e["summary"]
                .as_str()
                .is_some_and(|s| s.contains("L-01") && s.contains(passage))),
        "the decision on L-01 names its passage"
    );
    // Accepted into findings: linked, by ref.
    assert!(
        entries.iter().any(|e| e["kind"] == "finding.linked"
            && e["detail"]["annotation_ref"] == "L-04"
            && e["detail"]["finding"] == "F-LIB-01"),
        "L-04 linked to F-LIB-01"
    );
    // The series' own timeline: the report's findings and the departments' answers.
    let series = |kind: &'static str| {
        let server = &server;
        async move { history(server, &format!("HB-BENCH-2012 --kind {kind}")).await }
    };
    let findings = series("finding.created").await;
    assert_eq!(
        findings.len(),
        b["findings"].as_array().expect("findings").len(),
        "every finding of the report"
    );
    let responded = series("department.responded").await;
    let told: BTreeMap<String, String> = responded
        .iter()
        .map(|e| {
            (
                format!("{}/{}", e["detail"]["department"], e["detail"]["finding"]),
                e["detail"]["stance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let given: BTreeMap<String, String> = toron_tests::items(&b["department_responses"])
        .iter()
        .map(|r| {
            (
                format!("{}/{}", r["department"], r["finding"]),
                r["stance"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(told, given, "each department's stance on each finding");
}
