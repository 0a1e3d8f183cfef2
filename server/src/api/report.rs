//! `/api/v1/export/{key}` (a series — or a session, or `?session=` — as an import bundle) and
//! `/api/v1/reports/{series}` (the final report as HTML, Markdown or CSV, `?lang=ko|en`).
//! Both are for organizers: the report draft gathers every finding before departments see
//! their part.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use toron_domain::report::{self, Lang};

use crate::api::auth::{organizer, require_series, Organizer};
use crate::api::error::{api_err, bad_request, blocking, not_found, ApiError};
use crate::api::export::{export, ExportError};
use crate::api::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/export/{series}", get(export_bundle))
        .route("/api/v1/reports/{series}", get(report_of))
}

#[derive(Debug, Deserialize)]
struct Scope {
    session: Option<String>,
    format: Option<String>,
    lang: Option<String>,
    /// Where the report's links lead (`https://toron.example.go.kr`); by default the address
    /// the report was asked of.
    base: Option<String>,
}

/// A base for the report's links: `http(s)://authority[/path]`, without a trailing slash, or
/// why not. Only a scheme, an authority and a path survive: nothing that could end a link.
pub fn link_base(given: &str) -> Result<String, String> {
    let uri: axum::http::Uri = given
        .trim()
        .parse()
        .map_err(|_| format!("base `{given}` is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "base `{given}`: give an http:// or https:// address such as https://toron.example.go.kr"
        ));
    }
    if uri.query().is_some() {
        return Err(format!("base `{given}`: no query, just an address"));
    }
    Ok(format!(
        "{scheme}://{authority}{}",
        uri.path().trim_end_matches('/')
    ))
}

/// The report's link base when none is given: this server as the request reached it.
fn own_base(headers: &HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.hub.config.listen.to_string());
    link_base(&format!("http://{host}"))
        .unwrap_or_else(|_| format!("http://{}", state.hub.config.listen))
}

fn export_err(e: ExportError) -> ApiError {
    match e {
        ExportError::NoSeries(_) | ExportError::NoSession(_) => not_found(&e.to_string()),
        ExportError::Timeline(_) => {
            api_err(StatusCode::SERVICE_UNAVAILABLE, "storage", &e.to_string())
        }
    }
}

/// A series key, or a session key standing for its series restricted to that session.
fn resolve(state: &AppState, key: String, session: Option<String>) -> (String, Option<String>) {
    match state.hub.registry.session(&key) {
        Some(s) if session.is_none() => (s.series, Some(key)),
        _ => (key, session),
    }
}

/// The export of a series or session, for `by`, who must organize its series.
async fn exported(
    state: &AppState,
    by: &str,
    key: String,
    session: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let (series, session) = resolve(state, key, session);
    require_series(state, by, &series)?;
    let hub = state.hub.clone();
    blocking(move || export(&hub, &series, session.as_deref()))
        .await?
        .map_err(export_err)
}

async fn export_bundle(
    Organizer(state, by): Organizer,
    Path(series): Path<String>,
    Query(q): Query<Scope>,
) -> Result<Response, ApiError> {
    Ok(Json(exported(&state, &by, series, q.session).await?).into_response())
}

/// Renders the report; the same data always gives the same bytes.
pub fn render(
    bundle: serde_json::Value,
    session: Option<&str>,
    format: &str,
    lang: Lang,
    base: &str,
) -> Result<(String, &'static str), String> {
    let mut blocks = report::from_export(bundle, session, lang)?;
    report::with_base(&mut blocks, base);
    match format {
        "html" => Ok((report::html(&blocks, lang), "text/html; charset=utf-8")),
        "md" => Ok((report::markdown(&blocks), "text/markdown; charset=utf-8")),
        "csv" => {
            let (head, rows) = report::department_rows(&blocks, lang);
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&head).map_err(|e| e.to_string())?;
            for r in rows {
                w.write_record(&r).map_err(|e| e.to_string())?;
            }
            let bytes = w.into_inner().map_err(|e| e.to_string())?;
            Ok((
                String::from_utf8_lossy(&bytes).into_owned(),
                "text/csv; charset=utf-8",
            ))
        }
        other => Err(format!("unknown format `{other}` (html, md or csv)")),
    }
}

async fn report_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(series): Path<String>,
    Query(q): Query<Scope>,
) -> Result<Response, ApiError> {
    let by = organizer(&state, &headers, &uri)?;
    let lang: Lang = q
        .lang
        .as_deref()
        .unwrap_or("ko")
        .parse()
        .map_err(bad_request)?;
    let format = q.format.clone().unwrap_or_else(|| "html".into());
    let base = match q.base.as_deref() {
        Some(b) => link_base(b).map_err(bad_request)?,
        None => own_base(&headers, &state),
    };
    let (_, session) = resolve(&state, series.clone(), q.session.clone());
    let bundle = exported(&state, &by, series, q.session.clone()).await?;
    let (body, ctype) =
        render(bundle, session.as_deref(), &format, lang, &base).map_err(bad_request)?;
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}
