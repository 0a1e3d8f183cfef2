//! The fuzz targets (`fuzz/`, bodies in `toron_tests::fuzzing`) as bounded property tests:
//! valid seeds, the same seeds mutated, and arbitrary bytes. The seeds are also the committed
//! fuzzing corpus (`fuzz/corpus/`; rewrite it with
//! `cargo test -p toron-tests --test suite fuzz_properties::write_corpus -- --ignored`).

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use proptest::prelude::*;
use toron_protocol::wire::encode;
use toron_protocol::{DocumentId, Message, PeerId, PeerMetadata, PROTOCOL_VERSION};
use toron_tests::fuzzing;

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("peer id")
}

/// Real sync messages of a client making a few edits, as the server would receive them.
fn client_sync_messages() -> Vec<Vec<u8>> {
    let mut doc = AutoCommit::new();
    let mut state = automerge::sync::State::new();
    let mut out = Vec::new();
    for n in 0..4 {
        doc.put(ROOT, format!("k{n}"), n).expect("put");
        doc.commit();
        if let Some(m) = doc.sync().generate_sync_message(&mut state) {
            out.push(m.encode());
        }
        // As if acknowledged: a fresh state sends everything again next time.
        state = automerge::sync::State::new();
    }
    out
}

fn wire_seeds() -> Vec<Vec<u8>> {
    let id = DocumentId::from_bytes([3; 16]);
    let mut seeds = vec![
        encode(&Message::Join {
            sender_id: peer("phone-1"),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
        }),
        encode(&Message::Leave {
            sender_id: peer("phone-1"),
        }),
        encode(&Message::DocUnavailable {
            sender_id: peer("server"),
            target_id: peer("phone-1"),
            document_id: id,
        }),
    ];
    for data in client_sync_messages() {
        seeds.push(encode(&Message::Sync {
            sender_id: peer("phone-1"),
            target_id: peer("server"),
            document_id: id,
            data: data.clone(),
        }));
        seeds.push(encode(&Message::Request {
            sender_id: peer("phone-2"),
            target_id: peer("server"),
            document_id: id,
            data,
        }));
    }
    seeds
}

/// Frames in the engine target's framing: a length byte (255: the rest), then the frame.
fn engine_seeds() -> Vec<Vec<u8>> {
    let framed = |frames: &[Vec<u8>]| {
        let mut out = Vec::new();
        for f in frames {
            if f.len() < 255 {
                out.push(f.len() as u8);
                out.extend_from_slice(f);
            }
        }
        out
    };
    let wire = wire_seeds();
    let raw = client_sync_messages();
    vec![
        framed(&wire),
        framed(&raw),
        framed(&[wire[3].clone(), wire[5].clone(), wire[1].clone()]),
    ]
}

/// Bundles that must parse: the fuzzers mutate them, and a parser that refused one would be
/// wrong.
fn valid_bundle_seeds() -> Vec<Vec<u8>> {
    vec![include_bytes!("../../../examples/debate-bundle.json").to_vec()]
}

/// Shapes that must be refused cleanly: mutation material, never counted as valid.
fn invalid_bundle_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"format":"toron-bundle","version":1,"series":[],"participants":[]}"#.to_vec(),
        b"{}".to_vec(),
    ]
}

fn bundle_seeds() -> Vec<Vec<u8>> {
    let mut all = valid_bundle_seeds();
    all.extend(invalid_bundle_seeds());
    all
}

fn api_seeds() -> Vec<Vec<u8>> {
    let with = |pick: u8, json: &str| {
        let mut v = vec![pick];
        v.extend_from_slice(json.as_bytes());
        v
    };
    vec![
        with(
            0,
            r#"{"key":"p-kim","name":"김민지","affiliation":"구청","kind":"official"}"#,
        ),
        with(
            1,
            r#"{"participant":"p-kim","role":"activist","series":"S"}"#,
        ),
        with(
            2,
            r#"{"participant":"p-kim","role":"activist","series":"S"}"#,
        ),
        with(
            3,
            r#"{"key":"S1","series":"S","title":"도서관","phase":"draft"}"#,
        ),
        with(4, r#"{"phase":"live"}"#),
        with(5, r#"{"key":"C1","session":"S1","presenters":["p-kim"]}"#),
        with(6, r#"{"key":"notes:S1:p-kim"}"#),
        with(7, r#"{"format":"toron-bundle","version":1}"#),
        with(8, r#"{"documents":[]}"#),
    ]
}

/// A seed with a few bytes changed, inserted or cut.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut v = seeds[i].clone();
            for (at, byte, how) in edits {
                if v.is_empty() {
                    v.push(byte);
                    continue;
                }
                let at = usize::from(at) % v.len();
                match how {
                    0 => v[at] = byte,
                    1 => v.insert(at, byte),
                    _ => v.truncate(at),
                }
            }
            v
        })
}

/// Storage chunks as peers send them: saved documents (compressed columns), changes plain and
/// compressed, and a compressed change that inflates far past any cap.
fn inflate_seeds() -> Vec<Vec<u8>> {
    use automerge::transaction::Transactable;
    let mut d = automerge::AutoCommit::new();
    let t = d
        .put_object(automerge::ROOT, "body", automerge::ObjType::Text)
        .expect("text");
    d.splice_text(&t, 0, 0, &"가나다".repeat(300))
        .expect("splice");
    d.put(automerge::ROOT, "note", "라".repeat(400))
        .expect("put");
    d.commit();
    let mut change = d.get_changes(&[])[0].clone();
    let mut bomb = automerge::AutoCommit::new();
    bomb.put(automerge::ROOT, "x", "a".repeat(1 << 20))
        .expect("put");
    bomb.commit();
    let mut bombed = bomb.get_changes(&[])[0].clone();
    vec![
        d.save(),
        change.raw_bytes().to_vec(),
        change.bytes().to_vec(),
        bombed.bytes().to_vec(),
        [change.raw_bytes(), &d.save()[..]].concat(),
    ]
}

/// Operation scripts for the schema's bounds: typing, deleting, long notes, submitting and
/// reopening.
fn schema_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0, 100, 0, 0, 30, 5, 3, 0, 0, 0, 2, 0, 4, 0, 0, 0, 2, 0],
        vec![2, 60, 0, 2, 41, 0, 2, 42, 0],
        vec![3, 0, 0, 5, 3, 0, 1, 1, 1, 4, 0, 0, 5, 3, 0],
        vec![0, 125, 0, 0, 125, 0, 0, 125, 0, 1, 9, 9],
    ]
}

#[test]
fn valid_seeds_pass_every_target() {
    for s in inflate_seeds() {
        fuzzing::inflate(&s);
    }
    for s in schema_seeds() {
        fuzzing::schema_texts(&s);
    }
    for s in wire_seeds() {
        fuzzing::wire_frame(&s);
    }
    for s in engine_seeds() {
        fuzzing::engine_frames(&s);
    }
    for s in valid_bundle_seeds() {
        if let Err(e) = toron_domain::bundle::Bundle::parse(&s) {
            panic!("a valid seed must parse: {e}");
        }
        fuzzing::bundle(&s);
    }
    for s in invalid_bundle_seeds() {
        assert!(
            toron_domain::bundle::Bundle::parse(&s).is_err(),
            "an invalid seed must be refused: {}",
            String::from_utf8_lossy(&s)
        );
        fuzzing::bundle(&s);
    }
    for s in api_seeds() {
        fuzzing::api_body(&s);
    }
}

/// A seed mutated, or random bytes up to `max` long.
fn inputs(seeds: Vec<Vec<u8>>, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![mutated(seeds), prop::collection::vec(any::<u8>(), 0..max)]
}

/// `cases` cases, and no failure file written into the tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn wire_frames_never_panic_and_round_trip(data in inputs(wire_seeds(), 256)) {
        fuzzing::wire_frame(&data);
    }

    #[test]
    fn engine_takes_any_frames(data in inputs(engine_seeds(), 512)) {
        fuzzing::engine_frames(&data);
    }

    #[test]
    fn bundles_parse_or_fail_cleanly(data in inputs(bundle_seeds(), 256)) {
        fuzzing::bundle(&data);
    }

    #[test]
    fn chunks_are_measured_within_their_cap(data in inputs(inflate_seeds(), 2048)) {
        fuzzing::inflate(&data);
    }
}

proptest! {
    // Each case applies up to twenty changes to two documents (slow in a debug build).
    #![proptest_config(config(24))]

    #[test]
    fn participants_texts_stay_within_their_bounds(data in inputs(schema_seeds(), 60)) {
        fuzzing::schema_texts(&data);
    }
}

/// Fewer cases than the others: each one is a request to a real server.
#[test]
fn api_bodies_never_get_a_server_error() {
    let mut runner = proptest::test_runner::TestRunner::new(config(192));
    let outcome = runner.run(&inputs(api_seeds(), 128), |data| {
        fuzzing::api_body(&data);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// Writes the seeds as the fuzzing corpus (`fuzz/corpus/TARGET/seed-N`).
#[test]
#[ignore]
fn write_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, seeds) in [
        ("wire_frame", wire_seeds()),
        ("engine_frames", engine_seeds()),
        ("bundle", bundle_seeds()),
        ("api_body", api_seeds()),
        ("inflate", inflate_seeds()),
        ("schema_texts", schema_seeds()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).expect("write");
        }
    }
}
