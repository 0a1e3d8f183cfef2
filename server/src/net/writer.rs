//! A connection's writer: the queue to the socket, in bursts, with pings, write deadlines and
//! a bounded goodbye.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::SinkExt;
use tokio::sync::{mpsc, Notify};
use toron_protocol::wire::encode;
use toron_protocol::{ConnId, Message, PeerId};

use crate::net::log_budget::LogBudget;
use crate::net::outbound::Outbound;

/// Sends `error` with `reason`, then a close frame with `code` (its reason cut, on a character
/// boundary, to fit the 123 bytes a close frame allows).
async fn close_with(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    server_peer: &PeerId,
    code: u16,
    reason: String,
) {
    let err = Message::Error {
        sender_id: Some(server_peer.clone()),
        target_id: None,
        message: reason.clone(),
    };
    let _ = sink.send(WsMessage::Binary(encode(&err).into())).await;
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = reason[..end].to_string();
    let _ = sink
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// At most this many queued frames are written together before the socket is flushed.
const BURST: usize = 64;

/// How long writing `bytes` to a peer may take: a ping interval, and one more for each MiB
/// (at the default 20 s, about 400 kbit/s — slower than the slowest venue Wi-Fi we measured).
/// A peer that does not read blocks the write; without a deadline its connection (and what
/// is queued for it) would stay forever, since pings go out only between writes.
fn write_deadline(ping_every: std::time::Duration, bytes: usize) -> std::time::Duration {
    ping_every.saturating_mul(1 + (bytes >> 20) as u32)
}

/// Runs one write to the socket within `limit`; `false` when it failed or took too long.
async fn in_time<E>(
    limit: std::time::Duration,
    write: impl std::future::Future<Output = Result<(), E>>,
) -> bool {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::info!(
                ?limit,
                "a write to the peer took too long; dropping the connection"
            );
            false
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, WsMessage>;

/// One connection's writer task: takes frames from the connection's queue and writes them in
/// bursts, pings on an interval, and closes with a reason when told. It ends on its own when
/// a write fails or takes too long, when a pong is missed, or when the queue grows past its
/// limit (`abort`); `gone` then tells the reader to stop too.
#[derive(Debug)]
pub struct WriterTask {
    pub conn: ConnId,
    pub ping_every: Duration,
    pub server_peer: PeerId,
    pub log_budget: Arc<LogBudget>,
    /// Set by the reader when a pong arrives; cleared at each ping.
    pub pong_seen: Arc<AtomicBool>,
    /// Bytes queued and not yet written (see [`crate::net::outbound::ConnTx`]).
    pub queued: Arc<AtomicUsize>,
    /// Woken when the queue went over its limit.
    pub abort: Arc<Notify>,
    /// Notified when the writer has ended.
    pub gone: Arc<Notify>,
}

impl WriterTask {
    pub async fn run(self, mut sink: Sink, mut out_rx: mpsc::UnboundedReceiver<Outbound>) {
        // The loop may sit in a write to a peer that does not read; `abort` (a queue over its
        // limit) must end it even then, so it races the whole loop.
        let too_slow = tokio::select! {
            biased;
            () = self.abort.notified() => true,
            () = self.write_until_done(&mut sink, &mut out_rx) => false,
        };
        if too_slow {
            if self.log_budget.allow() {
                tracing::info!(conn = %self.conn, "outgoing queue over its limit; dropping the connection");
            }
            // The socket may be full: the goodbye gets a bounded moment, then it is cut.
            let reason = "too slow: outgoing queue over its limit".to_string();
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                close_with(&mut sink, &self.server_peer, 1008, reason),
            )
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        self.gone.notify_one();
    }

    async fn write_until_done(
        &self,
        sink: &mut Sink,
        out_rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) {
        let every = self.ping_every;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // An item taken from the queue while writing a burst, to handle next.
        let mut next: Option<Outbound> = None;
        loop {
            let item = tokio::select! {
                item = async {
                    match next.take() {
                        Some(i) => Some(i),
                        None => out_rx.recv().await,
                    }
                } => item,
                _ = ping.tick() => {
                    if !self.pong_seen.swap(false, Ordering::Relaxed) {
                        if self.log_budget.allow() {
                            tracing::info!(conn = %self.conn, "no pong since the last ping; dropping the connection");
                        }
                        return;
                    }
                    if !in_time(every, sink.send(WsMessage::Ping(Vec::new().into()))).await {
                        return;
                    }
                    continue;
                }
            };
            match item.map(Outbound::into_frame) {
                Some(Ok(bytes)) => match self.write_burst(sink, out_rx, bytes).await {
                    Some(after) => next = after,
                    None => return,
                },
                Some(Err(Outbound::GoingAway(reason))) => {
                    close_with(sink, &self.server_peer, 1001, reason).await;
                    return;
                }
                Some(Err(Outbound::Close(reason))) => {
                    close_with(sink, &self.server_peer, 1008, reason).await;
                    return;
                }
                // (`into_frame` gives every frame as `Ok`.)
                Some(Err(Outbound::Frame(_) | Outbound::Shared { .. })) => {}
                None => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    return;
                }
            }
        }
    }

    /// Writes `first` and what else is queued already in the same write: a storm of
    /// reconnects or a busy document makes one syscall, not dozens. Returns the item that
    /// ended the burst (not a frame), or `None` when the socket failed.
    async fn write_burst(
        &self,
        sink: &mut Sink,
        out_rx: &mut mpsc::UnboundedReceiver<Outbound>,
        first: Vec<u8>,
    ) -> Option<Option<Outbound>> {
        let every = self.ping_every;
        self.queued.fetch_sub(first.len(), Ordering::Relaxed);
        let mut burst = first.len();
        if !in_time(
            write_deadline(every, burst),
            sink.feed(WsMessage::Binary(first.into())),
        )
        .await
        {
            return None;
        }
        let mut after = None;
        for _ in 0..BURST {
            match out_rx.try_recv().map(Outbound::into_frame) {
                Ok(Ok(bytes)) => {
                    self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                    burst += bytes.len();
                    let n = bytes.len();
                    if !in_time(
                        write_deadline(every, n),
                        sink.feed(WsMessage::Binary(bytes.into())),
                    )
                    .await
                    {
                        return None;
                    }
                }
                Ok(Err(other)) => {
                    after = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        if !in_time(write_deadline(every, burst), sink.flush()).await {
            return None;
        }
        Some(after)
    }
}
