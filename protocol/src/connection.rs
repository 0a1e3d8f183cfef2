//! One connection's side of the automerge-repo protocol, sans IO: waiting for `join` →
//! established → closed.
//!
//! The state machine takes frames (or decoded messages) and answers with [`ConnEvent`]s for
//! its driver: messages to send, a close with its reason, a join to register, sync and
//! ephemeral messages to route. It keeps what belongs to one connection — its phase, the
//! documents it has asked for (capped), how many messages with invalid document ids it sent —
//! and knows nothing of permissions or of other connections: the driver decides access for
//! each routed message and answers [`ConnectionState::unavailable`] where there is none. The
//! server drives it from its socket task; `tests/network.rs` drives the same machine in
//! memory.

use std::collections::BTreeSet;

use crate::engine::SyncKind;
use crate::ids::{DocumentId, PeerId};
use crate::wire::{decode, DecodeError, Message, PeerMetadata, PROTOCOL_VERSION};

/// Messages with invalid document ids logged per connection (the rest are counted only).
pub const LOGGED_INVALID_IDS: u32 = 3;
/// Messages with invalid document ids after which the connection is closed: each would
/// otherwise cost a log line and a decode, for ever.
pub const MAX_INVALID_IDS: u32 = 100;
/// The largest ephemeral payload (`data`) taken by default. Ephemeral messages carry presence
/// and cursors — a few hundred bytes — and the server keeps a copy for every subscriber it
/// relays one to, so their bound is small and separate from the message bound.
pub const MAX_EPHEMERAL_BYTES: usize = 16 * 1024;

/// Where a connection is in the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionPhase {
    /// Nothing but `join` is accepted.
    AwaitingJoin,
    /// `join` arrived; the driver is registering the peer id.
    Joining { peer: PeerId },
    /// `peer` was answered: documents may be synced.
    Established { peer: PeerId },
    /// Closed (by either side); nothing more is taken.
    Closed,
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// A frame the protocol does not allow (undecodable, out of order, unknown).
    Protocol,
    /// A bound of the server (documents per connection).
    Limit,
    /// The driver refused the join (a peer id another participant holds).
    Refused,
}

/// What the driver must do for a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    /// Send this message on the connection.
    Send(Message),
    /// Send `error` with this reason, then close: the peer broke the protocol or a bound.
    Close { reason: String, kind: CloseKind },
    /// A peer asks to join under `peer`: register it (a peer id another participant holds is
    /// refused), then call [`ConnectionState::joined`] or [`ConnectionState::join_refused`].
    Join { peer: PeerId },
    /// A `request` or `sync` for a document, from the established peer; `first` when the
    /// connection names the document for the first time. The driver decides access: it routes
    /// the message with a grant, or calls [`ConnectionState::unavailable`].
    Sync {
        peer: PeerId,
        document_id: DocumentId,
        kind: SyncKind,
        data: Vec<u8>,
        first: bool,
    },
    /// An ephemeral message to relay to the document's other subscribers, under `peer` (the
    /// connection's own id); `sender_id` is what the message claimed.
    Ephemeral { peer: PeerId, message: Ephemeral },
    /// A message naming an invalid document id was ignored; `log` for the first few.
    IgnoredInvalidId { log: bool, detail: String },
    /// The peer said why it leaves (`error`); the connection is closed.
    PeerError(String),
    /// The peer left (`leave`); the connection is closed.
    Left,
}

/// An ephemeral message as a connection sent it, without its target (the server relays it
/// to the document's other subscribers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ephemeral {
    /// The sender the message claimed; the driver decides whether it may stand.
    pub sender_id: PeerId,
    pub document_id: DocumentId,
    pub count: u64,
    pub session_id: String,
    pub data: Vec<u8>,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct ConnectionState {
    phase: ConnectionPhase,
    /// The server's own peer id, which answers `join`.
    server_peer: PeerId,
    /// The storage id the server advertises in `peer` (a client may cache by it).
    storage_id: Option<String>,
    max_documents: usize,
    /// The largest ephemeral `data` taken; a larger one closes the connection.
    max_ephemeral_bytes: usize,
    subscribed: BTreeSet<DocumentId>,
    invalid_ids: u32,
}

impl ConnectionState {
    /// A new connection, waiting for `join`; it may name at most `max_documents` documents.
    pub fn new(server_peer: PeerId, storage_id: Option<String>, max_documents: usize) -> Self {
        Self {
            phase: ConnectionPhase::AwaitingJoin,
            server_peer,
            storage_id,
            max_documents,
            max_ephemeral_bytes: MAX_EPHEMERAL_BYTES,
            subscribed: BTreeSet::new(),
            invalid_ids: 0,
        }
    }

    /// Sets the largest ephemeral payload taken (default [`MAX_EPHEMERAL_BYTES`]).
    pub fn with_max_ephemeral_bytes(mut self, bytes: usize) -> Self {
        self.max_ephemeral_bytes = bytes;
        self
    }

    pub fn phase(&self) -> &ConnectionPhase {
        &self.phase
    }

    /// The peer id this connection joined with, once established.
    pub fn peer(&self) -> Option<&PeerId> {
        match &self.phase {
            ConnectionPhase::Established { peer } => Some(peer),
            _ => None,
        }
    }

    /// The documents this connection has asked for (and was not told are unavailable).
    pub fn subscribed(&self) -> impl Iterator<Item = &DocumentId> {
        self.subscribed.iter()
    }

    /// Takes one binary frame.
    pub fn receive_frame(&mut self, frame: &[u8]) -> Vec<ConnEvent> {
        match decode(frame) {
            Ok(m) => self.receive(m),
            Err(DecodeError::BadDocumentId {
                ty, raw, reason, ..
            }) if self.peer().is_some() => {
                // Not a document anybody can have: ignored (as the JS client does).
                self.invalid_ids += 1;
                let mut out = vec![ConnEvent::IgnoredInvalidId {
                    log: self.invalid_ids <= LOGGED_INVALID_IDS,
                    // (Debug formatting: a peer's text cannot start a forged log line.)
                    detail: format!("{ty:?} {raw:?}: {reason}"),
                }];
                if self.invalid_ids >= MAX_INVALID_IDS {
                    out.push(self.fail(format!(
                        "{MAX_INVALID_IDS} messages with invalid document ids; closing"
                    )));
                }
                out
            }
            Err(e) => vec![self.fail(format!("undecodable message: {e}"))],
        }
    }

    /// A text frame: not part of the protocol.
    pub fn receive_text(&mut self) -> Vec<ConnEvent> {
        vec![self.fail("text frames are not part of the protocol; send binary CBOR".into())]
    }

    /// Takes one decoded message.
    pub fn receive(&mut self, msg: Message) -> Vec<ConnEvent> {
        let peer = match &self.phase {
            ConnectionPhase::Closed => return Vec::new(),
            ConnectionPhase::AwaitingJoin => return self.receive_join(msg),
            ConnectionPhase::Joining { .. } => {
                return vec![self.fail("a message before `join` was answered".into())]
            }
            ConnectionPhase::Established { peer } => peer.clone(),
        };
        match msg {
            Message::Request {
                document_id, data, ..
            } => self.sync(peer, document_id, SyncKind::Request, data),
            Message::Sync {
                document_id, data, ..
            } => self.sync(peer, document_id, SyncKind::Sync, data),
            Message::Ephemeral { data, .. } if data.len() > self.max_ephemeral_bytes => {
                let reason = format!(
                    "an ephemeral message of {} bytes is over this server's limit of {} (presence and cursors need a few hundred)",
                    data.len(),
                    self.max_ephemeral_bytes
                );
                vec![self.close_with(reason, CloseKind::Limit)]
            }
            Message::Ephemeral {
                sender_id,
                document_id,
                count,
                session_id,
                data,
                ..
            } => vec![ConnEvent::Ephemeral {
                peer,
                message: Ephemeral {
                    sender_id,
                    document_id,
                    count,
                    session_id,
                    data,
                },
            }],
            // We hold no other peers' heads and gossip none: accepted and ignored.
            Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. } => Vec::new(),
            Message::Leave { .. } => {
                self.phase = ConnectionPhase::Closed;
                vec![ConnEvent::Left]
            }
            Message::Error { message, .. } => {
                self.phase = ConnectionPhase::Closed;
                vec![ConnEvent::PeerError(message)]
            }
            Message::Join { .. } => vec![self.fail("already joined".into())],
            Message::Peer { .. } => vec![self.fail("a server does not accept `peer`".into())],
        }
    }

    fn receive_join(&mut self, msg: Message) -> Vec<ConnEvent> {
        match msg {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                ..
            } => {
                let supported = supported_protocol_versions
                    .is_none_or(|v| v.iter().any(|s| s == PROTOCOL_VERSION));
                if !supported {
                    return vec![self.fail("unsupported protocol version".into())];
                }
                self.phase = ConnectionPhase::Joining {
                    peer: sender_id.clone(),
                };
                vec![ConnEvent::Join { peer: sender_id }]
            }
            other => vec![self.fail(format!(
                "expected a join message, got `{}`",
                other.type_name()
            ))],
        }
    }

    /// The driver registered the peer id: `peer` answers the join.
    pub fn joined(&mut self) -> Vec<ConnEvent> {
        let ConnectionPhase::Joining { peer } = &self.phase else {
            return Vec::new();
        };
        let peer = peer.clone();
        let reply = Message::Peer {
            sender_id: self.server_peer.clone(),
            target_id: peer.clone(),
            selected_protocol_version: PROTOCOL_VERSION.into(),
            peer_metadata: Some(PeerMetadata {
                storage_id: self.storage_id.clone(),
                is_ephemeral: false,
            }),
        };
        self.phase = ConnectionPhase::Established { peer };
        vec![ConnEvent::Send(reply)]
    }

    /// The driver refused the peer id: the connection closes, saying why.
    pub fn join_refused(&mut self, reason: String) -> Vec<ConnEvent> {
        vec![self.close_with(reason, CloseKind::Refused)]
    }

    /// The driver found no access to `document_id` for this connection: it is told the
    /// document is unavailable (whether it exists or not) and is not subscribed.
    pub fn unavailable(&mut self, document_id: DocumentId) -> Vec<ConnEvent> {
        let Some(peer) = self.peer().cloned() else {
            return Vec::new();
        };
        self.subscribed.remove(&document_id);
        vec![ConnEvent::Send(Message::DocUnavailable {
            sender_id: self.server_peer.clone(),
            target_id: peer,
            document_id,
        })]
    }

    /// The connection ends (socket closed, or closed by the driver): returns the documents
    /// it had asked for, whose engines must forget it.
    pub fn close(&mut self) -> Vec<DocumentId> {
        self.phase = ConnectionPhase::Closed;
        std::mem::take(&mut self.subscribed).into_iter().collect()
    }

    fn sync(
        &mut self,
        peer: PeerId,
        document_id: DocumentId,
        kind: SyncKind,
        data: Vec<u8>,
    ) -> Vec<ConnEvent> {
        let first = !self.subscribed.contains(&document_id);
        if first && self.subscribed.len() >= self.max_documents {
            return vec![self.close_with(
                format!(
                    "too many documents on one connection: at most {} (--max-docs-per-connection)",
                    self.max_documents
                ),
                CloseKind::Limit,
            )];
        }
        self.subscribed.insert(document_id);
        vec![ConnEvent::Sync {
            peer,
            document_id,
            kind,
            data,
            first,
        }]
    }

    fn fail(&mut self, reason: String) -> ConnEvent {
        self.close_with(reason, CloseKind::Protocol)
    }

    fn close_with(&mut self, reason: String, kind: CloseKind) -> ConnEvent {
        self.phase = ConnectionPhase::Closed;
        ConnEvent::Close { reason, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode;

    fn peer(s: &str) -> PeerId {
        PeerId::new(s).expect("peer id")
    }

    fn joined(max: usize) -> ConnectionState {
        let mut c = ConnectionState::new(peer("server"), Some("storage".into()), max);
        let join = Message::Join {
            sender_id: peer("alice"),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
            peer_metadata: None,
        };
        assert_eq!(
            c.receive(join),
            vec![ConnEvent::Join {
                peer: peer("alice")
            }]
        );
        let answer = c.joined();
        assert!(matches!(
            &answer[..],
            [ConnEvent::Send(Message::Peer { .. })]
        ));
        assert_eq!(c.peer(), Some(&peer("alice")));
        c
    }

    fn sync(id: DocumentId) -> Message {
        Message::Sync {
            sender_id: peer("alice"),
            target_id: peer("server"),
            document_id: id,
            data: vec![1],
        }
    }

    #[test]
    fn nothing_but_join_is_taken_first() {
        let mut c = ConnectionState::new(peer("server"), None, 4);
        let out = c.receive(sync(DocumentId::random()));
        assert!(
            matches!(&out[..], [ConnEvent::Close { reason: r, .. }] if r.contains("expected a join"))
        );
        assert_eq!(c.phase(), &ConnectionPhase::Closed);
        assert!(c.receive(sync(DocumentId::random())).is_empty());
    }

    #[test]
    fn an_unsupported_version_and_a_second_join_close() {
        let mut c = ConnectionState::new(peer("server"), None, 4);
        let join = |v: &str| Message::Join {
            sender_id: peer("alice"),
            supported_protocol_versions: Some(vec![v.into()]),
            peer_metadata: None,
        };
        let out = c.receive(join("0"));
        assert!(
            matches!(&out[..], [ConnEvent::Close { reason: r, .. }] if r.contains("unsupported"))
        );
        let mut c = joined(4);
        let out = c.receive(join(PROTOCOL_VERSION));
        assert!(matches!(&out[..], [ConnEvent::Close { reason: r, .. }] if r == "already joined"));
    }

    #[test]
    fn documents_are_capped_and_an_unavailable_one_frees_its_place() {
        let mut c = joined(2);
        let (a, b, x) = (
            DocumentId::random(),
            DocumentId::random(),
            DocumentId::random(),
        );
        for id in [a, b] {
            assert!(matches!(
                &c.receive(sync(id))[..],
                [ConnEvent::Sync { first: true, .. }]
            ));
        }
        assert!(matches!(
            &c.receive(sync(a))[..],
            [ConnEvent::Sync { first: false, .. }]
        ));
        let told = c.unavailable(b);
        assert!(matches!(
            &told[..],
            [ConnEvent::Send(Message::DocUnavailable { .. })]
        ));
        assert!(matches!(
            &c.receive(sync(x))[..],
            [ConnEvent::Sync { first: true, .. }]
        ));
        let out = c.receive(sync(DocumentId::random()));
        assert!(
            matches!(&out[..], [ConnEvent::Close { reason: r, .. }] if r.contains("too many documents"))
        );
        let mut left: Vec<_> = c.close();
        left.sort();
        let mut want = vec![a, x];
        want.sort();
        assert_eq!(left, want);
    }

    /// A sync frame whose document id is not base58 (a `0` in it).
    fn invalid_id_frame() -> Vec<u8> {
        let id = DocumentId::random();
        let mut frame = encode(&sync(id));
        let text = id.to_string();
        let at = frame
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .expect("the id is in the frame");
        frame[at] = b'0';
        frame
    }

    #[test]
    fn invalid_ids_are_ignored_logged_thrice_then_the_connection_closes() {
        let mut c = joined(4);
        let (mut logged, mut closed_at) = (0, None);
        for n in 1..=MAX_INVALID_IDS {
            for e in c.receive_frame(&invalid_id_frame()) {
                match e {
                    ConnEvent::IgnoredInvalidId { log, .. } => logged += usize::from(log),
                    ConnEvent::Close { .. } => closed_at = Some(n),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(logged, LOGGED_INVALID_IDS as usize);
        assert_eq!(closed_at, Some(MAX_INVALID_IDS));
        assert_eq!(c.phase(), &ConnectionPhase::Closed);
    }
}
