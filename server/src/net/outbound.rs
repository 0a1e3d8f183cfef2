//! A connection's sending side: what its writer task sends, and the handle that document
//! actors and the hub queue frames through — with the bound that drops a peer too slow to read.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use toron_protocol::ConnId;

use crate::metrics::{ErrorKind, Metrics};

/// What a connection's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Vec<u8>),
    /// Send `error` with this text, then close with 1008 (policy violation).
    Close(String),
    /// Send `error` with this text, then close with 1001 (going away): the server stops.
    GoingAway(String),
}

/// The sending side of a connection, given to the document actors it subscribes to.
#[derive(Debug, Clone)]
pub struct ConnTx {
    pub conn: ConnId,
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    metrics: Arc<Metrics>,
    /// Wakes the writer to drop a peer that lets its queue grow past `limit`.
    abort: Arc<Notify>,
    aborted: Arc<AtomicBool>,
}

impl ConnTx {
    pub fn new(
        conn: ConnId,
        limit: usize,
        metrics: Arc<Metrics>,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<Outbound>,
        Arc<AtomicUsize>,
        Arc<Notify>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let abort = Arc::new(Notify::new());
        (
            Self {
                conn,
                tx,
                queued: queued.clone(),
                limit,
                metrics,
                abort: abort.clone(),
                aborted: Arc::new(AtomicBool::new(false)),
            },
            rx,
            queued,
            abort,
        )
    }

    /// Queues a frame that must arrive (sync traffic). A peer that lets `limit` bytes pile up
    /// is too slow to keep: it is closed instead of letting the server's memory grow.
    pub fn send(&self, frame: Vec<u8>) {
        let n = self.queued.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        if n > self.limit {
            // Not queued behind the frames the peer is not reading: the writer is woken.
            if !self.aborted.swap(true, Ordering::Relaxed) {
                self.metrics.error(ErrorKind::slow_peer);
                self.abort.notify_one();
            }
            return;
        }
        let _ = self.tx.send(Outbound::Frame(frame));
    }

    /// Queues a best-effort frame (ephemeral): dropped when the peer is behind.
    pub fn send_best_effort(&self, frame: Vec<u8>) {
        if self.queued.load(Ordering::Relaxed) > 1024 * 1024 {
            return;
        }
        self.send(frame);
    }

    pub fn close(&self, reason: String) {
        let _ = self.tx.send(Outbound::Close(reason));
    }

    /// Closes with 1001 "going away" after an `error` saying why (the server stops).
    pub fn going_away(&self, reason: String) {
        let _ = self.tx.send(Outbound::GoingAway(reason));
    }
}
