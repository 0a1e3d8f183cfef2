//! The invite sheet: every participant of a session with a join link and its QR code, in one
//! request, so that an organizer prints, saves or mails fifty links instead of running
//! `token issue` fifty times.
//!
//! Tokens are stored hashed, so a link can only be shown when it is made: the sheet issues
//! tokens for those who have none yet, and — only when asked (`reissue`) — replaces everyone's,
//! which ends the connections made with the old ones. A sheet printed for a hall already in
//! session therefore never locks out the people in it by default.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::{require_series, require_token_authority, Organizer};
use crate::api::error::{api_err, not_found, ApiError, JsonBody};
use crate::api::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/sessions/{key}/invites", post(invites))
}

#[derive(Debug, Deserialize)]
struct InviteBody {
    /// The address participants open (`https://toron.example.go.kr`): the server cannot know
    /// the name it is reached by behind a proxy. An `http(s)` URL without a path.
    base: String,
    /// Replace tokens people already have (their open connections close).
    #[serde(default)]
    reissue: bool,
}

/// The order of roles on the sheet: the chair and presenters first, the hall after.
const ROLE_ORDER: [&str; 8] = [
    "facilitator",
    "presenter",
    "evaluator",
    "official",
    "activist",
    "scribe",
    "department_reviewer",
    "observer",
];

/// A QR code of `text` as an SVG element (black on white, with its quiet zone).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(160, 160)
            .build(),
    )
}

fn valid_base(base: &str) -> Option<String> {
    let u = url::Url::parse(base).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    if u.query().is_some() || u.fragment().is_some() || !matches!(u.path(), "" | "/") {
        return None;
    }
    Some(base.trim_end_matches('/').to_string())
}

async fn invites(
    Organizer(state, by): Organizer,
    Path(key): Path<String>,
    JsonBody(b): JsonBody<InviteBody>,
) -> Result<Response, ApiError> {
    let reg = &state.hub.registry;
    let session = reg
        .session(&key)
        .ok_or_else(|| not_found(&format!("session {key} not found")))?;
    require_series(&state, &by, &session.series)?;
    let Some(base) = valid_base(&b.base) else {
        return Err(api_err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "base is the address participants open, such as https://toron.example.go.kr (no path)",
        ));
    };
    // Everyone with a role in this session, the chair and presenters first.
    let mut people: Vec<(usize, String, String, String)> = Vec::new();
    for p in reg.participants() {
        let roles: Vec<String> = reg
            .grants_in_session(&p.key, &key, None, false)
            .into_iter()
            .map(|g| g.role)
            .collect();
        let Some(role) = roles.iter().min_by_key(|r| {
            ROLE_ORDER
                .iter()
                .position(|o| o == r)
                .unwrap_or(ROLE_ORDER.len())
        }) else {
            continue;
        };
        let rank = ROLE_ORDER
            .iter()
            .position(|o| o == role)
            .unwrap_or(ROLE_ORDER.len());
        people.push((rank, p.name.clone(), p.key.clone(), role.clone()));
    }
    people.sort();
    let mut out: Vec<Value> = Vec::new();
    let (mut issued, mut kept, mut refused) = (0, 0, 0);
    for (_, name, participant, role) in people {
        let (role_ko, role_en) = toron_domain::report::role_words(&role);
        let affiliation = reg
            .participant(&participant)
            .map(|p| p.affiliation)
            .unwrap_or_default();
        let mut entry = json!({
            "participant": participant, "name": name, "affiliation": affiliation,
            "role": role, "role_ko": role_ko, "role_en": role_en,
            "link": null, "qr_svg": null, "issued": false,
        });
        let had = reg.has_token(&participant);
        if require_token_authority(&state, &by, &participant).is_err() {
            // Somebody who takes part in a series this organizer does not run.
            entry["note"] = json!("not_yours");
            refused += 1;
        } else if b.reissue || !had {
            let token = reg.issue_token(&by, &participant).await?;
            if had {
                state
                    .hub
                    .disconnect_participant(&participant, "your token was replaced");
            }
            let link = format!("{base}/#/join/{token}");
            entry["qr_svg"] = json!(qr_svg(&link));
            entry["link"] = json!(link);
            entry["issued"] = json!(true);
            issued += 1;
        } else {
            entry["note"] = json!("has_token");
            kept += 1;
        }
        out.push(entry);
    }
    tracing::info!(session = %key, %by, issued, kept, refused, reissue = b.reissue, "invite sheet");
    Ok(Json(json!({
        "session": key, "title": session.title, "series": session.series,
        "issued": issued, "kept": kept, "not_yours": refused,
        "invites": out,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_an_address_without_a_path() {
        assert_eq!(
            valid_base("https://toron.example.go.kr/").as_deref(),
            Some("https://toron.example.go.kr")
        );
        assert_eq!(
            valid_base("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        for bad in [
            "javascript:alert(1)",
            "ftp://x",
            "https://x/evil?y",
            "https://x/#a",
            "https://x/path",
            "toron",
        ] {
            assert_eq!(valid_base(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_qr_code_is_an_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/#/join/toron_abc").unwrap_or_default();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    }
}
