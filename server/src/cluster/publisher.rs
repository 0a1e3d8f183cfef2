//! A node's writes, published to the stream: the store's [`Replicator`] on a cluster node.

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::store::{LogEntry, Replicator, StoreError};

use super::NODE_HEADER;

/// Room left in a message for its headers and framing.
const HEADROOM: usize = 16 * 1024;

#[derive(Debug)]
pub struct Publisher {
    js: jetstream::Context,
    node: String,
    /// The largest message the NATS servers take.
    max_payload: usize,
}

impl Publisher {
    pub fn new(js: jetstream::Context, node: String, max_payload: usize) -> Self {
        Self {
            js,
            node,
            max_payload,
        }
    }

    /// Publishes one part; its position once a quorum holds it.
    async fn publish_part(&self, part: LogEntry) -> Result<u64, StoreError> {
        let subject = match &part {
            LogEntry::Changes { doc, .. } => format!("toron.log.doc.{doc}"),
            LogEntry::Event { .. } => "toron.log.event".to_string(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, self.node.as_str());
        let hashes = part.hashes();
        if !hashes.is_empty() {
            // The same changes published twice (by two nodes, or again after a timeout) within
            // the stream's duplicate window are one entry; the replicas skip any later copy.
            let mut h = Sha256::new();
            for x in &hashes {
                h.update(x);
            }
            let id: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            headers.insert(NATS_MESSAGE_ID, id.as_str());
        }
        let payload = part.encode();
        let fail = |e: String| StoreError::Replica(format!("{e} (entry on {subject})"));
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(ack.sequence)
    }
}

impl Replicator for Publisher {
    fn publish(&self, entry: LogEntry) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let limit = self.max_payload.saturating_sub(HEADROOM).max(HEADROOM);
            let mut last = 0;
            // One after the other: a part is published only once the one before it is held.
            for part in entry.split(limit) {
                last = self.publish_part(part).await?;
            }
            Ok(last)
        })
    }
}
