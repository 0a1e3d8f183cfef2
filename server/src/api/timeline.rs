//! `/api/v1/sessions/{key}/timeline` and `/replay`: a session's timeline, paged, and the same
//! played back as server-sent events at ×1, ×4, ×16 or as fast as possible.
//!
//! Both read the stored projection after bringing it up to the log's end, and both show a
//! participant only the entries of documents they may read (entries about the session itself —
//! joins, phases — are shown to everybody who takes part in it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use toron_domain::policy::Access;
use toron_domain::timeline::Entry;
use toron_protocol::DocumentId;

use crate::api::auth::Reader;
use crate::api::error::{api_err, blocking, not_found, ApiError};
use crate::api::state::AppState;
use crate::net::hub::Hub;
use crate::views::projection::session_prefix;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sessions/{key}/timeline", get(timeline))
        .route("/api/v1/sessions/{key}/replay", get(replay))
}

/// Entries read from the projection per step.
const PAGE: usize = 1_000;

/// Who is reading, and the documents they may read (asked once per document).
struct SessionReader {
    hub: Arc<Hub>,
    participant: Option<String>,
    readable: HashMap<String, bool>,
}

impl SessionReader {
    fn may_see(&mut self, e: &Entry) -> bool {
        let (Some(p), Some(doc)) = (&self.participant, &e.document_id) else {
            return true;
        };
        if let Some(v) = self.readable.get(doc) {
            return *v;
        }
        let v = doc
            .parse::<DocumentId>()
            .is_ok_and(|id| self.hub.registry.decide(p, &id).access != Access::None);
        self.readable.insert(doc.clone(), v);
        v
    }
}

async fn reader(
    state: &AppState,
    who: Option<String>,
    session: &str,
) -> Result<SessionReader, ApiError> {
    let known = state.hub.registry.has_timeline(session);
    let may = match &who {
        Some(p) => state.hub.registry.may_follow_timeline(p, session),
        None => true,
    };
    if !known || !may {
        return Err(not_found("no such session"));
    }
    let hub = state.hub.clone();
    blocking(move || hub.projection.catch_up())
        .await?
        .map_err(|e| {
            api_err(
                StatusCode::SERVICE_UNAVAILABLE,
                "projection",
                &e.to_string(),
            )
        })?;
    Ok(SessionReader {
        hub: state.hub.clone(),
        participant: who,
        readable: HashMap::new(),
    })
}

/// The position after an entry: `order_ms-global_seq-index`.
fn cursor(e: &Entry) -> String {
    format!("{}-{}-{}", e.order_ms(), e.global_seq, e.index)
}

fn key_after(
    session: &str,
    cursor: Option<&str>,
    since_ms: Option<u64>,
) -> Result<Vec<u8>, ApiError> {
    let mut k = session_prefix(session);
    match cursor {
        Some(c) => {
            let bad = || {
                api_err(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "`after` is not a cursor this API gave",
                )
            };
            let parts: Vec<u64> = c
                .split('-')
                .map(|p| p.parse::<u64>().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            let [t, g, i] = parts[..] else {
                return Err(bad());
            };
            k.extend_from_slice(&t.to_be_bytes());
            k.extend_from_slice(&g.to_be_bytes());
            // The key just after the cursor's entry.
            k.extend_from_slice(
                &(u16::try_from(i).map_err(|_| bad())?.saturating_add(1)).to_be_bytes(),
            );
        }
        None => k.extend_from_slice(&since_ms.unwrap_or(0).to_be_bytes()),
    }
    Ok(k)
}

#[derive(Debug, Deserialize)]
struct TimelineQuery {
    after: Option<String>,
    limit: Option<usize>,
    /// Bounds on the time the timeline is ordered by, UTC milliseconds.
    since: Option<u64>,
    until: Option<u64>,
    participant: Option<String>,
    role: Option<String>,
    kind: Option<String>,
}

async fn timeline(
    Reader(state, who): Reader,
    Path(session): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let mut reader = reader(&state, who, &session).await?;
    let limit = q.limit.unwrap_or(200).clamp(1, 5_000);
    let start = key_after(&session, q.after.as_deref(), q.since)?;
    let store = state.hub.store.clone();
    let hub = state.hub.clone();
    let (entries, next) = blocking(move || -> Result<_, ApiError> {
        let prefix = session_prefix(&session);
        let mut from = start;
        let mut out: Vec<Entry> = Vec::new();
        let mut next = None;
        'scan: loop {
            let rows = store
                .timeline_page(&prefix, &mut from, PAGE)
                .map_err(|e| api_err(StatusCode::SERVICE_UNAVAILABLE, "storage", &e.to_string()))?;
            if rows.is_empty() {
                break;
            }
            for (_, v) in rows {
                let Ok(e) = serde_json::from_slice::<Entry>(&v) else {
                    continue;
                };
                if q.until.is_some_and(|u| e.order_ms() > u) {
                    break 'scan;
                }
                let keep = q
                    .participant
                    .as_ref()
                    .is_none_or(|p| e.participant.as_ref() == Some(p))
                    && q.role.as_ref().is_none_or(|r| e.role.as_ref() == Some(r))
                    && q.kind
                        .as_ref()
                        .is_none_or(|k| e.kind == *k || e.kind.starts_with(&format!("{k}.")))
                    && reader.may_see(&e);
                if !keep {
                    continue;
                }
                if out.len() == limit {
                    next = out.last().map(cursor);
                    break 'scan;
                }
                out.push(e);
            }
        }
        store_projection_name(&hub, &mut out)?;
        Ok((out, next))
    })
    .await??;
    Ok(Json(json!({ "entries": entries, "next_after": next })).into_response())
}

/// Names the annotations the entries are about (see `Projection::name`).
fn store_projection_name(hub: &Hub, entries: &mut [Entry]) -> Result<(), ApiError> {
    hub.projection
        .name(entries)
        .map_err(|e| api_err(StatusCode::SERVICE_UNAVAILABLE, "storage", &e.to_string()))
}

/// Slowest and fastest replay speeds. Below 0.1 a replay is a task that sleeps for years.
const MIN_SPEED: f64 = 0.1;
const MAX_SPEED: f64 = 10_000.0;
/// Longest wait between two entries of a replay (a break in the debate is skipped).
const MAX_GAP: Duration = Duration::from_secs(10);
/// Longest a replay may run: a debate of four hours at speed 1 fits.
const MAX_REPLAY: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Deserialize)]
struct ReplayQuery {
    /// `1`, `4`, `16`, … or `max` (as fast as possible). Default 1.
    speed: Option<String>,
    /// Start here (UTC milliseconds of the timeline's order); default: the first entry.
    from: Option<u64>,
}

fn sse(e: &Entry) -> Vec<u8> {
    let mut out = b"event: entry\nid: ".to_vec();
    out.extend_from_slice(cursor(e).as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(e).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    out
}

/// The last event of a replay whose reader's token or role was revoked meanwhile.
const REVOKED: &[u8] = b"event: end\ndata: {\"revoked\":true}\n\n";

/// The `speed` of a replay: `None` for as fast as possible.
fn replay_speed(speed: Option<&str>) -> Result<Option<f64>, ApiError> {
    match speed {
        None => Ok(Some(1.0)),
        Some("max") | Some("0") => Ok(None),
        Some(s) => match s.parse::<f64>() {
            Ok(x) if (MIN_SPEED..=MAX_SPEED).contains(&x) => Ok(Some(x)),
            _ => Err(api_err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "speed is a number from 0.1 to 10000 (1, 4, 16…) or `max`",
            )),
        },
    }
}

async fn replay(
    headers: HeaderMap,
    slot: Option<axum::Extension<crate::net::listener::SocketSlot>>,
    Reader(state, who): Reader,
    Path(session): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    let speed = replay_speed(q.speed.as_deref())?;
    let reader = reader(&state, who, &session).await?;
    // Counted among the streams (a few per token), not among the sockets that requests and
    // handshakes need.
    let counted_as = reader
        .participant
        .clone()
        .unwrap_or_else(|| "open mode".into());
    let stream_slot = state.streams.open(&counted_as).map_err(|why| {
        let (status, message) = match why {
            crate::net::listener::StreamRefused::PerToken(n) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("재생은 한 사람이 동시에 {n}개까지 열 수 있습니다. 다른 재생을 닫고 다시 여세요 (at most {n} replays at once per token)"),
            ),
            crate::net::listener::StreamRefused::Full(n) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("지금 열린 재생이 너무 많습니다({n}개). 잠시 후 다시 여세요 (the server has {n} replays open)"),
            ),
        };
        crate::api::error::api_err(status, "streams", &message)
    })?;
    if let Some(axum::Extension(slot)) = slot {
        slot.leave_for_stream();
    }
    // Whether the reader may still watch: asked before each page and whenever some access is
    // revoked, so that a revoked token or role ends the replay at once.
    let still_allowed: Box<dyn Fn() -> bool + Send> = {
        let hub = state.hub.clone();
        let watcher = reader.participant.clone();
        let token = crate::api::auth::bearer(&headers);
        let session = session.clone();
        Box::new(move || match (&watcher, &token) {
            (Some(p), Some(t)) => {
                hub.registry.authenticate(t).as_deref() == Some(p.as_str())
                    && hub.registry.may_follow_timeline(p, &session)
            }
            _ => true,
        })
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let live = state.hub.metrics.replay_started();
    let replay = Replay {
        hub: state.hub.clone(),
        reader,
        still_allowed,
        revocations: state.hub.access_revocations(),
        shutdown: state.shutdown.clone(),
        tx,
        speed,
        prev: q.from,
        sent: 0,
    };
    tokio::spawn(async move {
        let _live = live;
        let _counted = stream_slot;
        replay.run(&session, q.from).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // The socket left the count of sockets; it ends with its stream.
            (header::CONNECTION, "close"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// One running replay: pages of the session's timeline sent as server-sent events, each
/// entry at its (sped-up) moment.
struct Replay {
    hub: Arc<Hub>,
    reader: SessionReader,
    still_allowed: Box<dyn Fn() -> bool + Send>,
    revocations: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    speed: Option<f64>,
    /// The moment of the entry sent last.
    prev: Option<u64>,
    sent: u64,
}

/// How a replay ended before its last entry.
enum Stop {
    /// The client went away or the server stops: nothing more is sent.
    Gone,
    /// The reader's access was revoked: said, then the stream ends.
    Revoked,
    /// The replay would last longer than `MAX_REPLAY`.
    Cut,
}

impl Replay {
    async fn run(mut self, session: &str, from_ms: Option<u64>) {
        let prefix = session_prefix(session);
        let mut from = key_after(session, None, from_ms).unwrap_or_else(|_| prefix.clone());
        let started = tokio::time::Instant::now();
        // Each entry is due its (sped-up) distance after the previous one, a pause of the
        // debate shortened to at most MAX_GAP; the whole replay ends after MAX_REPLAY.
        let mut due = started;
        let mut cut = false;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            if !(self.still_allowed)() {
                let _ = self.tx.send(REVOKED.to_vec()).await;
                return;
            }
            let Some((page, next)) = self.page(&prefix, &from).await else {
                break;
            };
            from = next;
            match self.send_page(page, started, &mut due).await {
                Ok(()) => {}
                Err(Stop::Gone) => return,
                Err(Stop::Revoked) => {
                    let _ = self.tx.send(REVOKED.to_vec()).await;
                    return;
                }
                Err(Stop::Cut) => {
                    cut = true;
                    break;
                }
            }
        }
        // A replay cut at MAX_REPLAY says so, so the client does not take it for the end.
        let sent = self.sent;
        let end = if cut {
            format!("event: end\ndata: {{\"entries\":{sent},\"cut\":true}}\n\n")
        } else {
            format!("event: end\ndata: {{\"entries\":{sent}}}\n\n")
        };
        let _ = self.tx.send(end.into_bytes()).await;
    }

    /// The next page of entries the reader may see, named, and the key after it; `None` at
    /// the end (or when the log cannot be read).
    async fn page(&mut self, prefix: &[u8], from: &[u8]) -> Option<(Vec<Entry>, Vec<u8>)> {
        let (p, mut next) = (prefix.to_vec(), from.to_vec());
        let st = self.hub.store.clone();
        let (rows, next) = match tokio::task::spawn_blocking(move || {
            st.timeline_page(&p, &mut next, PAGE)
                .map(|rows| (rows, next))
        })
        .await
        {
            Ok(Ok((rows, next))) if !rows.is_empty() => (rows, next),
            _ => return None,
        };
        let mut page: Vec<Entry> = rows
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Entry>(v).ok())
            .filter(|e| self.reader.may_see(e))
            .collect();
        let hub = self.hub.clone();
        let page = tokio::task::spawn_blocking(move || {
            let _ = hub.projection.name(&mut page);
            page
        })
        .await
        .ok()?;
        Some((page, next))
    }

    /// Sends a page, each entry when it is due: what is due goes out together, then the
    /// replay waits for the next entry's moment.
    async fn send_page(
        &mut self,
        page: Vec<Entry>,
        started: tokio::time::Instant,
        due: &mut tokio::time::Instant,
    ) -> Result<(), Stop> {
        let mut chunk = Vec::new();
        for e in page {
            if let Some(speed) = self.speed {
                let gap_ms = e
                    .order_ms()
                    .saturating_sub(*self.prev.get_or_insert(e.order_ms()));
                self.prev = Some(e.order_ms());
                let gap = Duration::try_from_secs_f64(gap_ms as f64 / speed / 1000.0)
                    .unwrap_or(MAX_GAP)
                    .min(MAX_GAP);
                *due += gap;
                if *due > tokio::time::Instant::now() {
                    if !chunk.is_empty() && self.tx.send(std::mem::take(&mut chunk)).await.is_err()
                    {
                        return Err(Stop::Gone);
                    }
                    if *due > started + MAX_REPLAY {
                        return Err(Stop::Cut);
                    }
                    self.wait_until(*due).await?;
                }
            }
            chunk.extend_from_slice(&sse(&e));
            self.sent += 1;
        }
        if !chunk.is_empty() && self.tx.send(chunk).await.is_err() {
            return Err(Stop::Gone);
        }
        Ok(())
    }

    /// Waits for `due`, unless the client went away, the server stops or the reader's access
    /// was revoked.
    async fn wait_until(&mut self, due: tokio::time::Instant) -> Result<(), Stop> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return Ok(()),
                _ = self.tx.closed() => return Err(Stop::Gone),
                () = async { let _ = self.shutdown.wait_for(|s| *s).await; } => return Err(Stop::Gone),
                changed = self.revocations.changed() => {
                    if changed.is_err() || !(self.still_allowed)() {
                        return Err(Stop::Revoked);
                    }
                }
            }
        }
    }
}
