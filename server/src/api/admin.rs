//! `/api/v1`: participants, tokens, roles, sessions, cases and the document registry.
//!
//! Everything but `whoami` and `docs` is for organizers. Every change goes through
//! [`Registry`](crate::registry::Registry), which logs it; revoking a token or a role also
//! closes the participant's open connections, so that the next connection is judged anew.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use toron_domain::policy::{Access, DocKey, Phase, Role, Runs, Scope};
use toron_domain::vocab::{Attribution, ParticipantKind};

use crate::api::auth::{require_series, require_token_authority, Caller, Organizer};
use crate::api::error::{api_err, bad_request, created, not_found, ApiError, ApiResult, JsonBody};
use crate::api::state::AppState;
use crate::registry::{Case, Participant, Session};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/docs", get(docs))
        .route(
            "/api/v1/participants",
            get(list_participants).post(add_participant),
        )
        .route(
            "/api/v1/participants/{key}/token",
            post(issue_token).delete(revoke_token),
        )
        .route("/api/v1/roles", post(grant).delete(revoke_role))
        .route("/api/v1/sessions", get(list_sessions).post(add_session))
        .route("/api/v1/sessions/{key}/phase", put(set_phase))
        .route("/api/v1/sessions/{key}/item", put(set_item))
        .route("/api/v1/cases", post(add_case))
        .route("/api/v1/documents", post(register_document))
}

/// `Ok` when `key` is a participant; otherwise 404 naming it as the `what` it was given as.
fn known_participant(state: &AppState, key: &str, what: &str) -> Result<(), ApiError> {
    if state.hub.registry.participant(key).is_some() {
        Ok(())
    } else {
        Err(not_found(&format!(
            "{what} {key} is not a participant: add them first (toron admin participant add {key} …)"
        )))
    }
}

/// The series a role grant's scope lies in; a session must exist.
fn series_of_grant(state: &AppState, scope: &Scope) -> Result<String, ApiError> {
    state.hub.registry.series_of_scope(scope).ok_or_else(|| {
        let name = match scope {
            Scope::Series(s) | Scope::Session(s) => s,
        };
        not_found(&format!("session {name} not found: add it first"))
    })
}

async fn whoami(Caller(state, who): Caller) -> ApiResult {
    if state.hub.config.open {
        return Ok(
            Json(json!({ "open": true, "public_url": state.hub.config.public_url }))
                .into_response(),
        );
    }
    let p = state.hub.registry.participant(&who);
    Ok(Json(json!({
        "participant": who,
        // Where participants reach this server (`--public-url`), for links made elsewhere.
        "public_url": state.hub.config.public_url,
        "name": p.as_ref().map(|p| p.name.clone()),
        "affiliation": p.as_ref().map(|p| p.affiliation.clone()),
        "roles": state.hub.registry.roles_of(&who),
    }))
    .into_response())
}

async fn docs(Caller(state, who): Caller) -> ApiResult {
    let list: Vec<_> = state
        .hub
        .registry
        .readable_documents(&who)
        .into_iter()
        .map(|(e, access)| {
            json!({
                "id": e.id,
                "url": format!("automerge:{}", e.id),
                "key": e.key,
                "access": if access == Access::Write { "write" } else { "read" },
            })
        })
        .collect();
    Ok(Json(list).into_response())
}

/// The participants the caller organizes: everyone for an organizer of every series; for an
/// organizer of some series, those who hold a role in one of them — not the people of other
/// series (whose names their consent may withhold from everyone else).
async fn list_participants(Organizer(state, by): Organizer) -> ApiResult {
    let reg = &state.hub.registry;
    let organizes = reg.organizes(&by);
    let everyone =
        state.hub.config.open || matches!(organizes, toron_domain::policy::Organizes::Everything);
    let listed: Vec<_> = reg
        .participants()
        .into_iter()
        .filter(|p| {
            everyone
                || reg.roles_of(&p.key).iter().any(|g| {
                    reg.series_of_scope(&g.scope())
                        .is_some_and(|s| organizes.covers(&s))
                })
        })
        .collect();
    Ok(Json(listed).into_response())
}

#[derive(Debug, Deserialize)]
struct NewParticipant {
    key: String,
    name: String,
    #[serde(default)]
    affiliation: String,
    #[serde(default = "default_kind")]
    kind: ParticipantKind,
    #[serde(default)]
    attribution: Option<Attribution>,
    #[serde(default)]
    department: Option<String>,
}

fn default_kind() -> ParticipantKind {
    ParticipantKind::Activist
}

async fn add_participant(
    Organizer(state, by): Organizer,
    JsonBody(n): JsonBody<NewParticipant>,
) -> ApiResult {
    // Private citizens are shown by affiliation unless they choose otherwise (PIPA).
    let attribution = n.attribution.unwrap_or(match n.kind {
        ParticipantKind::Activist | ParticipantKind::Resident => Attribution::AffiliationOnly,
        ParticipantKind::Official | ParticipantKind::Expert => Attribution::NameAndAffiliation,
    });
    let reg = &state.hub.registry;
    // A department as the series list it (a name is taken for its key): the export writes
    // it back and an import checks it.
    let department = match n.department.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(reg.resolve_department(None, d)?),
    };
    let p = Participant {
        key: n.key.clone(),
        name: n.name,
        affiliation: n.affiliation,
        kind: n.kind.into(),
        attribution,
        department,
    };
    reg.add_participant(&by, p.clone()).await?;
    let token = reg.issue_token(&by, &n.key).await?;
    created(json!({ "participant": p, "token": token }))
}

async fn issue_token(Organizer(state, by): Organizer, Path(key): Path<String>) -> ApiResult {
    require_token_authority(&state, &by, &key)?;
    let token = state.hub.registry.issue_token(&by, &key).await?;
    // The old token is gone: so are the connections made with it.
    state
        .hub
        .disconnect_participant(&key, "your token was replaced");
    created(json!({ "participant": key, "token": token }))
}

async fn revoke_token(Organizer(state, by): Organizer, Path(key): Path<String>) -> ApiResult {
    require_token_authority(&state, &by, &key)?;
    let had = state.hub.registry.revoke_token(&by, &key).await?;
    let closed = state
        .hub
        .disconnect_participant(&key, "your token was revoked");
    if !had {
        return Err(not_found(&format!("participant {key} has no token")));
    }
    Ok(Json(json!({ "revoked": key, "connections_closed": closed })).into_response())
}

#[derive(Debug, Deserialize)]
struct RoleBody {
    participant: String,
    role: String,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    series: Option<String>,
}

fn parse_role(b: &RoleBody) -> Result<(Role, Scope), ApiError> {
    let role: Role = b.role.parse().map_err(bad_request)?;
    let scope = match (&b.session, &b.series) {
        (Some(s), None) => Scope::Session(s.clone()),
        (None, Some(s)) => Scope::Series(s.clone()),
        _ => return Err(bad_request("give exactly one of `session` or `series`")),
    };
    Ok((role, scope))
}

async fn grant(Organizer(state, by): Organizer, JsonBody(b): JsonBody<RoleBody>) -> ApiResult {
    let (role, scope) = parse_role(&b)?;
    let series = series_of_grant(&state, &scope)?;
    require_series(&state, &by, &series)?;
    if !state.hub.registry.knows_series(&series) {
        return Err(not_found(&format!(
            "series {series} not found: import it or add a session to it first"
        )));
    }
    state
        .hub
        .registry
        .grant(&by, &b.participant, role, scope)
        .await?;
    // Their notes layer, their evaluation forms: the hall lets them write at once.
    state.hub.provision(&by).await?;
    created(json!({ "granted": { "participant": b.participant, "role": role.as_str() } }))
}

async fn revoke_role(
    Organizer(state, by): Organizer,
    JsonBody(b): JsonBody<RoleBody>,
) -> ApiResult {
    let (role, scope) = parse_role(&b)?;
    require_series(&state, &by, &series_of_grant(&state, &scope)?)?;
    let had = state
        .hub
        .registry
        .revoke_role(&by, &b.participant, role, scope)
        .await?;
    if !had {
        return Err(not_found("no such grant"));
    }
    // Open connections were judged with the old roles.
    state
        .hub
        .disconnect_participant(&b.participant, "your roles changed; reconnect");
    Ok(
        Json(json!({ "revoked": { "participant": b.participant, "role": role.as_str() } }))
            .into_response(),
    )
}

/// The sessions the caller takes part in (all of them in open mode): who is debating what in
/// other series is not every participant's business.
async fn list_sessions(Caller(state, who): Caller) -> ApiResult {
    let reg = &state.hub.registry;
    let mut sessions = reg.sessions();
    if !state.hub.config.open {
        sessions.retain(|s| reg.may_follow_session(&who, &s.key));
    }
    Ok(Json(sessions).into_response())
}

#[derive(Debug, Deserialize)]
struct SessionBody {
    key: String,
    series: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    phase: Option<Phase>,
    #[serde(default)]
    facilitator: Option<String>,
}

async fn add_session(
    Organizer(state, by): Organizer,
    JsonBody(b): JsonBody<SessionBody>,
) -> ApiResult {
    let s = Session {
        key: b.key,
        series: b.series,
        title: b.title,
        phase: b.phase.unwrap_or(Phase::Draft),
        facilitator: b.facilitator,
        item: None,
    };
    require_series(&state, &by, &s.series)?;
    if let Some(existing) = state.hub.registry.session(&s.key) {
        require_series(&state, &by, &existing.series)?;
    }
    if let Some(f) = &s.facilitator {
        known_participant(&state, f, "facilitator")?;
    }
    state.hub.registry.put_session(&by, s.clone()).await?;
    state.hub.provision(&by).await?;
    created(s)
}

#[derive(Debug, Deserialize)]
struct PhaseBody {
    phase: Phase,
    /// Needed to move a session back (`live` → `scheduled`): it takes rights away from the
    /// people in the hall, so it is never done by mistake.
    #[serde(default)]
    force: bool,
}

/// The session `key` and what `who` may change of it as it runs (policy decides: its
/// organizers everything, its facilitator the agenda item and the phase forward to closed).
fn running_session(state: &AppState, who: &str, key: &str) -> Result<(Session, Runs), ApiError> {
    let reg = &state.hub.registry;
    let s = reg
        .session(key)
        .ok_or_else(|| not_found(&format!("session {key} not found")))?;
    let runs = if state.hub.config.open {
        Runs::Organizer
    } else {
        toron_domain::policy::runs_session(
            &reg.subject(who),
            &s.series,
            &s.key,
            s.facilitator.as_deref(),
        )
    };
    if runs == Runs::Nothing {
        return Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("only the organizers of series `{}` and the session's facilitator run session {key}", s.series),
        ));
    }
    Ok((s, runs))
}

async fn set_phase(
    Caller(state, by): Caller,
    Path(key): Path<String>,
    JsonBody(b): JsonBody<PhaseBody>,
) -> ApiResult {
    let phase = b.phase;
    let (mut s, runs) = running_session(&state, &by, &key)?;
    let from = s.phase;
    if from != phase && !runs.may_move(from, phase) {
        return Err(api_err(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "the chair moves session {key} forward only (scheduled → live → closed), not from {from} to {phase}: an organizer does the rest"
            ),
        ));
    }
    // Phases are ordered as a session lives them.
    if !b.force && phase < from {
        return Err(api_err(
            StatusCode::CONFLICT,
            "phase_backwards",
            &format!(
                "session {key} would go back from {} to {}: give `force` to do it (toron admin session phase {key} {} --force)",
                s.phase,
                phase.as_str(),
                phase.as_str()
            ),
        ));
    }
    s.phase = phase;
    state.hub.registry.put_session(&by, s.clone()).await?;
    state.hub.tell_session_state(&s);
    Ok(Json(s).into_response())
}

#[derive(Debug, Deserialize)]
struct ItemBody {
    /// The agenda item's key (one of the session's agenda); null when none is under way.
    item: Option<String>,
}

/// `PUT /api/v1/sessions/{key}/item`: the agenda item under way now, set by the chair or an
/// organizer; logged, shown to everyone in the session at once, replayed.
async fn set_item(
    Caller(state, by): Caller,
    Path(key): Path<String>,
    JsonBody(b): JsonBody<ItemBody>,
) -> ApiResult {
    let (s, _) = running_session(&state, &by, &key)?;
    if let Some(item) = &b.item {
        let agenda = crate::api::prepare::agenda_of(&state.hub.registry.catalog(), &s.key)
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !agenda.iter().any(|a| a["key"].as_str() == Some(item)) {
            return Err(bad_request(format!(
                "session {key} has no agenda item {item}"
            )));
        }
    }
    let s = state
        .hub
        .registry
        .set_agenda_item(&by, &s.key, b.item)
        .await?;
    state.hub.tell_session_state(&s);
    Ok(Json(s).into_response())
}

async fn add_case(Organizer(state, by): Organizer, JsonBody(c): JsonBody<Case>) -> ApiResult {
    let reg = &state.hub.registry;
    for session in std::iter::once(c.session.clone()).chain(reg.case_session(&c.key)) {
        let series = reg
            .session(&session)
            .map(|s| s.series)
            .ok_or_else(|| not_found(&format!("session {session} not found: add it first")))?;
        require_series(&state, &by, &series)?;
    }
    for p in &c.presenters {
        known_participant(&state, p, "presenter")?;
    }
    reg.put_case(&by, c.clone()).await?;
    // A presenter named on a case presents in its session, as an import makes them: the role
    // (and with it their notes layer, their answers) comes with the name.
    for p in &c.presenters {
        reg.grant(&by, p, Role::Presenter, Scope::Session(c.session.clone()))
            .await?;
    }
    state.hub.provision(&by).await?;
    created(c)
}

#[derive(Debug, Deserialize)]
struct DocBody {
    key: String,
}

async fn register_document(
    Organizer(state, by): Organizer,
    JsonBody(b): JsonBody<DocBody>,
) -> ApiResult {
    let key: DocKey = b.key.parse().map_err(bad_request)?;
    let reg = &state.hub.registry;
    let sessions = reg.sessions();
    let session_series = |s: &str| {
        sessions
            .iter()
            .find(|x| x.key == s)
            .map(|x| x.series.clone())
    };
    let series = match &key {
        DocKey::Case { case } | DocKey::Eval { case, .. } => reg
            .case_session(case)
            .and_then(|s| session_series(&s))
            .ok_or_else(|| bad_request(format!("case {case} is not known: add it first")))?,
        DocKey::Notes { session, .. }
        | DocKey::NotesPrivate { session, .. }
        | DocKey::Triage { session }
        | DocKey::Session { session } => session_series(session)
            .ok_or_else(|| bad_request(format!("session {session} is not known: add it first")))?,
        DocKey::Report { series } | DocKey::Response { series, .. } => {
            if !reg.knows_series(series) {
                return Err(not_found(&format!(
                    "series {series} not found: import it or add a session to it first"
                )));
            }
            series.clone()
        }
    };
    require_series(&state, &by, &series)?;
    if let DocKey::Response { series, department } = &key {
        let k = reg.resolve_department(Some(series), department)?;
        if &k != department {
            return Err(bad_request(format!(
                "department `{department}` is written by its key: response:{series}:{k}"
            )));
        }
    }
    let id = reg.register(&by, &key, &series).await?;
    state.hub.provision(&by).await?;
    created(
        json!({ "id": id.to_string(), "url": id.url().to_string(), "key": key.to_string(), "series": series }),
    )
}
