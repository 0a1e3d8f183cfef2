//! Documents by id, sans IO: which are open, opened on first use, and which of those a
//! closing connection had named.
//!
//! Generic over what an open document is to its driver: the server keeps each open document's
//! actor inbox here (opening one spawns the actor), the in-memory network of
//! `tests/network.rs` its `DocEngine`. Per-connection subscriptions are the connection's own
//! ([`crate::connection::ConnectionState::subscribed`]); when a connection closes, the router
//! says which of its documents are open and must forget it.

use std::collections::HashMap;

use crate::ids::DocumentId;

#[derive(Debug)]
pub struct Router<D> {
    docs: HashMap<DocumentId, D>,
}

impl<D> Default for Router<D> {
    fn default() -> Self {
        Self {
            docs: HashMap::new(),
        }
    }
}

impl<D> Router<D> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The open document `id`, opened with `open` if it is not; `true` when it was opened
    /// now (the driver starts what serves it).
    pub fn get_or_open(&mut self, id: DocumentId, open: impl FnOnce() -> D) -> (&mut D, bool) {
        let mut opened = false;
        let d = self.docs.entry(id).or_insert_with(|| {
            opened = true;
            open()
        });
        (d, opened)
    }

    pub fn get(&self, id: &DocumentId) -> Option<&D> {
        self.docs.get(id)
    }

    pub fn get_mut(&mut self, id: &DocumentId) -> Option<&mut D> {
        self.docs.get_mut(id)
    }

    /// Closes a document (idle, failed, or its server stopping); returns what served it.
    pub fn close(&mut self, id: &DocumentId) -> Option<D> {
        self.docs.remove(id)
    }

    /// Of the documents a closing connection had named, those that are open: each must be
    /// told the connection is gone (the others hold nothing of it).
    pub fn closing(&self, documents: impl IntoIterator<Item = DocumentId>) -> Vec<DocumentId> {
        documents
            .into_iter()
            .filter(|id| self.docs.contains_key(id))
            .collect()
    }

    /// The open documents' ids.
    pub fn ids(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs.keys()
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_opened_once_and_a_closing_connection_reaches_only_open_ones() {
        let mut r: Router<u32> = Router::new();
        let (a, b) = (DocumentId::random(), DocumentId::random());
        let (_, opened) = r.get_or_open(a, || 1);
        assert!(opened);
        let (d, opened) = r.get_or_open(a, || 2);
        assert!(!opened);
        assert_eq!(*d, 1, "the open one is kept");
        assert_eq!(r.closing([a, b]), vec![a]);
        assert_eq!(r.close(&a), Some(1));
        assert!(r.closing([a]).is_empty());
        assert!(r.is_empty());
    }
}
