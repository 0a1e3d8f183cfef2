//! # toron-domain — the benchmarking debate, as data and rules
//!
//! Built on the sync core (`toron-protocol`, which knows nothing of debates); pure like it:
//! no tokio, no sockets, no files, no clock.
//!
//! - [`policy`]: who may read and write which document — the one place permission is decided —
//!   and the keys documents are known by (`case:C`, `notes:S:P`, …).
//! - [`schema`]: what each kind of document may hold, checked on every change.
//! - [`provision`]: the documents a session needs from the moment it exists, and what each
//!   holds before anyone writes in it.
//! - [`bundle`]: the import format (a series with its sessions, cases, evaluations, annotations,
//!   findings), checked whole before anything is written.
//! - [`consent`]: how a participant may be shown — the one rule for the report and the web.
//! - [`anchor`]: a quoted passage found again in text that changed (code points throughout).
//! - [`scoring`]: an evaluation's weighted score.
//! - [`timeline`]: the session timeline named from the event log.
//! - [`integrity`]: what an export found wrong in the documents it read; the lenient reading
//!   that lets a bad item cost only itself.
//! - [`report`]: the planning division's report, built from an export.
//! - [`vocab`]: every closed vocabulary (kinds, statuses, stances, roles, phases, …) with its
//!   Korean and English words, once.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// Serde for types stored and shown as their text (a document key, a language, a report
/// format): written with `Display`, read with `FromStr`, whose error says what is wrong.
macro_rules! serde_as_text {
    ($($t:ty),+) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

pub mod anchor;
pub mod bundle;
pub mod consent;
pub mod import_plan;
pub mod integrity;
pub mod policy;
pub mod provision;
pub mod registry;
pub mod report;
pub mod schema;
pub mod scoring;
pub mod timeline;
pub mod vocab;
pub mod w3c;
