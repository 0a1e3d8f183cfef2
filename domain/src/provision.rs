//! The documents a session needs, and what each holds before anyone writes in it.
//!
//! A session prepared by hand has not happened: nobody has annotated, triaged or evaluated,
//! yet the chair needs the triage to run the queue, each evaluator a form for each case, each
//! participant a notes layer, each department a document to answer in, the planning officer
//! the series' report. [`needed_documents`] says which documents the registry's sessions,
//! cases, grants and departments call for, however they were made (a bundle, the CLI, the
//! HTTP API); [`skeleton`] is the content each starts with, and [`skeleton_change`] that
//! content as one Automerge change that is the same bytes wherever and whenever it is made,
//! so that two nodes, or two starts, that both make it make one change.

use std::collections::BTreeMap;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit};
use serde_json::{json, Value};
use toron_protocol::json::{init_from_json, JsonError};

use crate::policy::{DocKey, Role, Scope};
use crate::registry::{Case, RoleGrant, Session};
use crate::schema;

/// What the registry holds that decides which documents must exist.
#[derive(Debug, Clone, Copy)]
pub struct Holdings<'a> {
    pub sessions: &'a [Session],
    pub cases: &'a [Case],
    pub grants: &'a [RoleGrant],
    /// (series, department key) for every department a series defines.
    pub departments: &'a [(String, String)],
}

/// Every document the holdings call for, with the series it belongs to:
/// - per series with a session: its report, and a response document for each of its
///   departments (a finding may address any of them, as lead or assisting);
/// - per session: its triage;
/// - per case: its document, and a form for each evaluator of its session;
/// - per participant who keeps notes in a session: their layer there.
pub fn needed_documents(h: Holdings<'_>) -> BTreeMap<DocKey, String> {
    let mut out = BTreeMap::new();
    let series_of: BTreeMap<&str, &str> = h
        .sessions
        .iter()
        .map(|s| (s.key.as_str(), s.series.as_str()))
        .collect();
    for s in h.sessions {
        out.insert(
            DocKey::Report {
                series: s.series.clone(),
            },
            s.series.clone(),
        );
        out.insert(
            DocKey::Triage {
                session: s.key.clone(),
            },
            s.series.clone(),
        );
    }
    for (series, department) in h.departments {
        if series_of.values().any(|x| x == series) {
            out.insert(
                DocKey::Response {
                    series: series.clone(),
                    department: department.clone(),
                },
                series.clone(),
            );
        }
    }
    // Who holds which role in each session (a series-wide evaluator evaluates in every
    // session of the series).
    let holds = |role: Role, session: &str, series: &str| -> Vec<&str> {
        h.grants
            .iter()
            .filter(|g| g.role == role)
            .filter(|g| match g.scope() {
                Scope::Session(x) => x == session,
                Scope::Series(x) => x == series,
            })
            .map(|g| g.participant.as_str())
            .collect()
    };
    for c in h.cases {
        let Some(series) = series_of.get(c.session.as_str()) else {
            continue;
        };
        out.insert(
            DocKey::Case {
                case: c.key.clone(),
            },
            series.to_string(),
        );
        for evaluator in holds(Role::Evaluator, &c.session, series) {
            out.insert(
                DocKey::Eval {
                    case: c.key.clone(),
                    evaluator: evaluator.to_string(),
                },
                series.to_string(),
            );
        }
    }
    for g in h.grants {
        let (role, Scope::Session(session)) = (g.role, g.scope()) else {
            continue;
        };
        let Some(series) = series_of.get(session.as_str()) else {
            continue;
        };
        if role.keeps_notes() {
            out.insert(
                DocKey::Notes {
                    session,
                    participant: g.participant.clone(),
                },
                series.to_string(),
            );
        }
    }
    out
}

/// What a document of `key` holds before anyone writes in it: its schema tag, what it is
/// about, and the empty collections people add to (so that nobody's first entry makes a
/// collection of its own that a concurrent one could hide).
pub fn skeleton(key: &DocKey) -> Value {
    let tag = schema::tag(key);
    match key {
        DocKey::Case { case } => json!({ "schema": tag, "case": case }),
        DocKey::Eval { case, evaluator } => json!({
            "schema": tag, "case": case, "evaluator": evaluator, "status": "draft",
            "criteria": {},
        }),
        DocKey::Notes {
            session,
            participant,
        }
        | DocKey::NotesPrivate {
            session,
            participant,
        } => json!({
            "schema": tag, "session": session, "owner": participant,
            "annotations": {}, "reactions": {},
        }),
        DocKey::Triage { session } => json!({ "schema": tag, "session": session, "items": {} }),
        DocKey::Session { session } => json!({ "schema": tag, "session": session }),
        DocKey::Report { series } => json!({
            "schema": tag, "series": series, "status": "drafting", "findings": {},
        }),
        DocKey::Response { series, department } => json!({
            "schema": tag, "series": series, "department": department, "responses": {},
        }),
    }
}

/// The Automerge actor of a document's skeleton: derived from its key, so the same
/// everywhere, and of no participant's client (clients make random actors).
pub fn skeleton_actor(key: &DocKey) -> ActorId {
    let ns = uuid::Uuid::new_v5(&crate::policy::TORON_NAMESPACE, b"skeleton");
    ActorId::from(
        uuid::Uuid::new_v5(&ns, key.to_string().as_bytes())
            .as_bytes()
            .as_slice(),
    )
}

/// [`skeleton`] as the first change of the document: by [`skeleton_actor`], at time zero,
/// with no message — the same bytes each time it is made.
pub fn skeleton_change(key: &DocKey) -> Result<automerge::Change, JsonError> {
    let mut doc = AutoCommit::new().with_actor(skeleton_actor(key));
    init_from_json(&mut doc, &skeleton(key))?;
    doc.commit_with(CommitOptions::default().with_time(0));
    doc.get_last_local_change().ok_or_else(|| JsonError::Path {
        path: key.to_string(),
        reason: "the skeleton made no change".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Phase;

    fn grant(p: &str, role: Role, scope: Scope) -> RoleGrant {
        RoleGrant::new(p, role, &scope)
    }

    #[test]
    fn a_session_prepared_by_hand_needs_its_triage_forms_layers_report_and_responses() {
        let sessions = [Session {
            key: "S8".into(),
            series: "BM".into(),
            title: String::new(),
            phase: Phase::Scheduled,
            facilitator: None,
            item: None,
        }];
        let cases = [
            Case {
                key: "C1".into(),
                session: "S8".into(),
                presenters: vec![],
            },
            Case {
                key: "C2".into(),
                session: "S8".into(),
                presenters: vec![],
            },
        ];
        let grants = [
            grant("E1", Role::Evaluator, Scope::Session("S8".into())),
            grant("E2", Role::Evaluator, Scope::Series("BM".into())),
            grant("A1", Role::Activist, Scope::Session("S8".into())),
            grant("O1", Role::Organizer, Scope::Series("BM".into())),
            grant("X", Role::Evaluator, Scope::Session("S-OTHER".into())),
        ];
        let departments = [
            ("BM".to_string(), "D-LEAD".to_string()),
            ("BM".to_string(), "D-HELP".to_string()),
            ("ELSEWHERE".to_string(), "D-NONE".to_string()),
        ];
        let need = needed_documents(Holdings {
            sessions: &sessions,
            cases: &cases,
            grants: &grants,
            departments: &departments,
        });
        let keys: Vec<String> = need.keys().map(ToString::to_string).collect();
        for k in [
            "triage:S8",
            "report:BM",
            "response:BM:D-LEAD",
            "response:BM:D-HELP",
            "case:C1",
            "eval:C1:E1",
            "eval:C1:E2",
            "eval:C2:E1",
            "eval:C2:E2",
            "notes:S8:A1",
            "notes:S8:E1",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} is needed: {keys:?}");
        }
        assert!(!keys.iter().any(|k| k.contains("X") || k.contains("D-NONE")));
        assert!(!keys.contains(&"notes:S8:O1".to_string()));
        assert!(need.values().all(|s| s == "BM"));
    }

    #[test]
    fn a_skeleton_is_the_same_change_every_time_and_passes_the_schema() {
        let key = DocKey::Triage {
            session: "S8".into(),
        };
        let a = skeleton_change(&key).expect("made");
        let b = skeleton_change(&key).expect("made");
        assert_eq!(a.raw_bytes(), b.raw_bytes());
        assert_eq!(a.actor_id(), &skeleton_actor(&key));
        let other = skeleton_change(&DocKey::Triage {
            session: "S9".into(),
        })
        .expect("made");
        assert_ne!(a.hash(), other.hash());
        let mut doc = automerge::Automerge::new();
        doc.apply_changes([a]).expect("applies");
        let v = toron_protocol::json::doc_to_json(&doc);
        assert_eq!(v["schema"], "triage/1");
        assert!(v["items"].as_object().is_some_and(|m| m.is_empty()));
    }
}
