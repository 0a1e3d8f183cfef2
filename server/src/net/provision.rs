//! Every document a session needs exists, with its skeleton, from the moment the session,
//! case, grant or department that calls for it does (`toron_domain::provision`).
//!
//! [`Hub::provision`] registers what is missing and writes each empty document's skeleton as
//! its first change: durable in the log before it returns, attributed to whoever made the
//! session, case or grant (`server` on a start), and handed to the document's actor if it is
//! open so that its readers receive it. It runs when the server starts (a data directory of
//! an older build gets what it lacks) and after every request that changes what documents a
//! session needs. The skeleton change is the same bytes wherever it is made: two nodes of a
//! cluster that both make it make one change.

use toron_domain::policy::DocKey;
use toron_domain::provision::skeleton_change;
use toron_protocol::{Attribution, ConnId, NewChange};

use crate::net::hub::Hub;
use crate::registry::RegistryError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the skeleton of {key}: {reason}")]
    Skeleton { key: String, reason: String },
}

impl Hub {
    /// Registers every needed document that is not, and writes the skeleton of every
    /// registered keyed document that has no change yet. Returns how many skeletons it wrote.
    pub async fn provision(&self, by: &str) -> Result<usize, ProvisionError> {
        let _one = self.provisioning.lock().await;
        let mut written = 0;
        for (key, series) in self.registry.needed_documents() {
            let id = key.document_id();
            if self.registry.document(&id).is_none() {
                self.registry.register(by, &key, &series).await?;
            }
        }
        for key in self.registry.keyed_documents() {
            let id = key.document_id();
            if self.store.document_len(&id)? == 0 {
                self.write_skeleton(by, &key).await?;
                written += 1;
            }
        }
        if written > 0 {
            tracing::info!(written, by, "documents given their skeletons");
        }
        Ok(written)
    }

    async fn write_skeleton(&self, by: &str, key: &DocKey) -> Result<(), ProvisionError> {
        let id = key.document_id();
        let change = skeleton_change(key).map_err(|e| ProvisionError::Skeleton {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        let actor = change.actor_id().to_bytes().to_vec();
        let hash = change.hash().0;
        let bytes = change.raw_bytes().to_vec();
        let new = NewChange {
            document_id: id,
            received_at_ms: self.config.clock.now_ms(),
            conn: ConnId(0),
            peer: self.server_peer().clone(),
            by: Attribution {
                participant: Some(by.to_string()),
                role: None,
            },
            actor: actor.clone(),
            hash,
            bytes: bytes.clone(),
            heads_after: vec![hash],
        };
        let bound = vec![(actor, by.to_string())];
        self.store.append(id, vec![new], bound.clone()).await?;
        self.registry.confirm_actors(&bound);
        self.logged(id, vec![bytes]);
        Ok(())
    }
}
