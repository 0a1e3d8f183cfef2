//! Who is calling: bearer tokens, and the checks every handler shares.

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::api::error::{api_err, error_response, ApiError};
use crate::api::state::AppState;

/// The bearer token of an HTTP request: `Authorization: Bearer …` only. A token in a URL
/// ends up in proxy logs, browser history and `Referer` headers, so `?token=` is taken on the
/// WebSocket upgrade alone (see [`ws_bearer`]), where browsers cannot set headers.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// The `?token=` of a URL, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
}

/// The token of a WebSocket upgrade: the header, or `?token=` (browsers cannot set headers
/// on a WebSocket).
pub fn ws_bearer(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    bearer(headers).or_else(|| query_token(query))
}

fn percent_decode(s: &str) -> String {
    fn hexval(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some(hexval(b[i + 1])? * 16 + hexval(b[i + 2])?))
            .flatten();
        match decoded {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
    /// A token in the URL of a plain HTTP request: refused, so that nobody gets used to it.
    InUrl,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "a token is required: `Authorization: Bearer <token>` (or `?token=<token>` on the WebSocket)"
            }
            AuthError::Invalid => "the token is not valid (unknown, revoked, expired or mistyped)",
            AuthError::InUrl => {
                "a token in the URL is taken only on the WebSocket; send `Authorization: Bearer <token>`"
            }
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        error_response(StatusCode::UNAUTHORIZED, "unauthorized", self.message())
    }
}

/// Who is calling an HTTP route: `Ok(None)` in open mode, `Ok(Some(participant))` with a
/// valid token in the `Authorization` header. `query` only tells a misplaced token apart.
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<String>, AuthError> {
    if state.hub.config.open {
        return Ok(None);
    }
    let token = match bearer(headers) {
        Some(t) => t,
        None if query_token(query).is_some() => return Err(AuthError::InUrl),
        None => return Err(AuthError::Missing),
    };
    participant_of(state, &token).map(Some)
}

pub fn participant_of(state: &AppState, token: &str) -> Result<String, AuthError> {
    state
        .hub
        .registry
        .authenticate(token)
        .ok_or(AuthError::Invalid)
}

/// The caller's participant key (`"open"` in open mode).
pub fn caller(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<String, ApiError> {
    match authenticate(state, headers, uri.query()) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Ok("open".into()),
        Err(e) => Err(e.into()),
    }
}

pub fn organizer(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<String, ApiError> {
    let who = caller(state, headers, uri)?;
    if state.hub.config.open || state.hub.registry.is_organizer(&who) {
        Ok(who)
    } else {
        Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only organizers may do this",
        ))
    }
}

/// `Ok` when `by` organizes `series` (always in open mode): an organizer acts within the
/// series they organize only.
pub fn require_series(state: &AppState, by: &str, series: &str) -> Result<(), ApiError> {
    if state.hub.config.open || state.hub.registry.organizes(by).covers(series) {
        Ok(())
    } else {
        Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("you are not an organizer of series `{series}`"),
        ))
    }
}

/// `Ok` when `by` may issue or revoke `participant`'s token (see
/// `Registry::may_manage_token_of`).
pub fn require_token_authority(
    state: &AppState,
    by: &str,
    participant: &str,
) -> Result<(), ApiError> {
    if state.hub.config.open || state.hub.registry.may_manage_token_of(by, participant) {
        Ok(())
    } else {
        Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("{participant} takes part in a series you do not organize: only an organizer of every series it takes part in may manage its token"),
        ))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        api_err(StatusCode::UNAUTHORIZED, "unauthorized", e.message())
    }
}

/// Makes `$t` (a caller: the state and who calls, as `$who` finds them from the state, headers
/// and URI) an extractor, whose rejection is the API's error.
macro_rules! caller_extractor {
    ($t:ident, $who:expr) => {
        impl axum::extract::FromRequestParts<AppState> for $t {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let who = $who(state, &parts.headers, &parts.uri)?;
                Ok($t(state.clone(), who))
            }
        }
    };
}

/// The authenticated caller of a route: the server's state, and their participant key
/// (`"open"` in open mode). Taking it as an argument is the route's authentication; a request
/// without a valid token is answered 401 before the handler runs.
///
/// The three callers ([`Caller`], [`Organizer`], [`Reader`]) carry the state because every
/// route that asks who calls also acts on the server.
#[derive(Debug, Clone)]
pub struct Caller(pub AppState, pub String);
caller_extractor!(Caller, caller);

/// An organizer calling a route (anybody in open mode): 401 without a valid token, 403 for
/// a participant who organizes nothing. Which series they may act in is the handler's check
/// ([`require_series`]), since the series comes from the path or the body.
#[derive(Debug, Clone)]
pub struct Organizer(pub AppState, pub String);
caller_extractor!(Organizer, organizer);

/// Who reads through a route: `None` in open mode, else the participant of a valid token.
/// What they may read is decided per document or session by the handler.
#[derive(Debug, Clone)]
pub struct Reader(pub AppState, pub Option<String>);
caller_extractor!(
    Reader,
    |state, headers, uri: &axum::http::Uri| authenticate(state, headers, uri.query())
);
