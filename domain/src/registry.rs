//! The registry's records: who takes part, with which roles, in which sessions, cases and
//! documents — as the server's log stores them (JSON) and its API shows them. The server
//! holds them; the import plan ([`crate::import_plan`]) says which a bundle needs.

use serde::{Deserialize, Serialize};

pub use crate::policy::Organizes;
use crate::policy::{Role, Scope};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Participant {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub affiliation: String,
    /// official, expert, activist or resident.
    pub kind: String,
    /// name_and_affiliation, affiliation_only or role_only.
    pub attribution: String,
    #[serde(default)]
    pub department: Option<String>,
}

impl Participant {
    /// A participant shown by their role only (the most private choice), with no affiliation
    /// or department; `kind` is official, expert, activist, resident (or service).
    pub fn new(key: impl Into<String>, name: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            name: name.into(),
            affiliation: String::new(),
            kind: kind.into(),
            attribution: "role_only".into(),
            department: None,
        }
    }
}

/// A role granted to a participant, as stored and shown: `role` by its name, `scope` (`series`
/// or `session`) with the series' or session's key in `name`. Read it through [`RoleGrant::role`]
/// and [`RoleGrant::scope`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleGrant {
    pub participant: String,
    pub role: String,
    /// `series` or `session`.
    pub scope: String,
    pub name: String,
}

impl RoleGrant {
    /// The grant of `role` over `scope` to `participant`.
    pub fn new(participant: &str, role: Role, scope: &Scope) -> Self {
        let (kind, name) = match scope {
            Scope::Series(s) => ("series", s),
            Scope::Session(s) => ("session", s),
        };
        Self {
            participant: participant.to_string(),
            role: role.as_str().to_string(),
            scope: kind.to_string(),
            name: name.clone(),
        }
    }

    /// The role, if it is one this version knows.
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }

    /// Where the role holds: a series, or a session.
    pub fn scope(&self) -> Scope {
        if self.scope == "series" {
            Scope::Series(self.name.clone())
        } else {
            Scope::Session(self.name.clone())
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub key: String,
    pub series: String,
    #[serde(default)]
    pub title: String,
    pub phase: String,
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
    /// The document id (base58check).
    pub id: String,
    /// The readable key; `None` for a document an organizer created ad hoc.
    pub key: Option<String>,
    pub series: String,
    pub created_by: String,
}
