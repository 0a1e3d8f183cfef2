//! `/api/v1`: what a series made with the CLI or the HTTP API alone needs before its sessions
//! are held, beside its sessions, cases and people — its departments (whom findings are
//! addressed to), its evaluation template (what evaluators score) and a session's agenda (what
//! the chair moves through). For the organizers of the series; each is a logged change of the
//! registry's catalog, and what it makes possible is provisioned at once (a department's
//! response document). A bundle's import gives the same, in bulk.

use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toron_domain::import_plan::scoped;

use crate::api::auth::{require_series, Organizer};
use crate::api::error::{bad_request, not_found, ApiResult, JsonBody};
use crate::api::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/series/{series}/departments/{key}",
            put(put_department),
        )
        .route("/api/v1/series/{series}/template", put(put_template))
        .route("/api/v1/sessions/{key}/agenda", put(put_agenda))
}

/// The catalog kind a session's agenda is kept under when no import described the session.
pub const AGENDA: &str = "agenda";

#[derive(Debug, Deserialize, Serialize)]
struct Department {
    name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    government: Option<String>,
}

/// `PUT /api/v1/series/{series}/departments/{key}`: a department of the series.
async fn put_department(
    Organizer(state, by): Organizer,
    Path((series, key)): Path<(String, String)>,
    JsonBody(d): JsonBody<Department>,
) -> ApiResult {
    require_series(&state, &by, &series)?;
    if d.name_ko.trim().is_empty() {
        return Err(bad_request("a department needs its Korean name (name_ko)"));
    }
    let mut value = serde_json::to_value(&d).map_err(bad_request)?;
    value["key"] = json!(key);
    state
        .hub
        .registry
        .put_catalog(&by, &scoped("department", &series), &key, value.clone())
        .await?;
    // Its reviewers' response document exists from now on.
    state.hub.provision(&by).await?;
    Ok(Json(value).into_response())
}

#[derive(Debug, Deserialize, Serialize)]
struct Criterion {
    key: String,
    name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_en: Option<String>,
    weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rubric: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Template {
    #[serde(default)]
    key: Option<String>,
    criteria: Vec<Criterion>,
}

/// `PUT /api/v1/series/{series}/template`: the criteria the series' evaluators score, with
/// their weights and what each score means. The series names it as its template.
async fn put_template(
    Organizer(state, by): Organizer,
    Path(series): Path<String>,
    JsonBody(t): JsonBody<Template>,
) -> ApiResult {
    require_series(&state, &by, &series)?;
    if t.criteria.is_empty() {
        return Err(bad_request("a template needs at least one criterion"));
    }
    if let Some(c) = t
        .criteria
        .iter()
        .find(|c| c.weight == 0 || c.key.is_empty())
    {
        return Err(bad_request(format!(
            "criterion `{}`: a key and a weight above 0",
            c.key
        )));
    }
    let reg = &state.hub.registry;
    let catalog = reg.catalog();
    let mut meta = catalog
        .get("series")
        .and_then(|m| m.get(&series))
        .cloned()
        .unwrap_or_else(|| json!({ "key": series, "title_ko": series }));
    let key = t
        .key
        .or_else(|| {
            meta["evaluation_template"]
                .as_str()
                .filter(|k| !k.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("TPL-{series}"));
    let value = json!({ "key": key, "scale": { "min": 1, "max": 5 }, "criteria": t.criteria });
    reg.put_catalog(&by, &scoped("template", &series), &key, value.clone())
        .await?;
    meta["evaluation_template"] = json!(key);
    reg.put_catalog(&by, "series", &series, meta).await?;
    Ok(Json(value).into_response())
}

#[derive(Debug, Deserialize, Serialize)]
struct AgendaItem {
    key: String,
    title_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Agenda {
    items: Vec<AgendaItem>,
}

/// `PUT /api/v1/sessions/{key}/agenda`: the session's order of business, in order.
async fn put_agenda(
    Organizer(state, by): Organizer,
    Path(key): Path<String>,
    JsonBody(a): JsonBody<Agenda>,
) -> ApiResult {
    let reg = &state.hub.registry;
    let s = reg
        .session(&key)
        .ok_or_else(|| not_found(&format!("session {key} not found")))?;
    require_series(&state, &by, &s.series)?;
    for i in &a.items {
        for t in [&i.start, &i.end].into_iter().flatten() {
            chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
                bad_request(format!(
                    "agenda item {}: `{t}` is not a time such as 2026-12-08T16:00:00+09:00",
                    i.key
                ))
            })?;
        }
    }
    let items = serde_json::to_value(&a.items).map_err(bad_request)?;
    // An imported session keeps its agenda in its description; another in the catalog's own.
    match reg
        .catalog()
        .get("session")
        .and_then(|m| m.get(&key))
        .cloned()
    {
        Some(mut meta) => {
            meta["agenda"] = items.clone();
            reg.put_catalog(&by, "session", &key, meta).await?;
        }
        None => {
            reg.put_catalog(&by, AGENDA, &key, items.clone()).await?;
        }
    }
    Ok(Json(json!({ "session": key, "agenda": items })).into_response())
}

/// A session's agenda as the catalog has it (its description's, else its own entry).
pub fn agenda_of(
    catalog: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>,
    session: &str,
) -> Value {
    catalog
        .get("session")
        .and_then(|m| m.get(session))
        .and_then(|m| m.get("agenda"))
        .or_else(|| catalog.get(AGENDA).and_then(|m| m.get(session)))
        .cloned()
        .unwrap_or(json!([]))
}
