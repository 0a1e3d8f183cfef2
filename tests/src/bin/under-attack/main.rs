//! The memory test of issue 15: the attacks of the red-team pass's high findings, all at once
//! for SECONDS (default 60), against the release server binary with its default flags, while a
//! room of 25 honest clients keeps editing one document (one edit a second each, the
//! `toron bench` clients). Passes (exit 0) only if the server's peak RSS stays under 512 MiB,
//! the honest clients' p99 under 100 ms, every honest edit reached every other honest client,
//! the facilitator whose peer id was attacked kept its connection, and `verify` passes on the
//! data afterwards. Prints one JSON report.
//!
//! The attacks, each in a loop with its own participant's token:
//! - *takeover*: joining with the facilitator's peer id;
//! - *peer ids*: joining with a 200 KB peer id;
//! - *invalid ids*: messages naming 64 KiB invalid document ids;
//! - *import bodies*: headers of a 60 MB import, without a token and with a reader's;
//! - *replays*: slow SSE replays opened and abandoned, and `speed=1e-300`;
//! - *partial frames*: one token's 32 connections, each holding all but 4 bytes of a largest
//!   (4 MiB) message;
//! - *non-readers*: four connections that ask for the 1 MiB case and never read;
//! - *repeated requests*: asking for that case again and again on one connection;
//! - *ephemeral*: messages on the case with a new 256-byte `sessionId` each, then one of 1 MiB.
//!
//! Run: `cargo build --release -p toron-tests --bin under-attack --bin e2e-toron-server &&
//! target/release/under-attack 60` (name attacks after the seconds to run only those:
//! `… 60 partial silent`; `none` runs none). The load generator and the attacks share the machine's
//! cores with the server.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use serde_json::json;
use toron_cli::admin::Admin;
use toron_cli::sync_client::{url_with_token, Connection, DocSync};
use toron_domain::policy::DocKey;
use toron_protocol::{Message, PeerId, PROTOCOL_VERSION};
use toron_tests::RawPeer;

mod round1;
mod round2;

const LIMIT: Duration = Duration::from_secs(30);
const ADMIN: &str = "toron_admin_token_of_the_memory_test_0123456789";
const SERIES: &str = "ATK";
const SESSION: &str = "S1";
const CASE: &str = "C1";

const MAX_RSS_MIB: f64 = 512.0;
const MAX_P99_MS: f64 = 100.0;

/// What each attack managed, counted as it goes.
#[derive(Debug, Default)]
struct Counts {
    takeover_refused: AtomicU64,
    takeover_accepted: AtomicU64,
    long_peer_ids_refused: AtomicU64,
    invalid_id_messages: AtomicU64,
    invalid_id_connections_closed: AtomicU64,
    import_heads_answered: AtomicU64,
    import_heads_unanswered: AtomicU64,
    replays_abandoned: AtomicU64,
    replay_speeds_refused: AtomicU64,
    partial_frames_held: AtomicU64,
    partial_frame_bytes: AtomicU64,
    non_readers: AtomicU64,
    repeated_requests: AtomicU64,
    repeated_request_answers: AtomicU64,
    ephemeral_sent: AtomicU64,
    long_session_ids_refused: AtomicU64,
    attack_errors: AtomicU64,
}

struct Server {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .unwrap_or_default()
        .with_file_name("e2e-toron-server")
}

/// The release server with its default flags (a free port and `data` aside); its log (at the
/// default level) goes to a file whose size the report gives.
fn start(data: &std::path::Path) -> anyhow::Result<Server> {
    // (`UNDER_ATTACK_LOG=FILE` keeps the server's log for reading.)
    let log = std::env::var_os("UNDER_ATTACK_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| data.with_extension("log"));
    let mut child = Command::new(server_binary())
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("TORON_ADMIN_TOKEN", ADMIN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context(
            "start the server (cargo build --release -p toron-tests --bin e2e-toron-server)",
        )?;
    let url = toron_tests::printed_url(&mut child)?;
    Ok(Server { child, url, log })
}

/// Resident and peak resident memory of `pid`, in MiB.
fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let mut s = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        let l = s.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Varied Hangul (automerge compresses repeated text), `chars` long.
fn text(chars: usize, mut x: u32) -> String {
    (0..chars)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from_u32(0xAC00 + (x >> 8) % 11_172).unwrap_or('가')
        })
        .collect()
}

/// The debate the attackers take part in: a live session, its case (1 MiB of text), a
/// facilitator and one participant per attack; returns each participant's token.
fn roster(url: &str) -> anyhow::Result<std::collections::HashMap<&'static str, String>> {
    let admin = Admin::new(url, Some(ADMIN.into()), LIMIT);
    let people = [
        ("P-chair", "facilitator"),
        ("P-takeover", "observer"),
        ("P-peerid", "observer"),
        ("P-invalid", "observer"),
        ("P-import", "observer"),
        ("P-replay", "observer"),
        ("P-partial", "observer"),
        ("P-silent", "observer"),
        ("P-again", "observer"),
        ("P-ephemeral", "observer"),
    ]
    .into_iter()
    .chain(round2::PEOPLE)
    .collect::<Vec<_>>();
    // People first: the session names its facilitator, who must be a participant.
    let mut tokens = std::collections::HashMap::new();
    for &(who, _) in &people {
        let made = admin.call(
            "POST",
            "/api/v1/participants",
            Some(json!({ "key": who, "name": who, "kind": "activist" })),
        )?;
        let token = made["token"].as_str().context("a token")?.to_string();
        tokens.insert(who, token);
    }
    admin.call(
        "POST",
        "/api/v1/sessions",
        Some(json!({ "key": SESSION, "series": SERIES, "title": "공격 중의 토론", "phase": "scheduled", "facilitator": "P-chair" })),
    )?;
    for &(who, role) in &people {
        admin.call(
            "POST",
            "/api/v1/roles",
            Some(json!({ "participant": who, "role": role, "session": SESSION })),
        )?;
    }
    admin.call(
        "POST",
        "/api/v1/cases",
        Some(json!({ "key": CASE, "session": SESSION, "presenters": [] })),
    )?;
    for key in [format!("case:{CASE}"), format!("session:{SESSION}")] {
        admin.call("POST", "/api/v1/documents", Some(json!({ "key": key })))?;
    }
    Ok(tokens)
}

/// The case: about 1 MiB of text (350,000 characters) in two sections (a section holds at
/// most 200,000), typed in pieces of 87,500 (one message may bring 100,000 operations).
async fn write_case(url: &str) -> anyhow::Result<()> {
    let mut conn = Connection::connect(&url_with_token(url, Some(ADMIN)), LIMIT).await?;
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "schema", "case/1")?;
    let sections = doc.put_object(ROOT, "sections", ObjType::Map)?;
    let parts = [
        doc.put_object(&sections, "summary", ObjType::Text)?,
        doc.put_object(&sections, "results", ObjType::Text)?,
    ];
    doc.commit();
    let case = DocKey::Case { case: CASE.into() };
    let mut d = DocSync::new(case.document_id(), doc);
    for piece in 0..4u32 {
        let section = &parts[piece as usize / 2];
        let at = automerge::ReadDoc::length(&d.doc, section);
        d.doc
            .splice_text(section, at, 0, &text(87_500, 3 + piece))?;
        d.doc.commit();
        conn.push(&mut d, LIMIT).await?;
    }
    conn.close().await;
    Ok(())
}

/// The example series (`examples/debate-bundle.json`), imported as an organizer does, its
/// library session live.
async fn import_example(url: &str) -> anyhow::Result<()> {
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    toron_cli::import::run(
        url,
        Some(ADMIN.into()),
        &bundle,
        toron_cli::import::Options {
            dry_run: false,
            set_phases: false,
            strict: false,
        },
        LIMIT,
    )
    .await?;
    Admin::new(url, Some(ADMIN.into()), LIMIT).call(
        "PUT",
        "/api/v1/sessions/S-LIB/phase",
        Some(json!({ "phase": "live", "force": true })),
    )?;
    Ok(())
}

fn case_id() -> toron_protocol::DocumentId {
    DocKey::Case { case: CASE.into() }.document_id()
}

fn join(peer: &str) -> anyhow::Result<Message> {
    Ok(Message::Join {
        sender_id: PeerId::new(peer)?,
        supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
        peer_metadata: None,
    })
}

/// The first sync message of a peer that has nothing.
fn first_sync() -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    automerge::sync::SyncDoc::generate_sync_message(AutoCommit::new().document(), &mut state)
        .map(|m| m.encode())
        .unwrap_or_default()
}

fn request(peer: &str) -> anyhow::Result<Message> {
    Ok(Message::sync_of_kind(
        toron_protocol::SyncKind::Request,
        PeerId::new(peer)?,
        PeerId::new("server")?,
        case_id(),
        first_sync(),
    ))
}

/// A `request` frame naming an invalid document id of 64 KiB.
fn invalid_id_frame(bad: &str) -> Vec<u8> {
    let mut frame = Vec::new();
    let mut e = minicbor::Encoder::new(&mut frame);
    let _ = e
        .map(5)
        .and_then(|e| e.str("type"))
        .and_then(|e| e.str("request"))
        .and_then(|e| e.str("senderId"))
        .and_then(|e| e.str("invalid"))
        .and_then(|e| e.str("targetId"))
        .and_then(|e| e.str("server"))
        .and_then(|e| e.str("documentId"))
        .and_then(|e| e.str(bad))
        .and_then(|e| e.str("data"))
        .and_then(|e| e.bytes(&[]));
    frame
}

fn http_addr(url: &str) -> String {
    url.trim_start_matches("ws://").to_string()
}

/// Runs `attack` again and again until `stop`, pausing `pause` between rounds.
async fn repeat<F, Fut>(stop: Arc<AtomicBool>, counts: Arc<Counts>, pause: Duration, mut attack: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = attack().await {
            counts.attack_errors.fetch_add(1, Ordering::Relaxed);
            note(&e);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Attacks fail all the time — that is the point; only the first few reasons are printed.
fn note(e: &anyhow::Error) {
    static SHOWN: AtomicU64 = AtomicU64::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("attack: {e:#}");
    }
}

/// One attack (or a family of them, each in its task), started when `on` names it.
type Attack = fn(
    &str,
    &dyn Fn(&str) -> String,
    &dyn Fn(&str) -> bool,
    &Arc<AtomicBool>,
    &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>>;

/// The facilitator, whose peer id the takeover attack wants; it reads (and pongs) all along.
/// Returns its task, whether it is still connected, and whether it could join.
fn spawn_chair(
    rt: &tokio::runtime::Runtime,
    url: &str,
    tokens: &std::collections::HashMap<&'static str, String>,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<AtomicBool>,
    tokio::sync::oneshot::Receiver<bool>,
) {
    let chair_alive = Arc::new(AtomicBool::new(true));
    let (joined_tx, joined_rx) = tokio::sync::oneshot::channel();
    let chair = {
        let url = url_with_token(
            url,
            Some(tokens.get("P-chair").map(String::as_str).unwrap_or("")),
        );
        let alive = chair_alive.clone();
        rt.spawn(async move {
            let Ok(mut p) = RawPeer::joined(&url, "chair-tab").await else {
                alive.store(false, Ordering::Relaxed);
                let _ = joined_tx.send(false);
                return;
            };
            let _ = joined_tx.send(true);
            loop {
                match p.recv(Duration::from_secs(3600)).await {
                    Ok(Some(_)) => {}
                    _ => {
                        alive.store(false, Ordering::Relaxed);
                        return;
                    }
                }
            }
        })
    };
    (chair, chair_alive, joined_rx)
}

/// Samples the server's memory every 200 ms until `sampling` turns false.
fn spawn_sampler(pid: u32) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<f64>>) {
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Some((rss, _)) = rss_mib(pid) {
                    samples.push(rss);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        })
    };
    (sampling, sampler)
}

/// What a run left to judge.
struct Outcome {
    ran: Duration,
    peak: f64,
    samples: Vec<f64>,
    honest: toron_cli::bench::BenchReport,
    chair_kept: bool,
    log_records: Option<u64>,
    verified: std::process::Output,
    log_bytes: u64,
    data_bytes: u64,
}

/// Prints the run's report and says whether it passed.
fn judge(
    o: Outcome,
    counts: &Counts,
    counts2: &round2::Counts2,
    only: &[String],
) -> anyhow::Result<()> {
    let Outcome {
        ran,
        peak,
        samples,
        honest,
        chair_kept,
        log_records,
        verified,
        log_bytes,
        data_bytes,
    } = o;
    let c = counts;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let ok_memory = peak < MAX_RSS_MIB;
    let ok_latency = honest.latency_ms_p99 < MAX_P99_MS;
    let ok_delivered = honest.delivered_share == 1.0 && honest.errors == 0;
    let ok_verify = verified.status.success();
    let ok_attacks = get(&c.takeover_accepted) == 0
        && chair_kept
        && get(&c.import_heads_unanswered) == 0
        && (get(&c.partial_frames_held) > 0 || !only.is_empty());
    let (second_pass, ok_second_pass) = round2::report(counts2, only);
    let report = json!({
        "seconds": ran.as_secs_f64(),
        "server_peak_rss_mib": peak,
        "server_rss_median_mib": median,
        "honest": {
            "clients": honest.clients,
            "edits": honest.edits,
            "delivered_share": honest.delivered_share,
            "errors": honest.errors,
            "latency_ms_p50": honest.latency_ms_p50,
            "latency_ms_p99": honest.latency_ms_p99,
            "latency_ms_max": honest.latency_ms_max,
            "server_cpu_percent": honest.server_cpu_percent,
        },
        "attacks": {
            "takeover_refused": get(&c.takeover_refused),
            "takeover_accepted": get(&c.takeover_accepted),
            "facilitator_kept_its_connection": chair_kept,
            "long_peer_ids_refused": get(&c.long_peer_ids_refused),
            "invalid_id_messages": get(&c.invalid_id_messages),
            "invalid_id_connections_closed": get(&c.invalid_id_connections_closed),
            "import_heads_answered": get(&c.import_heads_answered),
            "import_heads_unanswered": get(&c.import_heads_unanswered),
            "replays_abandoned": get(&c.replays_abandoned),
            "replay_speeds_refused": get(&c.replay_speeds_refused),
            "partial_frames_held": get(&c.partial_frames_held),
            "partial_frame_mib_sent": get(&c.partial_frame_bytes) as f64 / 1048576.0,
            "non_readers": get(&c.non_readers),
            "repeated_requests": get(&c.repeated_requests),
            "repeated_request_answers": get(&c.repeated_request_answers),
            "ephemeral_sent": get(&c.ephemeral_sent),
            "long_session_ids_refused": get(&c.long_session_ids_refused),
            "attack_rounds_failed": get(&c.attack_errors),
        },
        "attacks_of_the_second_pass": second_pass,
        "server_log_bytes": log_bytes,
        "data_dir_bytes": data_bytes,
        "log_records": log_records,
        "verify": if ok_verify { "ok".to_string() } else { String::from_utf8_lossy(&verified.stderr).to_string() },
        "pass": {
            "memory_under_512_mib": ok_memory,
            "p99_under_100_ms": ok_latency,
            "nothing_lost": ok_delivered,
            "verify": ok_verify,
            "attacks_refused": ok_attacks,
            "second_pass_refused_and_newcomers_joined": ok_second_pass,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if ok_memory && ok_latency && ok_delivered && ok_verify && ok_attacks && ok_second_pass {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the memory test failed: see `pass` above"))
    }
}

/// Stops the server with SIGTERM and runs `verify` on what it left; also the sizes of its log
/// file and data directory.
fn stop_and_verify(
    server: &mut Server,
    pid: u32,
    data: &std::path::Path,
) -> anyhow::Result<(std::process::Output, u64, u64)> {
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = server.child.wait();
    let verified = Command::new(server_binary())
        .arg("--data")
        .arg(data)
        .arg("verify")
        .env("RUST_LOG", "warn")
        .output()?;
    let log_bytes = std::fs::metadata(&server.log).map(|m| m.len()).unwrap_or(0);
    let data_bytes: u64 = walk_size(data);
    Ok((verified, log_bytes, data_bytes))
}

/// What the hall holds before the attacks start: the case (written before the session goes
/// live, as organizers prepare it), the example series beside it, and P-KIM's token there.
async fn prepare(
    url: &str,
    mut tokens: std::collections::HashMap<&'static str, String>,
) -> anyhow::Result<std::collections::HashMap<&'static str, String>> {
    write_case(url).await?;
    import_example(url).await?;
    // (Set-up, before any load: the blocking API client is fine here.)
    let admin = Admin::new(url, Some(ADMIN.into()), LIMIT);
    let kim = admin.call("POST", "/api/v1/participants/P-KIM/token", None)?;
    admin.call(
        "PUT",
        &format!("/api/v1/sessions/{SESSION}/phase"),
        Some(json!({ "phase": "live" })),
    )?;
    tokens.insert(
        "P-KIM",
        kim["token"].as_str().context("P-KIM's token")?.to_string(),
    );
    Ok(tokens)
}

fn main() -> anyhow::Result<()> {
    let seconds: u64 = toron_tests::first_arg_or(60, "SECONDS")?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut server = start(&data)?;
    let pid = server.child.id();
    let url = server.url.clone();
    let tokens = roster(&url)?;

    // The honest room runs on its own runtime, so that the attacks' tasks do not delay its
    // clients' clocks; the attacks get one thread of their own.
    let honest_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let attack_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let tokens = honest_rt.block_on(prepare(&url, tokens))?;

    // The facilitator, whose peer id the takeover attack wants; it reads (and pongs) all along.
    let (chair, chair_alive, joined_rx) = spawn_chair(&attack_rt, &url, &tokens);

    anyhow::ensure!(
        attack_rt.block_on(joined_rx).unwrap_or(false),
        "the facilitator could not join"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let counts2 = Arc::new(round2::Counts2::default());
    let only: Vec<String> = std::env::args().skip(2).collect();
    let attack_tasks = {
        let _guard = attack_rt.enter();
        round1::attacks(&url, &tokens, &stop, &counts, &counts2, &only)
    };
    // Memory, sampled every 200 ms.
    let (sampling, sampler) = spawn_sampler(pid);

    let started = Instant::now();
    let cfg = toron_cli::bench::BenchConfig {
        server: url_with_token(&url, Some(ADMIN)),
        clients: 25,
        docs: 1,
        interval: Duration::from_millis(1000),
        duration: Duration::from_secs(seconds),
        drain: Duration::from_secs(5),
        server_pid: Some(pid),
        writers_per_doc: None,
        text: false,
        light_followers: false,
    };
    let honest = honest_rt.block_on(toron_cli::bench::run(cfg, |_| {}));
    stop.store(true, Ordering::Relaxed);
    let ran = started.elapsed();
    attack_rt.block_on(async {
        for t in attack_tasks {
            t.abort();
        }
    });
    let chair_kept = chair_alive.load(Ordering::Relaxed);
    let log_records = log_records(&url);
    chair.abort();
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    let peak = rss_mib(pid).map(|(_, hwm)| hwm).unwrap_or(f64::NAN);
    let honest = honest?;

    // SIGTERM, then `verify` on what it left.
    let (verified, log_bytes, data_bytes) = stop_and_verify(&mut server, pid, &data)?;

    judge(
        Outcome {
            ran,
            peak,
            samples,
            honest,
            chair_kept,
            log_records,
            verified,
            log_bytes,
            data_bytes,
        },
        &counts,
        &counts2,
        &only,
    )?;
    drop(server);
    Ok(())
}

/// `toron_log_records` of the server's `/metrics`: what the run wrote to the event log.
fn log_records(url: &str) -> Option<u64> {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(http_addr(url)).ok()?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("toron_log_records ")?.trim().parse().ok())
}

fn walk_size(p: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::metadata(p) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| walk_size(&e.path())).sum())
        .unwrap_or(0)
}
