//! A connection's sending side: what its writer task sends, and the handle that document
//! actors and the hub queue frames through — with the bound that drops a peer too slow to read.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use toron_protocol::wire::EphemeralFrame;
use toron_protocol::{ConnId, PeerId};

/// Bytes queued towards a peer past which best-effort traffic (ephemeral) is dropped for it.
const BEST_EFFORT_BYTES: usize = 1024 * 1024;

use crate::metrics::{ErrorKind, Metrics};

/// What a connection's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Vec<u8>),
    /// A frame made of a part shared with other connections (an ephemeral message's body,
    /// held once however many subscribers it goes to) and this connection's own end.
    Shared {
        body: Arc<[u8]>,
        tail: Vec<u8>,
    },
    /// Send `error` with this text, then close with 1008 (policy violation).
    Close(String),
    /// Send `error` with this text, then close with 1001 (going away): the server stops.
    GoingAway(String),
}

impl Outbound {
    /// The frame to write (a shared one joined with its end, only now), or what else the
    /// writer is told.
    pub fn into_frame(self) -> Result<Vec<u8>, Self> {
        match self {
            Outbound::Frame(f) => Ok(f),
            Outbound::Shared { body, tail } => {
                let mut f = Vec::with_capacity(body.len() + tail.len());
                f.extend_from_slice(&body);
                f.extend_from_slice(&tail);
                Ok(f)
            }
            other => Err(other),
        }
    }
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

    /// Whether best-effort traffic (ephemeral) may still be queued: the peer is not behind.
    pub fn has_room(&self) -> bool {
        self.queued.load(Ordering::Relaxed) <= BEST_EFFORT_BYTES
    }

    /// Queues a best-effort frame (ephemeral): dropped when the peer is behind.
    pub fn send_best_effort(&self, frame: Vec<u8>) {
        if !self.has_room() {
            return;
        }
        self.send(frame);
    }

    /// Queues a relayed ephemeral message for `target` (this connection's peer): the frame's
    /// shared body and the end naming the target. Dropped (false) when the peer is behind —
    /// checked before anything is made for it.
    pub fn send_shared(&self, frame: &EphemeralFrame, target: &PeerId) -> bool {
        if !self.has_room() {
            return false;
        }
        let tail = EphemeralFrame::target(target);
        let n = frame.body().len() + tail.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        let _ = self.tx.send(Outbound::Shared {
            body: frame.body().clone(),
            tail,
        });
        true
    }

    pub fn close(&self, reason: String) {
        let _ = self.tx.send(Outbound::Close(reason));
    }

    /// Closes with 1001 "going away" after an `error` saying why (the server stops).
    pub fn going_away(&self, reason: String) {
        let _ = self.tx.send(Outbound::GoingAway(reason));
    }
}
