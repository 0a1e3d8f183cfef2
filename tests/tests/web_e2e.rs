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

const ADMIN: &str = "toron_admin_for_the_web_test";
const LIMIT: Duration = Duration::from_secs(20);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-toron-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("TORON_ADMIN_TOKEN", ADMIN)
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

fn toron(url: &str, args: &[&str]) {
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

#[test]
fn the_web_client_in_headless_chromium() {
    let browser = chromium().expect(
        "this test needs Debian's chromium (apt-get install -y chromium fonts-noto-cjk; .ci/run installs it)",
    );
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    toron_tests::npm_ci(&web, "playwright-core");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, url) = start(&dir.path().join("data"));
    let bundle = web.join("../examples/debate-bundle.json");
    toron(&url, &["import", bundle.to_str().expect("path")]);
    // The example ends in `reporting`: the hall reopens it, which takes --force (a phase does
    // not go back by mistake).
    toron(
        &url,
        &["admin", "session", "phase", "S-LIB", "live", "--force"],
    );
    let api = Admin::new(&url, Some(ADMIN.into()), LIMIT);
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
    let token = |p: &str| {
        api.call("POST", &format!("/api/v1/participants/{p}/token"), None)
            .expect("token")["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let (kim, park, moon) = (token("P-KIM"), token("P-PARK"), token("P-MOON"));

    let mut cmd = Command::new("node");
    cmd.arg("tests/e2e.mjs")
        .current_dir(&web)
        .env("TORON_URL", &url)
        .env("CHROMIUM", &browser)
        .env("TOKEN_ACTIVIST", &kim)
        .env("TOKEN_EVALUATOR", &park)
        .env("TOKEN_CHAIR", &moon)
        .env("TOKEN_ORGANIZER", ADMIN)
        .env("TOKEN_OBSERVER", observer["token"].as_str().expect("token"));
    // `TORON_SCREENSHOTS=docs` (a path from the repository's root) keeps the screenshots.
    if let Ok(dir) = std::env::var("TORON_SCREENSHOTS") {
        cmd.env("SCREENSHOTS", web.join("..").join(dir));
    }
    let (ok, stdout, stderr) =
        toron_tests::run_bounded(&mut cmd, Duration::from_secs(180), "the browser test");
    println!("{stdout}");
    assert!(ok, "web e2e failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("web e2e: ok"), "{stdout}");

    // The observer's forged change is in the server's log as a refusal, and nowhere else.
    drop(server);
    let store = toron_server::store::Store::open(&dir.path().join("data"), None).expect("open log");
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
