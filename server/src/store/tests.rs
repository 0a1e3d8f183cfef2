use super::*;
use toron_protocol::{ConnId, PeerId};

fn change(doc: DocumentId, n: u8, size: usize) -> NewChange {
    NewChange {
        document_id: doc,
        received_at_ms: 1,
        conn: ConnId(1),
        peer: PeerId::new("p").expect("peer"),
        by: toron_protocol::Attribution::default(),
        actor: vec![n],
        hash: [n; 32],
        bytes: vec![n; size],
        heads_after: vec![[n; 32]],
    }
}

#[tokio::test]
async fn sequences_are_gap_free_idempotent_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (DocumentId::random(), DocumentId::random());
    {
        let store = Store::open(dir.path(), None).expect("open");
        let r = store
            .append(a, vec![change(a, 1, 10), change(a, 2, 10)], vec![])
            .await
            .expect("append");
        assert_eq!((r.written, r.last_doc_seq), (2, 2));
        let r = store
            .append(b, vec![change(b, 3, 200_000)], vec![])
            .await
            .expect("append");
        assert_eq!((r.written, r.last_doc_seq), (1, 1));
        // The same change again is not a second record.
        let r = store
            .append(a, vec![change(a, 2, 10), change(a, 4, 10)], vec![])
            .await
            .expect("append");
        assert_eq!((r.written, r.last_doc_seq), (1, 3));
    }
    let store = Store::open(dir.path(), None).expect("reopen");
    assert_eq!(store.last_global_seq().expect("seq"), 4);
    let recs = store.document_records(&a).expect("records");
    assert_eq!(
        recs.iter()
            .map(|r| (r.global_seq, r.doc_seq))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 2), (4, 3)]
    );
    let big = store.document_records(&b).expect("records");
    assert_eq!(
        big[0].change.bytes.len(),
        200_000,
        "a large record comes back whole"
    );
    let r = store
        .append(a, vec![change(a, 5, 10)], vec![])
        .await
        .expect("append");
    assert_eq!(r.last_doc_seq, 4);
    assert_eq!(store.last_global_seq().expect("seq"), 5);
}

#[tokio::test]
async fn snapshots_are_a_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let d = DocumentId::random();
    store
        .append(
            d,
            vec![change(d, 1, 5), change(d, 2, 5), change(d, 3, 5)],
            vec![],
        )
        .await
        .expect("append");
    store
        .save_snapshot(&d, 1, &vec![7u8; 100_000])
        .expect("snapshot");
    store.save_snapshot(&d, 2, &[8u8; 10]).expect("snapshot");
    let loaded = store.load(&d).expect("load");
    assert_eq!(loaded.snapshot.as_deref(), Some(&[8u8; 10][..]));
    assert_eq!(loaded.tail, vec![vec![3u8; 5]]);
    assert_eq!(loaded.last_doc_seq, 3);
    store.clear_snapshots().expect("clear");
    let loaded = store.load(&d).expect("load");
    assert!(loaded.snapshot.is_none());
    assert_eq!(loaded.tail.len(), 3);
}

#[test]
fn a_replicated_entry_reads_back_as_written_and_splits_in_order() {
    let doc = DocumentId::random();
    let changes: Vec<NewChange> = (1..=5).map(|n| change(doc, n, 3000)).collect();
    let entry = LogEntry::Changes {
        doc,
        changes: changes.clone(),
        bindings: vec![(vec![1], "P-KIM".into())],
    };
    let LogEntry::Changes {
        doc: d,
        changes: c,
        bindings: b,
    } = LogEntry::decode(&entry.encode()).expect("decode")
    else {
        panic!("changes read back as something else");
    };
    assert_eq!((d, &c, b), (doc, &changes, vec![(vec![1], "P-KIM".into())]));

    let parts = entry.split(8000);
    assert!(parts.len() > 1, "5 × 3 KB in parts of 8 KB");
    let again: Vec<NewChange> = parts
        .iter()
        .flat_map(|p| match p {
            LogEntry::Changes { changes, .. } => changes.clone(),
            LogEntry::Event { .. } => Vec::new(),
        })
        .collect();
    assert_eq!(again, changes, "every change once, in order");
    assert!(parts.iter().all(|p| p.encode().len() <= 8000));

    let event = LogEntry::Event {
        event: PendingEvent::Admin(AdminAction {
            at_ms: 7,
            by: "admin".into(),
            action: "{\"token_revoked\":{\"participant\":\"P-KIM\"}}".into(),
        }),
        registry: vec![
            RegistryOp::Put("participant/P-KIM".into(), b"{}".to_vec()),
            RegistryOp::Delete("token/00".into()),
        ],
    };
    match LogEntry::decode(&event.encode()).expect("decode") {
        LogEntry::Event {
            event: PendingEvent::Admin(a),
            registry,
        } => {
            assert_eq!((a.at_ms, a.by.as_str()), (7, "admin"));
            assert!(
                matches!(&registry[0], RegistryOp::Put(k, v) if k == "participant/P-KIM" && v == b"{}")
            );
            assert!(matches!(&registry[1], RegistryOp::Delete(k) if k == "token/00"));
        }
        other => panic!("read back as {other:?}"),
    }
    assert!(
        LogEntry::decode(b"\xa1\x61v\x18\x63").is_err(),
        "a newer version is refused"
    );
    assert!(LogEntry::decode(b"garbage").is_err());
}
