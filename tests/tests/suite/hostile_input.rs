//! Malformed input closes only the offending connection, with an `error` where the protocol
//! has room for one; everyone else keeps working.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::ROOT;
use toron_cli::sync_client::Connection;
use toron_protocol::{Message, PeerId};
use toron_tests::{int_at, peer, Ending, RawPeer, LIMIT};

fn cbor_map_with_type(ty: &str) -> Vec<u8> {
    let mut b = vec![0xA2, 0x64];
    b.extend_from_slice(b"type");
    b.push(0x60 + ty.len() as u8);
    b.extend_from_slice(ty.as_bytes());
    b.push(0x68);
    b.extend_from_slice(b"senderId");
    b.extend_from_slice(&[0x61, b'x']);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_that_connection_only() {
    let (_dir, server) = toron_tests::fresh().await;
    let url = server.url();

    // A healthy pair of clients sharing a document throughout.
    let mut alice = Connection::connect(&url, LIMIT).await.expect("alice");
    let mut a = toron_tests::create(&mut alice, "n", 0).await;
    let mut bob = Connection::connect(&url, LIMIT).await.expect("bob");
    let mut b = bob.find(a.id, LIMIT).await.expect("find");

    let four_billion_entries = vec![0xBA, 0xFF, 0xFF, 0xFF, 0xFF, 0x64, b't', b'y', b'p', b'e'];
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
        (
            "random bytes",
            true,
            vec![0x1f, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad],
        ),
        ("CBOR null", true, vec![0xF6]),
        (
            "a map declaring 4 billion entries",
            true,
            four_billion_entries,
        ),
        (
            "an unknown message type",
            true,
            cbor_map_with_type("gossip"),
        ),
        ("an empty frame", true, vec![]),
    ];
    for (name, join_first, frame) in cases {
        let mut p = if join_first {
            RawPeer::joined(&url, &format!("hostile-{}", name.len()))
                .await
                .expect("join")
        } else {
            RawPeer::connect(&url).await.expect("connect")
        };
        p.send_bytes(frame).await.expect("send");
        match p.ending(LIMIT).await.expect(name) {
            Ending::Error(msg) => assert!(!msg.is_empty(), "{name}"),
            Ending::Closed => panic!("{name}: closed without an error message"),
        }
    }

    // A text frame.
    let mut p = RawPeer::joined(&url, "texter").await.expect("join");
    p.send_text("{\"type\":\"join\"}").await.expect("send");
    assert!(
        matches!(p.ending(LIMIT).await.expect("text"), Ending::Error(m) if m.contains("text frames"))
    );

    // A message before `join`.
    let mut p = RawPeer::connect(&url).await.expect("connect");
    p.send(&Message::Sync {
        sender_id: peer("early"),
        target_id: peer("s"),
        document_id: a.id,
        data: vec![],
    })
    .await
    .expect("send");
    assert!(
        matches!(p.ending(LIMIT).await.expect("early"), Ending::Error(m) if m.contains("expected a join"))
    );

    // An unsupported protocol version.
    let mut p = RawPeer::connect(&url).await.expect("connect");
    p.send(&Message::Join {
        sender_id: peer("future"),
        supported_protocol_versions: Some(vec!["2".into()]),
        peer_metadata: None,
    })
    .await
    .expect("send");
    assert_eq!(
        p.ending(LIMIT).await.expect("version"),
        Ending::Error("unsupported protocol version".into())
    );

    // After `join`: a second `join`; a sync message whose automerge payload is garbage, for
    // the shared document.
    let after_join = [
        (
            "twice",
            Message::Join {
                sender_id: PeerId::new("twice").expect("id"),
                supported_protocol_versions: None,
                peer_metadata: None,
            },
            "already joined",
        ),
        (
            "garbage-sync",
            Message::Sync {
                sender_id: peer("garbage-sync"),
                target_id: peer("s"),
                document_id: a.id,
                data: vec![0x42, 0xff, 0xff, 0xff],
            },
            "invalid sync message",
        ),
    ];
    for (name, message, error) in after_join {
        let mut p = RawPeer::joined(&url, name).await.expect("join");
        p.send(&message).await.expect("send");
        let ending = p.ending(LIMIT).await.expect(name);
        assert!(
            matches!(&ending, Ending::Error(m) if m.contains(error)),
            "{name}: {ending:?}"
        );
    }

    // Ignored, not fatal: remote-heads gossip, doc-unavailable from a client, a bad document id.
    let mut p = RawPeer::joined(&url, "gossip").await.expect("join");
    p.send(&Message::RemoteSubscriptionChange {
        sender_id: peer("gossip"),
        target_id: peer("s"),
        add: Some(vec!["x".into()]),
        remove: None,
    })
    .await
    .expect("send");
    p.send(&Message::DocUnavailable {
        sender_id: peer("gossip"),
        target_id: peer("s"),
        document_id: a.id,
    })
    .await
    .expect("send");
    let mut bad_id = vec![0xA4];
    for (k, v) in [
        ("type", "request"),
        ("senderId", "gossip"),
        ("documentId", "not-a-document"),
    ] {
        bad_id.push(0x60 + k.len() as u8);
        bad_id.extend_from_slice(k.as_bytes());
        bad_id.push(0x60 + v.len() as u8);
        bad_id.extend_from_slice(v.as_bytes());
    }
    bad_id.extend_from_slice(&[0x64, b'd', b'a', b't', b'a', 0x40]);
    p.send_bytes(bad_id).await.expect("send");
    assert_eq!(
        p.recv(Duration::from_millis(300))
            .await
            .expect("still open"),
        None
    );

    // Through all of it, Alice and Bob kept working.
    a.doc.put(ROOT, "n", 1).expect("put");
    alice.push(&mut a, LIMIT).await.expect("alice still works");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while int_at(&b.doc, "n") != Some(1) {
        tokio::time::timeout_at(deadline, bob.next_event(&mut [&mut b]))
            .await
            .expect("bob in time")
            .expect("bob event");
    }
    server.shutdown().await.expect("shutdown");
}
