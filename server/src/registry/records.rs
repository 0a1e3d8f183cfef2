//! The registry's records are the domain's ([`toron_domain::registry`]); the token entry,
//! which holds a secret's hash, is the server's own.

use serde::{Deserialize, Serialize};

pub use toron_domain::registry::{
    Case, DepartmentName, DocEntry, Organizes, Participant, RoleGrant, Session,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenEntry {
    pub(super) participant: String,
    pub(super) issued_at_ms: u64,
    /// After this moment the token no longer authenticates (importer tokens); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expires_at_ms: Option<u64>,
}

/// A one-time join code (the invite link's): exchanged once for a token of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JoinCode {
    pub(super) participant: String,
    pub(super) issued_at_ms: u64,
    pub(super) expires_at_ms: u64,
}
