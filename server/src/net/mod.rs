//! The live side: sockets in, documents open, frames out.
//!
//! - [`listener`]: accepts TCP, bounds sockets and header time.
//! - [`connection`]: one task per WebSocket: handshake, decoding, routing, pings.
//! - [`hub`]: who is connected, which documents are open, presence; routes to actors.
//! - [`provision`]: every document a session needs exists, with its skeleton.
//! - [`peer_owners`]: which participant a peer id belongs to, across reconnects.
//! - [`doc_actor`]: one task per open document driving a `DocEngine`: batch, append, then send.
//! - [`log_budget`]: bounds the log lines peers can cause.

pub mod connection;
pub mod doc_actor;
pub mod hub;
pub mod listener;
pub mod log_budget;
pub mod open_docs;
pub mod outbound;
pub mod peer_owners;
pub mod provision;
pub mod server_voice;
pub mod writer;
