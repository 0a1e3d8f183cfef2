//! What the registry must hold for a bundle: the import plan.
//!
//! A pure function of the bundle: catalog entries (descriptive data, scoped per series),
//! participants, sessions, cases, role grants and the documents to be written. The server
//! brings its registry to the plan (every step idempotent); nothing here touches a store.

use serde_json::Value;

use crate::bundle::{Bundle, Session as BundleSession};
use crate::policy::{DocKey, Phase, Role, Scope};
use crate::registry::{Case, Participant, Session};

/// The participant that wrote imported content before importers were per series.
pub const IMPORTER: &str = "toron-importer";

/// The participant that writes a series' imported content: one per series, so that its
/// token reaches nothing of another series.
pub fn importer_of(series: &str) -> String {
    format!("{IMPORTER}.{series}")
}

/// Whether `participant` is an importer principal (of any series, or the old shared one).
pub fn is_importer(participant: &str) -> bool {
    participant == IMPORTER || participant.starts_with(&format!("{IMPORTER}."))
}

/// Reference data is kept per series (`field:SERIES`): two series may use the same key for
/// different things.
pub fn scoped(kind: &str, series: &str) -> String {
    format!("{kind}:{series}")
}

/// While content is written, a session may not be `published` (nothing could be written).
pub fn phase_during_import(phase: Phase) -> Phase {
    if phase == Phase::Published {
        Phase::Reporting
    } else {
        phase
    }
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Value::Object(m) = v {
        for k in keys {
            m.remove(*k);
        }
    }
}

/// One catalog entry: (kind, key, value).
pub type CatalogEntry = (String, String, Value);

/// What the registry must hold for a bundle.
#[derive(Debug, Default)]
pub struct Plan {
    pub catalog: Vec<CatalogEntry>,
    pub participants: Vec<Participant>,
    pub sessions: Vec<Session>,
    pub cases: Vec<Case>,
    /// (participant, role, scope), sorted, without duplicates.
    pub grants: Vec<(String, Role, Scope)>,
    /// Each document once, with its series.
    pub documents: Vec<(DocKey, String)>,
}

impl Plan {
    /// Registers `k` once.
    fn document(&mut self, k: DocKey, series: &str) {
        if !self.documents.iter().any(|(d, _)| *d == k) {
            self.documents.push((k, series.to_string()));
        }
    }
}

/// The plan of `b` (a bundle already parsed and validated).
pub fn plan(b: &Bundle) -> Result<Plan, serde_json::Error> {
    let series = b.series.key.clone();
    let mut p = Plan {
        catalog: reference_catalog(b)?,
        ..Plan::default()
    };
    for x in &b.participants {
        p.catalog.push((
            scoped("participant", &series),
            x.key.clone(),
            serde_json::to_value(x)?,
        ));
        p.participants.push(Participant {
            key: x.key.clone(),
            name: x.name.clone(),
            affiliation: x.affiliation.clone(),
            kind: x.kind.into(),
            attribution: x.attribution,
            department: x.department.clone(),
        });
    }
    for s in &b.sessions {
        plan_session(&mut p, &series, s)?;
    }
    // The report is registered even before it has a finding: its organizers promote the
    // session's accepted annotations into it after the session.
    p.document(
        DocKey::Report {
            series: series.clone(),
        },
        &series,
    );
    for r in &b.department_responses {
        p.document(
            DocKey::Response {
                series: series.clone(),
                department: r.department.clone(),
            },
            &series,
        );
    }
    p.grants.sort_by(|a, b| {
        (&a.0, a.1.as_str(), format!("{:?}", a.2)).cmp(&(&b.0, b.1.as_str(), format!("{:?}", b.2)))
    });
    p.grants.dedup();
    Ok(p)
}

/// The series, its template, meta and reference entities, and which of them belong to it in
/// the bundle's order (they are shared by key across series; an export gives back exactly
/// these).
fn reference_catalog(b: &Bundle) -> Result<Vec<CatalogEntry>, serde_json::Error> {
    let series = &b.series.key;
    // What an export derives from the log (the series' sessions and where they stand) is
    // not the bundle's to set: an export imported again does not carry it in.
    let mut series_meta = serde_json::to_value(&b.series)?;
    strip(&mut series_meta, &["sessions_registered"]);
    let mut catalog: Vec<CatalogEntry> = vec![
        ("series".into(), series.clone(), series_meta),
        (
            scoped("template", series),
            b.evaluation_template.key.clone(),
            serde_json::to_value(&b.evaluation_template)?,
        ),
    ];
    if !b.meta.is_null() {
        catalog.push(("meta".into(), series.clone(), b.meta.clone()));
    }
    catalog.extend(entries("field", series, &b.fields, |x| &x.key)?);
    catalog.extend(entries("government", series, &b.governments, |x| &x.key)?);
    catalog.extend(entries("department", series, &b.departments, |x| &x.key)?);
    catalog.extend(entries("pledge", series, &b.pledges, |x| &x.key)?);
    let keys = |v: Vec<&String>| Value::from(v.into_iter().cloned().collect::<Vec<_>>());
    catalog.push((
        "bundle".into(),
        series.clone(),
        serde_json::json!({
            "fields": keys(b.fields.iter().map(|x| &x.key).collect()),
            "governments": keys(b.governments.iter().map(|x| &x.key).collect()),
            "departments": keys(b.departments.iter().map(|x| &x.key).collect()),
            "pledges": keys(b.pledges.iter().map(|x| &x.key).collect()),
            "participants": keys(b.participants.iter().map(|x| &x.key).collect()),
        }),
    ));
    Ok(catalog)
}

/// Each of `items` as a catalog entry of `kind` in the series, under its key.
fn entries<T: serde::Serialize>(
    kind: &str,
    series: &str,
    items: &[T],
    key: impl Fn(&T) -> &String,
) -> Result<Vec<CatalogEntry>, serde_json::Error> {
    items
        .iter()
        .map(|x| {
            Ok((
                scoped(kind, series),
                key(x).clone(),
                serde_json::to_value(x)?,
            ))
        })
        .collect()
}

/// What a session's catalog entry leaves out: its content (kept in documents) and `attended`,
/// the presence record's, which an export derives from the log.
const NOT_SESSION_META: &[&str] = &[
    "cases",
    "evaluations",
    "annotations",
    "reactions",
    "triage",
    "attended",
];

/// A session of the bundle: its catalog entry and registry record, the roles it grants, its
/// cases, and the documents its content lives in.
fn plan_session(p: &mut Plan, series: &str, s: &BundleSession) -> Result<(), serde_json::Error> {
    let mut meta = serde_json::to_value(s)?;
    strip(&mut meta, NOT_SESSION_META);
    p.catalog.push(("session".into(), s.key.clone(), meta));
    p.sessions.push(Session {
        key: s.key.clone(),
        series: series.to_string(),
        title: s.title.clone(),
        // (`Bundle::parse` refused an unknown phase with the bundle's other problems.)
        phase: phase_during_import(s.phase.parse().map_err(serde::de::Error::custom)?),
        facilitator: s.facilitator.clone(),
        item: None,
    });
    let here = || Scope::Session(s.key.clone());
    for r in &s.roles {
        let Ok(role) = r.role.parse::<Role>() else {
            continue;
        };
        // Organizers and department reviewers work for the whole series.
        let scope = match role {
            Role::Organizer | Role::DepartmentReviewer | Role::Importer => {
                Scope::Series(series.to_string())
            }
            _ => here(),
        };
        p.grants.push((r.participant.clone(), role, scope));
    }
    for c in &s.cases {
        let mut meta = serde_json::to_value(c)?;
        strip(&mut meta, &["sections", "indicators"]);
        p.catalog.push(("case".into(), c.key.clone(), meta));
        p.cases.push(Case {
            key: c.key.clone(),
            session: s.key.clone(),
            presenters: c.presenters.clone(),
        });
        for who in &c.presenters {
            p.grants.push((who.clone(), Role::Presenter, here()));
        }
        p.document(
            DocKey::Case {
                case: c.key.clone(),
            },
            series,
        );
    }
    for e in &s.evaluations {
        p.grants
            .push((e.evaluator.clone(), Role::Evaluator, here()));
        p.document(
            DocKey::Eval {
                case: e.case.clone(),
                evaluator: e.evaluator.clone(),
            },
            series,
        );
    }
    for a in &s.annotations {
        if let Ok(k) = a.layer().parse::<DocKey>() {
            p.document(k, series);
        }
    }
    for r in &s.reactions {
        p.document(
            DocKey::Notes {
                session: s.key.clone(),
                participant: r.participant.clone(),
            },
            series,
        );
    }
    if !s.triage.is_empty() {
        p.document(
            DocKey::Triage {
                session: s.key.clone(),
            },
            series,
        );
    }
    // Everyone who annotates in the session has a layer from the start, not only those with
    // annotations to import: the hall client writes into it.
    let layers: Vec<DocKey> = p
        .grants
        .iter()
        .filter(|(_, role, scope)| {
            role.keeps_notes() && matches!(scope, Scope::Session(k) if *k == s.key)
        })
        .map(|(who, _, _)| DocKey::Notes {
            session: s.key.clone(),
            participant: who.clone(),
        })
        .collect();
    for k in layers {
        p.document(k, series);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        let text = include_str!("../../examples/debate-bundle.json");
        Bundle::parse(text.as_bytes()).expect("the example bundle parses")
    }

    #[test]
    fn the_example_plans_its_people_sessions_and_documents() {
        let b = bundle();
        let p = plan(&b).expect("plan");
        assert_eq!(p.participants.len(), b.participants.len());
        assert_eq!(p.sessions.len(), b.sessions.len());
        // A facilitator's, an evaluator's and an activist's layers exist before they write.
        for who in ["P-MOON", "P-PARK", "P-KIM"] {
            let layer = DocKey::Notes {
                session: "S-LIB".into(),
                participant: who.into(),
            };
            assert!(
                p.documents.iter().any(|(k, _)| *k == layer),
                "{who} has a notes layer"
            );
        }
        // Evaluators are granted in their session, each grant once.
        assert!(p.grants.iter().any(|(who, role, scope)| who == "P-PARK"
            && *role == Role::Evaluator
            && *scope == Scope::Session("S-LIB".into())));
        let mut seen = std::collections::BTreeSet::new();
        assert!(p.grants.iter().all(|g| seen.insert(format!("{g:?}"))));
        // Reference data is scoped to the series; the case entry leaves its content out.
        let series = &b.series.key;
        assert!(p
            .catalog
            .iter()
            .any(|(k, _, _)| *k == scoped("field", series)));
        let case = p
            .catalog
            .iter()
            .find(|(k, _, _)| k == "case")
            .expect("a case entry");
        assert!(case.2.get("sections").is_none());
    }

    #[test]
    fn the_same_bundle_plans_the_same() {
        let b = bundle();
        let (a, c) = (plan(&b).expect("plan"), plan(&b).expect("plan"));
        assert_eq!(a.grants, c.grants);
        assert_eq!(a.documents, c.documents);
        assert_eq!(a.catalog, c.catalog);
    }

    #[test]
    fn a_published_session_is_written_while_reporting() {
        assert_eq!(phase_during_import(Phase::Published), Phase::Reporting);
        assert_eq!(phase_during_import(Phase::Live), Phase::Live);
        assert!(is_importer(&importer_of("S1")) && is_importer(IMPORTER));
        assert!(!is_importer("toron-importers"));
    }
}
