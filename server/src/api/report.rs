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
use toron_domain::report::{Format, Lang};

use crate::api::auth::{caller, require_series, Organizer};
use crate::api::error::{api_err, bad_request, blocking, not_found, ApiError};
use crate::api::export::{export, ExportError};
use crate::api::render::{render, Part, RenderError};
use crate::api::state::AppState;
use toron_domain::policy::{Role, Scope as GrantScope};

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
    /// One department's part (its key): for its department reviewers as for organizers.
    department: Option<String>,
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

/// Who may read a report: the series' organizers all of it; a department reviewer of the
/// series the part of their own department (`?department=` their department's key).
fn may_read_report(
    state: &AppState,
    who: &str,
    series: &str,
    department: Option<&str>,
) -> Result<(), ApiError> {
    let reg = &state.hub.registry;
    let organizes = state.hub.config.open || reg.organizes(who).covers(series);
    let reviews = |d: &str| {
        reg.has_grant(
            who,
            Role::DepartmentReviewer,
            &GrantScope::Series(series.to_string()),
        ) && reg.participant(who).and_then(|p| p.department).as_deref() == Some(d)
    };
    match department {
        _ if organizes => Ok(()),
        Some(d) if reviews(d) => Ok(()),
        Some(d) => Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "the part of department `{d}` is for its department reviewers and the organizers of series `{series}`"
            ),
        )),
        None => Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "the whole report of series `{series}` is for its organizers; a department reviewer reads their department's part (?department=KEY)"
            ),
        )),
    }
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

/// A query parameter read as its type, or `default` when it is not given.
fn parsed_or<T: std::str::FromStr>(given: Option<&str>, default: T) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    given
        .map(str::parse)
        .transpose()
        .map_err(bad_request)
        .map(|v| v.unwrap_or(default))
}

async fn report_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(series): Path<String>,
    Query(q): Query<Scope>,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers, &uri)?;
    let lang = parsed_or(q.lang.as_deref(), Lang::Ko)?;
    let format = parsed_or(q.format.as_deref(), Format::Html)?;
    let base = match q.base.as_deref() {
        Some(b) => link_base(b).map_err(bad_request)?,
        None => match &state.hub.config.public_url {
            Some(public) => public.clone(),
            None => own_base(&headers, &state),
        },
    };
    let (series_key, session) = resolve(&state, series, q.session.clone());
    may_read_report(&state, &who, &series_key, q.department.as_deref())?;
    let hub = state.hub.clone();
    let (s, only) = (series_key.clone(), session.clone());
    let bundle = blocking(move || export(&hub, &s, only.as_deref()))
        .await?
        .map_err(export_err)?;
    // A PDF takes typesetting: off the async threads, like every other long piece of work.
    let file_name = format!(
        "{}{}.{format}",
        session.as_deref().unwrap_or(&series_key),
        q.department
            .as_deref()
            .map(|d| format!("-{d}"))
            .unwrap_or_default()
    );
    let department = q.department.clone();
    let rendered = if format.is_typeset() {
        let job = crate::api::typeset::Job {
            bundle,
            session,
            department,
            format,
            lang,
            base,
        };
        state.typesetter.render(job).await
    } else {
        blocking(move || {
            let part = Part {
                session: session.as_deref(),
                department: department.as_deref(),
            };
            render(bundle, part, format, lang, &base)
        })
        .await?
    };
    let ctype = format.content_type();
    let body = rendered.map_err(|e| match e {
        RenderError::Format(m) => bad_request(m),
        RenderError::Write(m) => api_err(StatusCode::SERVICE_UNAVAILABLE, "report", &m),
        RenderError::Busy(m) => api_err(StatusCode::SERVICE_UNAVAILABLE, "report_limit", &m),
    })?;
    let disposition = if ctype.starts_with("text/") {
        "inline".to_string()
    } else {
        format!(
            "attachment; filename=\"{}\"",
            file_name.replace(['"', '\\'], "_")
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
