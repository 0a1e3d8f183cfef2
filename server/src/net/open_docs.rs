//! Which documents are open: each open document's actor inbox, by id.
//!
//! Kept apart from the hub so that an actor can leave the map (idle, failed, server stopping)
//! without knowing the hub: the hub spawns actors into this map and routes to them; an actor
//! only ever takes itself out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use toron_protocol::{ConnId, DocumentId, Ephemeral, Input, Router};

use crate::net::outbound::ConnTx;

/// Bytes of ephemeral messages that may wait in one document's inbox. Ephemeral traffic is
/// best effort: past this, new ones are dropped, not queued, so that a flood never grows the
/// inbox of a document whose actor is busy (it would otherwise hold each message until then).
pub const EPHEMERAL_INBOX_BYTES: usize = 256 * 1024;

/// Messages for a document actor.
#[derive(Debug)]
pub enum DocMsg {
    /// `input` is the [`Input::Sync`] of `out`'s connection, with its grant.
    Sync {
        out: ConnTx,
        input: Input,
        /// The sending connection's allowance of bytes in documents' inboxes, given back when
        /// the actor has processed the message (see `connection::Session::route_sync`).
        held: Option<OwnedSemaphorePermit>,
    },
    /// Relayed under `message.sender_id`, the id the connection joined with.
    Ephemeral {
        out: ConnTx,
        message: Ephemeral,
        /// Its place in the inbox's ephemeral lane, given back when taken.
        held: EphemeralHeld,
    },
    Closed {
        conn: ConnId,
    },
    /// Changes of this document that another node of the cluster logged (already durable).
    Logged {
        changes: Vec<Vec<u8>>,
    },
    /// An ephemeral message a client of another node of the cluster sent (relayed to every
    /// subscriber here, once).
    ClusterEphemeral {
        message: Ephemeral,
        held: EphemeralHeld,
    },
}

/// Bytes an ephemeral message holds in a document's inbox, counted until it is dropped.
#[derive(Debug)]
pub struct EphemeralHeld {
    bytes: usize,
    queued: Arc<AtomicUsize>,
}

impl Drop for EphemeralHeld {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// An open document's inbox: its actor's channel, and the bytes its ephemeral lane holds.
#[derive(Debug)]
pub struct Inbox {
    tx: mpsc::UnboundedSender<DocMsg>,
    ephemeral: Arc<AtomicUsize>,
}

impl Inbox {
    /// A place in the ephemeral lane for `bytes`, or `None` when the lane is full.
    fn hold(&self, bytes: usize) -> Option<EphemeralHeld> {
        let before = self.ephemeral.fetch_add(bytes, Ordering::Relaxed);
        let held = EphemeralHeld {
            bytes,
            queued: self.ephemeral.clone(),
        };
        (before + bytes <= EPHEMERAL_INBOX_BYTES).then_some(held)
    }
}

/// Where a cluster node passes the ephemeral messages its clients send to the other nodes
/// (best effort, like ephemeral messages themselves). Implemented by the cluster room.
pub trait EphemeralBus: Send + Sync + std::fmt::Debug {
    fn publish(&self, message: &Ephemeral);
}

/// The inboxes of the open documents' actors: the protocol's [`Router`] under a lock.
#[derive(Debug, Default)]
pub struct OpenDocs {
    docs: Mutex<Router<Inbox>>,
}

impl OpenDocs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Router<Inbox>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends to the document's actor; if it is not open (or its actor ended without leaving
    /// the map, i.e. panicked), it is opened: a new inbox with `msg` queued, whose receiving
    /// end `spawn` is given to start the actor — under the map's lock, so that two messages
    /// for a closed document never start two actors.
    pub fn route(
        &self,
        id: DocumentId,
        msg: DocMsg,
        spawn: impl FnOnce(DocumentId, mpsc::UnboundedReceiver<DocMsg>),
    ) {
        let mut docs = self.lock();
        let msg = match docs.get(&id) {
            Some(inbox) => match inbox.tx.send(msg) {
                Ok(()) => return,
                Err(mpsc::error::SendError(m)) => {
                    docs.close(&id);
                    m
                }
            },
            None => msg,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(msg);
        docs.get_or_open(id, || Inbox {
            tx,
            ephemeral: Arc::new(AtomicUsize::new(0)),
        });
        spawn(id, rx);
    }

    /// Sends only if the document is open (closes never load anything).
    pub fn send_if_open(&self, id: DocumentId, msg: DocMsg) {
        if let Some(inbox) = self.lock().get(&id) {
            let _ = inbox.tx.send(msg);
        }
    }

    /// Queues an ephemeral message for an open document's actor, made by `make` with its
    /// place in the inbox; dropped (false) when the document is not open or its ephemeral
    /// lane is full — its actor is behind, and best-effort traffic waits for nobody.
    pub fn send_ephemeral(
        &self,
        id: DocumentId,
        bytes: usize,
        make: impl FnOnce(EphemeralHeld) -> DocMsg,
    ) -> bool {
        let docs = self.lock();
        let Some(inbox) = docs.get(&id) else {
            return false;
        };
        match inbox.hold(bytes) {
            Some(held) => inbox.tx.send(make(held)).is_ok(),
            None => false,
        }
    }

    /// Connection `conn` is gone: the open ones among the documents it named forget it.
    pub fn connection_closed(&self, conn: ConnId, documents: Vec<DocumentId>) {
        let docs = self.lock();
        for id in docs.closing(documents) {
            if let Some(inbox) = docs.get(&id) {
                let _ = inbox.tx.send(DocMsg::Closed { conn });
            }
        }
    }

    /// Called by an idle actor: takes it out unless a message arrived meanwhile. Holding the
    /// map's lock while checking makes the race with [`OpenDocs::route`] impossible.
    pub fn try_evict(&self, id: DocumentId, rx: &mpsc::UnboundedReceiver<DocMsg>) -> bool {
        let mut docs = self.lock();
        if !rx.is_empty() {
            return false;
        }
        docs.close(&id);
        true
    }

    /// Takes out an actor that must stop (poisoned by a failed write, a failed load, or the
    /// server stopping).
    pub fn forget(&self, id: DocumentId) {
        self.lock().close(&id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
