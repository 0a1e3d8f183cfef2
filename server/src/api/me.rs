//! The debate-hall web client: its routes (the built files themselves are in `assets`) and
//! the two small read APIs it needs besides sync and history: the sessions a participant
//! follows with their documents and people, and who is here now.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use toron_domain::policy::{Access, DocKey, Role};

use crate::api::auth::Reader;
use crate::api::error::{not_found, ApiError};
use crate::api::state::AppState;
use crate::registry::{Registry, Session};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move {
                crate::api::assets::asset(&name, &headers)
            }),
        )
        // The report's links: the page opens the replay at that moment once the reader's
        // token is known (the page reads the path; the server only serves it).
        .route(
            "/sessions/{key}/annotations/{id}",
            get(|headers: HeaderMap| async move { crate::api::assets::index(&headers) }),
        )
        .route(
            "/sessions/{key}/docs/{doc}",
            get(|headers: HeaderMap| async move { crate::api::assets::index(&headers) }),
        )
        .route("/api/v1/me/sessions", get(my_sessions))
        .route("/api/v1/sessions/{key}/presence", get(presence))
}

/// How a participant may be shown (their attribution choice), in a role.
fn display(state: &AppState, series: &str, participant: &str, role: &str) -> Value {
    let reg = &state.hub.registry;
    let (ko, en) = toron_domain::report::role_words(role);
    let profile = reg
        .catalog()
        .get(&toron_domain::import_plan::scoped("participant", series))
        .and_then(|m| m.get(participant))
        .cloned();
    let p = reg.participant(participant);
    let name = p.as_ref().map(|p| p.name.clone()).unwrap_or_default();
    let affiliation = p
        .as_ref()
        .map(|p| p.affiliation.clone())
        .unwrap_or_default();
    let attribution = profile
        .as_ref()
        .and_then(|v| v.get("attribution"))
        .and_then(Value::as_str)
        .map(toron_domain::consent::parse_attribution)
        .or_else(|| p.as_ref().map(|p| p.attribution))
        .unwrap_or(toron_domain::vocab::Attribution::RoleOnly);
    use toron_domain::consent::{consented, Consented};
    let shown = match consented(attribution, &name, &affiliation) {
        Consented::NameAndAffiliation { name, affiliation } => format!("{name} ({affiliation})"),
        Consented::Name(name) => name.to_string(),
        Consented::Affiliation(affiliation) => affiliation.to_string(),
        Consented::RoleOnly => String::new(),
    };
    json!({ "participant": participant, "shown": shown, "role": role, "role_ko": ko, "role_en": en })
}

async fn my_sessions(Reader(state, who): Reader) -> Result<Response, ApiError> {
    let reg = &state.hub.registry;
    let catalog = reg.catalog();
    let mut out = Vec::new();
    let mut reports = BTreeMap::new();
    for s in reg.sessions() {
        if let Some(p) = &who {
            if !reg.may_follow_session(p, &s.key) {
                continue;
            }
        }
        let meta = catalog
            .get("session")
            .and_then(|m| m.get(&s.key))
            .cloned()
            .unwrap_or(Value::Null);
        let mut docs = session_documents(reg, &catalog, &s, who.as_deref());
        answerable_findings(&state, &s.series, &mut docs.responses, &mut reports).await?;
        let my_roles: Vec<Role> = match &who {
            Some(p) => reg.roles_in_session(p, &s, true),
            None => vec![Role::Organizer],
        };
        out.push(json!({
            "key": s.key, "series": s.series, "title": s.title, "phase": s.phase, "item": s.item,
            "facilitator": s.facilitator,
            "date": meta.get("date"), "no": meta.get("no"), "field": meta.get("field"), "agenda": crate::api::prepare::agenda_of(&catalog, &s.key),
            "scheduled": meta.get("scheduled"),
            "my_roles": my_roles, "cases": docs.cases, "evaluations": docs.evaluations,
            "layers": docs.layers, "triage": docs.triage, "people": session_people(&state, &s),
            // The work after the session: the series' report (its organizers promote
            // findings into it) and the departments' responses the reader may see, each with
            // the findings addressed to that department.
            "report": docs.report, "responses": docs.responses,
            // What a gap or lesson may be routed to (the server refuses any other).
            "departments": reg.departments(Some(&s.series)),
            // What a finding may be linked to: the series' pledges (공약), in key order.
            "pledges": catalog
                .get(&toron_domain::import_plan::scoped("pledge", &s.series))
                .map(|m| m.values().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
            // The evaluation template: criteria in order, with their names and weights.
            "template": catalog
                .get(&toron_domain::import_plan::scoped("template", &s.series))
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or(Value::Null),
        }));
    }
    out.sort_by_key(|s| (s["no"].as_u64(), s["key"].to_string()));
    Ok(Json(json!({ "participant": who, "sessions": out })).into_response())
}

/// The documents of a session the reader may open, each with whether they may write it.
struct SessionDocs {
    cases: Vec<Value>,
    evaluations: Vec<Value>,
    layers: Vec<Value>,
    triage: Value,
    report: Value,
    responses: Vec<Value>,
}

fn session_documents(
    reg: &Registry,
    catalog: &BTreeMap<String, BTreeMap<String, Value>>,
    s: &Session,
    who: Option<&str>,
) -> SessionDocs {
    // Access and the role acted in, as `policy` decides them: the page asks nothing else.
    let decided = |id: &toron_protocol::DocumentId| match who {
        Some(p) => {
            let d = reg.decide(p, id);
            (d.access, d.by.role)
        }
        None => (Access::Write, Some("organizer".to_string())),
    };
    let gov = |g: &str| {
        catalog
            .get(&toron_domain::import_plan::scoped("government", &s.series))
            .and_then(|m| m.get(g))
            .and_then(|v| v.get("name_ko"))
            .and_then(Value::as_str)
            .unwrap_or(g)
            .to_string()
    };
    let in_session = |case: &str| reg.case(case).is_some_and(|c| c.session == s.key);
    let mut docs = SessionDocs {
        cases: Vec::new(),
        evaluations: Vec::new(),
        layers: Vec::new(),
        triage: Value::Null,
        report: Value::Null,
        responses: Vec::new(),
    };
    for k in reg.documents_of_series(&s.series) {
        let id = k.document_id();
        let (access, acting_role) = decided(&id);
        if access == Access::None {
            continue;
        }
        let writable = access == Access::Write;
        match &k {
            DocKey::Case { case } if in_session(case) => {
                let c = catalog
                    .get("case")
                    .and_then(|m| m.get(case))
                    .cloned()
                    .unwrap_or(Value::Null);
                docs.cases.push(json!({
                    "key": case, "doc": id.to_string(), "writable": writable,
                    "title": c.get("title").cloned().unwrap_or(json!(case)),
                    "government": c.get("government").and_then(Value::as_str).map(gov),
                    "presenters": reg.case(case).map(|c| c.presenters).unwrap_or_default(),
                }));
            }
            DocKey::Eval { case, evaluator } if in_session(case) => {
                docs.evaluations.push(json!({ "case": case, "evaluator": evaluator, "doc": id.to_string(), "writable": writable }));
            }
            DocKey::Notes {
                session,
                participant,
            } if *session == s.key => {
                // The role the owner writes in (shown as the author's role).
                let role = if who == Some(participant.as_str()) {
                    acting_role
                } else {
                    None
                };
                docs.layers.push(json!({ "participant": participant, "doc": id.to_string(), "writable": writable, "role": role }));
            }
            DocKey::Triage { session } if *session == s.key => {
                docs.triage = json!({ "doc": id.to_string(), "writable": writable });
            }
            DocKey::Report { .. } => {
                docs.report = json!({ "doc": id.to_string(), "writable": writable });
            }
            DocKey::Response { department, .. } => {
                docs.responses.push(json!({ "department": department, "doc": id.to_string(), "writable": writable }));
            }
            _ => {}
        }
    }
    docs
}

/// Adds to each response document of `series` in `responses` the findings of the series'
/// report addressed to its department (what its reviewers answer; they may not read the
/// report document itself). `reports` keeps each series' report read once per request.
async fn answerable_findings(
    state: &AppState,
    series: &str,
    responses: &mut [Value],
    reports: &mut BTreeMap<String, Value>,
) -> Result<(), ApiError> {
    if responses.is_empty() {
        return Ok(());
    }
    if !reports.contains_key(series) {
        let hub = state.hub.clone();
        let key = series.to_string();
        let report = crate::api::error::blocking(move || hub.history.report(&key))
            .await?
            .unwrap_or_else(|e| {
                tracing::warn!("{e}");
                Value::Null
            });
        reports.insert(series.to_string(), report);
    }
    let findings = reports
        .get(series)
        .and_then(|r| r.get("findings"))
        .and_then(Value::as_object);
    for r in responses {
        let department = r["department"].as_str().unwrap_or_default().to_string();
        let mine: Vec<Value> = findings
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, f)| {
                f["departments"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|d| d.as_str() == Some(&department)))
            })
            .map(|(key, f)| {
                let mut shown = json!({ "key": key });
                for k in [
                    "type",
                    "title",
                    "text",
                    "recommendation",
                    "priority",
                    "departments",
                    "case",
                    "fields",
                ] {
                    if let Some(v) = f.get(k) {
                        shown[k] = v.clone();
                    }
                }
                shown
            })
            .collect();
        r["findings"] = json!(mine);
    }
    Ok(())
}

/// Everybody with a role in the session, shown as they consented.
fn session_people(state: &AppState, s: &Session) -> serde_json::Map<String, Value> {
    let reg = &state.hub.registry;
    let mut people = serde_json::Map::new();
    for p in reg.participants() {
        let roles = reg.roles_in_session(&p.key, s, false);
        if let Some(r) = roles.first() {
            let mut d = display(state, &s.series, &p.key, r.as_str());
            d["roles"] = json!(roles);
            people.insert(p.key.clone(), d);
        }
    }
    people
}

async fn presence(
    Reader(state, who): Reader,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let reg = &state.hub.registry;
    let session = reg
        .session(&key)
        .ok_or_else(|| not_found("no such session"))?;
    if let Some(p) = &who {
        if !reg.may_follow_session(p, &key) {
            return Err(not_found("no such session"));
        }
    }
    let here: Vec<Value> = state
        .hub
        .present_in(&key)
        .into_iter()
        .map(|p| {
            let roles = reg.roles_in_session(&p, &session, false);
            let role = roles.first().map(|r| r.as_str()).unwrap_or_default();
            display(&state, &session.series, &p, role)
        })
        .collect();
    Ok(Json(json!({ "session": key, "here": here })).into_response())
}
