//! The second red-team pass (issue 29): one test per finding, each over the real server, real
//! sockets, the real `toron` binary and the example series (or the permission tests' roster).
//! The official JavaScript client's cases (peer ids after a drop, the hall's attribution) are
//! in `tests/node/interop.mjs` and `web/tests/e2e.mjs`; the cluster's in `cluster_nodes.rs`.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_domain::policy::{DocKey, Role, Scope};
use toron_protocol::json::put_json;
use toron_protocol::{Message, PeerId, PROTOCOL_VERSION};
use toron_server::Running;
use toron_tests::{roster, secured, secured_with, token_of, toron_line, Ending, RawPeer, LIMIT};

const ADMIN: &str = "toron_admin_for_the_second_red_team_test";
const SERIES: &str = "HB-BENCH-2012";

async fn toron(server: &Running, args: &[&str]) -> (bool, String, String) {
    toron_tests::toron(server, ADMIN, args).await
}

async fn import_example(server: &Running) {
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let (ok, _, err) = toron(server, &["import", bundle.to_str().expect("path")]).await;
    assert!(ok, "import: {err}");
}

/// A server with the example series imported and `S-LIB` live again.
async fn series_live() -> (tempfile::TempDir, Running) {
    let (dir, server) = secured(ADMIN).await;
    import_example(&server).await;
    toron_tests::set_phase(&server, "S-LIB", "live").await;
    (dir, server)
}

async fn open(server: &Running, token: &str, key: &DocKey) -> (Connection, DocSync) {
    let mut conn = Connection::connect(&url_with_token(&server.url(), Some(token)), LIMIT)
        .await
        .expect("connect");
    let d = conn.find(key.document_id(), LIMIT).await.expect("find");
    (conn, d)
}

fn notes(session: &str, participant: &str) -> DocKey {
    DocKey::Notes {
        session: session.into(),
        participant: participant.into(),
    }
}

/// Writes annotation `id` (the JSON object `fields`) into a notes layer as the JavaScript
/// client does (strings as collaborative text).
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

async fn report_md(server: &Running) -> String {
    let (ok, md, err) = toron(server, &["report", SERIES, "--format", "md"]).await;
    assert!(ok, "report: {err}");
    md
}

fn annotations_of(bundle: &Value) -> Vec<&Value> {
    bundle["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["annotations"].as_array().into_iter().flatten())
        .collect()
}

async fn metric(server: &Running, name: &str) -> f64 {
    let text = toron_tests::http_get(server.addr(), "/metrics").await;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn raw_joined(url: &str, peer: &str) -> RawPeer {
    RawPeer::joined(url, peer).await.expect("joined")
}

/// Asks for a document on a raw connection and waits for the server's answer.
async fn subscribe(p: &mut RawPeer, peer: &str, doc: toron_protocol::DocumentId) {
    let mut state = automerge::sync::State::new();
    let data = automerge::sync::SyncDoc::generate_sync_message(
        automerge::AutoCommit::new().document(),
        &mut state,
    )
    .map(|m| m.encode())
    .unwrap_or_default();
    p.send(&Message::Request {
        sender_id: PeerId::new(peer).expect("peer"),
        target_id: PeerId::new("server").expect("peer"),
        document_id: doc,
        data,
    })
    .await
    .expect("request");
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if let Some(Message::Sync { .. }) = p.recv(LIMIT).await.expect("answer") {
            return;
        }
    }
    panic!("no answer to the request");
}

fn ephemeral(peer: &str, doc: toron_protocol::DocumentId, count: u64, bytes: usize) -> Message {
    Message::Ephemeral {
        sender_id: PeerId::new(peer).expect("peer"),
        target_id: PeerId::new("server").expect("peer"),
        document_id: doc,
        count,
        session_id: format!("session-of-{peer}"),
        data: vec![0x61; bytes],
    }
}

/// High finding: an observer's ephemeral messages (3.5 MiB each, no rate) took the server to
/// gigabytes. Now an ephemeral message has its own small bound (a larger one closes its
/// sender), each token a rate of ephemeral bytes (more are dropped, counted in /metrics), and
/// what reaches the subscribers is what that rate allows. (Before: the 3.5 MiB message was
/// relayed to every subscriber, and so was every byte of the flood.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_messages_are_small_and_rated_per_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = toron_tests::start_with(toron_tests::secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    roster::set_phase(&server, toron_domain::policy::Phase::Live).await;
    let case = roster::Kind::Case.key(Role::Observer).document_id();
    let url = |role| url_with_token(&server.url(), Some(&roster::token(&tokens, role)));
    // Three people hold the case open.
    let mut listeners = Vec::new();
    for (role, peer) in [
        (Role::Activist, "listener-a"),
        (Role::Evaluator, "listener-e"),
        (Role::Facilitator, "listener-f"),
    ] {
        let mut p = raw_joined(&url(role), peer).await;
        subscribe(&mut p, peer, case).await;
        listeners.push(p);
    }
    // One message of 3.5 MiB closes its sender, and reaches nobody.
    let mut big = raw_joined(&url(Role::Observer), "observer-big").await;
    subscribe(&mut big, "observer-big", case).await;
    big.send(&ephemeral("observer-big", case, 1, 3_500_000))
        .await
        .expect("send");
    match big.ending(LIMIT).await.expect("closed") {
        Ending::Error(e) => assert!(e.contains("ephemeral") && e.contains("limit"), "{e}"),
        Ending::Closed => panic!("closed without saying why"),
    }
    // A flood of the largest allowed messages: 400 × 16 KiB = 6.4 MiB in a moment.
    let mut flood = raw_joined(&url(Role::Observer), "observer-flood").await;
    subscribe(&mut flood, "observer-flood", case).await;
    let started = Instant::now();
    for i in 0..400u64 {
        flood
            .send(&ephemeral("observer-flood", case, 10 + i, 16 * 1024))
            .await
            .expect("send");
    }
    // What one listener hears of it within three seconds.
    let mut heard = 0usize;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match listeners[0].recv(Duration::from_millis(200)).await {
            Ok(Some(Message::Ephemeral { data, .. })) => heard += data.len(),
            Ok(_) => {}
            Err(e) => panic!("the listener was cut off: {e}"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // The default allowance: 32 KiB a second, bursts of four seconds' worth.
    let allowed = (4.0 + seconds) * 32.0 * 1024.0;
    assert!(
        heard > 0 && (heard as f64) <= allowed,
        "a listener heard {heard} bytes of a 6.4 MiB flood in {seconds:.1} s (allowed {allowed:.0})"
    );
    assert!(
        metric(&server, "toron_ephemeral_dropped_total").await >= 300.0,
        "the dropped messages are counted"
    );
    // The listeners are still connected, and so is the flooder (dropping is not closing).
    for l in &mut listeners {
        assert!(l.recv(Duration::from_millis(100)).await.is_ok());
    }
    server.shutdown().await.expect("shutdown");
}

/// High finding: a sync message may carry a compressed change (or a saved document), which
/// was inflated before any bound applied: 63 KiB on the wire stored 60 MiB of text in an
/// activist's layer. Now the changes of one message are measured as they inflate, and a
/// message whose changes would take more than the message bound once inflated is refused
/// before anything inflates them (the connection is closed saying so; nothing is stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_change_cannot_inflate_past_the_message_bound() {
    let (_dir, server) = series_live().await;
    let kim = token_of(&server, "P-KIM").await;
    let (mut conn, mut layer) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    let before = layer.heads();
    // 32 MiB of one letter: one operation, a few dozen kilobytes compressed.
    layer
        .doc
        .put(ROOT, "bomb", "a".repeat(32 << 20))
        .expect("put");
    layer.doc.commit();
    let mut change = layer
        .doc
        .get_changes(&before)
        .into_iter()
        .next()
        .expect("the change")
        .clone();
    let compressed = change.bytes().to_vec();
    assert!(
        compressed.len() < 200_000,
        "compressed: {} bytes",
        compressed.len()
    );
    let message = automerge::sync::Message {
        heads: layer.doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![compressed].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    conn.send(&Message::Sync {
        sender_id: conn.peer_id.clone(),
        target_id: PeerId::new("server").expect("peer"),
        document_id: layer.id,
        data: message.encode(),
    })
    .await
    .expect("send");
    let mut told = None;
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline && told.is_none() {
        match tokio::time::timeout(LIMIT, conn.recv()).await {
            Ok(Err(toron_cli::sync_client::ClientError::Server(message))) => told = Some(message),
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let told = told.expect("the server said why");
    assert!(told.contains("inflated"), "{told}");
    // Nothing of it was stored.
    let (_c, fresh) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    assert!(fresh.doc.get(ROOT, "bomb").expect("get").is_none());
    server.shutdown().await.expect("shutdown");
}

/// High finding: 17.5 MiB of annotation text made the organizer's PDF take half a minute and
/// gigabytes. Now every text a participant writes is bounded by the schema (5,000 characters:
/// a longer note is refused, told as too large), the report prints long texts cut with the
/// link to the whole, and (next test) the typesetting runs in a child with limits. (Before:
/// a 20,000-character note was stored and printed whole.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_texts_are_bounded_and_the_report_prints_them_cut() {
    let (_dir, server) = series_live().await;
    let kim = token_of(&server, "P-KIM").await;
    let (mut conn, mut layer) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    let long: String = "긴 의견입니다".repeat(1_000).chars().take(5_000).collect();
    assert_eq!(long.chars().count(), 5_000);
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000101",
        json!({ "session": "S-LIB", "kind": "comment", "body": long }),
    );
    conn.push(&mut layer, LIMIT)
        .await
        .expect("5,000 characters");
    let too_long = format!("{long}!");
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000102",
        json!({ "session": "S-LIB", "kind": "comment", "body": too_long }),
    );
    let refused = conn.push(&mut layer, LIMIT).await;
    assert!(refused.is_err(), "a 5,001-character note was taken");
    conn.close().await;
    // Editing a note past the bound is refused too (typing into the text it has).
    let (mut conn, mut layer) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    let anns = layer
        .doc
        .get(ROOT, "annotations")
        .expect("get")
        .expect("anns")
        .1;
    let a = layer
        .doc
        .get(&anns, "f0e1d2c3-0000-4000-8000-000000000101")
        .expect("get")
        .expect("the note")
        .1;
    let body = layer.doc.get(&a, "body").expect("get").expect("body").1;
    layer
        .doc
        .splice_text(&body, 5_000, 0, "더")
        .expect("splice");
    layer.doc.commit();
    assert!(
        conn.push(&mut layer, LIMIT).await.is_err(),
        "grown past the bound"
    );
    conn.close().await;

    let md = report_md(&server).await;
    let row = md
        .lines()
        .find(|l| l.contains("긴 의견입니다긴 의견입니다"))
        .expect("the note is in the appendix");
    assert!(
        row.contains("이하 생략: 전체 5000자"),
        "cut, saying so: {}",
        &row[..row.len().min(400)]
    );
    assert!(row.chars().count() < 2_000, "printed cut");
    server.shutdown().await.expect("shutdown");
}

/// The PDF is typeset in a child process with a memory limit, one at a time: a report that
/// needs more than the limit is answered 503 saying which limit, and the server is unharmed.
/// (Before: the flag did not exist and typesetting ran in the server's own process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_are_typeset_in_a_child_within_limits() {
    let bin = env!("CARGO_BIN_EXE_e2e-toron-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = toron_tests::spawn_server(
        bin,
        dir.path(),
        &["--admin-token", ADMIN, "--max-render-mib", "64"],
        "warn",
        std::process::Stdio::null(),
    )
    .await;
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let out = toron_tests::toron_output(
        &["--server", &url, "--token", ADMIN],
        &["import", bundle.to_str().expect("path")],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = url.replacen("ws://", "http://", 1);
    let get = |format: &'static str| {
        let http = http.clone();
        tokio::task::spawn_blocking(move || {
            ureq::get(&format!("{http}/api/v1/reports/{SERIES}?format={format}"))
                .header("Authorization", &format!("Bearer {ADMIN}"))
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .map(|mut r| {
                    (
                        r.status().as_u16(),
                        r.body_mut().read_to_vec().unwrap_or_default(),
                    )
                })
        })
    };
    let (status, body) = get("pdf").await.expect("join").expect("answer");
    let said = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 503, "{said}");
    assert!(said.contains("메모리 한도"), "{said}");
    // The server goes on: the Markdown report is made in process as before.
    let (status, body) = get("md").await.expect("join").expect("answer");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("결과보고서"));
    let _ = child.kill().await;
}

/// High finding: 1,024 open replays of one observer took every HTTP slot; no page, API call
/// or WebSocket handshake got through. Now a token holds at most four replays at once (more
/// are answered 429 at once), replays are counted apart from the sockets requests need, and
/// everybody else's requests and handshakes go on. (Before: with the pool full of replays,
/// every other request failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_take_their_own_slots_not_those_of_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = toron_tests::secure_config(dir.path());
    config.max_http_connections = 16;
    let server = toron_tests::start_with(config).await;
    let tokens = roster::set_up(&server).await;
    let observer = roster::token(&tokens, Role::Observer);
    let addr = server.addr();
    // Sixteen slow replays, each its own socket, opened and held.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET /api/v1/sessions/{}/replay?speed=0.1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {observer}\r\n\r\n",
            roster::SESSION
        );
        tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
            .await
            .expect("write");
        let mut head = [0u8; 12];
        let n = tokio::time::timeout(LIMIT, tokio::io::AsyncReadExt::read(&mut s, &mut head))
            .await
            .expect("an answer")
            .expect("read");
        let status = String::from_utf8_lossy(&head[..n]).to_string();
        if status.contains("429") {
            refused += 1;
        }
        held.push(s);
    }
    assert_eq!(
        refused, 12,
        "four replays per token, the rest refused at once"
    );
    // Everybody else: thirty API requests and a WebSocket, all answered.
    let organizer = roster::token(&tokens, Role::Organizer);
    for i in 0..30 {
        let ok = tokio::time::timeout(
            LIMIT,
            toron_tests::http_get_with_token(addr, "/api/v1/whoami", &organizer),
        )
        .await
        .unwrap_or_default();
        assert!(
            ok.contains("200"),
            "request {i} failed while replays ran: {ok}"
        );
    }
    Connection::connect(&url_with_token(&server.url(), Some(&organizer)), LIMIT)
        .await
        .expect("a WebSocket handshake gets through");
    drop(held);
    server.shutdown().await.expect("shutdown");
}

/// High finding: when the chair's phone dropped, anyone who had seen her peer id (it was shown
/// to every reader) joined with it and kept her out. Now a peer id stays its participant's
/// across drops: the squatter is refused, the chair comes back with her id; and a document's
/// events show peer ids to organizers only. (Before: the observer's join was accepted and the
/// chair's reconnect refused.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_id_stays_its_participants_across_a_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = toron_tests::start_with(toron_tests::secure_config(dir.path())).await;
    let tokens = roster::set_up(&server).await;
    roster::set_phase(&server, toron_domain::policy::Phase::Live).await;
    let url = |role| url_with_token(&server.url(), Some(&roster::token(&tokens, role)));
    let chair_peer = "js-chair-phone";
    let chair = raw_joined(&url(Role::Facilitator), chair_peer).await;
    drop(chair); // the phone drops
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let mut squatter = RawPeer::connect(&url(Role::Observer))
            .await
            .expect("connect");
        squatter
            .send(&Message::Join {
                sender_id: PeerId::new(chair_peer).expect("peer"),
                supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
                peer_metadata: None,
            })
            .await
            .expect("join");
        match squatter.ending(LIMIT).await.expect("refused") {
            Ending::Error(e) => assert!(e.contains("peer id"), "{e}"),
            Ending::Closed => panic!("closed without saying why"),
        }
    }
    // The chair comes back as herself.
    raw_joined(&url(Role::Facilitator), chair_peer).await;

    // Peer ids in a document's events: organizers see them, the hall does not.
    let doc = roster::Kind::SessionDoc.key(Role::Observer).document_id();
    let path = format!("/api/v1/documents/{doc}/events");
    // (Someone writes it first: a peer id is recorded with each change.)
    let organizer = roster::token(&tokens, Role::Organizer);
    let mut w = Connection::connect(&url_with_token(&server.url(), Some(&organizer)), LIMIT)
        .await
        .expect("organizer");
    let mut d = w.find(doc, LIMIT).await.expect("find");
    d.doc.put(ROOT, "agenda_note", "시작").expect("put");
    d.doc.commit();
    w.push(&mut d, LIMIT).await.expect("push");
    let as_observer = toron_tests::http_get_with_token(
        server.addr(),
        &path,
        &roster::token(&tokens, Role::Observer),
    )
    .await;
    assert!(as_observer.contains("\"events\""), "{as_observer}");
    assert!(!as_observer.contains("\"peer\""), "{as_observer}");
    let as_organizer = toron_tests::http_get_with_token(
        server.addr(),
        &path,
        &roster::token(&tokens, Role::Organizer),
    )
    .await;
    assert!(as_organizer.contains("\"peer\""), "{as_organizer}");
    server.shutdown().await.expect("shutdown");
}

/// High finding: `ref` was identity — an activist who set her older note's `ref` to another's
/// promoted annotation became its author in the finding ("제기"), its source link pointed to
/// her note, and her note took its status. Now a ref is what an import gave (the export drops
/// a ref written live, naming it in the data checks), and sources resolve by id first.
/// (Before: the finding was raised by her.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_written_live_is_not_identity() {
    let (_dir, server) = series_live().await;
    let mine = "f0e1d2c3-0000-4000-8000-000000000201";
    let theirs = "f0e1d2c3-0000-4000-8000-000000000202";
    // P-KIM's note first, then P-CHOI's, which the organizer promotes into a finding.
    let kim = token_of(&server, "P-KIM").await;
    let (mut conn, mut layer) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    annotate(
        &mut layer,
        mine,
        json!({ "session": "S-LIB", "kind": "comment", "body": "먼저 쓴 내 의견" }),
    );
    conn.push(&mut layer, LIMIT).await.expect("stored");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let choi = token_of(&server, "P-CHOI").await;
    let (mut c2, mut layer2) = open(&server, &choi, &notes("S-LIB", "P-CHOI")).await;
    annotate(
        &mut layer2,
        theirs,
        json!({ "session": "S-LIB", "kind": "gap", "body": "거점 도서관의 야간 운영이 필요합니다" }),
    );
    c2.push(&mut layer2, LIMIT).await.expect("stored");
    c2.close().await;
    let (ok, out, err) = toron(
        &server,
        &[
            "promote",
            "--session",
            "S-LIB",
            "--from",
            theirs,
            "--type",
            "gap",
            "--title",
            "야간 운영",
            "--department",
            "DEP-CULT",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let finding = out.trim().to_string();
    let raised = |md: &str| -> String {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {finding} |")))
            .unwrap_or_else(|| panic!("{finding}'s row"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        format!("{} / {}", cells[5], cells[6])
    };
    let before = raised(&report_md(&server).await);
    // The source is their annotation, linked by its id's first eight characters.
    assert!(
        before.contains(&format!("/annotations/{}?", &theirs[..8])),
        "{before}"
    );
    // Her older note now claims their annotation's id as its ref.
    let anns = layer
        .doc
        .get(ROOT, "annotations")
        .expect("get")
        .expect("anns")
        .1;
    let a = layer.doc.get(&anns, mine).expect("get").expect("mine").1;
    layer.doc.put(&a, "ref", theirs).expect("put");
    layer.doc.commit();
    conn.push(&mut layer, LIMIT).await.expect("stored");
    conn.close().await;
    let b = export(&server).await;
    let exported = annotations_of(&b)
        .into_iter()
        .find(|a| a["body"] == "먼저 쓴 내 의견")
        .expect("exported");
    assert!(
        exported.get("ref").is_none(),
        "the live ref is dropped: {exported}"
    );
    assert!(
        b["integrity"]
            .as_array()
            .expect("integrity")
            .iter()
            .any(|p| p["problem"].as_str().is_some_and(|m| m.contains("`ref`"))),
        "named in the data checks"
    );
    let md = report_md(&server).await;
    assert_eq!(
        raised(&md),
        before,
        "the finding's raiser and source did not move"
    );
    let row = md
        .lines()
        .find(|l| l.contains("먼저 쓴 내 의견"))
        .expect("her note is listed");
    assert!(
        !row.contains("반영"),
        "her note did not take their status: {row}"
    );
    server.shutdown().await.expect("shutdown");
}

/// P-LEE, made the department reviewer of 문화도서관과 (DEP-CULT): their token.
async fn reviewer_of_culture(server: &Running) -> String {
    server
        .registry()
        .grant(
            "admin",
            "P-LEE",
            Role::DepartmentReviewer,
            Scope::Series(SERIES.into()),
        )
        .await
        .expect("grant");
    token_of(server, "P-LEE").await
}

/// Medium finding: a department's response was attached to another department's finding by
/// the `finding` field inside its value (the key was checked, the value believed). Now a
/// response answers the finding it is filed under. (Before: the export said F-LIB-03.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_belongs_to_the_finding_of_its_key() {
    let (_dir, server) = series_live().await;
    let lee = reviewer_of_culture(&server).await;
    let line = format!(
        "respond F-LIB-02 --series {SERIES} --department DEP-CULT --stance accepted --plan '공동 구입'"
    );
    let (ok, _, err) = toron_line(&server, &lee, &line).await;
    assert!(ok, "{err}");
    let key = DocKey::Response {
        series: SERIES.into(),
        department: "DEP-CULT".into(),
    };
    let (mut conn, mut d) = open(&server, &lee, &key).await;
    let responses = d.doc.get(ROOT, "responses").expect("get").expect("map").1;
    let r = d
        .doc
        .get(&responses, "F-LIB-02")
        .expect("get")
        .expect("F-LIB-02")
        .1;
    d.doc.put(&r, "finding", "F-CARE-01").expect("put");
    d.doc.commit();
    conn.push(&mut d, LIMIT).await.expect("stored");
    conn.close().await;
    let b = export(&server).await;
    let theirs: Vec<&Value> = b["department_responses"]
        .as_array()
        .expect("responses")
        .iter()
        .filter(|r| r["department"] == "DEP-CULT")
        .collect();
    assert!(
        theirs.iter().all(|r| r["finding"] != "F-CARE-01"),
        "{theirs:?}"
    );
    assert!(theirs.iter().any(|r| r["finding"] == "F-LIB-02"));
    server.shutdown().await.expect("shutdown");
}

/// Medium finding: CSV formula injection in the department CSV and the invite CSV. Now a cell
/// that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets an apostrophe in
/// front, in every CSV Toron writes. (Before: the cell began with `=HYPERLINK(`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_never_start_a_formula() {
    let (_dir, server) = series_live().await;
    let lee = reviewer_of_culture(&server).await;
    let line = format!(
        "respond F-LIB-02 --series {SERIES} --department DEP-CULT --stance accepted \
         --plan '=HYPERLINK(\"http://evil.example\",\"클릭\")' --progress '+1+cmd|calc'"
    );
    let (ok, _, err) = toron_line(&server, &lee, &line).await;
    assert!(ok, "{err}");
    let (ok, csv, err) = toron(&server, &["report", SERIES, "--format", "csv"]).await;
    assert!(ok, "{err}");
    let mut rows = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let cells: Vec<String> = rows
        .records()
        .flat_map(|r| {
            r.expect("a row")
                .iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(cells.iter().any(|c| c.contains("HYPERLINK")), "{csv}");
    for c in &cells {
        assert!(
            !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell starts a formula: {c:?}"
        );
    }
    // The invite sheet's CSV, with a name typed as a formula.
    let (ok, _, err) = toron(
        &server,
        &[
            "admin",
            "participant",
            "add",
            "P-EVIL",
            "--name",
            "=cmd|' /C calc'!A0",
            "--kind",
            "activist",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = toron(
        &server,
        &["admin", "grant", "P-EVIL", "activist", "--session", "S-LIB"],
    )
    .await;
    assert!(ok, "{err}");
    let out = tempfile::NamedTempFile::new().expect("file");
    let (ok, _, err) = toron(
        &server,
        &[
            "admin",
            "invites",
            "S-LIB",
            "--base",
            "https://toron.example.go.kr",
            "--csv",
            out.path().to_str().expect("path"),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let sheet = std::fs::read_to_string(out.path()).expect("csv");
    assert!(sheet.contains("'=cmd"), "{sheet}");
    assert!(
        !sheet.contains(",=cmd") && !sheet.contains("\"=cmd"),
        "{sheet}"
    );
    server.shutdown().await.expect("shutdown");
}

/// Medium finding: a submitted evaluation's scores changed silently while live and closed
/// (58.8 → 28.1 → 78.1), the form still saying submitted. Now a submitted form is changed
/// only after it is reopened (a change of its own, "evaluation reopened" in the timeline);
/// the report counts each form as of its last submission and says it was reopened. (Before:
/// the changed score was accepted and counted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_evaluation_changes_only_after_it_is_reopened() {
    let (_dir, server) = series_live().await;
    let totals_before = toron_tests::report_totals(&report_md(&server).await);
    let park = token_of(&server, "P-PARK").await;
    let key = DocKey::Eval {
        case: "C-LIB-HB".into(),
        evaluator: "P-PARK".into(),
    };
    let (mut conn, mut e) = open(&server, &park, &key).await;
    let criteria = e
        .doc
        .get(ROOT, "criteria")
        .expect("get")
        .expect("criteria")
        .1;
    let keys: Vec<String> = e.doc.keys(&criteria).collect();
    let first = e
        .doc
        .get(&criteria, &keys[0])
        .expect("get")
        .expect("criterion")
        .1;
    e.doc.put(&first, "score", 1).expect("put");
    e.doc.commit();
    assert!(
        conn.push(&mut e, LIMIT).await.is_err(),
        "a submitted form's score changed without reopening it"
    );
    conn.close().await;
    assert_eq!(
        toron_tests::report_totals(&report_md(&server).await),
        totals_before
    );
    // Reopened (alone), then edited: taken; the report still counts the last submission and
    // says the form was reopened.
    let (mut conn, mut e) = open(&server, &park, &key).await;
    e.doc.put(ROOT, "status", "draft").expect("reopen");
    e.doc.commit();
    conn.push(&mut e, LIMIT).await.expect("reopening is taken");
    let criteria = e
        .doc
        .get(ROOT, "criteria")
        .expect("get")
        .expect("criteria")
        .1;
    let first = e
        .doc
        .get(&criteria, &keys[0])
        .expect("get")
        .expect("criterion")
        .1;
    e.doc.put(&first, "score", 1).expect("put");
    e.doc.commit();
    conn.push(&mut e, LIMIT)
        .await
        .expect("a reopened form takes edits");
    conn.close().await;
    let md = report_md(&server).await;
    assert_eq!(
        toron_tests::report_totals(&md),
        totals_before,
        "as last submitted"
    );
    assert!(
        md.contains("제출 뒤 1회 다시 열림"),
        "the reopening is listed"
    );
    let (ok, timeline, err) = toron(&server, &["history", "S-LIB"]).await;
    assert!(ok, "{err}");
    assert!(
        timeline.contains("evaluation.reopened") || timeline.contains("reopened"),
        "{timeline}"
    );
    server.shutdown().await.expect("shutdown");
}

/// Medium finding: an organizer of any series listed every participant of every series, with
/// the names `role_only` and `affiliation_only` withhold. Now an organizer lists the people of
/// the series they organize. (Before: P-OTHER saw P-KIM's real name.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizers_list_only_the_people_of_their_series() {
    let (_dir, server) = series_live().await;
    toron_tests::add_participant(&server, "P-OTHER", "다른 구 운영자", "official").await;
    server
        .registry()
        .grant(
            "admin",
            "P-OTHER",
            Role::Organizer,
            Scope::Series("OTHER-SERIES".into()),
        )
        .await
        .expect("grant");
    let other = token_of(&server, "P-OTHER").await;
    let listed =
        toron_tests::http_get_with_token(server.addr(), "/api/v1/participants", &other).await;
    assert!(listed.contains("200 OK"), "{listed}");
    for key in ["P-KIM", "P-PARK", "P-MOON"] {
        assert!(
            !listed.contains(key),
            "{key} listed to another series' organizer"
        );
    }
    assert!(listed.contains("P-OTHER"), "{listed}");
    let all = toron_tests::http_get_with_token(server.addr(), "/api/v1/participants", ADMIN).await;
    assert!(
        all.contains("P-KIM"),
        "the organizer of every series sees everyone"
    );
    server.shutdown().await.expect("shutdown");
}

/// Medium finding: a scribe's remark could be attributed to anyone the registry knows (also
/// outside the session), and the report never said who recorded it. Now the speaker must hold
/// a role in the session, and the report says "(기록: …)". (Before: the outsider was named.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scribes_remark_names_a_speaker_of_the_session_and_its_recorder() {
    let (_dir, server) = series_live().await;
    toron_tests::add_participant(&server, "P-SCRIBE", "기록 담당", "official").await;
    toron_tests::add_participant(&server, "P-OUT", "다른 곳 사람", "official").await;
    let (ok, _, err) = toron(
        &server,
        &["admin", "grant", "P-SCRIBE", "scribe", "--session", "S-LIB"],
    )
    .await;
    assert!(ok, "{err}");
    let scribe = token_of(&server, "P-SCRIBE").await;
    // Their layer is provisioned with its skeleton: the scribe writes into it, as a page
    // does. (A layer begun from nothing made maps of its own beside the skeleton's, and
    // which of the two a reader saw hung on the random actor id: the flake of stops 35-36.)
    let key = notes("S-LIB", "P-SCRIBE");
    let mut conn = Connection::connect(&url_with_token(&server.url(), Some(&scribe)), LIMIT)
        .await
        .expect("connect");
    let mut layer = conn
        .find(key.document_id(), LIMIT)
        .await
        .expect("the layer");
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000301",
        json!({ "session": "S-LIB", "kind": "comment", "author": "P-OUT",
                "recorded_by": "P-SCRIBE", "body": "밖의 사람 말로 적은 의견" }),
    );
    annotate(
        &mut layer,
        "f0e1d2c3-0000-4000-8000-000000000302",
        json!({ "session": "S-LIB", "kind": "comment", "author": "P-KIM",
                "recorded_by": "P-SCRIBE", "body": "김 활동가의 발언 기록" }),
    );
    conn.push(&mut layer, LIMIT).await.expect("stored");
    conn.close().await;
    let b = export(&server).await;
    let anns = annotations_of(&b);
    let out = anns
        .iter()
        .find(|a| a["body"] == "밖의 사람 말로 적은 의견")
        .expect("exported");
    assert_eq!(out["author"], "P-SCRIBE", "{out}");
    let kim = anns
        .iter()
        .find(|a| a["body"] == "김 활동가의 발언 기록")
        .expect("exported");
    assert_eq!(kim["author"], "P-KIM", "{kim}");
    assert_eq!(kim["recorded_by"], "P-SCRIBE", "{kim}");
    let md = report_md(&server).await;
    let row = md
        .lines()
        .find(|l| l.contains("김 활동가의 발언 기록"))
        .expect("listed");
    assert!(row.contains("기록:"), "who recorded it: {row}");
    server.shutdown().await.expect("shutdown");
}

/// Low finding: a department's part printed other departments' responses on findings
/// addressed to both. Now it carries its own only. (Before: 기획예산과's answer was in
/// 문화도서관과's part.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departments_part_carries_its_own_answers_only() {
    let (_dir, server) = series_live().await;
    for (who, dep) in [("P-LEE", "DEP-CULT"), ("P-HAN", "DEP-PLAN")] {
        server
            .registry()
            .grant(
                "admin",
                who,
                Role::DepartmentReviewer,
                Scope::Series(SERIES.into()),
            )
            .await
            .expect("grant");
        let token = token_of(&server, who).await;
        let line = format!(
            "respond F-LIB-03 --series {SERIES} --department {dep} --stance accepted --plan '{dep}의 계획'"
        );
        let (ok, _, err) = toron_line(&server, &token, &line).await;
        assert!(ok, "{err}");
    }
    let (ok, part, err) = toron(
        &server,
        &[
            "report",
            SERIES,
            "--format",
            "md",
            "--department",
            "DEP-CULT",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(part.contains("DEP-CULT의 계획"), "{part}");
    assert!(!part.contains("DEP-PLAN의 계획"), "{part}");
    server.shutdown().await.expect("shutdown");
}

/// Low finding: one participant's fifteen score annotations made a reference-score row. Now
/// each participant counts once per case and criterion, with their latest score. (Before:
/// n = 16.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_scores_count_each_participant_once() {
    let (_dir, server) = series_live().await;
    let kim = token_of(&server, "P-KIM").await;
    let (mut conn, mut layer) = open(&server, &kim, &notes("S-LIB", "P-KIM")).await;
    let b = export(&server).await;
    let criterion = b["evaluation_template"]["criteria"][0]["key"]
        .as_str()
        .expect("a criterion")
        .to_string();
    for i in 0..15 {
        annotate(
            &mut layer,
            &format!("f0e1d2c3-0000-4000-8000-0000000004{i:02}"),
            json!({ "session": "S-LIB", "kind": "score", "criterion": criterion, "value": 5,
                    "subject_cases": ["C-LIB-HB"], "body": format!("점수 {i}") }),
        );
    }
    conn.push(&mut layer, LIMIT).await.expect("stored");
    conn.close().await;
    let md = report_md(&server).await;
    // The reference-score table: | 지자체 | 항목 | n | 중앙값 | 제외(이해충돌) |
    let rows: Vec<Vec<String>> = md
        .lines()
        .skip_while(|l| !l.starts_with("| 지자체 | 항목 | n |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    let row = rows
        .iter()
        .find(|r| {
            r.get(1).map(String::as_str) == Some("한빛구")
                && r.get(2).map(String::as_str) == Some("적절성")
        })
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row[3], "1", "one voice per participant: {row:?}");
    assert_eq!(row[4], "5.0", "her latest score: {row:?}");
    server.shutdown().await.expect("shutdown");
}

/// Low finding: idle sockets renewed just under the header deadline held every HTTP slot;
/// 44–72 % of legitimate requests failed. Now a new socket takes the place of the one idle
/// longest when the pool is full. (Before: most requests were dropped at accept.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_give_way_to_requests() {
    let (_dir, server) = secured_with(ADMIN, |c| {
        c.max_http_connections = 32;
        c.http_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = server.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The attacker: 32 idle sockets, each opened again as soon as the server drops it.
    let mut idlers = Vec::new();
    for _ in 0..32 {
        let stop = stop.clone();
        idlers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                    let mut b = [0u8; 64];
                    let _ = tokio::time::timeout(
                        Duration::from_secs(3),
                        tokio::io::AsyncReadExt::read(&mut s, &mut b),
                    )
                    .await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut answered = 0;
    for _ in 0..30 {
        let r = tokio::time::timeout(
            Duration::from_secs(3),
            toron_tests::http_get_with_token(addr, "/api/v1/whoami", ADMIN),
        )
        .await
        .unwrap_or_default();
        if r.contains("200 OK") {
            answered += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for i in idlers {
        i.abort();
    }
    assert!(answered >= 28, "{answered} of 30 requests answered");
    server.shutdown().await.expect("shutdown");
}

/// A change that panicked Automerge while it was applied (found by the `inflate` fuzz target on
/// 2026-12-07; refused before it is applied since issue 31: its checksum is not its hash's).
/// What such a change costs is bounded: the server goes on, the document's readers get it
/// back whole, and every other document is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_automerge_cannot_apply_costs_a_reconnect_and_nothing_else() {
    let (_dir, server) = toron_tests::fresh().await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let target = toron_tests::create(&mut alice, "kept", 1).await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut elsewhere = toron_tests::create(&mut bob, "elsewhere", 2).await;

    let change = include_bytes!("../../../fuzz/corpus/inflate/checksum-05966985");
    let message = automerge::sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![change.to_vec()].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    let mut breaker = RawPeer::joined(&url, "breaker").await.expect("join");
    breaker
        .send(&Message::Sync {
            sender_id: PeerId::new("breaker").expect("id"),
            target_id: server.hub().server_peer().clone(),
            document_id: target.id,
            data: message.encode(),
        })
        .await
        .expect("send");
    let _ = breaker.ending(Duration::from_secs(5)).await;

    // Bob, on another document, goes on editing on his connection.
    elsewhere.doc.put(ROOT, "after", 3).expect("put");
    elsewhere.doc.commit();
    bob.push(&mut elsewhere, LIMIT)
        .await
        .expect("another document is untouched");
    // Alice's document is served again, whole, to a new connection.
    let mut again = Connection::connect(&url, LIMIT).await.expect("reconnect");
    let back = again.find(target.id, LIMIT).await.expect("served again");
    assert_eq!(toron_tests::int_at(&back.doc, "kept"), Some(1));
    assert!(back.doc.get(ROOT, "after").expect("read").is_none());
    server.shutdown().await.expect("shutdown");
}
