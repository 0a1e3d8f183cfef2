//! `POST /api/v1/import`: the metadata half of `toron import`.
//!
//! The server reads and validates the whole bundle with the same code as the CLI
//! ([`Bundle::parse`]) — nothing is written unless all of it is valid — then brings the
//! registry to what the bundle describes: descriptive data in the catalog, participants,
//! sessions, cases, role grants, the documents to be written, an import batch, and an importer
//! principal with a fresh token. Every step is idempotent (the same bundle again changes
//! nothing). The CLI then writes the documents' content through the sync protocol with that
//! token, and calls `POST /api/v1/import/{batch}/applied` to log the import per session and set
//! the sessions' final phases.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use toron_domain::bundle::{Bundle, MAX_BUNDLE_BYTES};
use toron_domain::policy::{Phase, Role, Scope};
use toron_domain::registry::Kind;
use toron_domain::vocab::Attribution;

use crate::api::auth::{organizer, require_series, Organizer};
use crate::api::error::{api_err, not_found, ApiError, JsonBody};
use crate::api::state::AppState;
use crate::registry::{Participant, Registry, RegistryError, Session};
use toron_domain::import_plan::importer_of;
use toron_domain::import_plan::{plan, Plan};

/// How long an importer token authenticates: enough to write a large bundle's content over
/// a slow link; `…/applied` revokes it as soon as the content is in.
pub const IMPORTER_TOKEN_TTL_MS: u64 = 2 * 3600 * 1000;

/// The import routes. The token is checked before the body is read: a bundle may be 64 MiB,
/// and reading that much for anybody who reaches the port let ten idle connections hold
/// 600 MiB. Only an organizer's request gets its body read, within the bundle limit.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/import", post(import))
        .route("/api/v1/import/{batch}/applied", post(applied))
        .layer(DefaultBodyLimit::max(MAX_BUNDLE_BYTES + 1024 * 1024))
        .route_layer(axum::middleware::from_fn_with_state(state, organizers_only))
}

async fn organizers_only(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match organizer(&state, req.headers(), req.uri()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    /// Refuse a bundle with warnings (valid but suspicious), not only an invalid one.
    #[serde(default)]
    strict: bool,
}

/// The batch id of a bundle: the same bytes are the same batch.
pub fn batch_of(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    format!(
        "IMP-{}",
        h.iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    created: BTreeMap<&'static str, u64>,
    unchanged: BTreeMap<&'static str, u64>,
    /// Every change the import makes to the registry (or would, in a dry run), in words.
    changes: Vec<String>,
    /// Sessions this import creates: only their phase is the bundle's to set.
    #[serde(skip)]
    new_sessions: Vec<String>,
}

impl Counts {
    fn count(&mut self, what: &'static str, changed: bool) {
        let m = if changed {
            &mut self.created
        } else {
            &mut self.unchanged
        };
        *m.entry(what).or_default() += 1;
    }
}

/// Sessions and cases are keyed across series: a bundle may not take over one that belongs to
/// another series (it would move it, with its documents and the people's roles in it).
fn foreign_keys(reg: &Registry, series: &str, p: &Plan) -> Result<(), ApiError> {
    let conflict = |what: &str, key: &str, other: &str| {
        Err(api_err(
            StatusCode::CONFLICT,
            "exists",
            &format!(
                "{what} {key} belongs to series {other}, not {series}: rename it in the bundle"
            ),
        ))
    };
    for s in &p.sessions {
        if let Some(e) = reg.session(&s.key) {
            if e.series != series {
                return conflict("session", &s.key, &e.series);
            }
        }
    }
    for c in &p.cases {
        let other = reg
            .case_session(&c.key)
            .and_then(|s| reg.session(&s))
            .map(|s| s.series);
        if let Some(other) = other.filter(|o| o != series) {
            return conflict("case", &c.key, &other);
        }
    }
    Ok(())
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    api_err(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_bundle",
        &e.to_string(),
    )
}

/// Catalog entries the registry does not hold as the plan says are put (another bundle of
/// the same series adds to its lists and removes nothing).
async fn apply_catalog(
    reg: &Registry,
    by: &str,
    entries: Vec<toron_domain::import_plan::CatalogEntry>,
    dry: bool,
    n: &mut Counts,
) -> Result<(), RegistryError> {
    let catalog = reg.catalog();
    for (kind, key, mut v) in entries {
        let existing = catalog.get(&kind).and_then(|m| m.get(&key));
        if kind == "bundle" {
            // Another bundle of the same series adds to the lists; it removes nothing.
            if let (Some(Value::Object(old)), Value::Object(new)) = (existing, &mut v) {
                for (list, items) in new.iter_mut() {
                    let mut merged: Vec<Value> = old
                        .get(list)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for i in items.as_array().into_iter().flatten() {
                        if !merged.contains(i) {
                            merged.push(i.clone());
                        }
                    }
                    *items = Value::Array(merged);
                }
            }
        }
        let same = existing == Some(&v);
        if !same {
            n.changes.push(format!(
                "{} {key} {}",
                kind.split(':').next().unwrap_or(&kind),
                if existing.is_some() {
                    "updated"
                } else {
                    "added"
                }
            ));
            if !dry {
                reg.put_catalog(by, &kind, &key, v).await?;
            }
        }
        n.count("catalog entries", !same);
    }
    Ok(())
}

async fn apply(reg: &Registry, by: &str, p: Plan, dry: bool) -> Result<Counts, RegistryError> {
    let mut n = Counts::default();
    let known = |k: &str| reg.participant(k).is_some();
    for pt in p.participants {
        let new = !known(&pt.key);
        if new {
            n.changes.push(format!("participant {} added", pt.key));
            if !dry {
                reg.add_participant(by, pt).await?;
            }
        }
        n.count("participants", new);
    }
    apply_catalog(reg, by, p.catalog, dry, &mut n).await?;
    let sessions = reg.sessions();
    for s in p.sessions {
        let existing = sessions.iter().find(|x| x.key == s.key);
        // An existing session keeps the phase it has reached.
        let s = match existing {
            Some(e) => Session {
                phase: e.phase,
                item: e.item.clone(),
                ..s
            },
            None => s,
        };
        let same = existing == Some(&s);
        if !same {
            n.changes.push(match existing {
                Some(_) => format!("session {} updated (its phase, {}, kept)", s.key, s.phase),
                None => format!("session {} added ({})", s.key, s.phase),
            });
            if existing.is_none() {
                n.new_sessions.push(s.key.clone());
            }
            if !dry {
                reg.put_session(by, s).await?;
            }
        }
        n.count("sessions", !same);
    }
    for c in p.cases {
        let before = reg.case(&c.key);
        let same = before.as_ref() == Some(&c);
        if !same {
            n.changes.push(format!(
                "case {} {}",
                c.key,
                if before.is_some() { "updated" } else { "added" }
            ));
            if !dry {
                reg.put_case(by, c).await?;
            }
        }
        n.count("cases", !same);
    }
    for (who, role, scope) in p.grants {
        let has = reg.has_grant(&who, role, &scope);
        if !has {
            let (kind, name) = match &scope {
                Scope::Series(x) => ("series", x),
                Scope::Session(x) => ("session", x),
            };
            n.changes
                .push(format!("{who} made {} of {kind} {name}", role.as_str()));
            if !dry {
                reg.grant(by, &who, role, scope).await?;
            }
        }
        n.count("role grants", !has);
    }
    for (key, series) in p.documents {
        let has = reg.document(&key.document_id()).is_some();
        if !has {
            n.changes.push(format!("document {key} registered"));
            if !dry {
                reg.register(by, &key, &series).await?;
            }
        }
        n.count("documents", !has);
    }
    Ok(n)
}

async fn import(
    Organizer(state, by): Organizer,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bundle = Bundle::parse(&body).map_err(invalid)?;
    require_series(&state, &by, &bundle.series.key)?;
    let warnings = bundle.warnings();
    if q.strict && !warnings.is_empty() {
        return Err(invalid(format!(
            "strict: {} warning(s), nothing imported:\n  {}",
            warnings.len(),
            warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )));
    }
    let batch = batch_of(&body);
    let plan = plan(&bundle).map_err(invalid)?;
    let reg = &state.hub.registry;
    foreign_keys(reg, &bundle.series.key, &plan)?;
    let counts = apply(reg, &by, plan, q.dry_run).await?;
    if q.dry_run {
        return Ok(Json(
            json!({ "batch": batch, "dry_run": true, "counts": counts, "warnings": warnings }),
        )
        .into_response());
    }
    let series = bundle.series.key.clone();
    // The importer principal of the series: it writes the content, so the timeline
    // attributes it to the importer role (and keeps the original times). It also holds the
    // organizer role of the series, because only organizers write the report document. Its
    // token expires, and `applied` revokes it.
    let importer = importer_of(&series);
    if reg.participant(&importer).is_none() {
        reg.add_participant(
            &by,
            Participant {
                key: importer.clone(),
                name: "Toron import".into(),
                affiliation: String::new(),
                kind: Kind::SERVICE,
                attribution: Attribution::RoleOnly,
                department: None,
            },
        )
        .await?;
    }
    for role in [Role::Importer, Role::Organizer] {
        reg.grant(&by, &importer, role, Scope::Series(series.clone()))
            .await?;
    }
    // Every document the sessions need, with its skeleton, before the content goes in.
    state.hub.provision(&by).await?;
    let token = reg
        .issue_expiring_token(&by, &importer, IMPORTER_TOKEN_TTL_MS)
        .await?;
    let record = json!({
        "batch": batch,
        "by": by,
        "series": series,
        "sessions": bundle.sessions.iter().map(|s| s.key.clone()).collect::<Vec<_>>(),
        "new_sessions": counts.new_sessions,
        "bytes": body.len(),
    });
    reg.put_catalog(&by, "batch", &batch, record).await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "batch": batch,
            "dry_run": false,
            "counts": counts,
            "warnings": warnings,
            "importer": { "participant": importer, "token": token, "expires_in_secs": IMPORTER_TOKEN_TTL_MS / 1000 },
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct Applied {
    /// Per session: what the content step created.
    sessions: BTreeMap<String, Value>,
    /// The bundle's phases, set once the content is in — for the sessions this import
    /// created; for the others only with `set_phases` (a live session is not moved back by a
    /// re-import that adds a walk-in participant).
    #[serde(default)]
    phases: BTreeMap<String, Phase>,
    #[serde(default)]
    set_phases: bool,
}

async fn applied(
    Organizer(state, by): Organizer,
    Path(batch): Path<String>,
    JsonBody(a): JsonBody<Applied>,
) -> Result<Response, ApiError> {
    let reg = &state.hub.registry;
    let Some(record) = reg
        .catalog()
        .get("batch")
        .and_then(|m| m.get(&batch))
        .cloned()
    else {
        return Err(not_found(&format!("import batch {batch} not found")));
    };
    let series = record["series"].as_str().unwrap_or_default().to_string();
    require_series(&state, &by, &series)?;
    // Every session named must belong to the batch's series.
    for session in a.sessions.keys().chain(a.phases.keys()) {
        if reg.session(session).is_some_and(|s| s.series != series) {
            return Err(api_err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("session {session} is not of series {series}"),
            ));
        }
    }
    for (session, created) in &a.sessions {
        reg.record_import(
            &by,
            json!({ "batch": batch, "session": session, "created": created }),
        )
        .await?;
    }
    let new_sessions: Vec<&str> = record["new_sessions"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut moved = BTreeMap::new();
    let mut kept = BTreeMap::new();
    for (session, &phase) in &a.phases {
        let Some(mut s) = reg.session(session) else {
            continue;
        };
        if s.phase == phase {
            continue;
        }
        if a.set_phases || new_sessions.contains(&session.as_str()) {
            moved.insert(session.clone(), json!({ "from": s.phase, "to": phase }));
            s.phase = phase;
            reg.put_session(&by, s).await?;
        } else {
            kept.insert(
                session.clone(),
                json!({ "phase": s.phase, "bundle_says": phase }),
            );
        }
    }
    // The batch is finished: the report stops warning about it.
    let mut done = record.clone();
    done["applied_at_ms"] = json!(state.hub.config.clock.now_ms());
    reg.put_catalog(&by, "batch", &batch, done).await?;
    // The content is in: the importer's token has done its work.
    let importer = importer_of(&series);
    if reg.revoke_token(&by, &importer).await? {
        state
            .hub
            .disconnect_participant(&importer, "the import is complete");
    }
    Ok(Json(json!({
        "batch": batch,
        "logged": a.sessions.len(),
        "phases_set": moved,
        "phases_kept": kept,
    }))
    .into_response())
}
