//! Why the server refuses a change, typed: the engine, the gate and the schema say what kind of
//! refusal it is where they decide it, and everything after — the client's notice, the
//! `/metrics` count by kind, the tests — reads the kind, never the wording.

use std::fmt;

/// Why a change was refused, in words a client can explain to a person without parsing the
/// server's English reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The participant may read the document but not change it now (their role, or the
    /// session's phase).
    ReadOnly,
    /// A value the document's schema does not allow (a kind, a status, a score).
    Value,
    /// A department or finding that does not exist.
    Reference,
    /// Too large a change or document.
    Size,
    /// An Automerge actor id of another participant.
    Actor,
    /// A change that builds on an earlier refused one.
    Follows,
    /// Too many changes a second (the connection closes; the client sends them again later).
    Rate,
}

impl RefusalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::ReadOnly => "read_only",
            RefusalKind::Value => "value",
            RefusalKind::Reference => "reference",
            RefusalKind::Size => "size",
            RefusalKind::Actor => "actor",
            RefusalKind::Follows => "follows",
            RefusalKind::Rate => "rate",
        }
    }

    /// Every kind, for counting.
    pub const ALL: [RefusalKind; 7] = [
        RefusalKind::ReadOnly,
        RefusalKind::Value,
        RefusalKind::Reference,
        RefusalKind::Size,
        RefusalKind::Actor,
        RefusalKind::Follows,
        RefusalKind::Rate,
    ];

    /// The kind of a stored refusal from its reason (records keep the wording only): as the
    /// engine, the gate and the schema word them, each tested in `notice.rs`.
    pub fn of(reason: &str) -> Self {
        let has = |s: &str| reason.contains(s);
        if has("may read this document but not change it") {
            RefusalKind::ReadOnly
        } else if has("an earlier change of this copy was refused") {
            RefusalKind::Follows
        } else if has("rate limit") {
            RefusalKind::Rate
        } else if has("actor id") {
            RefusalKind::Actor
        } else if has("document size") || has("too large a change") {
            RefusalKind::Size
        } else if has("department `") || has("finding `") {
            RefusalKind::Reference
        } else {
            RefusalKind::Value
        }
    }
}

/// A refused change: its kind, and the message that says why in words (logged, and sent to the
/// client as the protocol's `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
