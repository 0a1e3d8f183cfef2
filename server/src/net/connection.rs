//! One WebSocket connection: frames in, protocol messages routed, frames out.
//!
//! The reader half decodes each binary frame into a [`Message`] and follows the handshake
//! (`join` first, answered at once with `peer`); after it, `request`/`sync` go to the
//! document's actor and `ephemeral` to the actor of an open document. Anything malformed —
//! undecodable CBOR, a text frame, an unknown type, a message before `join`, a second `join` —
//! gets an `error` and closes this connection only. The writer half sends what the actors
//! queue, and pings every `ping_interval`; a peer that has not answered the previous ping by
//! the next one is dropped, and so is one that does not take a write within its deadline
//! ([`write_deadline`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use toron_domain::policy::Access;
use toron_protocol::wire::{decode, encode};
use toron_protocol::{
    ConnId, DecodeError, DocumentId, Grant, Message, PeerId, PeerMetadata, SyncKind,
    PROTOCOL_VERSION,
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
            server_peer: hub.server_peer.clone(),
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
    let mut session = Session {
        hub: hub.clone(),
        conn,
        out: out.clone(),
        peer: None,
        participant,
        subscribed: HashSet::new(),
        sessions: Vec::new(),
        invalid_ids: 0,
    };

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
                session.fail("text frames are not part of the protocol; send binary CBOR")
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
    for id in &session.subscribed {
        hub.send_if_open(*id, DocMsg::Closed { conn });
    }
    if let Some(peer) = &session.peer {
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

struct Session {
    hub: Arc<Hub>,
    conn: ConnId,
    out: ConnTx,
    /// Set by `join`; every later message is attributed to it whatever `senderId` claims.
    peer: Option<PeerId>,
    /// Who authenticated this socket; `None` in open mode.
    participant: Option<String>,
    subscribed: HashSet<DocumentId>,
    /// Debate sessions whose documents this connection touched (for joined/left).
    sessions: Vec<String>,
    /// Messages ignored so far because their document id is not one.
    invalid_ids: u32,
}

/// Messages with an invalid document id that are logged per connection, and after how many
/// the connection is closed.
const LOGGED_INVALID_IDS: u32 = 3;
const MAX_INVALID_IDS: u32 = 100;

impl Session {
    /// Sends `error` and ends the connection.
    fn fail(&self, reason: &str) -> bool {
        if self.hub.log_budget.allow() {
            tracing::info!(conn = %self.conn, %reason, "protocol error; closing");
        }
        self.hub.metrics.error(crate::metrics::ErrorKind::bad_frame);
        self.out.close(reason.to_string());
        false
    }

    /// A message naming a document id nobody can have: ignored (as the JS client does),
    /// logged only the first few times, and a connection that keeps sending them is closed —
    /// each one would otherwise be a log line.
    fn invalid_id(
        &mut self,
        ty: impl std::fmt::Debug,
        raw: &impl std::fmt::Debug,
        reason: &impl std::fmt::Display,
    ) -> bool {
        self.invalid_ids += 1;
        self.hub.metrics.error(crate::metrics::ErrorKind::bad_frame);
        if self.invalid_ids <= LOGGED_INVALID_IDS && self.hub.log_budget.allow() {
            // (Debug formatting: a peer's text cannot start a forged log line.)
            tracing::info!(conn = %self.conn, ?ty, ?raw, %reason, "ignoring a message with an invalid document id");
        }
        if self.invalid_ids >= MAX_INVALID_IDS {
            return self.fail(&format!(
                "{MAX_INVALID_IDS} messages with invalid document ids; closing"
            ));
        }
        true
    }

    /// An ephemeral message, relayed to the document's other subscribers.
    fn relay_ephemeral(
        &mut self,
        peer: PeerId,
        sender_id: PeerId,
        document_id: DocumentId,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    ) -> bool {
        // Only readers of the document may speak in its presence channel.
        if let Some(p) = &self.participant {
            if self.hub.registry.decide(p, &document_id).access == Access::None {
                return true;
            }
        }
        // Relayed under the id this connection joined with: a `senderId` held by
        // another connection is an echo of what the server relayed already (or one
        // participant speaking as another) and is dropped; any other claim (a peer
        // behind this client) is relayed as this connection's.
        if sender_id != peer && self.hub.peer_is_connected(&sender_id) {
            return true;
        }
        self.hub.send_if_open(
            document_id,
            DocMsg::Ephemeral {
                out: self.out.clone(),
                sender_id: peer,
                session_id,
                count,
                data,
            },
        );
        true
    }

    async fn on_frame(
        &mut self,
        bytes: &[u8],
        kick: &Arc<Notify>,
        gone: &watch::Receiver<bool>,
    ) -> bool {
        let msg = match decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::BadDocumentId {
                ty, raw, reason, ..
            }) if self.peer.is_some() => return self.invalid_id(ty, &raw, &reason),
            Err(e) => return self.fail(&format!("undecodable message: {e}")),
        };
        let Some(peer) = self.peer.clone() else {
            return match msg {
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    ..
                } => {
                    self.on_join(sender_id, supported_protocol_versions, kick, gone)
                        .await
                }
                other => self.fail(&format!(
                    "expected a join message, got `{}`",
                    other.type_name()
                )),
            };
        };
        match msg {
            Message::Request {
                document_id, data, ..
            } => {
                self.route_sync(document_id, peer, SyncKind::Request, data)
                    .await
            }
            Message::Sync {
                document_id, data, ..
            } => {
                self.route_sync(document_id, peer, SyncKind::Sync, data)
                    .await
            }
            Message::Ephemeral {
                sender_id,
                document_id,
                count,
                session_id,
                data,
                ..
            } => self.relay_ephemeral(peer, sender_id, document_id, count, session_id, data),
            // We hold no other peers' heads and gossip none: accepted and ignored.
            Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. } => true,
            Message::Leave { .. } => false,
            Message::Error { message, .. } => {
                if self.hub.log_budget.allow() {
                    tracing::info!(conn = %self.conn, %peer, %message, "peer reported an error");
                }
                false
            }
            Message::Join { .. } => self.fail("already joined"),
            Message::Peer { .. } => self.fail("a server does not accept `peer`"),
        }
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
    ) -> bool {
        let max_docs = self.hub.config.max_docs_per_connection;
        if !self.subscribed.contains(&id) && self.subscribed.len() >= max_docs {
            self.hub.metrics.error(crate::metrics::ErrorKind::limit);
            let reason = format!(
                "too many documents on one connection: at most {max_docs} (--max-docs-per-connection)"
            );
            if self.hub.log_budget.allow() {
                tracing::info!(conn = %self.conn, %reason, "limit; closing");
            }
            self.out.close(reason);
            return false;
        }
        let grant = match &self.participant {
            None => Grant::open(),
            Some(p) => {
                let decision = self.hub.registry.decide(p, &id);
                match decision.access {
                    Access::None => {
                        let msg = Message::DocUnavailable {
                            sender_id: self.hub.server_peer.clone(),
                            target_id: peer,
                            document_id: id,
                        };
                        self.out.send(encode(&msg));
                        return true;
                    }
                    Access::Read => Grant {
                        may_write: false,
                        by: decision.by,
                    },
                    Access::Write => {
                        if decision.creates && kind == SyncKind::Sync {
                            if let Err(e) = self.hub.registry.register_ad_hoc(p, id).await {
                                return self
                                    .fail(&format!("could not register the new document: {e}"));
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
        if self.subscribed.insert(id) {
            if let (Some(p), Some(ctx)) =
                (&self.participant, self.hub.registry.timeline_context(&id))
            {
                // Presence is a session's (the report and responses are the series').
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
        self.hub.route(
            id,
            DocMsg::Sync {
                out: self.out.clone(),
                peer,
                kind,
                data,
                grant,
            },
        );
        true
    }

    async fn on_join(
        &mut self,
        sender_id: PeerId,
        versions: Option<Vec<String>>,
        kick: &Arc<Notify>,
        gone: &watch::Receiver<bool>,
    ) -> bool {
        let supported = versions.is_none_or(|v| v.iter().any(|s| s == PROTOCOL_VERSION));
        if !supported {
            return self.fail("unsupported protocol version");
        }
        let participant = self.participant.clone();
        if let Err(e) = self
            .hub
            .join(
                &sender_id,
                participant.as_deref(),
                self.conn,
                kick.clone(),
                gone.clone(),
            )
            .await
        {
            if self.hub.log_budget.allow() {
                tracing::info!(conn = %self.conn, peer = %sender_id, participant = ?participant, "join refused: the peer id is held by another participant");
            }
            self.hub
                .metrics
                .error(crate::metrics::ErrorKind::unauthorized);
            self.out.close(e.to_string());
            return false;
        }
        let reply = Message::Peer {
            sender_id: self.hub.server_peer.clone(),
            target_id: sender_id.clone(),
            selected_protocol_version: PROTOCOL_VERSION.into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(self.hub.store.storage_id().to_string()),
                is_ephemeral: false,
            }),
        };
        self.out.send(encode(&reply));
        tracing::debug!(conn = %self.conn, peer = %sender_id, "joined");
        self.peer = Some(sender_id);
        true
    }
}
