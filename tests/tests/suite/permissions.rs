//! Every role × document kind × (read, write) × phase, through real sockets and real clients,
//! against the rules (the table of domain/src/policy.rs) — written out here a second time,
//! independently of `toron_domain::policy`, so that a slip in either shows.

use toron_domain::policy::{self, Access, DocContext, DocKey, Phase, Role, Scope, Subject};
use toron_protocol::Event;
use toron_tests::roster::{self, set_phase, try_read, try_write, Kind, WriteOutcome};
use toron_tests::secured;

/// May `role` write its own annotation layer in `phase`?
fn annotates(role: Role, phase: Phase) -> bool {
    use Phase::*;
    match role {
        Role::Organizer | Role::Importer => phase != Published,
        Role::Facilitator | Role::Presenter | Role::Evaluator | Role::Activist | Role::Official => {
            matches!(phase, Live | Closed)
        }
        Role::Scribe => phase == Live,
        Role::DepartmentReviewer | Role::Observer => false,
    }
}

/// (may read, may write) by the rules.
fn expected(role: Role, kind: Kind, phase: Phase) -> (bool, bool) {
    use Phase::*;
    let published = phase == Published;
    let importer = role == Role::Importer && !published;
    // Session roles read session documents; observers only once the session is live.
    let member_reads =
        role != Role::Observer || matches!(phase, Live | Closed | Reporting | Published);
    let (read, write) = match kind {
        Kind::Case => (
            member_reads,
            (role == Role::Organizer && matches!(phase, Draft | Scheduled))
                || (role == Role::Presenter && matches!(phase, Draft | Scheduled | Live))
                || importer,
        ),
        Kind::OwnEval => (
            member_reads,
            (role == Role::Evaluator && matches!(phase, Scheduled | Live | Closed)) || importer,
        ),
        Kind::OtherEval => (member_reads, importer),
        // Organizers repair or retract any annotation, in every phase (attributed in the log).
        Kind::OwnNotes => (
            member_reads,
            annotates(role, phase) || importer || role == Role::Organizer,
        ),
        Kind::OtherNotes => (member_reads, importer || role == Role::Organizer),
        Kind::Triage => (
            member_reads,
            (role == Role::Organizer && matches!(phase, Live | Closed | Reporting))
                || (role == Role::Facilitator && matches!(phase, Live | Closed))
                || importer,
        ),
        Kind::SessionDoc => (
            member_reads,
            matches!(role, Role::Organizer | Role::Importer) && !published,
        ),
        Kind::Report => (role == Role::Organizer, role == Role::Organizer),
        Kind::Response => (
            matches!(role, Role::Organizer | Role::DepartmentReviewer),
            role == Role::DepartmentReviewer || role == Role::Importer,
        ),
    };
    (read || write, write)
}

/// The roster's participant holding `role`, as policy sees them: organizers, importers and
/// department reviewers hold their role for the series, the others for the session.
fn subject(role: Role) -> Subject {
    let scope = match role {
        Role::Organizer | Role::Importer | Role::DepartmentReviewer => {
            Scope::Series(roster::SERIES.into())
        }
        _ => Scope::Session(roster::SESSION.into()),
    };
    Subject {
        participant: roster::who(role),
        department: (role == Role::DepartmentReviewer).then(|| roster::DEPARTMENT.to_string()),
        roles: vec![(role, scope)],
    }
}

/// The document of `key` as the roster registers it, in `phase` (series documents have none).
fn context(key: DocKey, phase: Phase) -> DocContext {
    let in_session = !matches!(key, DocKey::Report { .. } | DocKey::Response { .. });
    DocContext {
        presenters: match key {
            DocKey::Case { .. } => vec![roster::who(Role::Presenter)],
            _ => Vec::new(),
        },
        key,
        series: roster::SERIES.into(),
        session: in_session.then(|| roster::SESSION.into()),
        phase: in_session.then_some(phase),
        facilitator: Some(roster::who(Role::Facilitator)),
    }
}

/// The same table as the socket test below, asked of `policy::decide` directly: every role ×
/// kind × phase in milliseconds, so that a slip in the rules shows without a server.
#[test]
fn policy_decides_every_role_kind_and_phase_as_the_rules_say() {
    let mut wrong = Vec::new();
    for &role in Role::ALL {
        for kind in Kind::ALL {
            for &phase in Phase::ALL {
                let access = policy::decide(&subject(role), &context(kind.key(role), phase));
                let got = (access != Access::None, access == Access::Write);
                let want = expected(role, kind, phase);
                if got != want {
                    wrong.push(format!(
                        "{role:?} {kind:?} {phase:?}: (read, write) {got:?}, the rules say {want:?}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements: {wrong:#?}",
        wrong.len()
    );
}

fn rejections(server: &toron_server::Running) -> usize {
    server
        .store()
        .events(0, 1_000_000)
        .expect("events")
        .iter()
        .filter(|e| matches!(e, Event::Rejection { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_kind_and_phase_through_real_sockets() {
    let (_dir, server) = secured("toron_admin_for_the_permission_table").await;
    let tokens = roster::set_up(&server).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut value = 0;
    for &phase in Phase::ALL {
        set_phase(&server, phase).await;
        for (role, token) in &tokens {
            for kind in Kind::ALL {
                let key = kind.key(*role);
                let id = key.document_id();
                let (may_read, may_write) = expected(*role, kind, phase);

                let read = try_read(&server, token, id).await;
                if read.is_some() != may_read {
                    failures.push(format!(
                        "{phase} {role} read {key}: expected {may_read}, got {}",
                        read.is_some()
                    ));
                }
                if let Some(mut d) = read {
                    assert_eq!(
                        toron_cli::json::doc_to_json(&d.doc)["key"],
                        serde_json::json!(key.to_string()),
                        "served the right document"
                    );
                    let _ = d.heads();
                }

                value += 1;
                let records_before = server.store().document_records(&id).expect("records").len();
                let rejections_before = rejections(&server);
                let outcome = try_write(&server, token, id, value).await;
                let records_after = server.store().document_records(&id).expect("records").len();
                let ok = match (&outcome, may_write, may_read) {
                    (WriteOutcome::Stored, true, _) => records_after == records_before + 1,
                    // A reader's changes are refused, recorded as a rejection, not stored.
                    (WriteOutcome::Refused(m), false, true) => {
                        records_after == records_before
                            && rejections(&server) == rejections_before + 1
                            && m.contains("refused")
                    }
                    // Somebody who may not even read learns nothing, and nothing is stored.
                    (WriteOutcome::Unavailable, false, false) => records_after == records_before,
                    _ => false,
                };
                if !ok {
                    failures.push(format!(
                        "{phase} {role} write {key}: expected write={may_write} read={may_read}, got {outcome:?} (records {records_before} -> {records_after})"
                    ));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        Phase::ALL.len() * Role::ALL.len() * Kind::ALL.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.shutdown().await.expect("shutdown");
}
