//! # toron-cli — the `toron` command-line client, as a library
//!
//! - [`sync_client`]: an automerge-repo client (handshake, find, push, follow) over
//!   tokio-tungstenite, speaking through `toron-protocol`'s codec.
//! - [`json`]: Automerge ↔ JSON as the JavaScript API shows documents.
//! - [`commands`]: `new`, `get`, `set`, `watch`.
//! - [`bench`]: the load generator (`toron bench`).
//! - [`light_follower`]: the load generator's cheap reader — a peer that keeps the change
//!   graph, not the content.
//! - [`admin`]: the admin HTTP API client (`toron admin …`).
//! - [`after`]: the work after the session (`promote`, `respond`, `evaluate`).

pub mod admin;
pub mod after;
pub mod annotate;
pub mod bench;
pub mod cli;
mod cmd;
pub mod commands;
pub mod history;
pub mod import;
pub mod light_follower;
pub mod storm;
/// Automerge ↔ JSON (lives in the protocol crate, shared with the server).
pub use toron_protocol::json;
pub mod sync_client;
