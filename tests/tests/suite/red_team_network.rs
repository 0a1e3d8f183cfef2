//! The findings of the red-team pass (issue 15) that concern connections: what one
//! participant's socket can do to another's. Real server, real sockets, the roster of the
//! permission tests (one participant per role, each with a token).

use toron_cli::sync_client::{url_with_token, Connection};
use toron_domain::policy::{Phase, Role};
use toron_protocol::{Message, PeerId, PROTOCOL_VERSION};
use toron_tests::roster;
use toron_tests::{secure_config, start_with, Ending, RawPeer, LIMIT};

fn token_of(tokens: &[(Role, String)], role: Role) -> String {
    roster::token(tokens, role)
}

async fn join_raw(url: &str, peer: PeerId) -> RawPeer {
    let mut p = RawPeer::connect(url).await.expect("connect");
    p.send(&Message::Join {
        sender_id: peer,
        supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
        peer_metadata: None,
    })
    .await
    .expect("join");
    p
}

/// High finding: joining with another participant's peer id knocked them off. Now the join
/// is refused with a clear error, the holder keeps its connection (and keeps receiving), and
/// the same participant reconnecting with its own id still replaces its old socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_id_cannot_be_taken_over_by_another_participant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    let chair = token_of(&tokens, Role::Facilitator);
    let observer = token_of(&tokens, Role::Observer);
    let url = server.url();
    let chair_peer = toron_tests::peer("js-facilitator-tab");
    let mut held = Connection::connect_as(
        &url_with_token(&url, Some(&chair)),
        chair_peer.clone(),
        LIMIT,
    )
    .await
    .expect("the facilitator connects");
    let key = roster::Kind::SessionDoc.key(Role::Facilitator);
    let mut doc = held.find(key.document_id(), LIMIT).await.expect("find");

    for _ in 0..5 {
        let mut thief = join_raw(&url_with_token(&url, Some(&observer)), chair_peer.clone()).await;
        match thief.ending(LIMIT).await.expect("the thief is closed") {
            Ending::Error(e) => assert!(e.contains("peer id is in use"), "{e}"),
            Ending::Closed => panic!("closed without saying why"),
        }
    }
    // The server's own id is not for taking either.
    let mut thief = join_raw(
        &url_with_token(&url, Some(&observer)),
        server.hub().server_peer().clone(),
    )
    .await;
    assert!(matches!(thief.ending(LIMIT).await, Ok(Ending::Error(_))));

    // The facilitator's connection is still there: a change made elsewhere reaches it.
    let organizer = token_of(&tokens, Role::Organizer);
    let mut other = Connection::connect(&url_with_token(&url, Some(&organizer)), LIMIT)
        .await
        .expect("organizer");
    let mut od = other.find(key.document_id(), LIMIT).await.expect("find");
    use automerge::transaction::Transactable;
    od.doc
        .put(automerge::ROOT, "after_the_attempts", 1)
        .expect("put");
    od.doc.commit();
    other.push(&mut od, LIMIT).await.expect("push");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while toron_tests::int_at(&doc.doc, "after_the_attempts") != Some(1) {
        tokio::time::timeout_at(deadline, held.next_event(&mut [&mut doc]))
            .await
            .expect("the facilitator still receives")
            .expect("still connected");
    }

    // The facilitator's own reconnect (same participant, same id) replaces the old socket.
    let mut again = join_raw(&url_with_token(&url, Some(&chair)), chair_peer.clone()).await;
    assert!(matches!(
        again.recv(LIMIT).await,
        Ok(Some(Message::Peer { .. }))
    ));
    let replaced = tokio::time::timeout(LIMIT, async {
        loop {
            if held.recv().await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(replaced.is_ok(), "the old socket was replaced");
}

/// A peer id is echoed in replies and logs: one longer than 256 bytes, or with control
/// characters, is refused at the join (and only that connection is closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_ids_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::config(dir.path())).await;
    let url = server.url();
    let bystander = Connection::connect(&url, LIMIT).await.expect("bystander");
    for bad in ["p".repeat(100_000), "peer\nforged log line".to_string()] {
        let mut p = join_raw(&url, PeerId::new(bad).expect("non-empty")).await;
        match p.ending(LIMIT).await.expect("closed") {
            Ending::Error(e) => assert!(e.contains("peer id"), "{e}"),
            Ending::Closed => panic!("closed without saying why"),
        }
    }
    let mut ok = join_raw(&url, PeerId::new("p".repeat(256)).expect("peer")).await;
    assert!(matches!(
        ok.recv(LIMIT).await,
        Ok(Some(Message::Peer { .. }))
    ));
    // The bystander was not disturbed.
    let mut bystander = bystander;
    toron_tests::create(&mut bystander, "still", 1).await;
}

/// Every ephemeral message `conn` receives within `window`.
async fn ephemera_within(
    conn: &mut Connection,
    d: &mut toron_cli::sync_client::DocSync,
    window: std::time::Duration,
) -> Vec<(PeerId, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    while let Ok(ev) = tokio::time::timeout_at(deadline, conn.next_event(&mut [&mut *d])).await {
        if let toron_cli::sync_client::Event::Ephemeral { sender, data, .. } = ev.expect("event") {
            got.push((sender, data));
        }
    }
    got
}

/// Low finding: an ephemeral message (cursors, presence) was relayed under whatever sender it
/// claimed, so one participant could speak as another. A claim of a connected peer's id is
/// dropped; any other claim goes out under the sender's own id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_messages_go_out_under_their_real_sender() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::config(dir.path())).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let a = toron_tests::create(&mut alice, "v", 1).await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut b = bob.find(a.id, LIMIT).await.expect("bob finds");
    let mut carol = Connection::connect(&url, LIMIT).await.expect("carol");
    let _c = carol.find(a.id, LIMIT).await.expect("carol finds");
    let spoof = |sender: PeerId, count: u64| Message::Ephemeral {
        sender_id: sender,
        target_id: toron_tests::peer("server"),
        document_id: a.id,
        count,
        session_id: "carol-session".into(),
        data: vec![0xa1, 0x61, b'x', count as u8],
    };
    carol
        .send(&spoof(alice.peer_id.clone(), 1))
        .await
        .expect("send");
    let window = std::time::Duration::from_millis(600);
    assert!(ephemera_within(&mut bob, &mut b, window).await.is_empty());
    carol
        .send(&spoof(toron_tests::peer("nobody-here"), 2))
        .await
        .expect("send");
    assert_eq!(
        ephemera_within(&mut bob, &mut b, window).await,
        vec![(carol.peer_id.clone(), vec![0xa1, 0x61, b'x', 2])]
    );
}

/// Sends the headers of a 60 MB import and no body; returns the status line of the answer,
/// if one comes within 3 s.
async fn import_headers_only(
    server: &toron_server::Running,
    token: Option<&str>,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url().trim_start_matches("ws://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /api/v1/import HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: 60000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_string)
}

/// High finding: `POST /api/v1/import` read up to 65 MiB of body before it checked the token.
/// Now a request without an organizer's token is answered from its headers alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_body_is_read_only_after_the_token_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    let status = import_headers_only(&server, None).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 401 ")),
        "no token: answered at once, body unread: {status:?}"
    );
    let observer = token_of(&tokens, Role::Observer);
    let status = import_headers_only(&server, Some(&observer)).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 403 ")),
        "not an organizer: answered at once: {status:?}"
    );
}

/// The status line of `GET path` with the organizer's token.
async fn get_status(server: &toron_server::Running, token: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url().trim_start_matches("ws://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_string)
}

/// High finding: `speed=1e-300` panicked the replay task and a tiny speed made a task that
/// sleeps for years. Speeds outside 0.1–10000 are refused with 400; 0.1 is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_speeds_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    let org = token_of(&tokens, Role::Organizer);
    let path = |speed: &str| {
        format!(
            "/api/v1/sessions/{}/replay?speed={speed}&from=0",
            roster::SESSION
        )
    };
    for bad in ["1e-300", "0.01", "-1", "NaN", "inf", "1e309"] {
        let status = get_status(&server, &org, &path(bad)).await;
        assert!(
            status.as_deref().is_some_and(|s| s.contains(" 400 ")),
            "speed {bad}: {status:?}"
        );
    }
    let status = get_status(&server, &org, &path("0.1")).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 200 ")),
        "{status:?}"
    );
}

/// An open SSE stream of `path` with `token`: the socket, after the request was sent.
async fn open_stream(
    server: &toron_server::Running,
    token: &str,
    path: &str,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    tcp
}

/// Reads from `tcp` until what arrived contains `needle`; `None` if it did not within `wait`.
async fn read_until(
    tcp: &mut tokio::net::TcpStream,
    seen: &mut String,
    needle: &str,
    wait: std::time::Duration,
) -> Option<()> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 8192];
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Some(())
}

/// The value of an unlabelled gauge in `/metrics`.
async fn gauge(server: &toron_server::Running, name: &str) -> Option<f64> {
    let text = toron_tests::http_get(server.addr(), "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (bounded) until the `toron_replays` gauge reads `n`.
async fn replays_become(server: &toron_server::Running, n: f64) -> bool {
    for _ in 0..100 {
        if gauge(server, "toron_replays").await == Some(n) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// High finding: a replay went on after its token was revoked, and an abandoned slow replay
/// stayed in memory. Now revoking the token (or the role) ends it at once, whatever pause it
/// is in, with an `end` that says why; a client that goes ends its task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_ends_when_its_token_is_revoked_or_its_client_goes() {
    let (_dir, server, clock, tokens) = roster::on_manual_clock(|_| {}).await;
    // A minute later the phase changes: at speed 1 the replay then pauses (ten seconds at
    // most) before that entry.
    clock.advance_ms(60_000);
    roster::set_phase(&server, toron_domain::policy::Phase::Live).await;
    let observer = token_of(&tokens, Role::Observer);
    let path = format!("/api/v1/sessions/{}/replay?speed=1", roster::SESSION);

    // The client goes: its task ends.
    let mut tcp = open_stream(&server, &observer, &path).await;
    let mut seen = String::new();
    read_until(&mut tcp, &mut seen, "event: entry", LIMIT)
        .await
        .expect("the replay starts");
    assert!(replays_become(&server, 1.0).await, "one replay runs");
    drop(tcp);
    assert!(
        replays_become(&server, 0.0).await,
        "the replay of a client that went is gone"
    );

    // The token is revoked during the pause: the replay ends at once, saying so.
    let mut tcp = open_stream(&server, &observer, &path).await;
    let mut seen = String::new();
    read_until(&mut tcp, &mut seen, "event: entry", LIMIT)
        .await
        .expect("the replay starts");
    assert!(
        !seen.contains(r#""to":"live""#),
        "still before the pause: {seen}"
    );
    let revoked_at = std::time::Instant::now();
    server
        .registry()
        .revoke_token("admin", &roster::who(Role::Observer))
        .await
        .expect("revoke");
    server
        .hub()
        .disconnect_participant(&roster::who(Role::Observer), "revoked");
    read_until(
        &mut tcp,
        &mut seen,
        "\"revoked\":true",
        std::time::Duration::from_secs(3),
    )
    .await
    .unwrap_or_else(|| panic!("the replay ended on revocation: {seen}"));
    assert!(revoked_at.elapsed() < std::time::Duration::from_secs(3));
    assert!(
        !seen.contains(r#""to":"live""#),
        "nothing after the revocation: {seen}"
    );
    assert!(replays_become(&server, 0.0).await);
}

/// High finding: a client that never reads was not dropped by the ping timeout — the writer
/// sat in a blocked write, so no ping was sent and no deadline passed, and the connection and
/// its queue stayed. Now every write has a deadline (a ping interval and one more per MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_let_go() {
    use automerge::transaction::Transactable;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::config(dir.path())).await;
    let url = server.url();
    // A document larger than the kernel's socket buffers (varied text: automerge compresses),
    // written in three changes.
    let mut x: u32 = 7;
    let blobs: Vec<String> = (0..3)
        .map(|_| {
            (0..900_000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    char::from_u32(0xAC00 + (x >> 8) % 11_172).unwrap_or('가')
                })
                .collect()
        })
        .collect();
    let mut writer = Connection::connect(&url, LIMIT).await.expect("writer");
    let mut d = toron_cli::sync_client::DocSync::new(
        toron_protocol::DocumentId::random(),
        automerge::AutoCommit::new(),
    );
    for (part, blob) in blobs.into_iter().enumerate() {
        d.doc
            .put(automerge::ROOT, format!("blob{part}"), blob)
            .expect("put");
        d.doc.commit();
        writer.push(&mut d, LIMIT).await.expect("stored");
    }
    let size: usize = d.doc.save().len();
    assert!(size > 5 << 20, "the document is {size} bytes");
    writer.close().await;
    server.shutdown().await.expect("shutdown");
    // The same data, served with pings every second.
    let mut c = toron_tests::config(dir.path());
    c.ping_interval = std::time::Duration::from_secs(1);
    let server = start_with(c).await;
    let url = server.url();
    // A reader loads it first, so that the silent peer's answer is written at once (and the
    // ping timeout alone would not have ended it).
    let mut reader = RawPeer::joined(&url, "reader").await.expect("reader");
    reader
        .send(&request(&server, "reader", d.id))
        .await
        .expect("request");
    assert!(
        matches!(reader.recv(LIMIT).await, Ok(Some(Message::Sync { .. }))),
        "the reader gets the document"
    );

    // It asks for the document, then never reads.
    let mut silent = RawPeer::connect_small_buffer(&url).await.expect("connect");
    silent
        .send(&Message::Join {
            sender_id: toron_tests::peer("silent"),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
            peer_metadata: None,
        })
        .await
        .expect("join");
    silent
        .send(&request(&server, "silent", d.id))
        .await
        .expect("request");
    drop(reader);
    let connections = || server.hub().stats.connections.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(connections(), 0, "the silent peer was let go");
    drop(silent);
}

/// The first sync message of a peer that has nothing yet.
/// `peer`'s first `request` for document `id`, as a client that has nothing sends it.
fn request(server: &toron_server::Running, peer: &str, id: toron_protocol::DocumentId) -> Message {
    Message::sync_of_kind(
        toron_protocol::SyncKind::Request,
        toron_tests::peer(peer),
        server.hub().server_peer().clone(),
        id,
        first_sync_message(),
    )
}

fn first_sync_message() -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    automerge::sync::SyncDoc::generate_sync_message(
        automerge::AutoCommit::new().document(),
        &mut state,
    )
    .expect("a first message")
    .encode()
}

/// High finding: a tiny `request` repeated on one connection made the server send the whole
/// document each time. Now a connection may ask for it again only a couple of times after it
/// was sent; then it is closed with a clear error (a new connection loads it as usual), and
/// the document's other readers see nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_do_not_resend_the_document_without_end() {
    use automerge::transaction::Transactable;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::config(dir.path())).await;
    let url = server.url();
    let mut writer = Connection::connect(&url, LIMIT).await.expect("writer");
    let mut d = toron_tests::create(&mut writer, "n", 0).await;
    // About 200 KB of varied text.
    let mut x: u32 = 11;
    let text: String = (0..70_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from_u32(0xAC00 + (x >> 8) % 11_172).unwrap_or('가')
        })
        .collect();
    d.doc.put(automerge::ROOT, "text", text).expect("put");
    d.doc.commit();
    writer.push(&mut d, LIMIT).await.expect("stored");

    let mut asker = RawPeer::joined(&url, "asker").await.expect("asker");
    let mut received = 0usize;
    let mut answers = 0usize;
    let ending = loop {
        if answers > 20 {
            break None;
        }
        asker
            .send(&request(&server, "asker", d.id))
            .await
            .expect("request");
        match asker.recv(LIMIT).await {
            Ok(Some(Message::Sync { data, .. })) => {
                received += data.len();
                answers += 1;
            }
            Ok(Some(Message::Error { message, .. })) => break Some(message),
            other => panic!("unexpected: {other:?}"),
        }
    };
    let message = ending.expect("the connection was closed with an error");
    assert!(message.contains("whole document"), "{message}");
    let size = d.doc.save().len();
    assert_eq!(answers, 3, "the first answer and two more");
    assert!(
        received < 4 * size,
        "{received} bytes sent for a {size}-byte document"
    );
    // The writer goes on as before.
    d.doc.put(automerge::ROOT, "n", 1).expect("put");
    d.doc.commit();
    writer.push(&mut d, LIMIT).await.expect("still served");
}

/// High finding: every message naming an invalid document id was logged whole (28 MiB of
/// log in 2 s). Now each is clipped, only the first few per connection are logged, and a
/// connection that keeps sending them is closed. Checked on the server binary's own log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_document_ids_cannot_fill_the_log() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = toron_tests::spawn_server(
        env!("CARGO_BIN_EXE_e2e-toron-server"),
        dir.path(),
        &["--open"],
        "info",
        std::process::Stdio::piped(),
    )
    .await;
    let mut stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all).await;
        all
    });

    let mut p = RawPeer::joined(&url, "noisy").await.expect("join");
    // 64 KiB ids with a line break in them, 500 times (32 MiB in all, if logged whole).
    let bad_id = format!(
        "{}\nforged line{}",
        "x".repeat(32 * 1024),
        "y".repeat(32 * 1024)
    );
    let mut ended = None;
    for i in 0..500 {
        let mut frame = Vec::new();
        let mut e = minicbor::Encoder::new(&mut frame);
        e.map(5).expect("cbor");
        e.str("type").and_then(|e| e.str("request")).expect("cbor");
        e.str("senderId")
            .and_then(|e| e.str("noisy"))
            .expect("cbor");
        e.str("targetId")
            .and_then(|e| e.str("server"))
            .expect("cbor");
        e.str("documentId")
            .and_then(|e| e.str(&bad_id))
            .expect("cbor");
        e.str("data").and_then(|e| e.bytes(&[])).expect("cbor");
        if p.send_bytes(frame).await.is_err() {
            ended = Some(i);
            break;
        }
    }
    let ending = p.ending(LIMIT).await.expect("closed");
    assert!(
        matches!(&ending, Ending::Error(m) if m.contains("invalid document ids")),
        "{ending:?} (sending stopped at {ended:?})"
    );
    // The server still serves others.
    let mut other = Connection::connect(&url, LIMIT).await.expect("connect");
    toron_tests::create(&mut other, "fine", 1).await;
    drop(other);
    drop(child);
    let log = String::from_utf8_lossy(
        &tokio::time::timeout(LIMIT, log)
            .await
            .expect("log")
            .expect("task"),
    )
    .to_string();
    let about: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ignoring a message with an invalid document id"))
        .collect();
    assert!(about.len() <= 3, "{} lines about invalid ids", about.len());
    assert!(log.len() < 64 * 1024, "the log holds {} bytes", log.len());
    assert!(!log.lines().any(|l| l.starts_with("forged line")), "{log}");
}

/// Whether the server closes `tcp` within `wait` (reads until end of stream or an error).
async fn closed_within(tcp: &mut tokio::net::TcpStream, wait: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Medium finding: no HTTP header or idle timeout — a client trickling header bytes, or
/// opening sockets and sending nothing, held them until the file descriptors ran out. Now
/// headers must arrive within the HTTP timeout (which is also the idle time allowed between
/// requests), a body within three times it, and sockets that are not WebSockets are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_clients_are_let_go() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = secure_config(dir.path());
    c.http_timeout = Duration::from_millis(500);
    c.max_http_connections = 8;
    let server = start_with(c).await;
    let tokens = roster::set_up(&server).await;
    let organizer = token_of(&tokens, Role::Organizer);
    let addr = server.addr();
    let connect = || tokio::net::TcpStream::connect(addr);

    // Headers trickled a byte every 200 ms: cut off.
    let mut slow = connect().await.expect("connect");
    let trickle = async {
        slow.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
        for _ in 0..20 {
            slow.write_all(b"X").await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok::<_, std::io::Error>(())
    };
    let started = std::time::Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(1)).await,
        "a trickle of headers is cut off"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // A kept-alive connection left idle after its answer: closed.
    let mut idle = connect().await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "an idle kept-alive connection is closed"
    );

    // A body trickled by an authenticated client: refused once its deadline passes.
    let mut body = connect().await.expect("connect");
    body.write_all(
        format!(
            "POST /api/v1/participants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {organizer}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let trickle = async {
        for _ in 0..40 {
            body.write_all(b" ").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, std::io::Error>(())
    };
    let started = std::time::Instant::now();
    let _ = trickle.await;
    assert!(
        closed_within(&mut body, Duration::from_secs(2)).await,
        "a trickled body is refused"
    );
    assert!(started.elapsed() < Duration::from_secs(7));

    // Eight silent sockets fill the cap: the ninth takes the place of the one silent longest
    // (closed at once), and is answered (issue 29: idle sockets give way to requests); the
    // others are let go at their deadline.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(connect().await.expect("connect"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ninth = connect().await.expect("connect");
    assert!(
        closed_within(&mut silent[0], Duration::from_millis(300)).await,
        "the longest idle gave way at once"
    );
    ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read_to_string(&mut ninth, &mut answer),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the ninth is answered: {answer}"
    );
    for s in &mut silent[1..] {
        assert!(closed_within(s, Duration::from_secs(3)).await);
    }
    let answer = toron_tests::http_get(addr, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// `method path` with `token` through the CLI's API client: `Ok(json)` or `Err("STATUS message")`.
async fn call(
    server: &toron_server::Running,
    token: &str,
    method: &'static str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let admin = toron_cli::admin::Admin::new(&server.url(), Some(token.to_string()), LIMIT);
    let path = path.to_string();
    tokio::task::spawn_blocking(move || admin.call(method, &path, body))
        .await
        .expect("task")
        .map_err(|e| e.to_string())
}

fn status_of(r: &Result<serde_json::Value, String>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    }
}

/// Medium finding: an organizer of one series could grant itself every series and re-issue
/// the bootstrap admin's token, and any organizer could mint a never-expiring importer token
/// that writes anyone's notes. Now an organizer acts within the series they organize, the
/// tokens of people who take part elsewhere are out of their reach, and importer tokens
/// belong to one series, expire, and end when the import is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizers_act_within_their_series_and_importer_tokens_end() {
    use serde_json::json;
    let admin_token = "toron_admin_token_of_the_red_team_test_0123";
    let (_dir, server, clock, tokens) =
        roster::on_manual_clock(|c| c.admin_token = Some(admin_token.into())).await;
    // Another series, with a session of its own.
    server
        .registry()
        .put_session(
            "admin",
            toron_server::registry::Session {
                key: "X1".into(),
                series: "OTHER".into(),
                title: "다른 시리즈".into(),
                phase: Phase::Scheduled,
                facilitator: None,
                item: None,
            },
        )
        .await
        .expect("session");
    let org = token_of(&tokens, Role::Organizer);
    let me = roster::who(Role::Organizer);
    let refused = [
        (
            "POST",
            "/api/v1/roles".to_string(),
            Some(json!({ "participant": me, "role": "organizer", "series": "OTHER" })),
        ),
        (
            "POST",
            "/api/v1/roles".to_string(),
            Some(json!({ "participant": me, "role": "organizer", "series": "*" })),
        ),
        (
            "POST",
            "/api/v1/roles".to_string(),
            Some(json!({ "participant": me, "role": "facilitator", "session": "X1" })),
        ),
        ("POST", "/api/v1/participants/admin/token".to_string(), None),
        (
            "DELETE",
            "/api/v1/participants/admin/token".to_string(),
            None,
        ),
        (
            "PUT",
            "/api/v1/sessions/X1/phase".to_string(),
            Some(json!({ "phase": "live" })),
        ),
        (
            "POST",
            "/api/v1/sessions".to_string(),
            Some(json!({ "key": "X1", "series": roster::SERIES })),
        ),
        (
            "POST",
            "/api/v1/cases".to_string(),
            Some(json!({ "key": "CX", "session": "X1" })),
        ),
        ("GET", "/api/v1/reports/OTHER".to_string(), None),
        ("GET", "/api/v1/export/X1".to_string(), None),
    ];
    for (method, path, body) in refused {
        let r = call(&server, &org, method, &path, body.clone()).await;
        assert_eq!(status_of(&r), 403, "{method} {path} {body:?}: {r:?}");
    }
    // Participants see the sessions they take part in, not the other series'.
    let listed = call(
        &server,
        &token_of(&tokens, Role::Observer),
        "GET",
        "/api/v1/sessions",
        None,
    )
    .await
    .expect("sessions");
    let keys: Vec<&str> = toron_tests::items(&listed)
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(keys, [roster::SESSION], "{listed}");
    // The bootstrap admin keeps its token and its reach.
    assert_eq!(
        server.registry().authenticate(admin_token).as_deref(),
        Some("admin")
    );
    // Within its own series the organizer works as before.
    let activist = roster::who(Role::Activist);
    let ok = [
        (
            "POST",
            "/api/v1/roles".to_string(),
            Some(json!({ "participant": activist, "role": "scribe", "session": roster::SESSION })),
        ),
        (
            "POST",
            format!("/api/v1/participants/{activist}/token"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/sessions/{}/phase", roster::SESSION),
            Some(json!({ "phase": "live" })),
        ),
        (
            "POST",
            "/api/v1/cases".to_string(),
            Some(json!({ "key": "C9", "session": roster::SESSION })),
        ),
    ];
    for (method, path, body) in ok {
        let r = call(&server, &org, method, &path, body.clone()).await;
        assert!(r.is_ok(), "{method} {path} {body:?}: {r:?}");
    }
    // A grant for a session nobody created is refused, not stored.
    let r = call(
        &server,
        &org,
        "POST",
        "/api/v1/roles",
        Some(json!({ "participant": activist, "role": "activist", "session": "S-NOPE" })),
    )
    .await;
    assert_eq!(status_of(&r), 404, "{r:?}");

    // Importing another series' bundle: refused for this organizer.
    let bundle = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/debate-bundle.json"
    ))
    .expect("the example bundle");
    let post = |token: String, path: &'static str, body: Vec<u8>| {
        let admin = toron_cli::admin::Admin::new(&server.url(), Some(token), LIMIT);
        tokio::task::spawn_blocking(move || admin.post_bytes(path, body).map_err(|e| e.to_string()))
    };
    let r = post(org.clone(), "/api/v1/import", bundle.clone())
        .await
        .expect("task");
    assert_eq!(status_of(&r), 403, "{r:?}");
    // The admin imports it: the importer token is for that series only, and expires.
    let answer = post(admin_token.into(), "/api/v1/import", bundle.clone())
        .await
        .expect("task")
        .expect("imported");
    let importer = answer["importer"]["participant"]
        .as_str()
        .expect("importer")
        .to_string();
    let importer_token = answer["importer"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(
        importer.starts_with("toron-importer.") && importer != "toron-importer",
        "{importer}"
    );
    assert_eq!(
        server.registry().authenticate(&importer_token).as_deref(),
        Some(importer.as_str())
    );
    assert_eq!(
        server.registry().organizes(&importer),
        toron_server::registry::Organizes::Series([answer_series(&bundle)].into())
    );
    clock.advance_ms(2 * 3600 * 1000 + 1);
    assert_eq!(
        server.registry().authenticate(&importer_token),
        None,
        "expired"
    );
    // A new import's token ends when the import is applied.
    let answer = post(admin_token.into(), "/api/v1/import", bundle.clone())
        .await
        .expect("task")
        .expect("imported");
    let importer_token = answer["importer"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let batch = answer["batch"].as_str().expect("batch").to_string();
    assert!(server.registry().authenticate(&importer_token).is_some());
    let r = call(
        &server,
        admin_token,
        "POST",
        &format!("/api/v1/import/{batch}/applied"),
        Some(json!({ "sessions": {} })),
    )
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        server.registry().authenticate(&importer_token),
        None,
        "ended by `applied`"
    );
}

/// The series key of a bundle.
fn answer_series(bundle: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bundle).expect("json");
    v["series"]["key"].as_str().expect("series key").to_string()
}

/// Medium finding: tokens were accepted in `?token=` on every HTTP route, so they ended up in
/// proxy logs, browser history and `Referer` headers. Now only the WebSocket takes one in its
/// URL; an HTTP route answers 401 and says where the token goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_urls_are_taken_on_the_websocket_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    let org = token_of(&tokens, Role::Organizer);
    for path in [
        format!("/api/v1/whoami?token={org}"),
        format!("/api/v1/sessions/{}/timeline?token={org}", roster::SESSION),
        format!("/api/v1/me/sessions?token={org}"),
    ] {
        let answer = toron_tests::http_get(server.addr(), &path).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
        assert!(answer.contains("Authorization: Bearer"), "{answer}");
    }
    // The same token in the header works, and so does the WebSocket with it in its URL.
    let status = get_status(&server, &org, "/api/v1/whoami").await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 200 ")),
        "{status:?}"
    );
    let mut conn = roster::connect(&server, &org)
        .await
        .expect("websocket with ?token=");
    conn.find(
        roster::Kind::SessionDoc.key(Role::Organizer).document_id(),
        LIMIT,
    )
    .await
    .expect("served");
}

/// Low finding: the data directory and backups were readable by every user of the host. Now
/// the directory is its owner's only (also one made earlier, open to others), and so is a
/// backup file.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_backups_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = start_with(secure_config(&data)).await;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("admin-token")), 0o600, "the admin token");
    server.shutdown().await.expect("shutdown");
    let out = dir.path().join("backup.toron");
    let (ok, said) = toron_tests::server_command(
        env!("CARGO_BIN_EXE_e2e-toron-server"),
        &data,
        &["backup".as_ref(), out.as_os_str()],
    )
    .await;
    assert!(ok, "{said}");
    assert_eq!(mode(&out), 0o600, "the backup");
    let fresh = dir.path().join("fresh");
    let (ok, said) = toron_tests::server_command(
        env!("CARGO_BIN_EXE_e2e-toron-server"),
        &fresh,
        &["restore".as_ref(), out.as_os_str()],
    )
    .await;
    assert!(ok, "{said}");
    assert_eq!(mode(&fresh), 0o700, "a restored directory");
}

/// Low finding: no anti-framing or content-security headers. Now the page says what it may
/// load and that no other site may frame it, and every answer forbids sniffing, framing and
/// sending our URLs on in a `Referer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let page = toron_tests::http_get(server.addr(), "/").await;
    let script = page
        .split('"')
        .find(|s| s.starts_with("/assets/app."))
        .unwrap_or("/assets/app.js")
        .to_string();
    for path in ["/", "/healthz", "/api/v1/whoami", &script] {
        let answer = toron_tests::http_get(server.addr(), path)
            .await
            .to_lowercase();
        for needed in [
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "frame-ancestors 'none'",
        ] {
            assert!(answer.contains(needed), "{path} lacks {needed}");
        }
    }
    let page = toron_tests::http_get(server.addr(), "/").await;
    assert!(
        page.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{page}"
    );
}

/// Low finding: ids of keyed documents follow from their keys, so an organizer could create a
/// document ad hoc under the id someone's notes or evaluation would get, and a later
/// registration took that content for theirs. Key-shaped ids are now reserved: such a
/// document cannot be created before it is registered; a random id still can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_documents_id_cannot_be_taken_before_it_is_registered() {
    use automerge::transaction::Transactable;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    let org = token_of(&tokens, Role::Organizer);
    let future = toron_domain::policy::DocKey::Notes {
        session: roster::SESSION.into(),
        participant: "P-walk-in".into(),
    };
    let mut conn = roster::connect(&server, &org).await.expect("connect");
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "planted", "내가 하지 않은 말")
        .expect("put");
    let mut d = toron_cli::sync_client::DocSync::new(future.document_id(), doc);
    let r = conn.push(&mut d, LIMIT).await;
    assert!(
        matches!(r, Err(toron_cli::sync_client::ClientError::Unavailable(_))),
        "{r:?}"
    );
    assert!(server.registry().document(&future.document_id()).is_none());
    // The same organizer creates a document under a random id as before.
    let mut conn = roster::connect(&server, &org).await.expect("connect");
    toron_tests::create(&mut conn, "ad_hoc", 1).await;
    // Registered later, the notes start empty.
    server
        .registry()
        .register("admin", &future, roster::SERIES)
        .await
        .expect("register");
    let served = roster::try_read(&server, &org, future.document_id()).await;
    assert!(
        served.is_none(),
        "nothing was planted: {:?}",
        served.map(|mut d| d.doc.get_heads())
    );
}

/// Found while testing the fixes: an ephemeral message's `sessionId` had no bound, and the
/// server keeps one per sender and session (4,096 a document) to drop repeats — megabytes
/// each. Now a `sessionId` over 256 bytes closes only its sender's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_session_ids_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(toron_tests::config(dir.path())).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let a = toron_tests::create(&mut alice, "v", 1).await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut b = bob.find(a.id, LIMIT).await.expect("bob finds");
    let mut noisy = RawPeer::joined(&url, "noisy").await.expect("noisy");
    let ephemeral = |session_id: String| Message::Ephemeral {
        sender_id: toron_tests::peer("noisy"),
        target_id: toron_tests::peer("server"),
        document_id: a.id,
        count: 1,
        session_id,
        data: vec![0xa0],
    };
    // Within the bound it is relayed as before (the sender must have the document open).
    noisy
        .send(&request(&server, "noisy", a.id))
        .await
        .expect("request");
    assert!(matches!(
        noisy.recv(LIMIT).await,
        Ok(Some(Message::Sync { .. }))
    ));
    noisy.send(&ephemeral("s".repeat(256))).await.expect("send");
    let got = ephemera_within(&mut bob, &mut b, std::time::Duration::from_millis(600)).await;
    assert_eq!(got.len(), 1, "relayed: {got:?}");
    noisy
        .send(&ephemeral("s".repeat(100_000)))
        .await
        .expect("send");
    match noisy.ending(LIMIT).await.expect("closed") {
        Ending::Error(e) => assert!(e.contains("sessionId"), "{e}"),
        Ending::Closed => panic!("closed without saying why"),
    }
    // Bob goes on.
    automerge::transaction::Transactable::put(&mut b.doc, automerge::ROOT, "after", 1)
        .expect("put");
    b.doc.commit();
    bob.push(&mut b, LIMIT).await.expect("bob still works");
}

/// The shared importer of earlier versions (one principal for every series, its token never
/// expiring) loses its token when the server starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_importer_of_earlier_versions_loses_its_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(secure_config(dir.path())).await;
    let reg = server.registry();
    toron_tests::add_participant(&server, "toron-importer", "Toron import", "service").await;
    let old = reg
        .issue_token("admin", "toron-importer")
        .await
        .expect("token");
    assert!(reg.authenticate(&old).is_some());
    server.shutdown().await.expect("shutdown");
    let server = start_with(secure_config(dir.path())).await;
    assert_eq!(server.registry().authenticate(&old), None);
}
