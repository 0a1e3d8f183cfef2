//! Helpers for Toron's end-to-end tests: a real server on `127.0.0.1:0` over a temporary
//! sled directory, and raw WebSocket peers for the tests that must speak out of turn.

pub mod fuzzing;
pub mod nats;
pub mod roster;

use std::path::Path;
use std::time::Duration;

use automerge::{ReadDoc, ROOT};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use toron_protocol::wire::{decode, encode};
use toron_protocol::{Message, PeerId, PROTOCOL_VERSION};
use toron_server::{Config, Running};

/// Upper bound for any single wait in a test.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Server settings for the sync tests: any free port, the given data directory, `--open`
/// (no tokens; the permission tests use [`secure_config`]).
pub fn config(dir: &Path) -> Config {
    let mut c = secure_config(dir);
    c.open = true;
    c
}

/// Server settings with tokens and permissions enforced (the default of the binary).
pub fn secure_config(dir: &Path) -> Config {
    #[allow(clippy::unwrap_used)]
    let listen = "127.0.0.1:0".parse().unwrap();
    let mut c = Config::new(listen, dir.to_path_buf());
    // "left" is logged as soon as a participant's last connection closes, so that tests read
    // the timeline without waiting out the grace period (`presence.rs` tests that one).
    c.presence_grace = Duration::ZERO;
    // Reports are typeset as the binary typesets them: in the server binary run as a child
    // process (built beside every test binary), with its limits.
    c.typeset.program = server_binary();
    c
}

/// The real server binary cargo builds beside the test binaries (`target/<profile>/`).
pub fn server_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("e2e-toron-server"))
        .find(|p| p.is_file())
}

pub async fn start(dir: &Path) -> Running {
    start_with(config(dir)).await
}

/// An open server (no tokens) on a fresh data directory, which lives as long as the returned
/// guard.
pub async fn fresh() -> (tempfile::TempDir, Running) {
    fresh_with(|_| {}).await
}

/// [`fresh`], with the configuration set by `configure` first.
pub async fn fresh_with(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    configure(&mut config);
    let server = start_with(config).await;
    (dir, server)
}

/// A secured server on a fresh data directory, whose first organizer's token is
/// `admin_token`. The directory lives as long as the returned guard.
pub async fn secured(admin_token: &str) -> (tempfile::TempDir, Running) {
    secured_with(admin_token, |_| {}).await
}

/// [`secured`], with more of the configuration set by `configure`.
pub async fn secured_with(
    admin_token: &str,
    configure: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = secure_config(dir.path());
    config.admin_token = Some(admin_token.into());
    configure(&mut config);
    let server = start_with(config).await;
    (dir, server)
}

pub async fn start_with(config: Config) -> Running {
    match toron_server::start(config).await {
        Ok(r) => r,
        Err(e) => panic!("server did not start: {e:#}"),
    }
}

/// Creates a document holding `key: value` over `conn` and waits until the server stored it.
pub async fn create(
    conn: &mut toron_cli::sync_client::Connection,
    key: &str,
    value: i64,
) -> toron_cli::sync_client::DocSync {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new();
    doc.put(ROOT, key, value).expect("put");
    let mut d = toron_cli::sync_client::DocSync::new(toron_protocol::DocumentId::random(), doc);
    conn.push(&mut d, LIMIT)
        .await
        .expect("server stored the new document");
    d
}

/// A new token of `participant`, issued by the first organizer ("admin").
pub async fn token_of(server: &Running, participant: &str) -> String {
    server
        .registry()
        .issue_token("admin", participant)
        .await
        .expect("token")
}

/// Adds `key` as a participant shown by role only ([`Participant::new`]), as "admin".
///
/// [`Participant::new`]: toron_server::registry::Participant::new
pub async fn add_participant(server: &Running, key: &str, name: &str, kind: &str) {
    let kind: toron_domain::registry::Kind = kind.parse().expect("a participant kind");
    let p = toron_server::registry::Participant::new(key, name, kind);
    server
        .registry()
        .add_participant("admin", p)
        .await
        .expect("participant");
}

/// Asserts that no timeline entry tells a triage decision as edits of the triage document's
/// fields (`section.edited` on a `triage:` document): the timeline names what was decided.
pub fn assert_no_triage_told_as_edits(entries: &[serde_json::Value]) {
    let edited_triage = |e: &&serde_json::Value| {
        e["kind"] == "section.edited"
            && e["document"]
                .as_str()
                .is_some_and(|d| d.starts_with("triage:"))
    };
    let found: Vec<_> = entries.iter().filter(edited_triage).collect();
    assert!(found.is_empty(), "triage told as section edits: {found:?}");
}

/// The next line a child process writes, waited for at most [`LIMIT`].
pub async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> String {
    tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("in time")
        .expect("read")
        .expect("line")
}

/// The items of a JSON list; panics, showing the value, when it is not one.
pub fn items(v: &serde_json::Value) -> &[serde_json::Value] {
    match v.as_array() {
        Some(a) => a,
        None => panic!("not a list: {v}"),
    }
}

/// Moves `session` to `phase` as the first organizer, straight in the registry (the way an
/// organizer's `--force` does: any phase, back too).
pub async fn set_phase(server: &Running, session: &str, phase: &str) {
    let reg = server.registry();
    let mut s = reg.session(session).expect("the session");
    s.phase = phase.parse().expect("a phase");
    reg.put_session("admin", s).await.expect("phase");
}

/// Begins a notes layer in an empty document: its `annotations` and `reactions` maps.
pub fn begin_layer(doc: &mut automerge::AutoCommit) {
    use automerge::transaction::Transactable;
    for key in ["annotations", "reactions"] {
        doc.put_object(ROOT, key, automerge::ObjType::Map)
            .expect("map");
    }
}

/// Reads an integer at a root key of a document.
pub fn int_at(doc: &impl ReadDoc, key: &str) -> Option<i64> {
    match doc.get(ROOT, key).ok()?? {
        (automerge::Value::Scalar(s), _) => s.as_i64(),
        _ => None,
    }
}

pub fn peer(id: &str) -> PeerId {
    match PeerId::new(id) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// A WebSocket that speaks only when told to: no automatic handshake.
#[derive(Debug)]
pub struct RawPeer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a raw peer's connection ended.
#[derive(Debug, PartialEq)]
pub enum Ending {
    /// The server sent `error` with this text and closed.
    Error(String),
    /// Closed without an `error`.
    Closed,
}

impl RawPeer {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(url)).await??;
        Ok(Self { ws })
    }

    /// Connects with a 4 KiB socket receive buffer (no autotuning): a peer that stops reading
    /// makes the server's queue towards it grow at once, not after megabytes of kernel buffers.
    pub async fn connect_small_buffer(url: &str) -> anyhow::Result<Self> {
        let addr = url
            .strip_prefix("ws://")
            .and_then(|r| r.split(['/', '?']).next())
            .ok_or_else(|| anyhow::anyhow!("not a ws:// url: {url}"))?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let tcp = tokio::time::timeout(LIMIT, socket.connect(addr.parse()?)).await??;
        let (ws, _) = tokio::time::timeout(
            LIMIT,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
        )
        .await??;
        Ok(Self { ws })
    }

    /// Connects and joins as `peer`, returning after the server's `peer` reply.
    pub async fn joined(url: &str, peer: &str) -> anyhow::Result<Self> {
        let mut p = Self::connect(url).await?;
        p.send(&Message::Join {
            sender_id: PeerId::new(peer)?,
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
            peer_metadata: None,
        })
        .await?;
        match p.recv(LIMIT).await? {
            Some(Message::Peer { .. }) => Ok(p),
            other => anyhow::bail!("expected `peer`, got {other:?}"),
        }
    }

    pub async fn send(&mut self, m: &Message) -> anyhow::Result<()> {
        self.send_bytes(encode(m)).await
    }

    pub async fn send_bytes(&mut self, b: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(WsMessage::Binary(b.into())).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, t: &str) -> anyhow::Result<()> {
        self.ws.send(WsMessage::Text(t.to_string().into())).await?;
        Ok(())
    }

    /// The next message within `wait`; `None` if nothing came.
    pub async fn recv(&mut self, wait: Duration) -> anyhow::Result<Option<Message>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => anyhow::bail!("connection closed"),
                Ok(Some(f)) => f?,
            };
            match frame {
                WsMessage::Binary(b) => return Ok(Some(decode(&b)?)),
                WsMessage::Close(_) => anyhow::bail!("connection closed"),
                _ => continue,
            }
        }
    }

    /// Waits for the server to end the connection; reports whether it sent `error` first.
    pub async fn ending(&mut self, wait: Duration) -> anyhow::Result<Ending> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut error = None;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => anyhow::bail!("the server did not close the connection within {wait:?}"),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => {
                    return Ok(error.map(Ending::Error).unwrap_or(Ending::Closed))
                }
                Ok(Some(Ok(WsMessage::Binary(b)))) => {
                    if let Ok(Message::Error { message, .. }) = decode(&b) {
                        error = Some(message);
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// Runs the real `toron` binary (`bin`: `env!("CARGO_BIN_EXE_e2e-toron")` of the calling test)
/// against `server` with `token`, giving the CLI `--timeout cli_secs` and waiting at most
/// `bound` for it. Returns whether it succeeded, its standard output and its standard error.
pub async fn run_toron(
    bin: &str,
    server: &Running,
    token: &str,
    bounds: (&str, Duration),
    args: &[&str],
) -> (bool, String, String) {
    let (code, stdout, stderr) = run_toron_code(bin, server, token, bounds, args).await;
    (code == 0, stdout, stderr)
}

/// [`run_toron`], with the exit code (-1 when killed by a signal).
pub async fn run_toron_code(
    bin: &str,
    server: &Running,
    token: &str,
    (cli_secs, bound): (&str, Duration),
    args: &[&str],
) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin)
        .args([
            "--server",
            &server.url(),
            "--token",
            token,
            "--timeout",
            cli_secs,
        ])
        .args(args)
        .output();
    let out = within(bound, out).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs the real `toron` binary with the global options `global` then `args`, waiting at
/// most [`LIMIT`]: its whole output, for tests that look at the exit status themselves.
pub async fn toron_output(global: &[&str], args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(toron_bin())
        .args(global)
        .args(args)
        .output();
    within(LIMIT, out).await
}

/// A `toron` run's output, which must come within `bound`.
async fn within(
    bound: Duration,
    run: impl std::future::Future<Output = std::io::Result<std::process::Output>>,
) -> std::process::Output {
    tokio::time::timeout(bound, run)
        .await
        .expect("toron finished in time")
        .expect("run toron")
}

/// The "weighted total" row of each session's score table in a Markdown report: (the
/// column's government, the cell's number), session by session in the report's order.
pub fn report_totals(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for line in md.lines() {
        if line.starts_with("| 항목(가중치)") {
            header = line.split('|').map(|c| c.trim().to_string()).collect();
        } else if line.starts_with("| 가중 총점") {
            for (h, c) in header.iter().zip(line.split('|').map(str::trim)).skip(2) {
                if h.is_empty() {
                    continue;
                }
                let value = c.split_whitespace().next().unwrap_or("").to_string();
                out.push((h.clone(), value));
            }
        }
    }
    out
}

/// Receives on `conn` until `d` satisfies `done`, within [`LIMIT`].
pub async fn receive_until(
    conn: &mut toron_cli::sync_client::Connection,
    d: &mut toron_cli::sync_client::DocSync,
    mut done: impl FnMut(&mut toron_cli::sync_client::DocSync) -> bool,
) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !done(d) {
        tokio::time::timeout_at(deadline, conn.next_event(&mut [&mut *d]))
            .await
            .expect("within the limit")
            .expect("event");
    }
}

/// The tool's first command-line argument as a number, or `default` without one; `what`
/// names it in the error when it is not a number.
pub fn first_arg_or<T: std::str::FromStr>(default: T, what: &str) -> anyhow::Result<T> {
    match std::env::args().nth(1) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} is a number, not `{s}`")),
    }
}

/// The `e2e-toron` binary cargo built beside the running test (`target/<profile>/`).
pub fn toron_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/<test> → target/<profile>/e2e-toron
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join(format!("e2e-toron{}", std::env::consts::EXE_SUFFIX))
}

/// [`toron`] with the arguments of `line`, split as a shell would (`'…'` holds a value with
/// spaces): commands read as a person types them.
pub async fn toron_line(server: &Running, token: &str, line: &str) -> (bool, String, String) {
    let args = words(line);
    toron(
        server,
        token,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await
}

/// The words of a command line, split as a shell would.
pub fn words(line: &str) -> Vec<String> {
    match shlex::split(line) {
        Some(w) => w,
        None => panic!("not a command line: {line}"),
    }
}

/// [`run_toron`] with the usual bounds (the CLI's own timeout 20 s, three times [`LIMIT`]
/// for the whole run).
pub async fn toron(server: &Running, token: &str, args: &[&str]) -> (bool, String, String) {
    let bin = toron_bin();
    run_toron(
        &bin.to_string_lossy(),
        server,
        token,
        ("20", LIMIT * 3),
        args,
    )
    .await
}

/// `GET path` over a plain HTTP/1.1 connection to `addr`: the whole response, status line and
/// headers included (what a monitoring probe sees).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut text = String::new();
    tokio::time::timeout(LIMIT, s.read_to_string(&mut text))
        .await
        .expect("answered in time")
        .expect("read");
    text
}

/// A GET with a bearer token, as one HTTP/1.1 request on its own socket: the whole answer
/// (status line, headers, body), or what was read before it failed.
pub async fn http_get_with_token(addr: std::net::SocketAddr, path: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(LIMIT, s.read_to_end(&mut bytes)).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs the server binary's offline `command` (`verify`, `rebuild`) on `dir`; `bin` is
/// `env!("CARGO_BIN_EXE_e2e-toron-server")` of the calling test. Whether it succeeded, and
/// what it printed.
pub async fn server_offline(bin: &str, dir: &Path, command: &str) -> (bool, String) {
    server_command(bin, dir, &[command.as_ref()]).await
}

/// Runs `bin --data dir ARGS…` (a server command such as `backup OUT`), bounded by [`LIMIT`].
/// Whether it succeeded, and what it printed (standard output, then standard error).
pub async fn server_command(bin: &str, dir: &Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new(bin)
            .arg("--data")
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("in time")
    .expect("run");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts the server binary `bin` (`env!("CARGO_BIN_EXE_e2e-toron-server")` of the calling
/// test) in open mode on `dir`, on a free port; returns it (killed when dropped) and its
/// `ws://` URL. Its logs go to this process's standard error, filtered by
/// `TORON_TEST_SERVER_LOG` (default `warn`), or nowhere when `quiet`.
pub async fn spawn_open_server(
    bin: &str,
    dir: &Path,
    quiet: bool,
) -> (tokio::process::Child, String) {
    use std::process::Stdio;
    let log = std::env::var("TORON_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into());
    let (log, stderr) = if quiet {
        ("off".to_string(), Stdio::null())
    } else {
        (log, Stdio::inherit())
    };
    spawn_server(bin, dir, &["--open"], &log, stderr).await
}

/// Starts the server binary `bin` on `dir` with `args`, on a free port, its log filtered by
/// `rust_log` going to `stderr` (`Stdio::piped()` to read it from the child); returns it
/// (killed when dropped) and its `ws://` URL, once it has printed it.
pub async fn spawn_server(
    bin: &str,
    dir: &Path,
    args: &[&str],
    rust_log: &str,
    stderr: std::process::Stdio,
) -> (tokio::process::Child, String) {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn toron-server");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the server printed its address in time")
        .expect("read")
        .expect("a line");
    let url = line.rsplit(' ').next().expect("url").to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{line}");
    (child, url)
}

/// The `ws://` URL a server child process (started with a piped standard output) prints
/// first; what it prints later is read and dropped on a thread of its own, since a closed pipe
/// would fail its next write. For benchmarks that run the release binaries.
pub fn printed_url(child: &mut std::process::Child) -> anyhow::Result<String> {
    use std::io::BufRead;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("the server's standard output is not piped"))?;
    let mut out = std::io::BufReader::new(out);
    let mut line = String::new();
    out.read_line(&mut line)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(url.starts_with("ws://"), "the server said {line:?}");
    Ok(url)
}

/// Runs `cmd` (a Node script, a browser test) with its output in files and a bounded wait: a
/// child that hangs, or a server it left behind holding a pipe, must not hang the test suite.
/// Returns whether it succeeded, its standard output and its standard error.
pub fn run_bounded(
    cmd: &mut std::process::Command,
    limit: Duration,
    what: &str,
) -> (bool, String, String) {
    let logs = tempfile::tempdir().expect("logs");
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            // What it said so far, to see where it stood.
            let said = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            panic!(
                "{what} did not finish within {} s:\n{}\n{}",
                limit.as_secs(),
                said(&out_path),
                said(&err_path)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status.success(), stdout, stderr)
}

/// Installs the pinned Node packages of `dir` (`npm ci`) unless `marker` (a path below
/// `node_modules`) is there already; one install at a time within a test binary.
pub fn npm_ci(dir: &Path, marker: &str) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if dir.join("node_modules").join(marker).exists() {
        return;
    }
    let ok = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("run npm ci (Node.js and npm are needed)");
    assert!(ok.success(), "npm ci failed in {}", dir.display());
}
