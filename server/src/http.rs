//! The HTTP surface: WebSocket upgrades on `/` and `/sync`, and `GET /healthz`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};

use crate::api::auth::{participant_of, ws_bearer, AuthError};
use crate::api::error::error_response;
use crate::api::state::AppState;
use crate::metrics::{ErrorKind, Snapshot};
use crate::net::connection;

/// Per-connection WebSocket buffers (see `ws_upgrade`).
const READ_BUFFER: usize = 16 << 10;
const WRITE_BUFFER: usize = 16 << 10;

/// One connection counted against its token; uncounted when dropped — also when the
/// upgrade never completes.
struct TokenSlot {
    conns: Arc<Mutex<HashMap<[u8; 32], usize>>>,
    key: [u8; 32],
}

impl TokenSlot {
    /// Counts a connection for `token`, or says no when it has `max` already.
    fn take(conns: &Arc<Mutex<HashMap<[u8; 32], usize>>>, token: &str, max: usize) -> Option<Self> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut map = conns.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            conns: conns.clone(),
            key,
        })
    }
}

impl Drop for TokenSlot {
    fn drop(&mut self) {
        let mut map = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

pub fn router(state: AppState) -> Router {
    // A body must arrive within three times the header timeout; an import's (megabytes,
    // perhaps over a slow link, sent only once its token was checked) within sixty times.
    let timeout = state.hub.config.http_timeout;
    let deadlines = axum::middleware::from_fn(move |req: axum::extract::Request, next| {
        let limit = if req.uri().path().starts_with("/api/v1/import") {
            timeout * 60
        } else {
            timeout * 3
        };
        crate::net::listener::body_deadline(limit, req, next)
    });
    // The hall's reads (its sessions, a replay's every layer at a moment, the timeline) are
    // JSON that gzip shrinks tenfold: on venue Wi-Fi that is most of a replay move's time.
    // Event streams are left alone (the layer's default), and the built assets come
    // compressed already.
    let hall_reads = Router::new()
        .merge(crate::api::me::routes())
        .merge(crate::api::history::routes())
        .merge(crate::api::timeline::routes())
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .route("/", get(ws_or_page))
        .route("/sync", get(ws_or_page))
        .merge(hall_reads)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::api::admin::routes())
        .merge(crate::api::prepare::routes())
        .merge(crate::api::invite::routes())
        .merge(crate::api::import::routes(state.clone()))
        .merge(crate::api::report::routes())
        .layer(deadlines)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every answer carries unless its route set its own: nothing is rendered as another
/// type than declared, nothing is framed by another site (the page's own policy is in
/// `web_assets::index`), and no URL of ours goes out in a `Referer`.
async fn security_headers(mut r: Response) -> Response {
    use axum::http::HeaderValue;
    let h = r.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ));
    r
}

/// Whether a WebSocket request may go on, by its `Origin`: always without one (not a
/// browser) or when no list is set; else when it is the server's own (its host is the
/// request's `Host`) or on the list.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        });
    own || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

/// `/` and `/sync`: a WebSocket upgrade is a sync client; any other request gets the web
/// client's page at `/`, a line saying what the URL is for at `/sync`.
async fn ws_or_page(
    state: State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => upgrade(state, headers, uri, ws),
        Err(_) if uri.path() == "/" => crate::api::assets::index(&headers),
        Err(_) => (
            StatusCode::OK,
            "toron-server: connect an automerge-repo WebSocket client to this URL.\n",
        )
            .into_response(),
    }
}

fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.hub.config.allowed_origins, &headers) {
        state.hub.metrics.error(ErrorKind::unauthorized);
        return error_response(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "pages of this origin may not connect (--allowed-origins)",
        );
    }
    let token = ws_bearer(&headers, uri.query());
    let participant = match (&token, state.hub.config.open) {
        (_, true) => Ok(None),
        (None, false) => Err(AuthError::Missing),
        (Some(t), false) => participant_of(&state, t).map(Some),
    };
    let participant = match participant {
        Ok(p) => p,
        Err(refused) => {
            state.hub.metrics.error(ErrorKind::unauthorized);
            return refused.into_response();
        }
    };
    let token_slot = match (&participant, token) {
        (Some(_), Some(token)) => {
            let max = state.hub.config.max_connections_per_token;
            match TokenSlot::take(&state.token_conns, &token, max) {
                Some(slot) => Some(slot),
                None => {
                    state.hub.metrics.error(ErrorKind::limit);
                    return error_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_connections_for_token",
                        &format!("this token has {max} connections open already (--max-connections-per-token)"),
                    );
                }
            }
        }
        _ => None,
    };
    let Ok(permit) = state.connection_permits.clone().try_acquire_owned() else {
        state.hub.metrics.error(ErrorKind::over_capacity);
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the server is at its connection limit",
        );
    };
    // A failed store still serves reads: clients may connect; a change they send gets an
    // `error` from its document (`/healthz` says `failing`).
    let max = state.hub.config.max_message_bytes;
    let hub = state.hub.clone();
    let shutdown = state.shutdown.clone();
    // tungstenite reserves its read buffer per connection (128 KiB by default): at a
    // thousand phones that alone was 125 MiB. Sync messages are small; big ones still arrive,
    // in more reads.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            connection::serve(socket, hub, shutdown, participant).await;
            drop(permit);
            drop(token_slot);
        })
}

/// Prometheus text format. Counts only, no content: open like `/healthz` (see SECURITY.md).
async fn metrics(State(state): State<AppState>) -> Response {
    let hub = state.hub.clone();
    // Reading the log's size touches sled: off the async threads.
    let text = tokio::task::spawn_blocking(move || {
        hub.metrics.render(Snapshot {
            connections: hub.stats.connections.load(Ordering::Relaxed) as i64,
            open_documents: hub.open_documents() as i64,
            log_records: hub.store.last_global_seq().unwrap_or(0) as i64,
            log_bytes: hub.store.size_on_disk() as i64,
            cluster: hub.store.is_replica().then(|| {
                let (stream, quorum) = hub.store.stream_status();
                (hub.store.replica_position(), stream, quorum)
            }),
        })
    })
    .await
    .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let hub = &state.hub;
    let failed = hub.store.is_failed();
    let stream = hub.store.is_replica().then(|| hub.store.stream_status());
    let body = serde_json::json!({
        "status": if failed { "failing" } else { "ok" },
        "storage_id": hub.store.storage_id(),
        "peer_id": hub.server_peer().as_str(),
        "connections": hub.stats.connections.load(Ordering::Relaxed),
        "open_documents": hub.open_documents(),
        "changes_appended": hub.metrics.changes_accepted.get(),
        // On a cluster node: its name, and how far into the cluster's log its replica is.
        "node": hub.config.cluster.as_ref().map(|c| c.node.as_str()),
        "replica_position": hub.store.is_replica().then(|| hub.store.replica_position()),
        "stream_position": stream.map(|(end, _)| end),
        // Without a quorum writes are refused, reads go on.
        "quorum": stream.map(|(_, quorum)| quorum),
    });
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}
