//! `/api/v1/documents/{id}/…`: a document's events, its state at a point, and the difference
//! between two points — read from the event log, for participants who may read the document.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use toron_protocol::policy::Access;
use toron_protocol::{history, ChangeRecord, DocumentId};

use crate::admin_api::{api_err, ApiError};
use crate::http::{authenticate, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/documents/{id}/events", get(events))
        .route("/api/v1/documents/{id}/state", get(state_at))
        .route("/api/v1/documents/{id}/diff", get(diff))
}

/// Runs reading or rebuilding work off the I/O tasks; a panic in it is an internal error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        api_err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        )
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The document's records, if the caller may read it. A document the caller may not read is
/// "not found", exactly like one that does not exist.
async fn readable_records(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
) -> Result<(DocumentId, Vec<ChangeRecord>), ApiError> {
    let who = authenticate(state, headers, uri.query())?;
    let not_found = || api_err(StatusCode::NOT_FOUND, "not_found", "no such document");
    let id: DocumentId = id
        .trim_start_matches("automerge:")
        .parse()
        .map_err(|_| not_found())?;
    if let Some(p) = &who {
        if state.hub.registry.decide(p, &id).access == Access::None {
            return Err(not_found());
        }
    }
    let store = state.hub.store.clone();
    let records = blocking(move || store.document_records(&id))
        .await?
        .map_err(|e| api_err(StatusCode::SERVICE_UNAVAILABLE, "storage", &e.to_string()))?;
    if records.is_empty() {
        return Err(not_found());
    }
    Ok((id, records))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    /// Only records after this document sequence number (paging).
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
    /// Server receive time bounds, UTC milliseconds.
    since: Option<u64>,
    until: Option<u64>,
    participant: Option<String>,
    role: Option<String>,
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let (_, records) = readable_records(&state, &headers, &uri, &id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut page: Vec<serde_json::Value> = Vec::new();
    let mut next = None;
    for r in records.iter().filter(|r| r.doc_seq > q.after) {
        let c = &r.change;
        let keep = q.since.is_none_or(|s| c.received_at_ms >= s)
            && q.until.is_none_or(|u| c.received_at_ms <= u)
            && q.participant
                .as_ref()
                .is_none_or(|p| c.by.participant.as_ref() == Some(p))
            && q.role
                .as_ref()
                .is_none_or(|role| c.by.role.as_ref() == Some(role));
        if !keep {
            continue;
        }
        if page.len() == limit {
            next = Some(
                page.last()
                    .and_then(|l| l["seq"].as_u64())
                    .unwrap_or(r.doc_seq),
            );
            break;
        }
        page.push(json!({
            "seq": r.doc_seq,
            "global_seq": r.global_seq,
            "time_ms": c.received_at_ms,
            "participant": c.by.participant,
            "role": c.by.role,
            "peer": c.peer.as_str(),
            "actor": hex(&c.actor),
            "hash": hex(&c.hash),
            "kind": "change",
        }));
    }
    Ok(Json(json!({ "events": page, "next_after": next, "total": records.len() })).into_response())
}

#[derive(Debug, Deserialize)]
struct StateQuery {
    seq: Option<u64>,
    /// UTC milliseconds: the state after every change received at or before it.
    at: Option<u64>,
}

async fn state_at(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> Result<Response, ApiError> {
    let (_, records) = readable_records(&state, &headers, &uri, &id).await?;
    let n = match (q.seq, q.at) {
        (Some(seq), None) => records.iter().take_while(|r| r.doc_seq <= seq).count(),
        (None, Some(at)) => records
            .iter()
            .take_while(|r| r.change.received_at_ms <= at)
            .count(),
        (None, None) => records.len(),
        (Some(_), Some(_)) => {
            return Err(api_err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give `seq` or `at`, not both",
            ))
        }
    };
    let seq = if n == 0 { 0 } else { records[n - 1].doc_seq };
    let time = if n == 0 {
        None
    } else {
        Some(records[n - 1].change.received_at_ms)
    };
    let bytes: Vec<Vec<u8>> = records
        .into_iter()
        .take(n)
        .map(|r| r.change.bytes)
        .collect();
    let doc = blocking(move || {
        history::document_of(&bytes)
            .map(|d| toron_protocol::json::doc_to_json(&d))
            .map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| api_err(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", &e.to_string()))?;
    Ok(Json(json!({ "seq": seq, "time_ms": time, "state": doc })).into_response())
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: u64,
    to: u64,
}

async fn diff(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let (_, records) = readable_records(&state, &headers, &uri, &id).await?;
    let count = |seq: u64| records.iter().take_while(|r| r.doc_seq <= seq).count();
    let (from, to) = (count(q.from), count(q.to));
    let changes = records
        .into_iter()
        .map(|r| automerge::Change::from_bytes(r.change.bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| api_err(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", &e.to_string()))?;
    let patches = blocking(move || history::diff(&changes, from, to)).await?;
    Ok(Json(json!({ "from": q.from, "to": q.to, "patches": patches })).into_response())
}
