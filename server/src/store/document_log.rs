//! The seam between the document actors and the log they write: [`DocumentLog`].
//!
//! An actor loads its document, appends the changes of a batch (and only shows them once the
//! append has resolved: durable), logs refusals, and saves snapshots. It does so through this
//! trait, never through sled: [`Store`] (one node, sled) implements it, and a replicated log
//! (a cluster) can implement it in its place without the actors changing.

use futures_util::future::BoxFuture;
use toron_protocol::{ChangeRecord, DocumentId, NewChange};

use super::{Appended, Loaded, PendingEvent, RegistryOp, Store, StoreError};

/// The event log as a document actor uses it.
pub trait DocumentLog: Send + Sync + std::fmt::Debug {
    /// The newest usable snapshot of `doc` and the changes after it. Blocking.
    fn load(&self, doc: &DocumentId) -> Result<Loaded, StoreError>;

    /// Every record of `doc`, in document order (a snapshot that does not load). Blocking.
    fn document_records(&self, doc: &DocumentId) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Appends a batch's changes with the actor bindings they introduce; resolves once they
    /// are durable, and not before.
    fn append(
        &self,
        doc: DocumentId,
        changes: Vec<NewChange>,
        bindings: Vec<(Vec<u8>, String)>,
    ) -> BoxFuture<'_, Result<Appended, StoreError>>;

    /// Appends a record that is not a change (a refusal), with the registry entries it
    /// changes; resolves once durable.
    fn append_event(
        &self,
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Saves a snapshot of `doc` up to `upto_doc_seq` (a cache). Blocking.
    fn save_snapshot(
        &self,
        doc: &DocumentId,
        upto_doc_seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError>;
}

impl DocumentLog for Store {
    fn load(&self, doc: &DocumentId) -> Result<Loaded, StoreError> {
        Store::load(self, doc)
    }

    fn document_records(&self, doc: &DocumentId) -> Result<Vec<ChangeRecord>, StoreError> {
        Store::document_records(self, doc)
    }

    fn append(
        &self,
        doc: DocumentId,
        changes: Vec<NewChange>,
        bindings: Vec<(Vec<u8>, String)>,
    ) -> BoxFuture<'_, Result<Appended, StoreError>> {
        Box::pin(Store::append(self, doc, changes, bindings))
    }

    fn append_event(
        &self,
        event: PendingEvent,
        registry: Vec<RegistryOp>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(Store::append_event(self, event, registry))
    }

    fn save_snapshot(
        &self,
        doc: &DocumentId,
        upto_doc_seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        Store::save_snapshot(self, doc, upto_doc_seq, bytes)
    }
}
