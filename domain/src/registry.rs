//! The registry's records: who takes part, with which roles, in which sessions, cases and
//! documents — as the server's log stores them (JSON) and its API shows them. The server
//! holds them; the import plan ([`crate::import_plan`]) says which a bundle needs.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use toron_protocol::DocumentId;

pub use crate::policy::Organizes;
use crate::policy::{DocKey, Phase, Role, Scope};
use crate::vocab::{Attribution, ParticipantKind};

/// Who a participant of the registry is: a person of one of the debate's kinds, or a service —
/// an import's principal, which writes as the importer and is nobody in the hall. Stored as
/// its word (`official`, …, `service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Kind {
    Person(ParticipantKind),
    Service(ServiceKind),
}

/// The one kind of participant that is not a person (see [`Kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKind {
    #[serde(rename = "service")]
    Service,
}

impl Kind {
    /// An import's principal.
    pub const SERVICE: Kind = Kind::Service(ServiceKind::Service);

    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person(k) => k.as_str(),
            Kind::Service(ServiceKind::Service) => "service",
        }
    }

    /// The person's kind; `None` for a service.
    pub fn person(self) -> Option<ParticipantKind> {
        match self {
            Kind::Person(k) => Some(k),
            Kind::Service(_) => None,
        }
    }
}

impl From<ParticipantKind> for Kind {
    fn from(k: ParticipantKind) -> Self {
        Kind::Person(k)
    }
}

impl std::str::FromStr for Kind {
    type Err = crate::vocab::UnknownWord;

    /// `service`, or a participant kind.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Kind::SERVICE.as_str() {
            Ok(Kind::SERVICE)
        } else {
            s.parse::<ParticipantKind>().map(Kind::Person)
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Participant {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub affiliation: String,
    pub kind: Kind,
    pub attribution: Attribution,
    #[serde(default)]
    pub department: Option<String>,
}

impl Participant {
    /// A participant shown by their role only (the most private choice), with no affiliation
    /// or department.
    pub fn new(key: impl Into<String>, name: impl Into<String>, kind: impl Into<Kind>) -> Self {
        Self {
            key: key.into(),
            name: name.into(),
            affiliation: String::new(),
            kind: kind.into(),
            attribution: Attribution::RoleOnly,
            department: None,
        }
    }
}

/// Whether a role holds over a series or a session (with its key in [`RoleGrant::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    Series,
    Session,
}

impl ScopeKind {
    /// As stored: `series` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Series => "series",
            ScopeKind::Session => "session",
        }
    }
}

/// A role granted to a participant, as stored and shown: the role, and where it holds — a
/// series or a session (`scope`) with its key in `name`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoleGrant {
    pub participant: String,
    pub role: Role,
    pub scope: ScopeKind,
    pub name: String,
}

impl RoleGrant {
    /// The grant of `role` over `scope` to `participant`.
    pub fn new(participant: &str, role: Role, scope: &Scope) -> Self {
        let (kind, name) = match scope {
            Scope::Series(s) => (ScopeKind::Series, s),
            Scope::Session(s) => (ScopeKind::Session, s),
        };
        Self {
            participant: participant.to_string(),
            role,
            scope: kind,
            name: name.clone(),
        }
    }

    /// Where the role holds: a series, or a session.
    pub fn scope(&self) -> Scope {
        match self.scope {
            ScopeKind::Series => Scope::Series(self.name.clone()),
            ScopeKind::Session => Scope::Session(self.name.clone()),
        }
    }

    /// What grants are sorted by: their stored words, so that lists read as they always have.
    fn order(&self) -> (&str, &str, &str, &str) {
        (
            &self.participant,
            self.role.as_str(),
            self.scope.as_str(),
            &self.name,
        )
    }
}

impl Ord for RoleGrant {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

impl PartialOrd for RoleGrant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub key: String,
    pub series: String,
    #[serde(default)]
    pub title: String,
    pub phase: Phase,
    #[serde(default)]
    pub facilitator: Option<String>,
    /// The agenda item under way now (its key in the session's agenda), as the chair set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Case {
    pub key: String,
    pub session: String,
    #[serde(default)]
    pub presenters: Vec<String>,
}

/// A department of a series: what people call it and the key documents use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DepartmentName {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DocEntry {
    /// The document id (stored as its base58check text).
    pub id: DocumentId,
    /// The readable key; `None` for a document an organizer created ad hoc.
    pub key: Option<DocKey>,
    pub series: String,
    pub created_by: String,
}
