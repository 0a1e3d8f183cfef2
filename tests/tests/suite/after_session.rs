//! The work after the session (issue 19), as the people who do it: an organizer promotes two
//! annotations into one finding; a department reviewer records the department's response to a
//! finding addressed to it, and is refused for another department's finding; an evaluator
//! fills in and submits a form while the session's phase allows it, and is refused after. Each
//! shows in the report at once and in the record of who did what.

use serde_json::Value;
use toron_domain::policy::{Role, Scope};
use toron_server::Running;
use toron_tests::{secured, set_phase, token_of, toron, toron_line};

const ADMIN: &str = "toron_admin_for_the_after_session_test";
const SERIES: &str = "HB-BENCH-2012";

async fn imported() -> (tempfile::TempDir, Running) {
    let (dir, server) = secured(ADMIN).await;
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let (ok, _, err) = toron(&server, ADMIN, &["import", bundle.to_str().expect("path")]).await;
    assert!(ok, "{err}");
    (dir, server)
}

async fn report_md(server: &Running) -> String {
    let (ok, md, err) = toron_line(server, ADMIN, &format!("report {SERIES} --format md")).await;
    assert!(ok, "{err}");
    md
}

/// The series' own timeline (findings, department responses), as `toron history` gives it.
async fn series_timeline(server: &Running) -> Vec<Value> {
    let (ok, out, err) = toron(server, ADMIN, &["history", SERIES, "--json"]).await;
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| {
            out.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
}

fn by(entries: &[Value], participant: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e.to_string().contains(participant))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_promotes_two_annotations_into_one_finding() {
    let (_dir, server) = imported().await;
    let han = token_of(&server, "P-HAN").await;
    let line = "promote --session S-LIB --from L-02 --from L-08 --type recommendation \
                --title '운영자 교육의 조례 근거' --department 기획예산과 --priority high \
                --recommendation '교육 예산을 조례에 둔다' --text '교육 담당과 예산이 정해지지 않았다.'";
    let (ok, out, err) = toron_line(&server, &han, line).await;
    assert!(ok, "{err}");
    let key = out.trim();
    assert_eq!(key, "F-S-LIB-01", "the next key of the session");

    // The report: the finding with both sources, in its department's table, and both
    // annotations decided (반영) in the appendix.
    let md = report_md(&server).await;
    assert!(
        md.contains(&format!("[{key}\\] 운영자 교육의 조례 근거")),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {key} |")))
        .unwrap_or_else(|| panic!("no department row for {key}: {md}"));
    assert!(row.contains("[L-02]") && row.contains("[L-08]"), "{row}");
    assert!(row.contains("제언") && row.contains("| 상 |"), "{row}");
    for r in ["L-02", "L-08"] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| [{r}]")))
            .unwrap_or_else(|| panic!("{r} not in the appendix"));
        assert!(line.contains("| 반영 |"), "{line}");
    }

    // The record: the series' timeline has the finding, P-HAN's; the session's the decisions.
    let series = series_timeline(&server).await;
    assert!(
        by(&series, "P-HAN")
            .iter()
            .any(|e| e.to_string().contains("finding.created") && e.to_string().contains(key)),
        "{series:?}"
    );
    let (ok, out, err) = toron(
        &server,
        ADMIN,
        &["history", "S-LIB", "--participant", "P-HAN", "--json"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(key),
        "the timeline's triage entries name the finding: {out}"
    );

    // Only organizers write the report: an activist's promotion is refused, nothing changes.
    let kim = token_of(&server, "P-KIM").await;
    let (ok, _, err) = toron_line(
        &server,
        &kim,
        "promote --session S-LIB --from L-09 --type gap --title 'x' --department DEP-CULT",
    )
    .await;
    assert!(!ok, "an activist promoted a finding");
    assert!(err.contains("report"), "{err}");
    assert!(!report_md(&server).await.contains("F-S-LIB-02"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_answers_for_its_own_findings_only() {
    let (_dir, server) = imported().await;
    let reg = server.registry();
    // P-LEE works in 문화도서관과 (DEP-CULT): its reviewer for the series.
    reg.grant(
        "admin",
        "P-LEE",
        Role::DepartmentReviewer,
        Scope::Series(SERIES.into()),
    )
    .await
    .expect("grant");
    let lee = token_of(&server, "P-LEE").await;
    let line = format!(
        "respond F-LIB-02 --series {SERIES} --department DEP-CULT --stance accepted \
         --plan '2013년 거점 공동 구입 시범' --due 2013-06 --progress '예산 편성 중'"
    );
    let (ok, _, err) = toron_line(&server, &lee, &line).await;
    assert!(ok, "{err}");
    let md = report_md(&server).await;
    let row = md
        .lines()
        .find(|l| l.starts_with("| F-LIB-02 |"))
        .expect("F-LIB-02's row");
    assert!(
        row.contains("| 수용 |")
            && row.contains("2013년 거점 공동 구입 시범")
            && row.contains("| 2013-06 |")
            && row.contains("예산 편성 중"),
        "{row}"
    );

    // F-CARE-01 is 가족정책과's: neither its document nor its finding is P-LEE's.
    let (ok, _, err) = toron_line(
        &server,
        &lee,
        &format!("respond F-CARE-01 --series {SERIES} --department DEP-FAM --stance accepted"),
    )
    .await;
    assert!(!ok, "a reviewer wrote another department's response");
    assert!(!err.is_empty());
    let (ok, _, err) = toron_line(
        &server,
        &lee,
        &format!("respond F-CARE-01 --series {SERIES} --department DEP-CULT --stance accepted"),
    )
    .await;
    assert!(
        !ok,
        "a response to another department's finding was accepted"
    );
    assert!(
        err.contains("F-CARE-01") && err.contains("DEP-FAM"),
        "{err}"
    );
    let md = report_md(&server).await;
    let care = md
        .lines()
        .find(|l| l.starts_with("| F-CARE-01 |"))
        .expect("F-CARE-01's row");
    assert!(
        care.contains("중장기 검토"),
        "가족정책과's own answer stands: {care}"
    );

    // P-LEE reads 문화도서관과's part of the report, and only that.
    let (ok, part, err) = toron_line(
        &server,
        &lee,
        &format!("report {SERIES} --format md --department DEP-CULT"),
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        part.contains("| F-LIB-02 |") && part.contains("예산 편성 중"),
        "{part}"
    );
    assert!(part.contains("2013년 거점 공동 구입 시범"), "{part}");
    assert!(
        !part.contains("F-CARE-01"),
        "another department's finding: {part}"
    );
    for line in [
        format!("report {SERIES} --format md"),
        format!("report {SERIES} --format md --department DEP-FAM"),
    ] {
        let (ok, _, err) = toron_line(&server, &lee, &line).await;
        assert!(!ok && err.contains("403"), "{line}: {err}");
    }

    // The record: the response is P-LEE's, as department reviewer, in the series' timeline.
    let series = series_timeline(&server).await;
    assert!(
        by(&series, "P-LEE").iter().any(|e| {
            let e = e.to_string();
            e.contains("department.responded")
                && e.contains("F-LIB-02")
                && e.contains("department_reviewer")
        }),
        "{series:?}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluator_submits_in_the_phase_and_is_refused_after_it() {
    let (_dir, server) = imported().await;
    let reg = server.registry();
    // P-JUNG evaluates the childcare case too; the session is closed (forms still open).
    reg.grant(
        "admin",
        "P-JUNG",
        Role::Evaluator,
        Scope::Session("S-CARE".into()),
    )
    .await
    .expect("grant");
    set_phase(&server, "S-CARE", "closed").await;
    let jung = token_of(&server, "P-JUNG").await;
    let before = report_md(&server).await;
    assert!(before.contains("| 가중 총점 (0–100) | 50.0 |"), "{before}");
    let mut line =
        String::from("evaluate C-CARE-HB --session S-CARE --overall '운영은 안정적이다.'");
    for (c, v) in [
        ("relevance", 5),
        ("process", 5),
        ("effectiveness", 5),
        ("efficiency", 5),
        ("sustainability", 5),
        ("transferability", 5),
    ] {
        line.push_str(&format!(" --score {c}={v}"));
    }
    line.push_str(" --comment 'effectiveness=이용률이 높다.'");
    let (ok, _, err) = toron_line(&server, &jung, &line).await;
    assert!(ok, "{err}");
    // A draft is not an official score yet.
    assert!(report_md(&server)
        .await
        .contains("| 가중 총점 (0–100) | 50.0 |"));
    let (ok, _, err) = toron_line(
        &server,
        &jung,
        "evaluate C-CARE-HB --session S-CARE --submit",
    )
    .await;
    assert!(ok, "{err}");
    // Two forms now: (50 + 100) / 2.
    let md = report_md(&server).await;
    assert!(md.contains("| 가중 총점 (0–100) | 75.0 |"), "{md}");
    assert!(md.contains("n=2"), "{md}");
    // Who gave what: each evaluator's column, total and 총평.
    let by_evaluator = md
        .lines()
        .skip_while(|l| !l.starts_with("### 제3차 보육"))
        .skip_while(|l| !l.contains("평가자별 점수와 총평"))
        .take_while(|l| !l.starts_with("#### 참고") && !l.contains("추진상 부족"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(by_evaluator.contains("정유나"), "{by_evaluator}");
    let totals = by_evaluator
        .lines()
        .find(|l| l.starts_with("| 총점 (0–100) |"))
        .unwrap_or_else(|| panic!("no row of totals: {by_evaluator}"));
    assert!(
        totals.contains("| 50.0 |") && totals.contains("| 100.0 |"),
        "{totals}"
    );
    assert!(
        by_evaluator.contains("운영은 안정적이다."),
        "{by_evaluator}"
    );
    let (ok, out, err) = toron(
        &server,
        ADMIN,
        &["history", "S-CARE", "--participant", "P-JUNG", "--json"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("evaluator"),
        "the timeline has the evaluator's change: {out}"
    );

    // Reporting: the forms are closed; a change is refused and the scores stand.
    set_phase(&server, "S-CARE", "reporting").await;
    let (ok, _, err) = toron_line(
        &server,
        &jung,
        "evaluate C-CARE-HB --session S-CARE --score relevance=1",
    )
    .await;
    assert!(!ok, "a form changed in the reporting phase");
    assert!(!err.is_empty());
    assert!(report_md(&server)
        .await
        .contains("| 가중 총점 (0–100) | 75.0 |"));
    server.shutdown().await.expect("shutdown");
}
