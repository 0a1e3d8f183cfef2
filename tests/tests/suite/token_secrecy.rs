//! Tokens never appear in a log line, and the bootstrap token file is private (mode 0600).

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use toron_tests::LIMIT;

async fn toron(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    toron_tests::toron_output(&["--server", url, "--token", token], args).await
}

#[tokio::test]
async fn tokens_appear_in_no_log_line_and_the_admin_token_is_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-toron-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = toron_tests::next_line(&mut lines).await;
    let url = line.rsplit(' ').next().expect("url").to_string();

    let token_file = data.join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("admin-token exists")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "admin-token is readable by its owner only"
        );
    }
    let admin = std::fs::read_to_string(&token_file)
        .expect("read")
        .trim()
        .to_string();
    assert!(admin.len() >= 40, "a long random token");

    // Use tokens every way they travel: admin header, WebSocket URL, a wrong one.
    let added = toron(
        &url,
        &admin,
        &["admin", "participant", "add", "P-kim", "--name", "김"],
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let kim: serde_json::Value = serde_json::from_slice(&added.stdout).expect("json");
    let kim_token = kim["token"].as_str().expect("token").to_string();
    let created = toron(&url, &admin, &["new"]).await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let doc_url = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let got = toron(&url, &admin, &["get", &doc_url]).await;
    assert!(got.status.success());
    let refused = toron(&url, &kim_token, &["get", &doc_url]).await;
    assert_eq!(
        refused.status.code(),
        Some(1),
        "kim has no role: the document is unavailable to her"
    );
    let wrong = "toron_wrong_token_that_must_not_be_logged_1234";
    let bad = toron(&url, wrong, &["admin", "whoami"]).await;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"));
    let bad_ws = toron(&url, wrong, &["get", &doc_url]).await;
    assert!(
        !String::from_utf8_lossy(&bad_ws.stderr).contains(wrong),
        "the CLI does not print tokens either"
    );

    let pid = child.id().expect("pid").to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exit")
        .expect("status");
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.lines().count() > 10,
        "the server did log (at trace level)"
    );
    for secret in [&admin, &kim_token, &wrong.to_string()] {
        assert!(
            !log.contains(secret.as_str()),
            "a token leaked into the log"
        );
        // Nor any long piece of one.
        assert!(
            !log.contains(&secret[6..secret.len().min(26)]),
            "part of a token leaked into the log"
        );
    }
}
