//! `toron storm`: the *storm* scenario — every client of a hall reconnects at once after the
//! server restarts.
//!
//! C clients each open K of D documents and hold them in sync. Then the tool waits for the
//! server to go away (whoever runs the benchmark restarts it on the same address). Some
//! clients, on losing their connection, make one edit offline — phones that kept typing — and
//! every client tries to reconnect every 50 ms, keeping its peer id and starting fresh sync states, as
//! automerge-repo clients do. A client is *back in sync* when, for every one of its documents,
//! it holds everything the server last said it has and the server has acknowledged
//! everything the client has (its offline edit included; the server acknowledges only what
//! is durable). Times count from the moment the server accepted its first connection again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::{sleep, timeout_at, Instant};
use toron_protocol::{DocumentId, PeerId};

use crate::bench::proc_sample;
use crate::sync_client::{ClientError, Connection, DocSync, Event};

#[derive(Debug, Clone)]
pub struct StormConfig {
    pub server: String,
    pub clients: usize,
    pub docs: usize,
    pub per_client: usize,
    /// Changes each document holds before the storm.
    pub history: usize,
    /// How many of the clients edit while the server is away (spread over the documents).
    pub offline_editors: usize,
    /// How long to wait for the server to go away, and then to come back.
    pub wait: Duration,
    /// How long clients have to get back in sync once the server is back.
    pub limit: Duration,
    /// A file holding the restarted server's pid, for its CPU and memory.
    pub server_pid_file: Option<std::path::PathBuf>,
    /// A node of a cluster goes away, not the whole server: clients whose connection stays
    /// are counted as such, and times count from the first connection that dropped.
    pub failover: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    pub clients: usize,
    pub docs: usize,
    pub per_client: usize,
    pub subscriptions: usize,
    pub offline_editors: usize,
    pub reconnected: usize,
    pub back_in_sync: usize,
    /// From the server's first accepted connection after the restart to each client's being
    /// back in sync.
    pub in_sync_ms_p50: f64,
    pub in_sync_ms_p95: f64,
    pub in_sync_ms_p99: f64,
    pub in_sync_ms_max: f64,
    /// From the server's first accepted connection to the last client's connection.
    pub all_connected_ms: f64,
    /// `--failover`: clients whose connection never dropped (their node stayed up).
    pub stayed: usize,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// The restarted server, from its first connection to the last client in sync.
    pub server_cpu_percent: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
}

struct Client {
    peer: PeerId,
    /// Which of its documents it edits while the server is away, if it does.
    offline_edit: Option<usize>,
    conn: Connection,
    docs: Vec<DocSync>,
}

#[derive(Default)]
struct Timeline {
    /// When the server accepted its first connection after the restart.
    back: Option<Instant>,
    /// When the first client lost its connection.
    gone: Option<Instant>,
    /// `--failover`: clients whose connection did not drop.
    stayed: usize,
    connected: Vec<Instant>,
    in_sync: Vec<Instant>,
    errors: Vec<String>,
}

fn server_pid(cfg: &StormConfig) -> Option<String> {
    let path = cfg.server_pid_file.as_ref()?;
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

/// The documents, each with `history` changes.
async fn create_documents(cfg: &StormConfig, limit: Duration) -> anyhow::Result<Vec<DocumentId>> {
    let mut creator = Connection::connect(&cfg.server, limit).await?;
    let mut ids = Vec::with_capacity(cfg.docs);
    for d in 0..cfg.docs {
        let mut doc = AutoCommit::new();
        for n in 0..cfg.history.max(1) {
            doc.put(
                ROOT,
                format!("k{}", n % 16),
                format!("document {d}, change {n}"),
            )?;
            doc.commit();
        }
        let mut ds = DocSync::new(DocumentId::random(), doc);
        creator.push(&mut ds, limit).await?;
        ids.push(ds.id);
    }
    creator.close().await;
    Ok(ids)
}

/// Every client connected, with its documents open; every k-th client will edit offline.
async fn connect_clients(
    cfg: &StormConfig,
    ids: &[DocumentId],
    limit: Duration,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(cfg.clients);
    for start in (0..cfg.clients).step_by(50) {
        let handles: Vec<_> = (start..(start + 50).min(cfg.clients))
            .map(|i| {
                let url = cfg.server.clone();
                // Every k-th client edits offline, each in another of its documents.
                let every = cfg.clients / cfg.offline_editors.clamp(1, cfg.clients);
                let offline_edit =
                    (cfg.offline_editors > 0 && i % every == 0 && i / every < cfg.offline_editors)
                        .then_some((i / every) % cfg.per_client);
                let mine: Vec<DocumentId> = (0..cfg.per_client)
                    .map(|j| ids[(i * cfg.per_client + j) % cfg.docs])
                    .collect();
                tokio::spawn(async move {
                    let peer = PeerId::new(format!("storm-{i}"))
                        .map_err(|e| anyhow::anyhow!("peer id: {e}"))?;
                    let mut conn = Connection::connect_as(&url, peer.clone(), limit).await?;
                    let mut docs = Vec::with_capacity(mine.len());
                    for id in mine {
                        docs.push(conn.find(id, limit).await?);
                    }
                    Ok::<_, anyhow::Error>(Client {
                        peer,
                        offline_edit,
                        conn,
                        docs,
                    })
                })
            })
            .collect();
        for h in handles {
            clients.push(h.await??);
        }
    }
    Ok(clients)
}

/// A process's CPU ticks, RSS and peak RSS (MiB), as `proc_sample` reads them.
type ProcSample = (u64, f64, f64);

/// The storm's figures: when each client was back in sync, counted from the server's return.
fn report(
    cfg: &StormConfig,
    t: &Timeline,
    total: usize,
    (cpu_before, cpu_after): (Option<ProcSample>, Option<ProcSample>),
) -> anyhow::Result<StormReport> {
    let back = if cfg.failover { t.gone } else { t.back };
    let since =
        |at: &Instant| back.map_or(0, |b| at.saturating_duration_since(b).as_micros() as u64);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for at in &t.in_sync {
        hist.record(since(at).max(1))?;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let wall = match (t.in_sync.iter().max(), back) {
        (Some(last), Some(b)) => last.saturating_duration_since(b).as_secs_f64(),
        _ => 0.0,
    };
    let not_back = total.saturating_sub(t.in_sync.len() + t.errors.len() + t.stayed);
    let mut errors = t.errors.clone();
    if not_back > 0 {
        errors.push(format!("{not_back} clients were not back in sync in time"));
    }
    Ok(StormReport {
        clients: cfg.clients,
        docs: cfg.docs,
        per_client: cfg.per_client,
        subscriptions: cfg.clients * cfg.per_client,
        offline_editors: cfg.offline_editors.min(cfg.clients),
        reconnected: t.connected.len(),
        back_in_sync: t.in_sync.len(),
        in_sync_ms_p50: ms(0.50),
        in_sync_ms_p95: ms(0.95),
        in_sync_ms_p99: ms(0.99),
        in_sync_ms_max: hist.max() as f64 / 1000.0,
        all_connected_ms: t
            .connected
            .iter()
            .max()
            .map_or(0.0, |at| since(at) as f64 / 1000.0),
        stayed: t.stayed,
        errors: errors.len() as u64,
        first_errors: errors.into_iter().take(5).collect(),
        server_cpu_percent: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) if wall > 0.0 => {
                Some(a.0.saturating_sub(b.0) as f64 / crate::bench::TICKS_PER_SEC / wall * 100.0)
            }
            _ => None,
        },
        server_peak_rss_mib: cpu_after.map(|s| s.2),
    })
}

pub async fn run(cfg: StormConfig, mut progress: impl FnMut(&str)) -> anyhow::Result<StormReport> {
    anyhow::ensure!(
        cfg.clients >= 1 && cfg.docs >= 1 && (1..=cfg.docs).contains(&cfg.per_client),
        "need a client, a document, and 1 ≤ documents per client ≤ documents"
    );
    let limit = Duration::from_secs(30);

    // 1. The documents, each with some history.
    progress(&format!("creating {} documents", cfg.docs));
    let ids = create_documents(&cfg, limit).await?;

    // 2. Everyone connects and opens their documents.
    progress(&format!(
        "connecting {} clients, {} documents each",
        cfg.clients, cfg.per_client
    ));
    let clients = connect_clients(&cfg, &ids, limit).await?;

    // 3. The storm.
    progress("ready: restart the server now");
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let done = Arc::new(tokio::sync::Notify::new());
    let gone_by = Instant::now() + cfg.wait;
    let mut tasks = Vec::with_capacity(clients.len());
    for c in clients {
        let url = cfg.server.clone();
        let timeline = timeline.clone();
        let done = done.clone();
        let (wait, sync_limit, failover) = (cfg.wait, cfg.limit, cfg.failover);
        tasks.push(tokio::spawn(async move {
            let r = client_storm(
                c,
                &url,
                (&timeline, &done),
                gone_by,
                (wait, sync_limit),
                failover,
            )
            .await;
            if let Err(e) = r {
                lock(&timeline).errors.push(e.to_string());
            }
        }));
    }
    // Wait until every client is back in sync (or failed), then let them all stop.
    let mut cpu_before = None;
    let total = tasks.len();
    let deadline = gone_by + cfg.wait + cfg.limit;
    loop {
        let (settled, back) = {
            let t = lock(&timeline);
            (t.in_sync.len() + t.errors.len() + t.stayed, t.back)
        };
        if back.is_some() && cpu_before.is_none() {
            cpu_before = server_pid(&cfg).and_then(|p| proc_sample(&p));
        }
        if settled >= total || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(5)).await;
    }
    let cpu_after = server_pid(&cfg).and_then(|p| proc_sample(&p));
    done.notify_waiters();
    for t in tasks {
        let _ = timeout_at(Instant::now() + Duration::from_secs(10), t).await;
    }

    let t = lock(&timeline);
    report(&cfg, &t, total, (cpu_before, cpu_after))
}

fn lock(t: &Mutex<Timeline>) -> std::sync::MutexGuard<'_, Timeline> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// One client through the storm: wait for the server to go, edit offline, reconnect, resync.
async fn client_storm(
    c: Client,
    url: &str,
    (timeline, done): (&Mutex<Timeline>, &tokio::sync::Notify),
    gone_by: Instant,
    (wait, sync_limit): (Duration, Duration),
    failover: bool,
) -> anyhow::Result<()> {
    let Client {
        peer,
        offline_edit,
        mut conn,
        mut docs,
    } = c;
    // Keep answering until the connection drops (after a failover began, a connection that
    // has not dropped within FAILOVER_SETTLE is on a node that stayed).
    loop {
        let mut refs: Vec<&mut DocSync> = docs.iter_mut().collect();
        let until = match lock(timeline).gone {
            Some(g) if failover => (g + FAILOVER_SETTLE).min(gone_by),
            _ => gone_by,
        };
        let slice = (Instant::now() + Duration::from_millis(100)).min(until);
        match timeout_at(slice, conn.next_event(&mut refs)).await {
            Err(_) if Instant::now() < until => continue,
            Err(_) if failover && lock(timeline).gone.is_some() => {
                lock(timeline).stayed += 1;
                return keep_answering(conn, docs, done).await;
            }
            Err(_) => anyhow::bail!("the server did not go away within {wait:?}"),
            Ok(Ok(_)) => continue,
            // A server going down says so (`error`) or just closes.
            Ok(Err(ClientError::Closed | ClientError::WebSocket(_) | ClientError::Server(_))) => {
                let now = Instant::now();
                let mut t = lock(timeline);
                t.gone = Some(t.gone.map_or(now, |g| g.min(now)));
                break;
            }
            Ok(Err(e)) => anyhow::bail!("before the restart: {e}"),
        }
    }
    // Offline: one edit, as a phone that kept typing.
    if let Some(d) = offline_edit.and_then(|j| docs.get_mut(j)) {
        d.doc
            .put(ROOT, peer.as_str(), "written while the server was away")?;
        d.doc.commit();
    }
    // Reconnect every 50 ms until the server is back.
    let back_by = Instant::now() + wait;
    let mut conn = loop {
        match Connection::connect_as(url, peer.clone(), Duration::from_secs(10)).await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() >= back_by => {
                anyhow::bail!("could not reconnect within {wait:?}: {e}")
            }
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    };
    let connected = Instant::now();
    {
        let mut t = lock(timeline);
        t.back = Some(t.back.map_or(connected, |b| b.min(connected)));
        t.connected.push(connected);
    }
    // A new connection starts new sync states.
    for d in &mut docs {
        d.state = automerge::sync::State::new();
        conn.sync_doc(d, false).await?;
    }
    let deadline = connected + sync_limit;
    let in_sync = |docs: &mut Vec<DocSync>| {
        docs.iter_mut().all(|d| {
            let ours = d.heads();
            d.has_their_heads() && d.server_has(&ours)
        })
    };
    while !in_sync(&mut docs) {
        let mut refs: Vec<&mut DocSync> = docs.iter_mut().collect();
        match timeout_at(deadline, conn.next_event(&mut refs)).await {
            Err(_) => anyhow::bail!("not back in sync within {sync_limit:?}"),
            Ok(Ok(Event::Unavailable(id))) => {
                anyhow::bail!("{id} is unavailable after the restart")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => anyhow::bail!("after the restart: {e}"),
        }
    }
    lock(timeline).in_sync.push(Instant::now());
    keep_answering(conn, docs, done).await
}

/// After a failover began, a client whose connection has not dropped within this is on a node
/// that stayed up (the front takes a dead node out within about a second).
const FAILOVER_SETTLE: Duration = Duration::from_secs(3);

/// Keeps answering (others' offline edits still arrive) until everyone is done.
async fn keep_answering(
    mut conn: Connection,
    mut docs: Vec<DocSync>,
    done: &tokio::sync::Notify,
) -> anyhow::Result<()> {
    let stop = done.notified();
    tokio::pin!(stop);
    loop {
        let mut refs: Vec<&mut DocSync> = docs.iter_mut().collect();
        tokio::select! {
            _ = &mut stop => break,
            r = conn.next_event(&mut refs) => if r.is_err() { break },
        }
    }
    conn.close().await;
    Ok(())
}

impl StormReport {
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} clients × {} documents each ({} documents, {} subscriptions), {} edited offline\n\
             reconnected: {}   back in sync: {}   stayed connected: {}   all connected after {:.0} ms\n\
             back in sync after (ms, from the server's first connection — with --failover, from the first drop): p50 {:.1}   p95 {:.1}   p99 {:.1}   max {:.1}\n\
             errors: {}\n",
            self.clients,
            self.per_client,
            self.docs,
            self.subscriptions,
            self.offline_editors,
            self.reconnected,
            self.back_in_sync,
            self.stayed,
            self.all_connected_ms,
            self.in_sync_ms_p50,
            self.in_sync_ms_p95,
            self.in_sync_ms_p99,
            self.in_sync_ms_max,
            self.errors
        );
        for e in &self.first_errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        if let (Some(cpu), Some(peak)) = (self.server_cpu_percent, self.server_peak_rss_mib) {
            s.push_str(&format!(
                "restarted server: {cpu:.0} % CPU (of one core) during the storm, peak RSS {peak:.1} MiB\n"
            ));
        }
        s
    }
}
