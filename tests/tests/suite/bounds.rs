//! The server's bounds (issue 8, point 3): each one configurable, each one hit with a clear
//! error, and nobody else affected.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ROOT};
use toron_cli::sync_client::{url_with_token, ClientError, Connection, DocSync};
use toron_protocol::DocumentId;
use toron_tests::{
    config, create, secure_config, secured_with, start_with, Ending, RawPeer, LIMIT,
};

/// Reads until the server ends the connection; returns its `error` text.
async fn refusal(conn: &mut Connection) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, conn.recv()).await {
            Err(_) => panic!("the server did not refuse within {LIMIT:?}"),
            Ok(Ok(_)) => continue,
            Ok(Err(ClientError::Server(m))) => return m,
            Ok(Err(e)) => panic!("closed without saying why: {e}"),
        }
    }
}

#[tokio::test]
async fn documents_per_connection_are_bounded() {
    let (_dir, server) = toron_tests::fresh_with(|c| c.max_docs_per_connection = 3).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut docs = Vec::new();
    for i in 0..3 {
        docs.push(create(&mut alice, &format!("d{i}"), 1).await);
    }
    // The fourth document is refused with the reason and the flag to change it.
    let mut fourth = DocSync::new(DocumentId::random(), AutoCommit::new());
    fourth.doc.put(ROOT, "d3", 1).expect("put");
    alice.sync_doc(&mut fourth, false).await.expect("send");
    let why = refusal(&mut alice).await;
    assert!(
        why.contains("too many documents") && why.contains("--max-docs-per-connection"),
        "{why}"
    );
    // Another connection still opens what it wants, the first three documents included.
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    for d in &docs {
        bob.find(d.id, LIMIT).await.expect("find");
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn connections_per_token_and_in_total_are_bounded() {
    let token = "toron_bounds_test_token_0123456789abcdef";
    let (_dir, server) = secured_with(token, |c| {
        c.max_connections_per_token = 2;
        c.max_connections = 3;
    })
    .await;
    let url = url_with_token(&server.url(), Some(token));
    let a = Connection::connect(&url, LIMIT).await.expect("first");
    let _b = Connection::connect(&url, LIMIT).await.expect("second");
    // A third with the same token: 429 and why.
    let e = Connection::connect(&url, LIMIT)
        .await
        .expect_err("third refused");
    let text = e.to_string();
    assert!(text.contains("429"), "{text}");
    let admin = toron_cli::admin::Admin::new(&server.url(), Some(token.into()), LIMIT);
    let body = tokio::task::spawn_blocking(move || admin.get_text("/metrics"))
        .await
        .expect("task")
        .expect("metrics");
    assert!(
        body.contains("toron_errors_total{kind=\"limit\"} 1"),
        "{body}"
    );
    // One closes: the token may connect again.
    a.close().await;
    let deadline = Instant::now() + LIMIT;
    let _c = loop {
        match Connection::connect(&url, LIMIT).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the token could not reconnect: {e}"),
        }
    };
    // A third connection, with another token, fills the server (3 in all); a fourth gets 503.
    let other = toron_tests::token_of(&server, "admin").await;
    let other_url = url_with_token(&server.url(), Some(&other));
    let _d = Connection::connect(&other_url, LIMIT)
        .await
        .expect("third in all");
    let e = Connection::connect(&other_url, LIMIT)
        .await
        .expect_err("over the total");
    assert!(e.to_string().contains("503"), "{e}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_oversized_frame_closes_that_connection_only() {
    let (_dir, server) = toron_tests::fresh_with(|c| c.max_message_bytes = 64 * 1024).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut d = create(&mut alice, "kept", 1).await;
    let mut raw = RawPeer::joined(&url, "big-sender").await.expect("raw");
    raw.send_bytes(vec![0xa0; 100 * 1024]).await.expect("send");
    let ending = raw.ending(LIMIT).await.expect("closed");
    assert!(
        matches!(ending, Ending::Closed | Ending::Error(_)),
        "{ending:?}"
    );
    // Alice goes on editing.
    d.doc.put(ROOT, "after", 2).expect("put");
    d.doc.commit();
    alice.push(&mut d, LIMIT).await.expect("still served");
    server.shutdown().await.expect("shutdown");
}

/// One of fifty clients stops reading while edits flow: it is disconnected once its queue
/// passes `max_outbound_bytes`, and the 49 others (a writer and 48 followers of the same
/// document) get every edit in time.
#[tokio::test]
async fn a_slow_client_does_not_hold_back_forty_nine_others() {
    let (_dir, server) = toron_tests::fresh_with(|c| c.max_outbound_bytes = 256 * 1024).await;
    let url = server.url();
    let mut writer = Connection::connect(&url, LIMIT).await.expect("writer");
    let mut room = create(&mut writer, "start", 1).await;
    // A second document only the writer and the slow client hold: its large edits are what
    // piles up towards the slow client (megabytes, past the kernel's socket buffers), without
    // making 48 debug-built followers apply them.
    let mut bulk = create(&mut writer, "bulk", 1).await;
    let (room_id, bulk_id) = (room.id, bulk.id);
    // The slow one asks for both, then never reads again.
    let mut slow = RawPeer::connect_small_buffer(&url).await.expect("slow");
    slow.send(&toron_protocol::Message::Join {
        sender_id: toron_tests::peer("slow-phone"),
        supported_protocol_versions: Some(vec![toron_protocol::PROTOCOL_VERSION.into()]),
        peer_metadata: None,
    })
    .await
    .expect("join");
    for id in [room_id, bulk_id] {
        let mut state = automerge::sync::State::new();
        let first = automerge::sync::SyncDoc::generate_sync_message(
            AutoCommit::new().document(),
            &mut state,
        )
        .expect("a first message");
        slow.send(&toron_protocol::Message::sync_of_kind(
            toron_protocol::SyncKind::Request,
            toron_tests::peer("slow-phone"),
            server.hub().server_peer().clone(),
            id,
            first.encode(),
        ))
        .await
        .expect("request");
    }
    let edits = 40usize;
    let mut followers = Vec::new();
    for i in 0..48 {
        let url = url.clone();
        followers.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&url, LIMIT).await?;
            let mut mine = conn.find(room_id, LIMIT).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while toron_tests::int_at(&mine.doc, &format!("e{}", edits - 1)).is_none() {
                let mut docs = [&mut mine];
                match tokio::time::timeout_at(deadline, conn.next_event(&mut docs)).await {
                    Err(_) => anyhow::bail!("follower {i} missed edits"),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                }
            }
            Ok::<_, anyhow::Error>(Instant::now())
        }));
    }
    let started = Instant::now();
    // Varied text (automerge compresses changes; a repeated character would shrink to nothing).
    let mut x: u32 = 12345;
    let blob: String = (0..200 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from_u32(0xAC00 + (x >> 8) % 11_172).unwrap_or('가')
        })
        .collect();
    for e in 0..edits {
        room.doc.put(ROOT, format!("e{e}"), e as i64).expect("put");
        room.doc.commit();
        writer.push(&mut room, LIMIT).await.expect("edit");
        if e < 12 {
            // 600 KB each, 7 MB in all.
            bulk.doc
                .put(ROOT, "blob", format!("{e}{blob}"))
                .expect("put");
            bulk.doc.commit();
            writer.push(&mut bulk, LIMIT).await.expect("bulk edit");
        }
    }
    let mut last = started;
    for f in followers {
        let at = f.await.expect("task").expect("follower");
        last = last.max(at);
    }
    let took = last - started;
    assert!(
        took < Duration::from_secs(30),
        "the 48 followers took {took:?}"
    );
    // The slow client was told why and let go.
    let ending = slow.ending(LIMIT).await.expect("let go");
    assert!(
        matches!(&ending, Ending::Error(m) if m.contains("too slow")),
        "{ending:?}"
    );
    server.shutdown().await.expect("shutdown");
}

/// `allowed_origins`: a browser page of another origin is refused (403); the listed origin,
/// the server's own pages and clients without `Origin` are let in.
#[tokio::test]
async fn websocket_origins_are_checked_when_configured() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (_dir, server) =
        toron_tests::fresh_with(|c| c.allowed_origins = vec!["https://toron.example.kr".into()])
            .await;
    let url = server.url();
    let host = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let attempt = |origin: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = url.into_client_request().expect("request");
            if let Some(o) = origin {
                req.headers_mut()
                    .insert("origin", o.parse().expect("header"));
            }
            tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(req))
                .await
                .expect("in time")
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let refused = attempt(Some("https://evil.example".into())).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("403")),
        "{refused:?}"
    );
    attempt(Some("https://toron.example.kr".into()))
        .await
        .expect("listed origin");
    attempt(Some(format!("http://{host}")))
        .await
        .expect("the server's own page");
    attempt(None).await.expect("no Origin: not a browser");
    server.shutdown().await.expect("shutdown");
}

/// A second organizer, `kim`, with a token of their own.
async fn second_organizer(server: &toron_server::Running) -> String {
    use toron_domain::policy::{Role, Scope};
    let reg = server.registry();
    toron_tests::add_participant(server, "kim", "김", "official").await;
    reg.grant("admin", "kim", Role::Organizer, Scope::Series("*".into()))
        .await
        .expect("grant");
    reg.issue_token("admin", "kim").await.expect("token")
}

/// Random text: Automerge compresses changes, so sizes only mean something for text that
/// does not compress.
fn random_text(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

#[tokio::test]
async fn changes_per_second_per_token_are_bounded_and_others_write_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "toron_rate_test_token_0123456789abcdef";
    let clock = toron_server::clock::Clock::manual(1_000_000);
    let mut c = secure_config(dir.path());
    c.admin_token = Some(token.into());
    c.clock = clock.clone();
    c.max_changes_per_sec_per_token = 5; // bursts of 50
    let server = start_with(c).await;
    let kim = second_organizer(&server).await;
    let url = url_with_token(&server.url(), Some(token));

    // A burst of 50 changes, one push each, at one moment: all accepted.
    let mut admin = Connection::connect(&url, LIMIT).await.expect("admin");
    let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
    for i in 0..50 {
        d.doc.put(ROOT, format!("k{i}"), i).expect("put");
        d.doc.commit();
        admin.push(&mut d, LIMIT).await.expect("within the burst");
    }
    // The 51st at the same moment is refused, saying why and when to try again.
    d.doc.put(ROOT, "k50", 50).expect("put");
    d.doc.commit();
    admin.sync_doc(&mut d, false).await.expect("send");
    let why = refusal(&mut admin).await;
    assert!(
        why.contains("rate limit") && why.contains("5 changes per second"),
        "{why}"
    );
    // Another token writes on at the same moment, 30 changes, unhindered.
    let mut k = Connection::connect(&url_with_token(&server.url(), Some(&kim)), LIMIT)
        .await
        .expect("kim");
    let mut kd = DocSync::new(DocumentId::random(), AutoCommit::new());
    for i in 0..30 {
        kd.doc.put(ROOT, format!("kim{i}"), i).expect("put");
        kd.doc.commit();
        k.push(&mut kd, LIMIT)
            .await
            .expect("another token is not limited");
    }
    // A second later the allowance has five more: the refused change goes in on resync,
    // nothing lost.
    clock.advance_ms(1_000);
    let mut again = Connection::connect(&url, LIMIT).await.expect("reconnect");
    d.state = automerge::sync::State::new();
    again
        .push(&mut d, LIMIT)
        .await
        .expect("accepted after a second");
    let mut reader = Connection::connect(&url_with_token(&server.url(), Some(&kim)), LIMIT)
        .await
        .expect("reader");
    let got = reader.find(d.id, LIMIT).await.expect("find");
    assert_eq!(toron_tests::int_at(&got.doc, "k50"), Some(50));
    assert_eq!(toron_tests::int_at(&got.doc, "k0"), Some(0));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn document_size_is_bounded_and_stays_bounded_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = 40_000u64;
    let mut c = config(dir.path());
    c.max_document_bytes = limit;
    let server = start_with(c.clone()).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
    // Pieces of about 9 KB until the document is full.
    let mut stored = 0u64;
    let mut refused = None;
    for i in 0..10 {
        d.doc
            .put(ROOT, format!("p{i}"), random_text(9_000))
            .expect("put");
        d.doc.commit();
        let size = d
            .doc
            .get_last_local_change()
            .map(|c| c.raw_bytes().len() as u64)
            .expect("a change");
        if stored + size > limit {
            alice.sync_doc(&mut d, false).await.expect("send");
            refused = Some((i, refusal(&mut alice).await));
            break;
        }
        alice.push(&mut d, LIMIT).await.expect("under the limit");
        stored += size;
    }
    let (n, why) = refused.expect("the limit was reached");
    assert!(n >= 3, "{n} pieces of ~9 KB fit in 40,000 bytes");
    assert!(
        why.contains("document size") && why.contains(&limit.to_string()),
        "{why}"
    );
    // Everything accepted is served; other documents take writes.
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let got = bob.find(d.id, LIMIT).await.expect("find");
    assert_eq!(got.doc.keys(ROOT).count(), n);
    let _other = create(&mut bob, "elsewhere", 1).await;
    // After a restart the document is still at its limit.
    server.shutdown().await.expect("shutdown");
    let server = start_with(c).await;
    let mut carol = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("carol");
    let mut again = carol.find(d.id, LIMIT).await.expect("find");
    again
        .doc
        .put(ROOT, "more", random_text(9_000))
        .expect("put");
    again.doc.commit();
    carol.sync_doc(&mut again, false).await.expect("send");
    let why = refusal(&mut carol).await;
    assert!(why.contains("document size"), "{why}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_document_loads_are_bounded_and_the_rest_wait_their_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.max_concurrent_loads = 2;
    let server = start_with(c.clone()).await;
    let mut writer = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("writer");
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
        d.doc.put(ROOT, "n", i).expect("put");
        d.doc.put(ROOT, "text", random_text(2_000)).expect("put");
        d.doc.commit();
        writer.push(&mut d, LIMIT).await.expect("push");
        ids.push(d.id);
    }
    server.shutdown().await.expect("shutdown");
    // After a restart nothing is loaded; four readers ask for all 40 at once.
    let server = start_with(c).await;
    let url = server.url();
    let readers = (0..4).map(|r| {
        let (url, ids) = (url.clone(), ids.clone());
        tokio::spawn(async move {
            let mut conn = Connection::connect(&url, LIMIT).await.expect("reader");
            let mut docs: Vec<DocSync> = ids
                .iter()
                .map(|id| DocSync::new(*id, AutoCommit::new()))
                .collect();
            for d in &mut docs {
                conn.sync_doc(d, true).await.expect("request");
            }
            let deadline = tokio::time::Instant::now() + LIMIT;
            let mut done = vec![false; docs.len()];
            while done.iter().any(|d| !d) {
                let mut refs: Vec<&mut DocSync> = docs.iter_mut().collect();
                tokio::time::timeout_at(deadline, conn.next_event(&mut refs))
                    .await
                    .unwrap_or_else(|_| panic!("reader {r}: not all served in time"))
                    .expect("event");
                for (i, d) in docs.iter().enumerate() {
                    done[i] = toron_tests::int_at(&d.doc, "n") == Some(i as i64);
                }
            }
        })
    });
    for r in readers.collect::<Vec<_>>() {
        r.await.expect("every reader got every document");
    }
    let metrics = toron_tests::http_get(server.addr(), "/metrics").await;
    let value = |name: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert_eq!(
        value("toron_document_loads_peak"),
        2,
        "never more than the bound"
    );
    assert_eq!(value("toron_document_loads"), 0);
    assert_eq!(value("toron_document_loads_waiting"), 0);
    server.shutdown().await.expect("shutdown");
}

/// Operations are what Automerge keeps in memory (one per character typed): one message may
/// bring at most `max_ops_per_message` of them and a document may reach `max_document_ops`
/// (also after a restart); past either, the changes are refused with a clear error and
/// nothing of them is applied.
#[tokio::test]
async fn operations_per_message_and_per_document_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.max_ops_per_message = 1_000;
    c.max_document_ops = 2_500;
    let server = start_with(c.clone()).await;
    let url = server.url();
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut d = DocSync::new(DocumentId::random(), AutoCommit::new());
    let text = d
        .doc
        .put_object(ROOT, "text", automerge::ObjType::Text)
        .expect("text");
    d.doc.commit();
    alice.push(&mut d, LIMIT).await.expect("an empty text");
    // 900 characters, twice: under both bounds.
    for _ in 0..2 {
        d.doc
            .splice_text(&text, 0, 0, &random_text(900))
            .expect("splice");
        d.doc.commit();
        alice.push(&mut d, LIMIT).await.expect("within the bounds");
    }
    // 1,200 characters in one message: too many at once.
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut b = bob.find(d.id, LIMIT).await.expect("find");
    b.doc
        .splice_text(&text, 0, 0, &random_text(1_200))
        .expect("splice");
    b.doc.commit();
    bob.sync_doc(&mut b, false).await.expect("send");
    let why = refusal(&mut bob).await;
    assert!(
        why.contains("too large a change") && why.contains("1000"),
        "{why}"
    );
    // After a restart, 900 more would take the document past 2,500 operations.
    server.shutdown().await.expect("shutdown");
    let server = start_with(c).await;
    let mut carol = Connection::connect(&server.url(), LIMIT)
        .await
        .expect("carol");
    let mut again = carol.find(d.id, LIMIT).await.expect("find");
    assert_eq!(again.doc.text(&text).expect("text").chars().count(), 1_800);
    again
        .doc
        .splice_text(&text, 0, 0, &random_text(900))
        .expect("splice");
    again.doc.commit();
    carol.sync_doc(&mut again, false).await.expect("send");
    let why = refusal(&mut carol).await;
    assert!(why.contains("operations") && why.contains("2500"), "{why}");
    server.shutdown().await.expect("shutdown");
}
