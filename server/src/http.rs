//! The HTTP surface: WebSocket upgrades on `/` and `/sync`, and `GET /healthz`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{watch, Semaphore};

use crate::connection;
use crate::hub::Hub;

#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub shutdown: watch::Receiver<bool>,
    pub connection_permits: Arc<Semaphore>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ws_or_hello))
        .route("/sync", get(ws_or_hello))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// JSON errors share one shape across the API: `{ "error": { "code", "message" } }`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

async fn ws_or_hello(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::OK,
            "toron-server: connect an automerge-repo WebSocket client to this URL.\n",
        )
            .into_response();
    };
    let Ok(permit) = state.connection_permits.clone().try_acquire_owned() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the server is at its connection limit",
        );
    };
    if state.hub.store.is_failed() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_failed",
            "the event log accepts no writes",
        );
    }
    let max = state.hub.config.max_message_bytes;
    let hub = state.hub.clone();
    let shutdown = state.shutdown.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            connection::serve(socket, hub, shutdown).await;
            drop(permit);
        })
}

async fn healthz(State(state): State<AppState>) -> Response {
    let hub = &state.hub;
    let failed = hub.store.is_failed();
    let body = serde_json::json!({
        "status": if failed { "failing" } else { "ok" },
        "storage_id": hub.store.storage_id(),
        "peer_id": hub.server_peer.as_str(),
        "connections": hub.stats.connections.load(Ordering::Relaxed),
        "open_documents": hub.open_documents(),
        "changes_appended": hub.stats.changes_appended.load(Ordering::Relaxed),
    });
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}
