//! The server as a peer: its own peer id, and the ephemeral notices it sends (refusals,
//! presence) under one session id and counter, which clients dedupe by.

use std::sync::atomic::{AtomicU64, Ordering};

use toron_protocol::{DocumentId, Message, PeerId};

#[derive(Debug)]
pub struct ServerVoice {
    /// Unique per instance: a client connected to two servers routes by peer id.
    pub peer: PeerId,
    session: String,
    count: AtomicU64,
}

impl Default for ServerVoice {
    fn default() -> Self {
        Self {
            peer: PeerId::new(format!("toron-server-{}", uuid::Uuid::new_v4().simple()))
                .unwrap_or_else(|_| unreachable!("non-empty")),
            session: uuid::Uuid::new_v4().simple().to_string(),
            count: AtomicU64::new(0),
        }
    }
}

impl ServerVoice {
    /// An ephemeral message from the server to `target` on `document`, carrying `data`.
    pub fn notice(&self, target: PeerId, document: DocumentId, data: Vec<u8>) -> Message {
        Message::Ephemeral {
            sender_id: self.peer.clone(),
            target_id: target,
            document_id: document,
            count: self.count.fetch_add(1, Ordering::Relaxed) + 1,
            session_id: self.session.clone(),
            data,
        }
    }
}
