//! # toron-protocol — the sans-IO core of Toron
//!
//! Everything here is pure: no tokio, no sockets, no files, no clock. Time comes in as a
//! `now_ms` argument, IO goes out as returned [`engine::Action`]s. It knows nothing of debates:
//! what a document may hold and who may write it come in through [`engine::ActorGate`] and
//! [`engine::Grant`] (the debate domain is the `toron-domain` crate, built on this one).
//!
//! - [`ids`]: `DocumentId` (base58check of 16 bytes), `automerge:` URLs, peer and connection ids.
//! - [`wire`]: the automerge-repo v1 messages and their CBOR codec, tolerant on input (what
//!   JavaScript and samod really send) and strict on output (what both accept).
//! - [`connection`]: one connection's protocol state machine (join → established → closed),
//!   and [`router`]: documents by id, opened on first use, told when a connection closes.
//! - [`engine`]: the per-document sync state machine — batching, per-connection sync states,
//!   `doc-unavailable`, ephemeral relay with dedupe — with "durable before visible" built into
//!   the order of its outputs.
//! - [`record`]: the versioned event-log records the server appends.
//! - [`json`]: Automerge documents ↔ JSON, as the JavaScript API shows them.
//! - [`history`]: a document at a point of its log, and the difference between two points.
//! - [`sync_receive`]: a client's receive of a sync message, without automerge's history walk
//!   when there is nothing to trim.
//! - [`notice`]: the server's ephemeral notices to a client (a refusal, who is present).
//! - [`rate`]: a token bucket.
//! - [`refusal`]: why a change was refused, typed.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod connection;
pub mod engine;
pub mod history;
pub mod ids;
pub mod inflate;
pub mod json;
pub mod notice;
pub mod rate;
pub mod record;
pub mod refusal;
pub mod router;
pub mod sync_receive;
pub mod wire;

pub use connection::{CloseKind, ConnEvent, ConnectionPhase, ConnectionState, Ephemeral};
pub use engine::{
    Action, ActorGate, BatchId, DocEngine, EngineConfig, Grant, Input, NoGate, RefusedChanges,
    SyncKind,
};
pub use ids::{AutomergeUrl, ConnId, DocumentId, IdError, PeerId};
pub use record::{
    AdminAction, Attribution, ChangeRecord, Event, NewChange, Presence, RecordError, Rejection,
};
pub use refusal::{Refusal, RefusalKind};
pub use router::Router;
pub use wire::{DecodeError, Message, PeerMetadata, PROTOCOL_VERSION};
