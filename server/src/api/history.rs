//! `/api/v1/documents/{id}/…`: a document's events, its state at a point, and the difference
//! between two points — read from the event log, for participants who may read the document.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use toron_domain::policy::Access;
use toron_protocol::{history, DocumentId};

use crate::api::auth::Reader;
use crate::api::error::{api_err, blocking, not_found, ApiError};
use crate::api::state::AppState;
use crate::store::StoreError;
use crate::views::history_cache::HistoryError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/documents/{id}/events", get(events))
        .route("/api/v1/documents/{id}/state", get(state_at))
        .route("/api/v1/documents/{id}/diff", get(diff))
        .route("/api/v1/sessions/{key}/state", get(session_state))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The document, if the caller may read it. A document the caller may not read is
/// "not found", exactly like one that does not exist. Returns its id and length.
async fn readable_document(
    state: &AppState,
    who: &Option<String>,
    id: &str,
) -> Result<(DocumentId, u64), ApiError> {
    let missing = || not_found("no such document");
    let id: DocumentId = id
        .trim_start_matches("automerge:")
        .parse()
        .map_err(|_| missing())?;
    if let Some(p) = who {
        if state.hub.registry.decide(p, &id).access == Access::None {
            return Err(missing());
        }
    }
    let store = state.hub.store.clone();
    let len = blocking(move || store.document_len(&id))
        .await?
        .map_err(storage_err)?;
    // Registered by its key but never written (a notes layer nobody has used yet): it exists,
    // empty, from the start. An unknown id is not found.
    if len == 0
        && state
            .hub
            .registry
            .document(&id)
            .is_none_or(|d| d.key.is_none())
    {
        return Err(missing());
    }
    Ok((id, len))
}

fn storage_err(e: impl std::fmt::Display) -> ApiError {
    api_err(StatusCode::SERVICE_UNAVAILABLE, "storage", &e.to_string())
}

fn history_err(e: HistoryError) -> ApiError {
    match e {
        HistoryError::Store(e) => storage_err(e),
        HistoryError::Corrupt(m) => api_err(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", &m),
    }
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
    /// `change` (every record; the default), or a timeline kind such as `annotation.created`
    /// or a family such as `annotation`: then the document's timeline entries of that kind.
    kind: Option<String>,
}

/// Records read from the log per step while a filtered page fills.
const SCAN_STEP: usize = 512;

async fn events(
    Reader(state, who): Reader,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let (id, total) = readable_document(&state, &who, &id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    if q.kind.as_deref().is_some_and(|k| k != "change") {
        return timeline_events(&state, id, total, limit, q).await;
    }
    // A connection's peer id is how it is recognised when it joins again: shown to
    // organizers (who look into a connection), not to everyone who may read the document.
    let show_peer = who.as_deref().is_none_or(|p| {
        !matches!(
            state.hub.registry.organizes(p),
            toron_domain::policy::Organizes::Nothing
        )
    });
    let store = state.hub.store.clone();
    let (page, next) = blocking(move || -> Result<_, StoreError> {
        let mut page: Vec<serde_json::Value> = Vec::new();
        let mut next = None;
        let mut after = q.after;
        'scan: loop {
            let step = store.records_after(&id, after, SCAN_STEP)?;
            let Some(last) = step.last() else { break };
            after = last.doc_seq;
            for r in &step {
                let c = &r.change;
                if q.until.is_some_and(|u| c.received_at_ms > u) {
                    break 'scan;
                }
                let keep = q.since.is_none_or(|s| c.received_at_ms >= s)
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
                    next = page.last().and_then(|l| l["seq"].as_u64());
                    break 'scan;
                }
                let mut event = json!({
                    "seq": r.doc_seq,
                    "global_seq": r.global_seq,
                    "time_ms": c.received_at_ms,
                    "participant": c.by.participant,
                    "role": c.by.role,
                    "actor": hex(&c.actor),
                    "hash": hex(&c.hash),
                    "kind": "change",
                });
                if show_peer {
                    event["peer"] = json!(c.peer.as_str());
                }
                page.push(event);
            }
        }
        Ok((page, next))
    })
    .await?
    .map_err(storage_err)?;
    Ok(Json(json!({ "events": page, "next_after": next, "total": total })).into_response())
}

#[derive(Debug, Deserialize)]
struct StateQuery {
    seq: Option<u64>,
    /// UTC milliseconds: the state after every change received at or before it.
    at: Option<u64>,
    /// `received` (default) or `happened`: which clock `at` is on (the timeline's order uses
    /// `happened`: an importer's time when it gave one).
    clock: Option<String>,
}

async fn state_at(
    Reader(state, who): Reader,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> Result<Response, ApiError> {
    let (id, len) = readable_document(&state, &who, &id).await?;
    if !matches!(
        q.clock.as_deref(),
        None | Some("received") | Some("happened")
    ) {
        return Err(api_err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "clock is `received` or `happened`",
        ));
    }
    if q.seq.is_some() && q.at.is_some() {
        return Err(api_err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "give `seq` or `at`, not both",
        ));
    }
    let hub = state.hub.clone();
    let (point, doc) = blocking(move || -> Result<_, HistoryError> {
        let point = match q.at {
            Some(at) if q.clock.as_deref() == Some("happened") => {
                hub.history.point_at_happened(&id, at)?
            }
            Some(at) => hub.history.point_at_time(&id, at)?,
            None => hub.history.point_at_seq(&id, q.seq.unwrap_or(len))?,
        };
        let doc = hub.history.with_doc(&id, point.seq, |d| {
            toron_protocol::json::doc_to_json_at(d, &point.heads)
        })?;
        Ok((point, doc))
    })
    .await?
    .map_err(history_err)?;
    Ok(Json(json!({ "seq": point.seq, "time_ms": point.time_ms, "state": doc })).into_response())
}

/// Every document of a session the reader may read, as it was at a moment (`at`, on either
/// clock; the latest without it): a replay move is one request, not one per notes layer.
/// Answers `{session, at, documents: {key: {doc, seq, time_ms, state}}}`.
async fn session_state(
    Reader(state, who): Reader,
    Path(key): Path<String>,
    Query(q): Query<StateQuery>,
) -> Result<Response, ApiError> {
    let reg = &state.hub.registry;
    let follows = match &who {
        Some(p) => reg.may_follow_session(p, &key),
        None => true,
    };
    if reg.session(&key).is_none() || !follows {
        return Err(not_found("no such session"));
    }
    let happened = match q.clock.as_deref() {
        None | Some("received") => false,
        Some("happened") => true,
        Some(_) => {
            return Err(api_err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "clock is `received` or `happened`",
            ))
        }
    };
    let docs: Vec<(String, DocumentId)> = reg
        .documents_of_session(&key)
        .into_iter()
        .map(|k| (k.to_string(), k.document_id()))
        .filter(|(_, id)| {
            who.as_ref()
                .is_none_or(|p| reg.decide(p, id).access != Access::None)
        })
        .collect();
    let hub = state.hub.clone();
    let at = q.at;
    let documents = blocking(move || -> Result<serde_json::Map<String, serde_json::Value>, HistoryError> {
        let mut out = serde_json::Map::new();
        for (k, id) in docs {
            let len = hub.store.document_len(&id)?;
            if len == 0 {
                continue;
            }
            let point = match at {
                Some(at) if happened => hub.history.point_at_happened(&id, at)?,
                Some(at) => hub.history.point_at_time(&id, at)?,
                None => hub.history.point_at_seq(&id, len)?,
            };
            if point.seq == 0 {
                continue;
            }
            let doc = hub.history.with_doc(&id, point.seq, |d| {
                toron_protocol::json::doc_to_json_at(d, &point.heads)
            })?;
            out.insert(
                k,
                json!({ "doc": id.to_string(), "seq": point.seq, "time_ms": point.time_ms, "state": doc }),
            );
        }
        Ok(out)
    })
    .await?
    .map_err(history_err)?;
    Ok(Json(json!({ "session": key, "at": at, "documents": documents })).into_response())
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: u64,
    to: u64,
}

async fn diff(
    Reader(state, who): Reader,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let (id, _) = readable_document(&state, &who, &id).await?;
    let hub = state.hub.clone();
    let patches = blocking(move || -> Result<_, HistoryError> {
        let from = hub.history.point_at_seq(&id, q.from)?;
        let to = hub.history.point_at_seq(&id, q.to)?;
        hub.history.with_doc(&id, from.seq.max(to.seq), |d| {
            history::diff_between(d, &from.heads, &to.heads)
        })
    })
    .await?
    .map_err(history_err)?;
    Ok(Json(json!({ "from": q.from, "to": q.to, "patches": patches })).into_response())
}

/// The document's events of a timeline kind, from its session's timeline projection.
async fn timeline_events(
    state: &AppState,
    id: DocumentId,
    total: u64,
    limit: usize,
    q: EventsQuery,
) -> Result<Response, ApiError> {
    let Some(ctx) = state.hub.registry.timeline_context(&id) else {
        // A document outside every session has changes and nothing else.
        return Ok(
            Json(json!({ "events": [], "next_after": null, "total": total })).into_response(),
        );
    };
    let hub = state.hub.clone();
    let (page, next) = blocking(move || -> Result<_, String> {
        hub.projection.catch_up().map_err(|e| e.to_string())?;
        let prefix = crate::views::projection::session_prefix(&ctx.session);
        let wanted = q.kind.unwrap_or_default();
        let id_text = id.to_string();
        let mut from = prefix.clone();
        let mut page = Vec::new();
        let mut next = None;
        'scan: loop {
            let rows = hub
                .store
                .timeline_page(&prefix, &mut from, 1_000)
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                break;
            }
            for (_, v) in rows {
                let Ok(e) = serde_json::from_slice::<toron_domain::timeline::Entry>(&v) else {
                    continue;
                };
                let keep = e.document_id.as_deref() == Some(id_text.as_str())
                    && e.doc_seq.is_some_and(|s| s > q.after)
                    && (e.kind == wanted || e.kind.starts_with(&format!("{wanted}.")))
                    && q.since.is_none_or(|s| e.time_ms >= s)
                    && q.until.is_none_or(|u| e.time_ms <= u)
                    && q.participant
                        .as_ref()
                        .is_none_or(|p| e.participant.as_ref() == Some(p))
                    && q.role.as_ref().is_none_or(|r| e.role.as_ref() == Some(r));
                if !keep {
                    continue;
                }
                // A page ends between records, never inside one: `after` pages by record.
                let last_seq = page
                    .last()
                    .and_then(|l: &serde_json::Value| l["seq"].as_u64());
                if page.len() >= limit && e.doc_seq != last_seq {
                    next = last_seq;
                    break 'scan;
                }
                page.push(json!({
                    "seq": e.doc_seq,
                    "global_seq": e.global_seq,
                    "time_ms": e.time_ms,
                    "occurred_ms": e.occurred_ms,
                    "participant": e.participant,
                    "role": e.role,
                    "kind": e.kind,
                    "summary": e.summary,
                    "detail": e.detail,
                }));
            }
        }
        Ok((page, next))
    })
    .await?
    .map_err(storage_err)?;
    Ok(Json(json!({ "events": page, "next_after": next, "total": total })).into_response())
}
