//! `toron bench`: N real sync clients on D documents, each making one edit every I ms for T
//! seconds, measuring how long each edit takes to reach every other client of its document.
//!
//! Every client is a full automerge-repo peer (its own Automerge document and sync state, the
//! same client code as the CLI), so the server sees exactly the traffic real clients make:
//! each edit is a `sync` to the server, a `sync` from the server to every other subscriber,
//! and their acknowledgements. Latency is measured per delivery, from the moment the author
//! committed the edit to the moment another client applied it; all clients live in this
//! process and share one clock.
//!
//! With `light_followers`, the clients that only follow are [`LightFollower`]s instead: they
//! check and keep every change's hash and dependencies and answer as a real peer would, but
//! do not build the document. A delivery then counts when the change joins the follower's
//! graph. That keeps the load generator from being the bottleneck when one document takes
//! hundreds of edits a second (see that module).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::sync;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ReadDoc, ROOT};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::{timeout_at, Instant};
use toron_protocol::{DocumentId, Message, SyncKind};

use crate::light_follower::LightFollower;
use crate::sync_client::{Connection, DocSync};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub server: String,
    pub clients: usize,
    pub docs: usize,
    pub interval: Duration,
    pub duration: Duration,
    /// How long to keep receiving after the last edit.
    pub drain: Duration,
    pub server_pid: Option<u32>,
    /// Only the first N clients of each document edit; the others follow it (None: all edit).
    pub writers_per_doc: Option<usize>,
    /// Edits type one character into a text instead of setting a key (the *typing* scenario).
    pub text: bool,
    /// Clients that do not edit follow as [`LightFollower`]s rather than full documents.
    pub light_followers: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub clients: usize,
    pub docs: usize,
    pub interval_ms: u64,
    pub duration_s: f64,
    /// Clients that edit (the others follow).
    pub writers: usize,
    pub light_followers: bool,
    pub edits: u64,
    /// Edits made per second of the editing period, all clients together.
    pub edits_per_sec: f64,
    pub expected_deliveries: u64,
    pub deliveries: u64,
    /// Share of deliveries (edit × other client of its document) that arrived.
    pub delivered_share: f64,
    /// Share of edits that reached every other client of their document.
    pub edits_fully_delivered_share: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// p99 of the edits made in the last minute of the run (documents are largest then).
    pub latency_ms_p99_last_minute: f64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub bench_cpu_percent: Option<f64>,
}

#[derive(Debug)]
struct Sent {
    at: Instant,
    receivers_left: usize,
}

/// What one client does.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// Makes edits (otherwise it only follows its document).
    writes: bool,
    /// Types into the document's text rather than setting its own key.
    text: bool,
    /// Edits sent from then on count for the last minute's p99.
    last_minute: Instant,
}

#[derive(Debug, Default)]
struct Shared {
    sent: Mutex<HashMap<ChangeHash, Sent>>,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, e: impl std::fmt::Display) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.to_string());
    }
}

/// CPU ticks (user + system) and resident memory of a process, from /proc.
pub(crate) fn proc_sample(pid: &str) -> Option<(u64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some((ticks, kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0))
}

/// Linux reports CPU time in clock ticks of 1/100 s on every mainstream architecture.
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// Connects every client, creates the documents (one client each) and lets the others find
/// them: each client with its connection and its copy.
async fn open_documents(
    cfg: &BenchConfig,
    limit: Duration,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<Vec<(Connection, DocSync)>> {
    progress(&format!("connecting {} clients", cfg.clients));
    let mut conns = Vec::with_capacity(cfg.clients);
    for chunk_start in (0..cfg.clients).step_by(50) {
        let end = (chunk_start + 50).min(cfg.clients);
        let handles: Vec<_> = (chunk_start..end)
            .map(|_| {
                let url = cfg.server.clone();
                tokio::spawn(async move { Connection::connect(&url, limit).await })
            })
            .collect();
        for h in handles {
            conns.push(h.await??);
        }
    }
    progress(&format!("creating {} documents", cfg.docs));
    let mut ids = Vec::with_capacity(cfg.docs);
    let mut docs: Vec<Option<DocSync>> = (0..cfg.clients).map(|_| None).collect();
    for (d, conn) in conns.iter_mut().enumerate().take(cfg.docs) {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "bench", "toron")?;
        if cfg.text {
            doc.put_object(ROOT, "text", automerge::ObjType::Text)?;
        }
        let id = DocumentId::random();
        let mut ds = DocSync::new(id, doc);
        conn.push(&mut ds, limit).await?;
        ids.push(id);
        docs[d] = Some(ds);
    }
    let mut finds = Vec::new();
    for (i, mut conn) in conns.drain(..).enumerate() {
        let id = ids[i % cfg.docs];
        let existing = docs[i].take();
        finds.push(tokio::spawn(async move {
            let ds = match existing {
                Some(ds) => ds,
                None => conn.find(id, limit).await?,
            };
            Ok::<_, anyhow::Error>((conn, ds))
        }));
    }
    let mut peers = Vec::with_capacity(cfg.clients);
    for f in finds {
        peers.push(f.await??);
    }
    Ok(peers)
}

/// What a client ends with: its latency samples (µs, and whether in the last minute) and
/// how many edits it made.
type ClientResult = anyhow::Result<(Vec<(u64, bool)>, u64)>;

/// Waits for every client and gathers its latency samples (all, and the last minute's) and
/// edit count; a client's error is counted, not fatal.
async fn collect(
    tasks: Vec<tokio::task::JoinHandle<ClientResult>>,
    shared: &Shared,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>, u64)> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut late = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut edits = 0u64;
    for t in tasks {
        match t.await {
            Ok(Ok((samples, n))) => {
                edits += n;
                for (s, in_last_minute) in samples {
                    hist.record(s.max(1))?;
                    if in_last_minute {
                        late.record(s.max(1))?;
                    }
                }
            }
            Ok(Err(e)) => shared.error(e),
            Err(e) => shared.error(e),
        }
    }
    Ok((hist, late, edits))
}

/// Starts every client's loop, the first edits spread over one interval; returns the tasks
/// and how many clients edit.
fn start_clients(
    cfg: &BenchConfig,
    peers: Vec<(Connection, DocSync)>,
    shared: &Arc<Shared>,
    started: Instant,
) -> (Vec<tokio::task::JoinHandle<ClientResult>>, usize) {
    let clients_on_doc: Vec<usize> = (0..cfg.docs)
        .map(|d| (0..cfg.clients).filter(|i| i % cfg.docs == d).count())
        .collect();
    let edit_until = started + cfg.duration;
    let hard_stop = edit_until + cfg.drain;
    let mut tasks = Vec::new();
    let last_minute = edit_until
        .checked_sub(Duration::from_secs(60))
        .unwrap_or(started);
    let writes = |i: usize| cfg.writers_per_doc.is_none_or(|w| i / cfg.docs < w);
    let writers = (0..cfg.clients).filter(|&i| writes(i)).count();
    for (i, (conn, mut ds)) in peers.into_iter().enumerate() {
        let shared = shared.clone();
        let others = clients_on_doc[i % cfg.docs] - 1;
        let writes = writes(i);
        let peer = if cfg.light_followers && !writes {
            Peer::Light(ds.id, LightFollower::from_document(ds.doc.document()))
        } else {
            Peer::Full(Box::new(ds))
        };
        let mode = Mode {
            writes,
            text: cfg.text,
            last_minute,
        };
        // Spread the first edits over one interval so that clients do not tick in lockstep.
        let offset = cfg.interval.mul_f64((i as f64 * 0.618_034) % 1.0);
        let interval = cfg.interval;
        tasks.push(tokio::spawn(client_loop(
            i,
            conn,
            peer,
            mode,
            shared,
            others,
            started + offset,
            interval,
            edit_until,
            hard_stop,
        )));
    }
    (tasks, writers)
}

pub async fn run(cfg: BenchConfig, mut progress: impl FnMut(&str)) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        cfg.clients >= 2 && cfg.docs >= 1 && cfg.clients >= 2 * cfg.docs,
        "need at least two clients per document"
    );
    anyhow::ensure!(
        cfg.writers_per_doc != Some(0),
        "need at least one writer per document"
    );
    let limit = Duration::from_secs(30);

    // 1. Connect everyone, create the documents, let the others find them.
    let peers = open_documents(&cfg, limit, &mut progress).await?;

    // 2. Edit and measure.
    progress(&format!(
        "running: {} clients × {} docs, one edit every {} ms each, for {:?}",
        cfg.clients,
        cfg.docs,
        cfg.interval.as_millis(),
        cfg.duration
    ));
    let shared = Arc::new(Shared::default());
    let server_before = cfg.server_pid.and_then(|p| proc_sample(&p.to_string()));
    let self_before = proc_sample("self");
    let started = Instant::now();
    let (tasks, writers) = start_clients(&cfg, peers, &shared, started);
    let (hist, late, edits) = collect(tasks, &shared).await?;
    let wall = started.elapsed().as_secs_f64();
    let server_after = cfg.server_pid.and_then(|p| proc_sample(&p.to_string()));
    let self_after = proc_sample("self");

    let sent = shared.sent.lock().unwrap_or_else(|p| p.into_inner());
    let fully = sent.values().filter(|s| s.receivers_left == 0).count() as u64;
    // Every edit is due at every other client of its document: `receivers_left` started at
    // that number and went down by one per delivery.
    let deliveries = hist.len();
    let expected_deliveries =
        deliveries + sent.values().map(|s| s.receivers_left as u64).sum::<u64>();
    let errors = shared
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let cpu = |b: Option<(u64, f64, f64)>, a: Option<(u64, f64, f64)>| match (b, a) {
        (Some(b), Some(a)) => Some((a.0.saturating_sub(b.0)) as f64 / TICKS_PER_SEC / wall * 100.0),
        _ => None,
    };
    Ok(BenchReport {
        clients: cfg.clients,
        docs: cfg.docs,
        interval_ms: cfg.interval.as_millis() as u64,
        duration_s: cfg.duration.as_secs_f64(),
        writers,
        light_followers: cfg.light_followers,
        edits,
        edits_per_sec: edits as f64 / cfg.duration.as_secs_f64().max(1e-9),
        expected_deliveries,
        deliveries,
        delivered_share: if expected_deliveries == 0 {
            0.0
        } else {
            deliveries as f64 / expected_deliveries as f64
        },
        edits_fully_delivered_share: if edits == 0 {
            0.0
        } else {
            fully as f64 / edits as f64
        },
        latency_ms_p50: ms(0.50),
        latency_ms_p95: ms(0.95),
        latency_ms_p99: ms(0.99),
        latency_ms_max: hist.max() as f64 / 1000.0,
        latency_ms_p99_last_minute: late.value_at_quantile(0.99) as f64 / 1000.0,
        errors: errors.len() as u64,
        first_errors: errors.into_iter().take(5).collect(),
        server_cpu_percent: cpu(server_before, server_after),
        server_rss_mib: server_after.map(|s| s.1),
        server_peak_rss_mib: server_after.map(|s| s.2),
        bench_cpu_percent: cpu(self_before, self_after),
    })
}

/// A client's view of its document.
#[derive(Debug)]
enum Peer {
    /// A full Automerge peer: edits, or follows by applying every change.
    Full(Box<DocSync>),
    /// A follower that keeps only the change graph.
    Light(DocumentId, LightFollower),
}

/// One client: edit on schedule, take in what arrives, reply as the sync protocol asks.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    me: usize,
    mut conn: Connection,
    mut peer: Peer,
    mode: Mode,
    shared: Arc<Shared>,
    others: usize,
    first_edit: Instant,
    interval: Duration,
    edit_until: Instant,
    hard_stop: Instant,
) -> ClientResult {
    let key = format!("c{me}");
    let mut next_edit = first_edit;
    let mut seq = 0i64;
    let mut samples = Vec::new();
    // A light follower starts by telling the server where it stands, as the full peer it
    // replaces would have after `find`.
    if let Peer::Light(id, f) = &mut peer {
        if let Some(m) = f.reply(&[]) {
            conn.send_sync(SyncKind::Sync, *id, m).await?;
        }
    }
    loop {
        let now = Instant::now();
        if now >= hard_stop {
            break;
        }
        if let (Peer::Full(ds), true) = (
            &mut peer,
            mode.writes && now >= next_edit && now < edit_until,
        ) {
            seq += 1;
            edit(&mut conn, ds, &key, seq, &mode, &shared, others).await?;
            next_edit += interval;
            continue;
        }
        let wake = if mode.writes && now < edit_until {
            next_edit.min(edit_until)
        } else {
            hard_stop
        };
        // `recv` only awaits the socket, so a timeout never loses a half-handled message.
        let msg = match timeout_at(wake, conn.recv()).await {
            Err(_) => continue,
            Ok(m) => m?,
        };
        if let Message::Sync { data, .. } = msg {
            let arrived = receive(&mut conn, &mut peer, &data).await?;
            count_arrivals(&shared, arrived, &mode, &mut samples);
        }
        // Stop early once everything we sent and everything we expect has arrived.
        if Instant::now() >= edit_until {
            let sent = shared.sent.lock().unwrap_or_else(|p| p.into_inner());
            if sent.values().all(|s| s.receivers_left == 0) {
                break;
            }
        }
    }
    conn.close().await;
    Ok((samples, seq as u64))
}

/// One edit: a character typed into the text, or this client's counter set; noted as sent
/// (to be received by `others`), then synced.
async fn edit(
    conn: &mut Connection,
    ds: &mut DocSync,
    key: &str,
    seq: i64,
    mode: &Mode,
    shared: &Shared,
    others: usize,
) -> anyhow::Result<()> {
    match ds.doc.get(ROOT, "text")? {
        Some((_, text)) if mode.text => {
            let len = ds.doc.length(&text);
            ds.doc.splice_text(&text, len, 0, "가")?;
        }
        _ => {
            ds.doc.put(ROOT, key, seq)?;
        }
    }
    let hash = ds.doc.commit().unwrap_or_else(|| ds.doc.get_heads()[0]);
    shared
        .sent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            hash,
            Sent {
                at: Instant::now(),
                receivers_left: others,
            },
        );
    conn.sync_doc(ds, false).await?;
    Ok(())
}

/// Takes in a sync message and answers it; returns the changes it brought, with when.
async fn receive(
    conn: &mut Connection,
    peer: &mut Peer,
    data: &[u8],
) -> anyhow::Result<(Vec<ChangeHash>, Instant)> {
    let m = sync::Message::decode(data)?;
    let m_heads = m.heads.clone();
    let new: Vec<ChangeHash> = match peer {
        Peer::Full(ds) => {
            let before = ds.doc.get_heads();
            toron_protocol::sync_receive::receive(&mut ds.doc, &mut ds.state, m)?;
            if ds.doc.get_heads() == before {
                Vec::new()
            } else {
                ds.doc
                    .get_changes(&before)
                    .iter()
                    .map(|c| c.hash())
                    .collect()
            }
        }
        Peer::Light(_, f) => f.receive(&m)?,
    };
    let arrived = Instant::now();
    match peer {
        Peer::Full(ds) => {
            conn.sync_doc(ds, false).await?;
        }
        Peer::Light(id, f) => {
            if let Some(reply) = f.reply(&m_heads) {
                conn.send_sync(SyncKind::Sync, *id, reply).await?;
            }
        }
    }
    Ok((new, arrived))
}

/// Counts the edits that arrived: one delivery each, with its latency.
fn count_arrivals(
    shared: &Shared,
    (new, arrived): (Vec<ChangeHash>, Instant),
    mode: &Mode,
    samples: &mut Vec<(u64, bool)>,
) {
    if !new.is_empty() {
        let mut sent = shared.sent.lock().unwrap_or_else(|p| p.into_inner());
        for h in new {
            if let Some(s) = sent.get_mut(&h) {
                if s.receivers_left > 0 {
                    s.receivers_left -= 1;
                    samples.push((
                        arrived.duration_since(s.at).as_micros() as u64,
                        s.at >= mode.last_minute,
                    ));
                }
            }
        }
    }
}

impl BenchReport {
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} clients ({} editing{}) × {} documents, one edit every {} ms per editing client, {:.0} s\n\
             edits: {} ({:.1}/s)   deliveries: {} of {} ({:.2} %)   edits reaching every other client: {:.2} %\n\
             fan-out latency (ms): p50 {:.2}   p95 {:.2}   p99 {:.2}   max {:.2}   p99 of the last minute {:.2}\n\
             errors: {}\n",
            self.clients,
            self.writers,
            if self.light_followers {
                ", the others light followers"
            } else {
                ""
            },
            self.docs,
            self.interval_ms,
            self.duration_s,
            self.edits,
            self.edits_per_sec,
            self.deliveries,
            self.expected_deliveries,
            self.delivered_share * 100.0,
            self.edits_fully_delivered_share * 100.0,
            self.latency_ms_p50,
            self.latency_ms_p95,
            self.latency_ms_p99,
            self.latency_ms_max,
            self.latency_ms_p99_last_minute,
            self.errors,
        );
        for e in &self.first_errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        if let (Some(cpu), Some(rss), Some(peak)) = (
            self.server_cpu_percent,
            self.server_rss_mib,
            self.server_peak_rss_mib,
        ) {
            s.push_str(&format!(
                "server: {cpu:.1} % CPU (of one core), RSS {rss:.1} MiB, peak {peak:.1} MiB\n"
            ));
        }
        if let Some(cpu) = self.bench_cpu_percent {
            s.push_str(&format!("load generator: {cpu:.1} % CPU (of one core)\n"));
        }
        s
    }
}
