//! The debate-hall web client end to end: the real server binary (as the README runs it, on a
//! fresh data directory), the example bundle imported with the real CLI, then
//! `web/tests/e2e.mjs` drives headless Chromium (playwright-core and Debian's `chromium`) with
//! four people in four browser contexts. Afterwards the server's own log must show the
//! observer's forged change refused.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use toron_cli::admin::Admin;

pub(crate) const ADMIN: &str = "toron_admin_for_the_web_test";
const LIMIT: Duration = Duration::from_secs(20);

/// A server process, killed when dropped.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(server: &Path, data: &Path) -> (Server, String) {
    start_with(server, data, &[])
}

/// [`start`] with more flags (a cluster node's).
fn start_with(server: &Path, data: &Path, flags: &[&str]) -> (Server, String) {
    start_on(server, data, "127.0.0.1:0", flags)
}

/// The server binary on `listen` (an address, port 0 for any), its data in `data`: the
/// process and the http:// address it says it listens on.
pub(crate) fn start_on(
    server: &Path,
    data: &Path,
    listen: &str,
    flags: &[&str],
) -> (Server, String) {
    let mut child = Command::new(server)
        .args(["--listen", listen, "--data"])
        .arg(data)
        .args(flags)
        .env("TORON_ADMIN_TOKEN", ADMIN)
        .env("TORON_CLUSTER_KEY", toron_tests::nats::CLUSTER_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start toron-server");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(LIMIT)
        .expect("the server says where it listens");
    let url = line
        .rsplit(' ')
        .next()
        .expect("url")
        .replacen("ws://", "http://", 1);
    (Server(child), url)
}

pub(crate) fn toron(url: &str, args: &[&str]) {
    let ws = url.replacen("http://", "ws://", 1);
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-toron"))
        .args(["--server", &ws, "--token", ADMIN, "--timeout", "30"])
        .args(args)
        .output()
        .expect("run toron");
    assert!(
        out.status.success(),
        "toron {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chromium() -> Option<String> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(str::to_string)
}

/// The browser tests one after the other, and never beside the hall drill: the weight test's
/// timings would not mean much with another Chromium sharing the two cores, and a page waiting
/// for a push starves while thirty-odd JavaScript clients and their server take both.
pub(crate) static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What both browser tests start from: the one-browser lock, Chromium's path, `web/` with its
/// packages installed, and a fresh server on a temporary data directory.
struct Bench {
    _one: std::sync::MutexGuard<'static, ()>,
    browser: String,
    web: std::path::PathBuf,
    dir: tempfile::TempDir,
    server: Server,
    url: String,
}

/// Runs a browser script (`cmd`) for at most `secs`, prints what it said, and checks that it
/// passed: its exit status, and its last word `{name}: ok`.
fn node_test(cmd: &mut Command, secs: u64, name: &str) {
    let (ok, stdout, stderr) =
        toron_tests::run_bounded(cmd, Duration::from_secs(secs), &format!("the {name} test"));
    println!("{stdout}");
    assert!(ok, "{name} test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{name}: ok")), "{stdout}");
}

/// The server the weight test measures: `TORON_RELEASE_SERVER` when set (`.ci/run` sets it to
/// the release build it made of this tree: what a hall runs, and what the budgets are about),
/// else this test build's own, whose history answers take several times longer — then the
/// replay figures are printed and their budget is not checked.
fn measured_server() -> (std::path::PathBuf, bool) {
    match std::env::var_os("TORON_RELEASE_SERVER") {
        Some(p) => (p.into(), true),
        None => (env!("CARGO_BIN_EXE_e2e-toron-server").into(), false),
    }
}

fn bench(server: &Path) -> Bench {
    let one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let browser = chromium().expect(
        "this test needs Debian's chromium (apt-get install -y chromium fonts-noto-cjk; .ci/run installs it)",
    );
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    toron_tests::npm_ci(&web, "playwright-core");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, url) = start(server, &dir.path().join("data"));
    Bench {
        _one: one,
        browser,
        web,
        dir,
        server,
        url,
    }
}

#[test]
fn the_web_client_in_headless_chromium() {
    let Bench {
        _one,
        browser,
        web,
        dir,
        server,
        url,
    } = bench(Path::new(env!("CARGO_BIN_EXE_e2e-toron-server")));
    hall(&web, &browser, &url, &url);
    drop(server);
    forged_change_refused(&dir.path().join("data"));
}

/// The same hall on a cluster: the debate imported and its people set up through node 1,
/// every browser on node 2 (three `nats-server`s, two Toron node processes).
#[test]
fn the_web_client_in_headless_chromium_on_a_cluster() {
    let one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let browser = chromium().expect("this test needs Debian's chromium (.ci/run installs it)");
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    toron_tests::npm_ci(&web, "playwright-core");
    let nats = toron_tests::nats::NatsCluster::start(3);
    let urls = nats.urls();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Path::new(env!("CARGO_BIN_EXE_e2e-toron-server"));
    let node = |name: &str| {
        start_with(
            bin,
            &dir.path().join(name),
            &["--cluster", &urls, "--node", name],
        )
    };
    let (first, setup_url) = node("n1");
    let (second, hall_url) = node("n2");
    hall(&web, &browser, &setup_url, &hall_url);
    drop(second);
    drop(first);
    forged_change_refused(&dir.path().join("n2"));
    drop(one);
}

/// Imports the example through `setup_url`, reopens S-LIB, adds an observer and the
/// department reviewer, then runs `web/tests/e2e.mjs` with every browser on `hall_url`.
fn hall(web: &Path, browser: &str, setup_url: &str, hall_url: &str) {
    let url = setup_url;
    let bundle = web.join("../examples/debate-bundle.json");
    toron(url, &["import", bundle.to_str().expect("path")]);
    // The example ends in `reporting`: the hall reopens it, which takes --force (a phase does
    // not go back by mistake).
    toron(
        url,
        &["admin", "session", "phase", "S-LIB", "live", "--force"],
    );
    let api = Admin::new(url, Some(ADMIN.into()), LIMIT);
    let observer = api
        .call(
            "POST",
            "/api/v1/participants",
            Some(json!({ "key": "P-OBS", "name": "방청객", "kind": "resident" })),
        )
        .expect("observer");
    api.call(
        "POST",
        "/api/v1/roles",
        Some(json!({ "participant": "P-OBS", "role": "observer", "session": "S-LIB" })),
    )
    .expect("grant");
    let token = |p: &str| issue_token(&api, p);
    // P-LEE reviews for 문화도서관과 (DEP-CULT) in the series: the work after the session.
    api.call(
        "POST",
        "/api/v1/roles",
        Some(json!({ "participant": "P-LEE", "role": "department_reviewer", "series": "HB-BENCH-2012" })),
    )
    .expect("grant");
    let (kim, park, moon) = (token("P-KIM"), token("P-PARK"), token("P-MOON"));
    let (han, lee) = (token("P-HAN"), token("P-LEE"));

    let mut cmd = Command::new("node");
    cmd.arg("tests/e2e.mjs")
        .current_dir(web)
        .env("TORON_URL", hall_url)
        .env("CHROMIUM", browser)
        .env("TOKEN_ACTIVIST", &kim)
        .env("TOKEN_EVALUATOR", &park)
        .env("TOKEN_CHAIR", &moon)
        .env("TOKEN_ORGANIZER", ADMIN)
        .env("TOKEN_PLANNER", &han)
        .env("TOKEN_DEPT", &lee)
        .env("TOKEN_OBSERVER", observer["token"].as_str().expect("token"));
    // `TORON_SCREENSHOTS=docs` (a path from the repository's root) keeps the screenshots.
    if let Ok(dir) = std::env::var("TORON_SCREENSHOTS") {
        cmd.env("SCREENSHOTS", web.join("..").join(dir));
    }
    node_test(&mut cmd, 180, "web e2e");
}

/// A fresh token of participant `p`, issued through the API (the CLI's `admin token issue`).
pub(crate) fn issue_token(api: &Admin, p: &str) -> String {
    api.call("POST", &format!("/api/v1/participants/{p}/token"), None)
        .expect("token")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// The observer's forged change is in the log of `data` as a refusal, and nowhere else.
fn forged_change_refused(data: &Path) {
    let store = toron_server::store::Store::open(data, None).expect("open log");
    let events = store.events(1, 1_000_000).expect("events");
    let refused = events.iter().any(|e| {
        matches!(e, toron_protocol::Event::Rejection { rejection, .. }
            if rejection.by.participant.as_deref() == Some("P-OBS"))
    });
    assert!(refused, "the forged change was logged as refused");
    let accepted = events.iter().any(|e| {
        matches!(e, toron_protocol::Event::Change(c) if c.change.by.participant.as_deref() == Some("P-OBS"))
    });
    assert!(!accepted, "no change of the observer's was accepted");
    store.close();
}

/// The example bundle with a hall in session S-LIB: fifty more activists, each with four
/// annotations on the library cases spread over the session (16:05 to 18:05), so the
/// session has fifty-odd notes layers to replay.
fn hall_bundle(example: &Path) -> serde_json::Value {
    let mut b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example).expect("bundle")).expect("json");
    let template = b["sessions"][0]["annotations"][0].clone();
    assert_eq!(b["sessions"][0]["key"], "S-LIB");
    let mut n = 0;
    for i in 1..=50 {
        let key = format!("P-H{i:02}");
        b["participants"]
            .as_array_mut()
            .expect("participants")
            .push(json!({ "key": key, "name": format!("참여자 {i}"), "affiliation": "한빛구 주민",
                "kind": "activist", "department": null, "government": null, "attribution": "role_only" }));
        let s = &mut b["sessions"][0];
        s["roles"]
            .as_array_mut()
            .expect("roles")
            .push(json!({ "participant": key, "role": "activist" }));
        for j in 0..4 {
            n += 1;
            let minute = 5 + (n * 120 / 200);
            let mut a = template.clone();
            a["ref"] = json!(format!("H-{i:02}-{j}"));
            a["author"] = json!(key);
            a["author_role"] = json!("activist");
            a["kind"] = json!(if j == 0 { "question" } else { "comment" });
            a["body"] = json!(format!(
                "{i}번 참여자의 {j}번째 의견: 작은도서관 운영 시간을 늘려 주세요"
            ));
            a["created_at"] = json!(format!(
                "2012-11-07T{:02}:{:02}:00+09:00",
                16 + minute / 60,
                minute % 60
            ));
            s["annotations"]
                .as_array_mut()
                .expect("annotations")
                .push(a);
        }
    }
    b
}

/// Issue 17's weight on a venue's Wi-Fi, in headless Chromium with the network at 1.6 Mbps
/// down, 0.75 Mbps up, 150 ms round trip and the CPU four times slower: the first load, a
/// reload, the first case (the WASM), and replay moves over fifty notes layers.
/// `web/tests/weight.mjs` asserts the budgets and prints the figures BENCHMARKS.md quotes.
#[test]
fn the_web_client_is_light_on_a_slow_link() {
    let (server, release) = measured_server();
    let b = bench(&server);
    let (url, web) = (&b.url, &b.web);
    let bundle = b.dir.path().join("hall.json");
    std::fs::write(
        &bundle,
        serde_json::to_vec(&hall_bundle(&web.join("../examples/debate-bundle.json")))
            .expect("json"),
    )
    .expect("write bundle");
    toron(url, &["import", bundle.to_str().expect("path")]);
    let api = Admin::new(url, Some(ADMIN.into()), LIMIT);
    let token = api
        .call("POST", "/api/v1/participants/P-H07/token", None)
        .expect("token")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mut cmd = Command::new("node");
    cmd.arg("tests/weight.mjs")
        .current_dir(web)
        .env("TORON_URL", url)
        .env("CHROMIUM", &b.browser)
        .env("TOKEN", &token);
    if release {
        cmd.env("REPLAY_BUDGET_MS", "1000");
    }
    node_test(&mut cmd, 240, "weight");
    drop(b);
}

/// The example cut back to a session prepared as a district prepares it, not yet held: S-LIB
/// alone, scheduled for today (KST), with its people, cases and agenda and nothing that
/// happens in a hall — no notes, reactions, triage, forms, findings or answers. Its
/// evaluators are named by role (a form comes from the grant, not from content), and the
/// 가족정책과's reviewer is added.
pub(crate) fn not_yet_held(example: &Path) -> serde_json::Value {
    let mut b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example).expect("bundle")).expect("json");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let today = chrono::DateTime::from_timestamp(secs + 9 * 3600, 0)
        .expect("a date")
        .date_naive()
        .to_string();
    let sessions = b["sessions"].as_array_mut().expect("sessions");
    sessions.retain(|s| s["key"] == "S-LIB");
    let s = &mut sessions[0];
    for k in ["annotations", "reactions", "triage", "evaluations"] {
        s[k] = json!([]);
    }
    s["phase"] = json!("scheduled");
    for who in ["P-PARK", "P-JUNG"] {
        s["roles"]
            .as_array_mut()
            .expect("roles")
            .push(json!({ "participant": who, "role": "evaluator" }));
    }
    let dated = s.to_string().replace("2012-11-07", &today);
    *s = serde_json::from_str(&dated).expect("json");
    b["findings"] = json!([]);
    b["department_responses"] = json!([]);
    b["series"]["report"]["status"] = json!("drafting");
    b["participants"].as_array_mut().expect("participants").push(json!({
        "key": "P-FAM", "name": "오가람", "affiliation": "한빛구 가족정책과", "kind": "official",
        "department": "DEP-FAM", "government": null, "attribution": "name_and_affiliation"
    }));
    b
}

/// Runs `web/tests/prepared.mjs` (a session prepared without hall content, from scheduled to
/// the filed report) on `url`, each role's token issued through the API, `env` beside; its
/// report files land in `out`, which [`report_files_hold`] then reads as an office does.
fn run_prepared(bench: &Bench, out: &Path, env: &[(&str, &str)]) {
    let api = Admin::new(&bench.url, Some(ADMIN.into()), LIMIT);
    let mut cmd = Command::new("node");
    cmd.arg("tests/prepared.mjs")
        .current_dir(&bench.web)
        .env("TORON_URL", &bench.url)
        .env("CHROMIUM", &bench.browser)
        .env("OUT", out)
        .env("TOKEN_ORGANIZER", ADMIN);
    for (var, who) in [
        ("TOKEN_CHAIR", "P-MOON"),
        ("TOKEN_ACTIVIST", "P-KIM"),
        ("TOKEN_EVALUATOR", "P-PARK"),
        ("TOKEN_PRESENTER", "P-LEE"),
        ("TOKEN_PLANNER", "P-HAN"),
        ("TOKEN_ASSIST", "P-FAM"),
    ] {
        cmd.env(var, issue_token(&api, who));
    }
    cmd.envs(env.iter().copied());
    if let Ok(shots) = std::env::var("TORON_SCREENSHOTS") {
        cmd.env("SCREENSHOTS", bench.web.join("..").join(shots));
    }
    node_test(&mut cmd, 240, "prepared session e2e");
}

/// Every report file of a prepared run as an office reads it — the PDF's text, the HWPX's
/// sections, the workbook's cells — holds what the run wrote (its `expected.json`), and none
/// holds a UUID.
fn report_files_hold(out: &Path) {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("expected.json")).expect("expected"),
    )
    .expect("json");
    let want: Vec<&str> = expected["want"]
        .as_array()
        .expect("want")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    let pdf = crate::report_files::tool(
        "pdftotext",
        &[out.join("report.pdf").to_str().expect("path"), "-"],
    );
    // pdftotext breaks lines where the page does: compare without white space.
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let hwpx = Command::new("python3")
        .args([
            "-c",
            "import re,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nfor n in sorted(z.namelist()):\n  if n.startswith('Contents/section'):\n    print(re.sub(r'<[^>]+>',' ',z.read(n).decode('utf-8')))",
        ])
        .arg(out.join("report.hwpx"))
        .output()
        .expect("python3");
    assert!(
        hwpx.status.success(),
        "{}",
        String::from_utf8_lossy(&hwpx.stderr)
    );
    let xlsx = {
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook(out.join("report.xlsx")).expect("the workbook opens");
        let mut cells = String::new();
        for name in book.sheet_names() {
            let range = book.worksheet_range(&name).expect("a sheet");
            for row in range.rows() {
                for c in row {
                    cells.push_str(&c.to_string());
                    cells.push('\n');
                }
            }
        }
        cells
    };
    let texts = [
        ("PDF", squeeze(&pdf)),
        ("HWPX", squeeze(&String::from_utf8_lossy(&hwpx.stdout))),
    ];
    for (format, text) in &texts {
        for w in &want {
            assert!(
                text.contains(&squeeze(w)),
                "the {format} report holds {w:?}"
            );
        }
    }
    // The workbook is the departments' table: the finding and both departments' answers.
    for w in [
        "작은도서관 저녁 운영 인력 확보",
        "2027년 상반기 시간제 사서 배치",
        "돌봄 프로그램과 저녁 운영 연계",
    ] {
        assert!(xlsx.contains(w), "the XLSX report holds {w:?}");
    }
    let uuid = |s: &str| {
        s.as_bytes().windows(36).any(|w| {
            w.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
        })
    };
    for (format, text) in [
        ("PDF", pdf),
        ("HWPX", String::from_utf8_lossy(&hwpx.stdout).into_owned()),
        ("XLSX", xlsx),
    ] {
        assert!(!uuid(&text), "no UUID in the {format} report");
    }
}

/// Issue 30: a session prepared without any hall content, run in the browser from scheduled
/// to reporting (`web/tests/prepared.mjs`); then every report file — PDF, HWPX, XLSX, CSV,
/// Markdown, HTML — holds the question, the presenter's answer, the evaluator's texts and both
/// departments' answers, and no UUID.
#[test]
fn a_session_prepared_without_hall_content_runs_in_the_browser() {
    let bench = bench(Path::new(env!("CARGO_BIN_EXE_e2e-toron-server")));
    let bundle = bench.dir.path().join("s-lib-not-yet-held.json");
    std::fs::write(
        &bundle,
        not_yet_held(&bench.web.join("../examples/debate-bundle.json")).to_string(),
    )
    .expect("write");
    toron(&bench.url, &["import", bundle.to_str().expect("path")]);
    let api = Admin::new(&bench.url, Some(ADMIN.into()), LIMIT);
    for who in ["P-LEE", "P-FAM"] {
        api.call(
            "POST",
            "/api/v1/roles",
            Some(json!({ "participant": who, "role": "department_reviewer", "series": "HB-BENCH-2012" })),
        )
        .expect("grant");
    }
    // `TORON_KEEP_REPORT=/some/folder` keeps the report's files to read.
    let out = std::env::var_os("TORON_KEEP_REPORT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bench.dir.path().join("report"));
    run_prepared(&bench, &out, &[]);
    // The server stops (its files are written); the data folder stays until the files are read.
    drop(bench.server);
    report_files_hold(&out);
}

/// Issue 30: the same run on a session made with the CLI alone — participants, a session, the
/// series' departments and evaluation template, the session's agenda (`toron admin
/// department|template|agenda`), a case (its text written with `toron set`), grants; no
/// bundle. The chair starts it and sets the agenda item, the question on a section's first
/// words, "지금 답변 중", the presenter's answer, the evaluator's whole form, the typed note
/// kept through closing, the promotion for a lead and an assisting department, both answers;
/// every report format holds them and no UUID (`web/tests/prepared.mjs` with `MODE=cli`).
#[test]
fn a_session_made_with_the_cli_alone_runs_in_the_browser() {
    let bench = bench(Path::new(env!("CARGO_BIN_EXE_e2e-toron-server")));
    // As an officer types them (split as a shell would).
    for line in [
        "admin participant add P-MOON --name 문서윤 --kind expert --attribution name_and_affiliation",
        "admin participant add P-KIM --name 김바다 --kind activist",
        "admin participant add P-PARK --name 박민재 --kind expert --attribution name_and_affiliation",
        "admin participant add P-HAN --name 한지수 --kind official",
        "admin session add S8 --series BM8 --title '제8차 도시재생' --phase scheduled --facilitator P-MOON",
        // The series' departments, its template, the session's agenda: the CLI alone.
        "admin department DEP-CULT --series BM8 --name 문화도서관과",
        "admin department DEP-FAM --series BM8 --name 가족정책과",
        "admin template BM8 --criterion relevance=적절성:15 --criterion 'process=추진체계·민관협력:20' \
         --criterion effectiveness=효과성:30 --criterion efficiency=효율성:10 \
         --criterion sustainability=지속가능성:15 --criterion 'transferability=이전·확산 가능성:10'",
        "admin agenda S8 --item AG-LIB-1=개회 --item AG-LIB-2=사례발표 --item AG-LIB-3=종합토론",
        "admin participant add P-LEE --name 이도현 --kind official --attribution name_and_affiliation --department DEP-CULT",
        "admin participant add P-FAM --name 오가람 --kind official --attribution name_and_affiliation --department DEP-FAM",
        "admin case add C8 --session S8 --presenter P-LEE",
        "admin grant P-MOON facilitator --session S8",
        "admin grant P-KIM activist --session S8",
        "admin grant P-PARK evaluator --session S8",
        "admin grant P-HAN organizer --series BM8",
        "admin grant P-LEE department_reviewer --series BM8",
        "admin grant P-FAM department_reviewer --series BM8",
        "admin session list",
        "admin docs",
    ] {
        let words = toron_tests::words(line);
        toron(&bench.url, &words.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let case = toron_domain::policy::DocKey::Case { case: "C8".into() }
        .document_id()
        .url()
        .to_string();
    for (section, text) in [
        (
            "sections.background",
            "마을 공동체가 빈집을 고쳐 주민 쉼터로 쓰기 시작했다. 구는 2025년부터 지원한다.",
        ),
        (
            "sections.results",
            "쉼터 세 곳이 문을 열었고 하루 이용자는 평균 40명이다.",
        ),
    ] {
        toron(&bench.url, &["set", &case, section, text]);
    }
    let out = bench.dir.path().join("report");
    run_prepared(
        &bench,
        &out,
        &[("MODE", "cli"), ("SESSION", "S8"), ("CASE_KEY", "C8")],
    );
    // The server stops (its files are written); the data folder stays until the files are read.
    drop(bench.server);
    report_files_hold(&out);
}
