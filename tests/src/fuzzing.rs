//! The fuzz targets' bodies, shared by `cargo fuzz` (`fuzz/`) and the bounded property tests
//! of `cargo test` (`tests/fuzz_properties.rs`). Each takes arbitrary bytes and panics only
//! on a real bug: a crash of the code under test, or a property that does not hold.

use std::sync::OnceLock;

use toron_protocol::engine::{Action, DocEngine, EngineConfig, Grant, Input, SyncKind};
use toron_protocol::wire::{decode, encode};
use toron_protocol::ActorGate;
use toron_protocol::{ConnId, DocumentId, Message, PeerId};

/// The CBOR frame decoder: anything decodes or fails cleanly, and what decodes re-encodes to
/// a frame that decodes again and encodes to the same bytes. (Not necessarily to the same
/// message: the encoder writes defaults a peer may leave out, such as `["1"]` for a missing
/// `supportedProtocolVersions` — found by this target.)
pub fn wire_frame(data: &[u8]) {
    if let Ok(msg) = decode(data) {
        let frame = encode(&msg);
        let again = decode(&frame).unwrap_or_else(|e| panic!("our own frame: {e}"));
        assert_eq!(encode(&again), frame, "encoding is not stable");
    }
}

/// Splits `data` into frames: a length byte, then that many bytes (the rest at the end).
fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        let n = if len == 255 { rest.len() } else { n };
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// The fuzzed engine's gate: every actor is fine, and each participant may make 20 changes a
/// second in bursts of 100, so that the rate bound's refusals are fuzzed too.
struct RateGate(std::collections::HashMap<String, toron_protocol::rate::TokenBucket>);

impl ActorGate for RateGate {
    fn check(&self, _: &str, _: &[u8]) -> Result<(), toron_protocol::Refusal> {
        Ok(())
    }

    fn bind(&mut self, _: &str, _: &[u8]) {}

    fn admit(
        &mut self,
        participant: &str,
        changes: usize,
        now_ms: u64,
    ) -> Result<(), toron_protocol::Refusal> {
        self.0
            .entry(participant.to_string())
            .or_insert_with(|| toron_protocol::rate::TokenBucket::new(20, 100, now_ms))
            .take(changes, now_ms)
            .map_err(|ms| {
                toron_protocol::Refusal::new(
                    toron_protocol::RefusalKind::Rate,
                    format!("wait {ms} ms"),
                )
            })
    }
}

/// The connection handler's core: a sequence of frames from three connections into one
/// document's engine, stepped as the server steps it (durability confirmed at once). Whatever
/// arrives, the engine must not panic, and a connection it refused or closed gets no more.
/// Some frames come without write access, some from a participant (rate-bounded), and the
/// document may not grow past 16 KiB, 2,000 operations, nor take more than 200 operations in
/// one message, so every refusal path is fuzzed (the whole-document resend allowance too).
pub fn engine_frames(data: &[u8]) {
    let server = PeerId::new("toron-server-fuzz").unwrap_or_else(|_| unreachable!("non-empty"));
    let id = DocumentId::from_bytes([7; 16]);
    let mut engine = DocEngine::new(
        id,
        server,
        automerge::Automerge::new(),
        EngineConfig {
            max_document_bytes: 16 * 1024,
            max_ops_per_message: 200,
            max_document_ops: 2_000,
            max_inflated_bytes_per_message: 32 * 1024,
            ..EngineConfig::default()
        },
    );
    let mut gate = RateGate(Default::default());
    let mut seq = 0u64;
    let mut now = 1_000u64;
    for (i, frame) in frames(data).into_iter().enumerate() {
        let conn = ConnId((i % 3) as u64 + 1);
        now += 7;
        let grant = match i % 5 {
            4 => Grant::default(),
            3 => Grant {
                may_write: true,
                by: toron_protocol::Attribution {
                    participant: Some(format!("p{}", conn.0)),
                    role: Some("activist".into()),
                },
            },
            _ => Grant::open(),
        };
        match decode(frame) {
            Ok(Message::Sync {
                sender_id, data, ..
            }) => engine.push(Input::Sync {
                conn,
                peer: sender_id,
                kind: SyncKind::Sync,
                data,
                grant,
            }),
            Ok(Message::Request {
                sender_id, data, ..
            }) => engine.push(Input::Sync {
                conn,
                peer: sender_id,
                kind: SyncKind::Request,
                data,
                grant,
            }),
            Ok(Message::Leave { .. }) => engine.push(Input::Closed { conn }),
            _ => {
                // Raw automerge sync bytes straight in, as a broken client could send them.
                engine.push(Input::Sync {
                    conn,
                    peer: PeerId::new(format!("p{}", conn.0)).unwrap_or_else(|_| unreachable!()),
                    kind: SyncKind::Sync,
                    data: frame.to_vec(),
                    grant: Grant::open(),
                })
            }
        }
        let mut actions = engine.step(now, &mut gate);
        // Bounded: each round either confirms a batch or ends.
        for _ in 0..4 {
            let batch = actions.iter().find_map(|a| match a {
                Action::Append { batch, changes } => Some((*batch, changes.len() as u64)),
                _ => None,
            });
            let Some((batch, n)) = batch else { break };
            seq += n;
            actions = engine.durable(batch, seq);
        }
    }
}

/// The measure of storage chunks before anything inflates them (issue 29): any bytes are
/// measured or refused, never a panic, never more than the cap is reported, and never more
/// than the cap inflated to find out. Where Automerge reads the bytes as changes or a
/// document, the measure is at least what Automerge keeps of them (their uncompressed bytes),
/// so that the bound the engine applies is no smaller than what a chunk costs.
pub fn inflate(data: &[u8]) {
    use toron_protocol::inflate::{inflated_len, InflateError};
    let cap = 64 * 1024;
    match inflated_len(data, cap) {
        Ok(n) => {
            assert!(n <= cap, "measured {n}, over the cap {cap}");
            // What Automerge keeps of the chunk, as the engine reads it.
            let kept: u64 = toron_protocol::engine::parse_changes(data)
                .map(|changes| changes.iter().map(|c| c.raw_bytes().len() as u64).sum())
                .unwrap_or(0);
            // (A document stores its changes' contents once, as columns: what it keeps is its
            // changes' bytes, which are never much more than the columns.)
            assert!(
                kept <= n.saturating_mul(4).saturating_add(4096),
                "Automerge keeps {kept} bytes of a chunk measured at {n}"
            );
        }
        Err(InflateError::OverCap { cap: c }) => assert_eq!(c, cap),
        Err(InflateError::Malformed(_)) => {}
    }
    // And what the engine does with it, as a peer's sync message: whatever Automerge would
    // choke on (found by this target: a malformed bundle, a change naming an actor twice or
    // one its history does not have) is refused; nothing panics.
    let message = automerge::sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![data.to_vec()].into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };
    let server = PeerId::new("toron-server-fuzz").unwrap_or_else(|_| unreachable!("non-empty"));
    let mut engine = DocEngine::new(
        DocumentId::from_bytes([9; 16]),
        server,
        automerge::Automerge::new(),
        EngineConfig {
            max_inflated_bytes_per_message: cap,
            ..EngineConfig::default()
        },
    );
    engine.push(Input::Sync {
        conn: ConnId(1),
        peer: PeerId::new("peer").unwrap_or_else(|_| unreachable!("non-empty")),
        kind: SyncKind::Sync,
        data: message.encode(),
        grant: Grant::open(),
    });
    let actions = engine.step(1_000, &mut RateGate(Default::default()));
    if let Some(batch) = actions.iter().find_map(|a| match a {
        Action::Append { batch, .. } => Some(*batch),
        _ => None,
    }) {
        engine.durable(batch, 1);
    }
}

/// The schema's bounds on what participants write (issue 29), over documents a sequence of
/// operations builds: texts typed, spliced and put whole, statuses set. Each batch is checked
/// as the engine checks it, and applied only if taken. Whatever the operations: no panic; no
/// text of a notes layer ever holds more than [`toron_domain::schema::MAX_TEXT_CHARS`]; and
/// a submitted evaluation form changes only by a change that reopens it first.
pub fn schema_texts(data: &[u8]) {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};
    use toron_domain::policy::DocKey;
    use toron_domain::schema::{check, MAX_TEXT_CHARS};
    let (notes, eval) = (
        DocKey::Notes {
            session: "S".into(),
            participant: "P".into(),
        },
        DocKey::Eval {
            case: "C".into(),
            evaluator: "P".into(),
        },
    );
    for (key, doc_is_eval) in [(notes, false), (eval, true)] {
        let mut d = AutoCommit::new();
        let mut accepted = d.fork();
        let text = d
            .put_object(ROOT, "body", ObjType::Text)
            .unwrap_or_else(|_| unreachable!());
        d.commit();
        accepted.merge(&mut d).unwrap_or_else(|_| unreachable!());
        // (At most 24 steps: each forks the document, and longer scripts find nothing new.)
        for step in data.chunks(3).take(24) {
            let before = accepted.get_heads();
            let mut w = accepted.fork();
            let op = step.first().copied().unwrap_or(0);
            let n = usize::from(step.get(1).copied().unwrap_or(1)) * 24;
            let at = usize::from(step.get(2).copied().unwrap_or(0));
            let len = w.length(&text);
            let _ = match op % 6 {
                0 => w.splice_text(&text, at.min(len), 0, &"가".repeat(n)),
                1 => w.splice_text(&text, 0, (at % 7).min(len) as isize, ""),
                2 => w.put(ROOT, "note", "나".repeat(n * 3)),
                3 => w.put(ROOT, "status", "submitted"),
                4 => w.put(ROOT, "status", "draft"),
                _ => w.put(ROOT, "score", (n % 5) as i64 + 1),
            };
            w.commit();
            let changes = w.get_changes(&before);
            if changes.iter().all(|c| c.is_empty()) {
                continue;
            }
            let was_submitted = matches!(
                accepted.get(ROOT, "status"),
                Ok(Some((automerge::Value::Scalar(v), _))) if v.as_str() == Some("submitted")
            );
            if check(&key, accepted.document(), &changes).is_ok() {
                if doc_is_eval && was_submitted {
                    assert!(
                        op % 6 == 4,
                        "a submitted form changed without being reopened (op {op})"
                    );
                }
                accepted.merge(&mut w).unwrap_or_else(|_| unreachable!());
            }
            let body = accepted.text(&text).unwrap_or_default();
            assert!(
                body.chars().count() <= MAX_TEXT_CHARS,
                "a text of {} characters",
                body.chars().count()
            );
            if let Ok(Some((automerge::Value::Scalar(v), _))) = accepted.get(ROOT, "note") {
                let n = v.as_str().map_or(0, |t| t.chars().count());
                assert!(n <= MAX_TEXT_CHARS, "a note of {n} characters");
            }
        }
    }
}

/// The import bundle parser (size limit, JSON, NFC, validation): any bytes give a bundle or a
/// clear error, never a panic; an accepted bundle serialises again.
pub fn bundle(data: &[u8]) {
    if let Ok(b) = toron_domain::bundle::Bundle::parse(data) {
        let json = serde_json::to_vec(&b).unwrap_or_else(|e| panic!("an accepted bundle: {e}"));
        assert!(!json.is_empty());
    }
}

/// A real server, started once per process, for [`api_body`].
struct ApiServer {
    base: String,
    token: String,
    /// An organizer of series `BM` only: its requests elsewhere must be refused, not fail.
    series_token: String,
    /// The runtime the server runs on, kept alive with it.
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    agent: ureq::Agent,
}

fn api_server() -> &'static ApiServer {
    static SERVER: OnceLock<ApiServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let token = "toron_fuzz_admin_token_0123456789abcdef".to_string();
        let mut config = crate::secure_config(dir.path());
        config.admin_token = Some(token.clone());
        let running = runtime.block_on(crate::start_with(config));
        let series_token = runtime.block_on(async {
            let reg = running.registry();
            let p = toron_server::registry::Participant::new(
                "P-org-BM",
                "series organizer",
                toron_domain::vocab::ParticipantKind::Official,
            );
            reg.add_participant("admin", p)
                .await
                .unwrap_or_else(|e| panic!("participant: {e}"));
            reg.grant(
                "admin",
                "P-org-BM",
                toron_domain::policy::Role::Organizer,
                toron_domain::policy::Scope::Series("BM".into()),
            )
            .await
            .unwrap_or_else(|e| panic!("grant: {e}"));
            reg.issue_token("admin", "P-org-BM")
                .await
                .unwrap_or_else(|e| panic!("token: {e}"))
        });
        let base = format!("http://{}", running.addr());
        // The server lives as long as the process.
        std::mem::forget(running);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .new_agent();
        ApiServer {
            base,
            token,
            series_token,
            _runtime: runtime,
            _dir: dir,
            agent,
        }
    })
}

/// The HTTP API's JSON bodies: the first byte picks an endpoint that takes a body (and, by its
/// high bit, the token: the organizer of every series, or an organizer of series `BM` only),
/// the rest is the body, sent to a real server. Any body gets an answer below 500 (a 4xx with
/// a clear error, or success), and the server keeps answering.
pub fn api_body(data: &[u8]) {
    const ENDPOINTS: [(&str, &str); 9] = [
        ("POST", "/api/v1/participants"),
        ("POST", "/api/v1/roles"),
        ("DELETE", "/api/v1/roles"),
        ("POST", "/api/v1/sessions"),
        ("PUT", "/api/v1/sessions/S1/phase"),
        ("POST", "/api/v1/cases"),
        ("POST", "/api/v1/documents"),
        ("POST", "/api/v1/import?dry_run=true"),
        ("POST", "/api/v1/import/b1/applied"),
    ];
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, path) = ENDPOINTS[usize::from(pick & 0x7f) % ENDPOINTS.len()];
    let s = api_server();
    let url = format!("{}{path}", s.base);
    let token = if pick & 0x80 == 0 {
        &s.token
    } else {
        &s.series_token
    };
    let auth = format!("Bearer {token}");
    let response = match method {
        "POST" => s
            .agent
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body),
        "PUT" => s
            .agent
            .put(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body),
        _ => s
            .agent
            .delete(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .force_send_body()
            .send(body),
    };
    let response = response.unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
    let status = response.status().as_u16();
    assert!(
        status < 500,
        "{method} {path} answered {status} to {body:?}"
    );
}
