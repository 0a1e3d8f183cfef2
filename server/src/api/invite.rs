//! The invite sheet: every participant of a session with a join link and its QR code, in one
//! request, so that an organizer prints, saves or mails fifty links instead of running
//! `token issue` fifty times.
//!
//! A link carries a one-time join code, never a token: a browser keeps every address it opened
//! in its history, where the next person at a shared computer would find it. The page
//! exchanges the code at once for a token of that device (`POST /api/v1/join`,
//! [`crate::registry::join_codes`]), and the code is spent. Making a sheet therefore locks
//! nobody out; only when asked (`reissue`) are everyone's tokens revoked first, which ends the
//! connections made with them.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use toron_domain::policy::Role;
use toron_domain::registry::Kind;

use crate::api::auth::{require_series, require_token_authority, Organizer};
use crate::api::error::{api_err, not_found, ApiError, JsonBody};
use crate::api::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sessions/{key}/invites", post(invites))
        .route("/api/v1/join", post(join))
}

#[derive(Debug, Deserialize)]
struct JoinBody {
    code: String,
}

/// Exchanges an invite link's join code for a token of this device. Needs no token: the code
/// is the proof (256 random bits, once).
async fn join(
    axum::extract::State(state): axum::extract::State<AppState>,
    JsonBody(b): JsonBody<JoinBody>,
) -> Result<Response, ApiError> {
    use crate::registry::join_codes::JoinError;
    match state.hub.registry.redeem_join_code(b.code.trim()).await {
        Ok((participant, token)) => {
            Ok(Json(json!({ "participant": participant, "token": token })).into_response())
        }
        Err(JoinError::Unknown) => Err(api_err(
            StatusCode::UNAUTHORIZED,
            "join_code",
            "이 초대 링크는 이미 사용했거나 유효하지 않습니다. 운영자에게 새 링크를 받으세요 (this invite link was used already or is not valid)",
        )),
        Err(JoinError::Registry(e)) => Err(api_err(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            &e.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct InviteBody {
    /// The address participants open (`https://toron.example.go.kr`), as the page or the CLI
    /// knows it: the server cannot know the name it is reached by behind a proxy. An
    /// `http(s)` URL without a path. The server's `--public-url`, when it has one, wins.
    #[serde(default)]
    base: Option<String>,
    /// Revoke the tokens people already have (their open connections close) before giving
    /// them new links.
    #[serde(default)]
    reissue: bool,
}

/// The order of roles on the sheet: the chair and presenters first, the hall after.
const ROLE_ORDER: [Role; 9] = [
    Role::Facilitator,
    Role::Presenter,
    Role::Evaluator,
    Role::Official,
    Role::Activist,
    Role::Scribe,
    Role::DepartmentReviewer,
    Role::Observer,
    Role::Organizer,
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
    let given = state.hub.config.public_url.as_deref().or(b.base.as_deref());
    let Some(base) = given.and_then(valid_base) else {
        return Err(api_err(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "base is the address participants open, such as https://toron.example.go.kr (no path); or start the server with --public-url",
        ));
    };
    // Links to this very computer open nowhere else: the sheet says so.
    let loopback = url::Url::parse(&base)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
        .is_some_and(|h| match h {
            url::Host::Domain(d) => d == "localhost" || d.ends_with(".localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        });
    // Everyone with a role in this session, the chair and presenters first.
    let mut people: Vec<(usize, String, String, Role)> = Vec::new();
    for p in reg.participants() {
        // The import's service principal is nobody to invite.
        if p.kind == Kind::SERVICE {
            continue;
        }
        // The series' organizers and department reviewers take part too.
        let roles: Vec<Role> = reg
            .grants_in_session(&p.key, &key, Some(&session.series), false)
            .into_iter()
            .map(|g| g.role)
            .collect();
        let Some(role) = roles.iter().min_by_key(|r| {
            ROLE_ORDER
                .iter()
                .position(|o| o == *r)
                .unwrap_or(ROLE_ORDER.len())
        }) else {
            continue;
        };
        let rank = ROLE_ORDER
            .iter()
            .position(|o| o == role)
            .unwrap_or(ROLE_ORDER.len());
        people.push((rank, p.name.clone(), p.key.clone(), *role));
    }
    people.sort();
    let mut out: Vec<Value> = Vec::new();
    let (mut issued, mut kept, mut refused) = (0, 0, 0);
    for (_, name, participant, role) in people {
        let (role_ko, role_en) = toron_domain::report::role_words(role.as_str());
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
        } else {
            if b.reissue && had {
                reg.revoke_token(&by, &participant).await?;
                state
                    .hub
                    .disconnect_participant(&participant, "your token was replaced");
            } else if had {
                kept += 1;
            }
            let code = reg.issue_join_code(&by, &participant).await?;
            let link = format!("{base}/#/join/{code}");
            entry["qr_svg"] = json!(qr_svg(&link));
            entry["link"] = json!(link);
            entry["issued"] = json!(true);
            issued += 1;
        }
        out.push(entry);
    }
    tracing::info!(session = %key, %by, issued, kept, refused, reissue = b.reissue, "invite sheet");
    Ok(Json(json!({
        "session": key, "title": session.title, "series": session.series,
        "issued": issued, "kept": kept, "not_yours": refused,
        "base": base, "loopback": loopback, "public_url": state.hub.config.public_url.is_some(),
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
