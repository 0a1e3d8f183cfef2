//! The parts of a series that no import described: a series, its sessions and cases made
//! with `toron admin` or the HTTP API alone. The registry holds them; the export gives them
//! the shape an import would have, so that such a series has its report like any other.

use serde_json::{json, Value};

use crate::net::hub::Hub;

/// A series some session names but no import described: its key is its title.
pub(super) fn series(hub: &Hub, series: &str) -> Option<Value> {
    hub.registry
        .sessions()
        .iter()
        .any(|s| s.series == series)
        .then(|| json!({ "key": series, "title_ko": series, "evaluation_template": "" }))
}

/// The sessions of `series` (only `only`, if given) that are not among `described`: what the
/// registry knows of each, and the roles granted in it.
pub(super) fn sessions(
    hub: &Hub,
    series: &str,
    only: Option<&str>,
    described: &[Value],
) -> Vec<Value> {
    let people = hub.registry.participants();
    let catalog = hub.registry.catalog();
    hub.registry
        .sessions()
        .into_iter()
        .filter(|s| s.series == series && only.is_none_or(|k| k == s.key))
        .filter(|s| !described.iter().any(|d| d["key"] == s.key.as_str()))
        .map(|s| {
            let roles: Vec<Value> = people
                .iter()
                .flat_map(|p| {
                    hub.registry
                        .grants_in_session(&p.key, &s.key, Some(series), false)
                        .into_iter()
                        .map(|g| json!({ "participant": p.key, "role": g.role }))
                })
                .collect();
            let title = if s.title.is_empty() { &s.key } else { &s.title };
            json!({
                "key": s.key, "series": s.series, "title": title, "phase": s.phase,
                "facilitator": s.facilitator, "roles": roles,
                "agenda": crate::api::prepare::agenda_of(&catalog, &s.key),
            })
        })
        .collect()
}

/// The cases of session `key` that are not among `described`, with their presenters.
pub(super) fn cases(hub: &Hub, key: &str, described: &[Value]) -> Vec<Value> {
    hub.registry
        .cases()
        .into_iter()
        .filter(|c| c.session == key && !described.iter().any(|d| d["key"] == c.key.as_str()))
        .map(|c| json!({ "key": c.key, "government": "", "title": c.key, "presenters": c.presenters }))
        .collect()
}
