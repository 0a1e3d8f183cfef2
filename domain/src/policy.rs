//! Who may read and write which document: the one place where permission is decided.
//!
//! Every document has a fixed group of writers, so a permission is a check per
//! document, never per path inside a change. [`decide`] takes the participant's roles, the
//! document's key and what the server knows about it (its session's phase, the case's
//! presenters, the department a response belongs to) and answers [`Access`]. The server calls
//! it for every `request`/`sync`; the engine refuses changes from anyone below
//! [`Access::Write`].
//!
//! The rules (R read, W write):
//!
//! | document | readers | writers (phases) |
//! |---|---|---|
//! | `case:{case}` | session roles (observers from `live`) | organizer (draft, scheduled); that case's presenters (draft, scheduled, live); importer |
//! | `eval:{case}:{evaluator}` | session roles | that evaluator (scheduled, live, closed); importer |
//! | `notes:{session}:{p}` | session roles | `p`, while one of p's roles may annotate in the phase; importer |
//! | `notes-private:{session}:{p}` | `p` | `p`, as for `notes:` |
//! | `triage:{session}` | session roles | organizer (live, closed, reporting); the session's facilitator (live, closed); importer |
//! | `session:{session}` | session roles | organizer (all but published); importer |
//! | `report:{series}` | organizers | organizers |
//! | `response:{series}:{department}` | organizers, that department's reviewers | that department's reviewers |
//!
//! Annotating (writing one's own `notes:` layer): organizer in every phase before
//! `published`; facilitator, presenter, evaluator, activist and official in `live` and
//! `closed` (the written-opinion grace period); scribe in `live`; department reviewers and
//! observers never. In `published` every session document is read-only. "Session roles" are
//! the roles held in that session or for the whole series.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

pub use crate::vocab::{Phase, Role};

impl Role {
    /// Does a holder of this role in a session keep a notes layer there (so that the hall
    /// client can write from the start)? Every role that annotates in a live session.
    pub fn keeps_notes(self) -> bool {
        self.may_annotate(Phase::Live) && !matches!(self, Role::Organizer | Role::Importer)
    }

    /// May this role write its own annotation layer in `phase`?
    pub fn may_annotate(self, phase: Phase) -> bool {
        use Phase::*;
        match self {
            Role::Organizer | Role::Importer => phase != Published,
            Role::Facilitator
            | Role::Presenter
            | Role::Evaluator
            | Role::Activist
            | Role::Official => {
                matches!(phase, Live | Closed)
            }
            Role::Scribe => phase == Live,
            Role::DepartmentReviewer | Role::Observer => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown role `{0}`")]
    Role(String),
    #[error("unknown phase `{0}`")]
    Phase(String),
    #[error("`{0}` is not a document key (case:…, eval:…:…, notes:…:…, notes-private:…:…, triage:…, session:…, report:…, response:…:…)")]
    Key(String),
}

impl FromStr for Role {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        match s {
            "department-reviewer" => Some(Role::DepartmentReviewer),
            _ => Role::parse(s),
        }
        .ok_or_else(|| PolicyError::Role(s.to_string()))
    }
}

impl FromStr for Phase {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        Phase::parse(s).ok_or_else(|| PolicyError::Phase(s.to_string()))
    }
}

/// A readable document key; the document id is derived from it ([`DocKey::document_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKey {
    Case {
        case: String,
    },
    Eval {
        case: String,
        evaluator: String,
    },
    Notes {
        session: String,
        participant: String,
    },
    NotesPrivate {
        session: String,
        participant: String,
    },
    Triage {
        session: String,
    },
    Session {
        session: String,
    },
    Report {
        series: String,
    },
    Response {
        series: String,
        department: String,
    },
}

/// Namespace of Toron's deterministic document ids: `UUIDv5(TORON_NAMESPACE, key)`.
pub const TORON_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0x6f, 0x3e, 0x1c, 0x52, 0x8a, 0x0b, 0x4d, 0x1f, 0x9c, 0x57, 0x2e, 0x74, 0x0d, 0xa1, 0x3b, 0x88,
]);

impl DocKey {
    pub fn kind(&self) -> &'static str {
        match self {
            DocKey::Case { .. } => "case",
            DocKey::Eval { .. } => "eval",
            DocKey::Notes { .. } => "notes",
            DocKey::NotesPrivate { .. } => "notes-private",
            DocKey::Triage { .. } => "triage",
            DocKey::Session { .. } => "session",
            DocKey::Report { .. } => "report",
            DocKey::Response { .. } => "response",
        }
    }

    /// The deterministic id: re-registering the same key names the same document.
    /// Whether `id` has the shape of a key's id (a name-based UUID, version 5). Such ids are
    /// reserved for registration: a document created ad hoc under one would later be taken
    /// for the keyed document (someone's notes, an evaluation) with content nobody wrote there.
    /// Clients make random ids (version 4).
    pub fn is_key_shaped(id: &toron_protocol::DocumentId) -> bool {
        let u = uuid::Uuid::from_bytes(*id.as_bytes());
        u.get_version_num() == 5 && u.get_variant() == uuid::Variant::RFC4122
    }

    pub fn document_id(&self) -> toron_protocol::DocumentId {
        toron_protocol::DocumentId::from_bytes(
            *uuid::Uuid::new_v5(&TORON_NAMESPACE, self.to_string().as_bytes()).as_bytes(),
        )
    }
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocKey::Case { case } => write!(f, "case:{case}"),
            DocKey::Eval { case, evaluator } => write!(f, "eval:{case}:{evaluator}"),
            DocKey::Notes {
                session,
                participant,
            } => write!(f, "notes:{session}:{participant}"),
            DocKey::NotesPrivate {
                session,
                participant,
            } => write!(f, "notes-private:{session}:{participant}"),
            DocKey::Triage { session } => write!(f, "triage:{session}"),
            DocKey::Session { session } => write!(f, "session:{session}"),
            DocKey::Report { series } => write!(f, "report:{series}"),
            DocKey::Response { series, department } => write!(f, "response:{series}:{department}"),
        }
    }
}

fn part(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| s.to_string())
}

// Stored and shown as its text (`case:C-LIB-HB`), parsed once where it is read.
serde_as_text!(DocKey);

impl FromStr for DocKey {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::Key(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        let one = |i: usize| parts.get(i).copied().and_then(part).ok_or_else(bad);
        let key = match (parts.first().copied(), parts.len()) {
            (Some("case"), 2) => DocKey::Case { case: one(1)? },
            (Some("eval"), 3) => DocKey::Eval {
                case: one(1)?,
                evaluator: one(2)?,
            },
            (Some("notes"), 3) => DocKey::Notes {
                session: one(1)?,
                participant: one(2)?,
            },
            (Some("notes-private"), 3) => DocKey::NotesPrivate {
                session: one(1)?,
                participant: one(2)?,
            },
            (Some("triage"), 2) => DocKey::Triage { session: one(1)? },
            (Some("session"), 2) => DocKey::Session { session: one(1)? },
            (Some("report"), 2) => DocKey::Report { series: one(1)? },
            (Some("response"), 3) => DocKey::Response {
                series: one(1)?,
                department: one(2)?,
            },
            _ => return Err(bad()),
        };
        Ok(key)
    }
}

/// A series scope that covers every series (the bootstrap organizer holds it).
pub const ALL_SERIES: &str = "*";

/// Where a role applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Series(String),
    Session(String),
}

/// The series an organizer answers for (see [`organizes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Organizes {
    Nothing,
    /// These series only.
    Series(BTreeSet<String>),
    /// Every series (an organizer of `*`, such as the bootstrap admin).
    Everything,
}

impl Organizes {
    pub fn covers(&self, series: &str) -> bool {
        match self {
            Organizes::Nothing => false,
            Organizes::Series(s) => series != ALL_SERIES && s.contains(series),
            Organizes::Everything => true,
        }
    }
}

/// The series `who` organizes, from their roles: every series for an organizer of `*`, else
/// those they hold the organizer role for. An organizer acts only within them: grants,
/// sessions, phases, cases, documents, imports and reports of other series are out of reach,
/// and so are the tokens of people who take part elsewhere.
pub fn organizes(who: &Subject) -> Organizes {
    let mut series = BTreeSet::new();
    for (r, s) in &who.roles {
        if let (Role::Organizer, Scope::Series(x)) = (r, s) {
            if x == ALL_SERIES {
                return Organizes::Everything;
            }
            series.insert(x.clone());
        }
    }
    if series.is_empty() {
        Organizes::Nothing
    } else {
        Organizes::Series(series)
    }
}

/// What somebody may change of a session as it runs, from the hall: its phase and the agenda
/// item now under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    Nothing,
    /// The session's facilitator (named on the session, holding the role there): the agenda
    /// item, and the phase forward from scheduled to live to closed.
    Chair,
    /// An organizer of its series: everything, backwards too (with `force`).
    Organizer,
}

impl Runs {
    /// Whether a phase move `from` → `to` is theirs to make (a move back also needs `force`).
    pub fn may_move(self, from: Phase, to: Phase) -> bool {
        match self {
            Runs::Organizer => true,
            Runs::Chair => matches!(
                (from, to),
                (Phase::Scheduled, Phase::Live) | (Phase::Live, Phase::Closed)
            ),
            Runs::Nothing => false,
        }
    }
}

/// Who runs session `session` of `series`, whose facilitator is `facilitator`: the organizers
/// of the series, and the facilitator it names (the same person the triage document's rule
/// lets write).
pub fn runs_session(who: &Subject, series: &str, session: &str, facilitator: Option<&str>) -> Runs {
    if organizes(who).covers(series) {
        return Runs::Organizer;
    }
    let chair = facilitator == Some(who.participant.as_str())
        && who.roles.iter().any(|(r, scope)| {
            *r == Role::Facilitator
                && match scope {
                    Scope::Series(s) => s == ALL_SERIES || s == series,
                    Scope::Session(s) => s == session,
                }
        });
    if chair {
        Runs::Chair
    } else {
        Runs::Nothing
    }
}

/// Whether an organizer who `organizes` what it does may issue or revoke the token of
/// someone whose roles lie in `their_series` (`None`: a session that does not exist): an
/// organizer of every series may; another only for someone whose every role lies within the
/// series they organize, so that neither the bootstrap admin nor another series' people are
/// in reach. Someone without any role yet (a participant just added) is in reach.
pub fn may_manage_token(organizes: &Organizes, their_series: &[Option<String>]) -> bool {
    match organizes {
        Organizes::Everything => true,
        Organizes::Nothing => false,
        Organizes::Series(_) => their_series
            .iter()
            .all(|s| s.as_deref().is_some_and(|s| organizes.covers(s))),
    }
}

/// Who is asking: a participant and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub participant: String,
    pub department: Option<String>,
    pub roles: Vec<(Role, Scope)>,
}

/// What the server knows about the document being accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocContext {
    pub key: DocKey,
    /// The series the document belongs to (for series-wide roles).
    pub series: String,
    /// The session (for session documents; a case's session).
    pub session: Option<String>,
    /// The session's phase; series documents have none.
    pub phase: Option<Phase>,
    /// For `case:` documents: the case's presenters.
    pub presenters: Vec<String>,
    /// For `triage:`: the session's facilitator, if one is named.
    pub facilitator: Option<String>,
}

/// The answer of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
}

impl Subject {
    /// Roles that apply to `ctx`: granted for its series, or for its session.
    fn roles_for<'a>(&'a self, ctx: &'a DocContext) -> impl Iterator<Item = Role> + 'a {
        self.roles.iter().filter_map(move |(role, scope)| {
            let applies = match scope {
                Scope::Series(s) => s == ALL_SERIES || *s == ctx.series,
                Scope::Session(s) => ctx.session.as_deref() == Some(s.as_str()),
            };
            applies.then_some(*role)
        })
    }
}

/// Decides what `who` may do with the document described by `ctx`.
pub fn decide(who: &Subject, ctx: &DocContext) -> Access {
    use Phase::*;
    let roles: Vec<Role> = who.roles_for(ctx).collect();
    if roles.is_empty() {
        return Access::None;
    }
    let phase = ctx.phase;
    let in_phase = |ps: &[Phase]| phase.is_some_and(|p| ps.contains(&p));
    let published = phase == Some(Published);
    let me = who.participant.as_str();
    // Readers of an ordinary session document: any session role; observers from `live` on.
    let session_reader = roles.iter().any(|r| *r != Role::Observer)
        || in_phase(&[Live, Closed, Reporting, Published]);
    let has = |r: Role| roles.contains(&r);

    let write = match &ctx.key {
        DocKey::Case { .. } => {
            (has(Role::Organizer) && in_phase(&[Draft, Scheduled]))
                || (has(Role::Presenter)
                    && ctx.presenters.iter().any(|p| p == me)
                    && in_phase(&[Draft, Scheduled, Live]))
                || (has(Role::Importer) && !published)
        }
        DocKey::Eval { evaluator, .. } => {
            (has(Role::Evaluator) && evaluator == me && in_phase(&[Scheduled, Live, Closed]))
                || (has(Role::Importer) && !published)
        }
        DocKey::Notes { participant, .. } | DocKey::NotesPrivate { participant, .. } => {
            (participant == me && phase.is_some_and(|p| roles.iter().any(|r| r.may_annotate(p))))
                || (has(Role::Importer) && !published && matches!(ctx.key, DocKey::Notes { .. }))
                // Organizers repair or retract what anybody wrote, in every phase: the
                // change is theirs in the log, and the export keeps the author the log says.
                || (has(Role::Organizer) && matches!(ctx.key, DocKey::Notes { .. }))
        }
        DocKey::Triage { .. } => {
            (has(Role::Organizer) && in_phase(&[Live, Closed, Reporting]))
                || (has(Role::Facilitator)
                    && ctx.facilitator.as_deref() == Some(me)
                    && in_phase(&[Live, Closed]))
                || (has(Role::Importer) && !published)
        }
        DocKey::Session { .. } => (has(Role::Organizer) || has(Role::Importer)) && !published,
        DocKey::Report { .. } => has(Role::Organizer),
        // Departments' written answers arrive on paper too: the importer loads them.
        DocKey::Response { department, .. } => {
            (has(Role::DepartmentReviewer) && who.department.as_deref() == Some(department))
                || has(Role::Importer)
        }
    };
    if write {
        return Access::Write;
    }
    let read = match &ctx.key {
        DocKey::NotesPrivate { participant, .. } => participant == me,
        DocKey::Report { .. } => has(Role::Organizer),
        DocKey::Response { department, .. } => {
            has(Role::Organizer)
                || (has(Role::DepartmentReviewer) && who.department.as_deref() == Some(department))
        }
        _ => session_reader,
    };
    if read {
        Access::Read
    } else {
        Access::None
    }
}

/// The role that grants `who` its access to the document (for attribution): the first of
/// their roles that alone gives the same access.
pub fn acting_role(who: &Subject, ctx: &DocContext) -> Option<Role> {
    let access = decide(who, ctx);
    if access == Access::None {
        return None;
    }
    who.roles_for(ctx).find(|r| {
        let alone = Subject {
            roles: who
                .roles
                .iter()
                .filter(|(role, _)| role == r)
                .cloned()
                .collect(),
            ..who.clone()
        };
        decide(&alone, ctx) == access
    })
}

/// Roles allowed to bring a document into existence that no one registered beforehand.
pub fn may_create_unregistered(who: &Subject) -> bool {
    who.roles
        .iter()
        .any(|(r, _)| matches!(r, Role::Organizer | Role::Importer))
}

/// A document nobody registered: organizers and importers may bring it into existence (and
/// act as such), but never under an id reserved for a document key (`key_shaped`); to anyone
/// else it does not exist.
pub fn decide_unregistered(who: &Subject, key_shaped: bool) -> (Access, Option<Role>) {
    if !may_create_unregistered(who) || key_shaped {
        return (Access::None, None);
    }
    let role = who
        .roles
        .iter()
        .map(|(r, _)| *r)
        .find(|r| matches!(r, Role::Organizer | Role::Importer));
    (Access::Write, role)
}

/// An ad-hoc document (created without a key): its creator (`created_it`) and organizers write
/// it; nobody else sees it.
pub fn decide_ad_hoc(who: &Subject, created_it: bool) -> (Access, Option<Role>) {
    let organizer = who.roles.iter().any(|(r, _)| *r == Role::Organizer);
    if organizer {
        (Access::Write, Some(Role::Organizer))
    } else if created_it {
        (Access::Write, Some(Role::Importer))
    } else {
        (Access::None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_outside_the_registry_belong_to_organizers_and_their_creators() {
        let organizer = subject("P-org", &[Role::Organizer]);
        let importer = subject("P-imp", &[Role::Importer]);
        let activist = subject("P-act", &[Role::Activist]);
        assert_eq!(
            decide_unregistered(&organizer, false),
            (Access::Write, Some(Role::Organizer))
        );
        assert_eq!(
            decide_unregistered(&importer, false),
            (Access::Write, Some(Role::Importer))
        );
        assert_eq!(
            decide_unregistered(&organizer, true),
            (Access::None, None),
            "a key's id"
        );
        assert_eq!(decide_unregistered(&activist, false), (Access::None, None));
        assert_eq!(
            decide_ad_hoc(&organizer, false),
            (Access::Write, Some(Role::Organizer))
        );
        assert_eq!(
            decide_ad_hoc(&importer, true),
            (Access::Write, Some(Role::Importer))
        );
        assert_eq!(decide_ad_hoc(&importer, false), (Access::None, None));
        assert_eq!(
            decide_ad_hoc(&activist, true),
            (Access::Write, Some(Role::Importer))
        );
    }

    fn subject(p: &str, roles: &[Role]) -> Subject {
        Subject {
            participant: p.into(),
            department: Some("welfare".into()),
            roles: roles
                .iter()
                .map(|r| (*r, Scope::Session("S05".into())))
                .collect(),
        }
    }

    fn ctx(key: &str, phase: Phase) -> DocContext {
        DocContext {
            key: key.parse().expect("key"),
            series: "BM-2026".into(),
            session: Some("S05".into()),
            phase: Some(phase),
            presenters: vec!["P-pres".into()],
            facilitator: Some("P-fac".into()),
        }
    }

    #[test]
    fn keys_parse_print_and_give_stable_ids() {
        for k in [
            "case:C-S05-SB",
            "eval:C-S05-SB:P-ev",
            "notes:S05:P-a",
            "notes-private:S05:P-a",
            "triage:S05",
            "session:S05",
            "report:BM-2026",
            "response:BM-2026:welfare",
        ] {
            let key: DocKey = k.parse().expect(k);
            assert_eq!(key.to_string(), k);
            assert_eq!(
                key.document_id(),
                k.parse::<DocKey>().expect(k).document_id()
            );
        }
        assert_ne!(
            DocKey::Triage {
                session: "S05".into()
            }
            .document_id(),
            DocKey::Triage {
                session: "S06".into()
            }
            .document_id()
        );
        for bad in [
            "case",
            "case:",
            "case:a:b",
            "eval:a",
            "nope:a",
            "case:a b",
            "triage:a/b",
        ] {
            assert!(bad.parse::<DocKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_activist_annotates_only_its_own_layer_and_only_live_or_closed() {
        let a = subject("P-act", &[Role::Activist]);
        assert_eq!(
            decide(&a, &ctx("notes:S05:P-act", Phase::Live)),
            Access::Write
        );
        assert_eq!(
            decide(&a, &ctx("notes:S05:P-act", Phase::Closed)),
            Access::Write
        );
        assert_eq!(
            decide(&a, &ctx("notes:S05:P-act", Phase::Scheduled)),
            Access::Read
        );
        assert_eq!(
            decide(&a, &ctx("notes:S05:P-other", Phase::Live)),
            Access::Read
        );
        assert_eq!(
            decide(&a, &ctx("eval:C-S05-SB:P-ev", Phase::Live)),
            Access::Read
        );
        assert_eq!(decide(&a, &ctx("triage:S05", Phase::Live)), Access::Read);
        assert_eq!(
            decide(&a, &ctx("notes-private:S05:P-other", Phase::Live)),
            Access::None
        );
        assert_eq!(
            decide(&a, &ctx("report:BM-2026", Phase::Live)),
            Access::None
        );
    }

    #[test]
    fn the_named_facilitator_runs_the_hall_and_organizers_run_everything() {
        use Phase::*;
        let chair = subject("P-fac", &[Role::Facilitator]);
        assert_eq!(
            runs_session(&chair, "BM", "S05", Some("P-fac")),
            Runs::Chair
        );
        // A facilitator the session does not name, or of another session, runs nothing.
        assert_eq!(
            runs_session(&chair, "BM", "S05", Some("P-x")),
            Runs::Nothing
        );
        assert_eq!(
            runs_session(&chair, "BM", "S06", Some("P-fac")),
            Runs::Nothing
        );
        let activist = subject("P-act", &[Role::Activist]);
        assert_eq!(
            runs_session(&activist, "BM", "S05", Some("P-act")),
            Runs::Nothing
        );
        let organizer = Subject {
            participant: "P-org".into(),
            department: None,
            roles: vec![(Role::Organizer, Scope::Series("BM".into()))],
        };
        assert_eq!(runs_session(&organizer, "BM", "S05", None), Runs::Organizer);
        assert_eq!(
            runs_session(&organizer, "OTHER", "S05", None),
            Runs::Nothing
        );
        // The chair: forward, scheduled → live → closed, and no further.
        assert!(Runs::Chair.may_move(Scheduled, Live));
        assert!(Runs::Chair.may_move(Live, Closed));
        assert!(!Runs::Chair.may_move(Closed, Reporting));
        assert!(!Runs::Chair.may_move(Live, Scheduled));
        assert!(!Runs::Chair.may_move(Draft, Live));
        assert!(Runs::Organizer.may_move(Closed, Reporting));
        assert!(!Runs::Nothing.may_move(Scheduled, Live));
    }

    #[test]
    fn evaluators_presenters_facilitators_and_observers() {
        let ev = subject("P-ev", &[Role::Evaluator]);
        assert_eq!(
            decide(&ev, &ctx("eval:C-S05-SB:P-ev", Phase::Closed)),
            Access::Write
        );
        assert_eq!(
            decide(&ev, &ctx("eval:C-S05-SB:P-ev", Phase::Reporting)),
            Access::Read
        );
        assert_eq!(
            decide(&ev, &ctx("eval:C-S05-SB:P-other", Phase::Live)),
            Access::Read
        );
        let pres = subject("P-pres", &[Role::Presenter]);
        assert_eq!(
            decide(&pres, &ctx("case:C-S05-SB", Phase::Live)),
            Access::Write
        );
        assert_eq!(
            decide(&pres, &ctx("case:C-S05-SB", Phase::Closed)),
            Access::Read
        );
        let other_pres = subject("P-x", &[Role::Presenter]);
        assert_eq!(
            decide(&other_pres, &ctx("case:C-S05-SB", Phase::Live)),
            Access::Read
        );
        let fac = subject("P-fac", &[Role::Facilitator]);
        assert_eq!(decide(&fac, &ctx("triage:S05", Phase::Live)), Access::Write);
        assert_eq!(
            decide(
                &subject("P-x", &[Role::Facilitator]),
                &ctx("triage:S05", Phase::Live)
            ),
            Access::Read
        );
        let obs = subject("P-obs", &[Role::Observer]);
        assert_eq!(
            decide(&obs, &ctx("case:C-S05-SB", Phase::Scheduled)),
            Access::None
        );
        assert_eq!(
            decide(&obs, &ctx("case:C-S05-SB", Phase::Live)),
            Access::Read
        );
        assert_eq!(
            decide(&obs, &ctx("notes:S05:P-obs", Phase::Live)),
            Access::Read
        );
        // A role in another session gives nothing here.
        let elsewhere = Subject {
            participant: "P-act".into(),
            department: None,
            roles: vec![(Role::Activist, Scope::Session("S06".into()))],
        };
        assert_eq!(
            decide(&elsewhere, &ctx("case:C-S05-SB", Phase::Live)),
            Access::None
        );
    }

    #[test]
    fn published_is_read_only_for_everyone_but_an_organizer_repairing_notes() {
        for &role in Role::ALL {
            let s = subject("P-pres", &[role]);
            for key in [
                "case:C-S05-SB",
                "eval:C-S05-SB:P-pres",
                "notes:S05:P-pres",
                "notes:S05:P-other",
                "notes-private:S05:P-other",
                "triage:S05",
                "session:S05",
            ] {
                let repair = role == Role::Organizer && key.starts_with("notes:");
                assert_eq!(
                    decide(&s, &ctx(key, Phase::Published)) == Access::Write,
                    repair,
                    "{role} {key}"
                );
            }
        }
    }
}

#[cfg(test)]
mod organizer_tests {
    use super::*;

    fn organizer_of(series: &[&str]) -> Subject {
        Subject {
            participant: "P-org".into(),
            department: None,
            roles: series
                .iter()
                .map(|s| (Role::Organizer, Scope::Series((*s).into())))
                .chain([(Role::Evaluator, Scope::Session("S9".into()))])
                .collect(),
        }
    }

    #[test]
    fn an_organizer_answers_for_its_series_and_the_bootstrap_one_for_every_series() {
        assert_eq!(organizes(&organizer_of(&[])), Organizes::Nothing);
        let one = organizes(&organizer_of(&["BM"]));
        assert!(one.covers("BM") && !one.covers("XX") && !one.covers(ALL_SERIES));
        assert_eq!(
            organizes(&organizer_of(&["BM", ALL_SERIES])),
            Organizes::Everything
        );
    }

    #[test]
    fn a_token_is_managed_only_by_an_organizer_of_every_series_its_holder_is_in() {
        let bm = organizes(&organizer_of(&["BM"]));
        let some = |s: &str| Some(s.to_string());
        assert!(may_manage_token(&bm, &[some("BM"), some("BM")]));
        assert!(
            may_manage_token(&bm, &[]),
            "a participant without roles yet"
        );
        assert!(!may_manage_token(&bm, &[some("BM"), some("XX")]));
        assert!(
            !may_manage_token(&bm, &[None]),
            "a session that does not exist"
        );
        assert!(may_manage_token(&Organizes::Everything, &[some("XX")]));
        assert!(!may_manage_token(&Organizes::Nothing, &[]));
    }
}
