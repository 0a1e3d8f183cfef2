//! A node's writes, published to the stream: the store's [`Replicator`] on a cluster node.

use std::time::{Duration, Instant};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::store::{LogEntry, Replicator, StoreError};

/// Room left in a message for its headers and framing.
const HEADROOM: usize = 16 * 1024;
/// A publish that fails is tried again until this long after the first try (each try waits
/// for its acknowledgement up to the context's timeout).
const RETRY_WITHIN: Duration = Duration::from_secs(5);
const RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Publisher {
    js: jetstream::Context,
    node: String,
    /// Signs every entry (`auth`).
    key: super::auth::ClusterKey,
    /// The largest message the NATS servers take.
    max_payload: usize,
}

impl Publisher {
    pub fn new(
        js: jetstream::Context,
        node: String,
        max_payload: usize,
        key: super::auth::ClusterKey,
    ) -> Self {
        Self {
            js,
            node,
            key,
            max_payload,
        }
    }

    /// Publishes one part; its position once a quorum holds it.
    async fn publish_part(&self, part: LogEntry) -> Result<u64, StoreError> {
        let subject = match &part {
            LogEntry::Changes { doc, .. } => format!("toron.log.doc.{doc}"),
            LogEntry::Event { .. } => "toron.log.event".to_string(),
        };
        let payload: bytes::Bytes = part.encode().into();
        let mut headers = super::auth::signed_headers(&self.key, &subject, &self.node, &payload);
        // Published again after an error, an entry must stay one entry: the same changes
        // (also from two nodes) by their hashes, any other entry by an id of its own.
        let hashes = part.hashes();
        let id: String = if hashes.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            let mut h = Sha256::new();
            for x in &hashes {
                h.update(x);
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        };
        headers.insert(NATS_MESSAGE_ID, id.as_str());
        let started = Instant::now();
        loop {
            let sent = async {
                self.js
                    .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            match sent.await {
                Ok(ack) => return Ok(ack.sequence),
                // The stream electing a leader (a server gone, a stream just made) answers
                // "no responders" or "no stream" for a moment: try again, within the bound.
                Err(e) if started.elapsed() < RETRY_WITHIN => {
                    tracing::debug!(error = %e, %subject, "publish not acknowledged; trying again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(StoreError::Replica(format!("{e} (entry on {subject})"))),
            }
        }
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
