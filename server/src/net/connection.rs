//! One WebSocket connection: frames in, protocol messages routed, frames out.
//!
//! The reader half hands each frame to the protocol's state machine
//! ([`toron_protocol::ConnectionState`]: `join` first, the documents-per-connection cap,
//! invalid ids, unknown or out-of-order messages) and does what it asks with what only the
//! server knows: the hub registers the peer id, policy decides each document's access,
//! `request`/`sync` go to the document's actor and `ephemeral` to the actor of an open
//! document. Anything malformed gets an `error` and closes this connection only. The writer
//! half ([`crate::net::writer`]) sends what the actors queue, and pings every
//! `ping_interval`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures_util::StreamExt;
use tokio::sync::{watch, Notify, Semaphore};
use toron_domain::policy::Access;
use toron_protocol::wire::encode;
use toron_protocol::{
    CloseKind, ConnEvent, ConnId, ConnectionState, DocumentId, Ephemeral, Grant, Input, PeerId,
    SyncKind,
};
use tracing::Instrument;

use crate::net::hub::Hub;
use crate::net::open_docs::DocMsg;
use crate::net::outbound::ConnTx;
use crate::net::writer::WriterTask;

/// Serves one upgraded socket until it closes or the server shuts down.
pub async fn serve(
    socket: WebSocket,
    hub: Arc<Hub>,
    shutdown: watch::Receiver<bool>,
    participant: Option<String>,
) {
    let conn = hub.next_conn_id();
    // Every line logged while serving this connection names it.
    let span = tracing::info_span!("conn", conn = %conn);
    serve_conn(conn, socket, hub, shutdown, participant)
        .instrument(span)
        .await
}

async fn serve_conn(
    conn: ConnId,
    socket: WebSocket,
    hub: Arc<Hub>,
    mut shutdown: watch::Receiver<bool>,
    participant: Option<String>,
) {
    hub.stats.connections.fetch_add(1, Ordering::Relaxed);
    let (out, out_rx, queued, abort) =
        ConnTx::new(conn, hub.config.max_outbound_bytes, hub.metrics.clone());
    let (sink, mut stream) = socket.split();
    let pong_seen = Arc::new(AtomicBool::new(true));
    // The writer ends on its own when a peer misses a pong or the socket fails; the reader
    // must then stop too, or a silent peer would keep its connection (and documents) forever.
    let writer_gone = Arc::new(Notify::new());

    let writer = tokio::spawn(
        WriterTask {
            conn,
            ping_every: hub.config.ping_interval,
            server_peer: hub.server_peer().clone(),
            log_budget: hub.log_budget.clone(),
            pong_seen: pong_seen.clone(),
            queued,
            abort,
            gone: writer_gone.clone(),
        }
        .run(sink, out_rx)
        .in_current_span(),
    );

    let kick = Arc::new(Notify::new());
    let (gone_tx, gone_rx) = watch::channel(false);
    if let Some(p) = &participant {
        hub.participant_connected(p, &out);
    }
    let mut session = Session::new(hub.clone(), conn, out.clone(), participant);

    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            () = writer_gone.notified() => break,
            () = kick.notified() => {
                out.close("the same peer id joined on another connection".into());
                break;
            }
            _ = shutdown.wait_for(|s| *s) => {
                out.going_away("the server is shutting down".into());
                break;
            }
        };
        let Some(Ok(frame)) = frame else { break };
        hub.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        let keep_going = match frame {
            WsMessage::Binary(bytes) => session.on_frame(&bytes, &kick, &gone_rx).await,
            WsMessage::Text(_) => {
                let events = session.proto.receive_text();
                session.carry_out(events, &kick, &gone_rx).await
            }
            WsMessage::Pong(_) => {
                pong_seen.store(true, Ordering::Relaxed);
                true
            }
            WsMessage::Ping(_) => true,
            WsMessage::Close(_) => false,
        };
        if !keep_going {
            break;
        }
    }

    // Release everything this connection held before saying it is gone, so that a peer
    // rejoining elsewhere starts from a clean slate.
    let peer = session.proto.peer().cloned();
    hub.connection_closed(conn, session.proto.close());
    if let Some(peer) = &peer {
        hub.leave(peer, conn);
    }
    if let Some(p) = &session.participant {
        hub.participant_disconnected(p, conn);
        hub.presence_leave(p, &session.sessions, conn).await;
    }
    let _ = gone_tx.send(true);
    drop(out);
    drop(session);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
    hub.stats.connections.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(%conn, "connection closed");
}

/// The server's side of one connection: the protocol's state machine
/// ([`ConnectionState`]), driven with what only the server knows — who the participant is,
/// what policy lets them do with each document, where documents are open.
struct Session {
    hub: Arc<Hub>,
    conn: ConnId,
    out: ConnTx,
    /// Phase, peer id (every message is attributed to the id it joined with, whatever
    /// `senderId` claims), the documents it named, invalid ids seen.
    proto: ConnectionState,
    /// Who authenticated this socket; `None` in open mode.
    participant: Option<String>,
    /// Debate sessions whose documents this connection touched (for joined/left).
    sessions: Vec<String>,
    /// Bytes of this connection's messages waiting in documents' inboxes: at most one
    /// largest message. A peer that sends faster than its documents take it waits here (its
    /// socket is not read), instead of the inboxes growing without bound.
    inflight: Arc<Semaphore>,
}

impl Session {
    fn new(hub: Arc<Hub>, conn: ConnId, out: ConnTx, participant: Option<String>) -> Self {
        Self {
            conn,
            out,
            proto: ConnectionState::new(
                hub.server_peer().clone(),
                Some(hub.store.storage_id().to_string()),
                hub.config.max_docs_per_connection,
            )
            .with_max_ephemeral_bytes(hub.config.max_ephemeral_bytes),
            participant,
            sessions: Vec::new(),
            inflight: Arc::new(Semaphore::new(hub.config.max_message_bytes)),
            hub,
        }
    }

    /// A binary frame; false when the connection must end.
    async fn on_frame(
        &mut self,
        bytes: &[u8],
        kick: &Arc<Notify>,
        gone: &watch::Receiver<bool>,
    ) -> bool {
        let events = self.proto.receive_frame(bytes);
        self.carry_out(events, kick, gone).await
    }

    /// Does what the protocol asks; false when the connection must end.
    async fn carry_out(
        &mut self,
        events: Vec<ConnEvent>,
        kick: &Arc<Notify>,
        gone: &watch::Receiver<bool>,
    ) -> bool {
        let mut todo: VecDeque<ConnEvent> = events.into();
        while let Some(e) = todo.pop_front() {
            match e {
                ConnEvent::Send(m) => self.out.send(encode(&m)),
                ConnEvent::Close { reason, kind } => {
                    self.close(&reason, kind);
                    return false;
                }
                ConnEvent::Join { peer } => todo.extend(self.join(peer, kick, gone).await),
                ConnEvent::Sync {
                    peer,
                    document_id,
                    kind,
                    data,
                    first,
                } => todo.extend(self.route_sync(document_id, peer, kind, data, first).await),
                ConnEvent::Ephemeral { peer, message } => self.relay_ephemeral(peer, message),
                ConnEvent::IgnoredInvalidId { log, detail } => {
                    self.hub.metrics.error(crate::metrics::ErrorKind::bad_frame);
                    if log && self.hub.log_budget.allow() {
                        tracing::info!(conn = %self.conn, %detail, "ignoring a message with an invalid document id");
                    }
                }
                ConnEvent::PeerError(message) => {
                    if self.hub.log_budget.allow() {
                        tracing::info!(conn = %self.conn, peer = ?self.proto.peer(), %message, "peer reported an error");
                    }
                    return false;
                }
                ConnEvent::Left => return false,
            }
        }
        true
    }

    /// Sends `error` and closes, counted by why.
    fn close(&self, reason: &str, kind: CloseKind) {
        let error = match kind {
            CloseKind::Protocol => crate::metrics::ErrorKind::bad_frame,
            CloseKind::Limit => crate::metrics::ErrorKind::limit,
            CloseKind::Refused => crate::metrics::ErrorKind::unauthorized,
        };
        if self.hub.log_budget.allow() {
            match kind {
                CloseKind::Protocol => {
                    tracing::info!(conn = %self.conn, %reason, "protocol error; closing")
                }
                CloseKind::Limit => tracing::info!(conn = %self.conn, %reason, "limit; closing"),
                CloseKind::Refused => tracing::info!(
                    conn = %self.conn,
                    participant = ?self.participant,
                    %reason,
                    "join refused: the peer id is held by another participant"
                ),
            }
        }
        self.hub.metrics.error(error);
        self.out.close(reason.to_string());
    }

    /// Registers the peer id with the hub (a peer id held by another participant is refused;
    /// the same participant's older connection is closed first).
    async fn join(
        &mut self,
        peer: PeerId,
        kick: &Arc<Notify>,
        gone: &watch::Receiver<bool>,
    ) -> Vec<ConnEvent> {
        let participant = self.participant.clone();
        match self
            .hub
            .join(
                &peer,
                participant.as_deref(),
                self.conn,
                kick.clone(),
                gone.clone(),
            )
            .await
        {
            Ok(()) => {
                tracing::debug!(conn = %self.conn, %peer, "joined");
                self.proto.joined()
            }
            Err(e) => self.proto.join_refused(e.to_string()),
        }
    }

    /// An ephemeral message, relayed to the document's other subscribers — within its
    /// sender's allowance of ephemeral bytes per second, and only while the document's inbox
    /// has room for it (best effort: dropped, never queued without bound).
    fn relay_ephemeral(&mut self, peer: PeerId, mut message: Ephemeral) {
        // Only readers of the document may speak in its presence channel.
        if let Some(p) = &self.participant {
            if self.hub.registry.decide(p, &message.document_id).access == Access::None {
                return;
            }
        }
        // Relayed under the id this connection joined with: a `senderId` held by another
        // connection is an echo of what the server relayed already (or one participant
        // speaking as another) and is dropped; any other claim (a peer behind this client)
        // is relayed as this connection's.
        if message.sender_id != peer && self.hub.peer_is_connected(&message.sender_id) {
            return;
        }
        let bytes = message.data.len() + message.session_id.len();
        let who = match &self.participant {
            Some(p) => p.clone(),
            None => format!("connection {}", self.conn),
        };
        let now = self.hub.config.clock.now_ms();
        if self.hub.ephemeral_rates.take(&who, bytes, now).is_err() {
            self.hub.metrics.ephemeral_dropped.inc();
            return;
        }
        message.sender_id = peer;
        let out = self.out.clone();
        self.hub
            .send_ephemeral(message.document_id, bytes, |held| DocMsg::Ephemeral {
                out,
                message,
                held,
            });
    }

    /// Asks the policy what this participant may do with the document, then routes the
    /// message with that grant — or answers `doc-unavailable` without saying whether the
    /// document exists.
    async fn route_sync(
        &mut self,
        id: DocumentId,
        peer: PeerId,
        kind: SyncKind,
        data: Vec<u8>,
        first: bool,
    ) -> Vec<ConnEvent> {
        let grant = match &self.participant {
            None => Grant::open(),
            Some(p) => {
                let decision = self.hub.registry.decide(p, &id);
                match decision.access {
                    Access::None => return self.proto.unavailable(id),
                    Access::Read => Grant {
                        may_write: false,
                        by: decision.by,
                    },
                    Access::Write => {
                        if decision.creates && kind == SyncKind::Sync {
                            if let Err(e) = self.hub.registry.register_ad_hoc(p, id).await {
                                return vec![ConnEvent::Close {
                                    reason: format!("could not register the new document: {e}"),
                                    kind: CloseKind::Protocol,
                                }];
                            }
                        }
                        Grant {
                            may_write: true,
                            by: decision.by,
                        }
                    }
                }
            }
        };
        if first {
            self.present(&grant, &peer, id).await;
        }
        let n = data.len().clamp(1, self.hub.config.max_message_bytes);
        let held = self
            .inflight
            .clone()
            .acquire_many_owned(n as u32)
            .await
            .ok();
        self.hub.route(
            id,
            DocMsg::Sync {
                out: self.out.clone(),
                input: Input::Sync {
                    conn: self.conn,
                    peer,
                    kind,
                    data,
                    grant,
                },
                held,
            },
        );
        Vec::new()
    }

    /// The first document of a debate session this connection names makes its participant
    /// present there (the report and responses are the series', not a session's).
    async fn present(&mut self, grant: &Grant, peer: &PeerId, id: DocumentId) {
        let (Some(p), Some(ctx)) = (&self.participant, self.hub.registry.timeline_context(&id))
        else {
            return;
        };
        let in_session = self.hub.registry.session(&ctx.session).is_some();
        if in_session && !self.sessions.contains(&ctx.session) {
            self.sessions.push(ctx.session.clone());
            self.hub
                .presence_join(
                    p,
                    grant.by.role.clone(),
                    &ctx.session,
                    self.conn,
                    (self.out.clone(), peer.clone(), id),
                )
                .await;
        }
    }
}
