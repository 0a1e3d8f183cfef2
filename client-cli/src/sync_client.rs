//! A small automerge-repo client over tokio-tungstenite, built on `toron-protocol`'s codec.
//!
//! One [`Connection`] is one WebSocket after the `join`/`peer` handshake. A [`DocSync`] is one
//! document with its sync state towards the server. The operations the CLI needs — find a
//! document, push local changes until the server has acknowledged them, follow changes — are
//! small loops over "receive, apply, reply", each bounded by a deadline.

use std::time::Duration;

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use toron_protocol::wire::{decode, encode};
use toron_protocol::{DocumentId, Message, PeerId, PeerMetadata, SyncKind, PROTOCOL_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("timed out after {0:?} while {1}")]
    Timeout(Duration, &'static str),
    #[error("the server does not have document {0}")]
    Unavailable(DocumentId),
    #[error("the server reported an error: {0}")]
    Server(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A joined connection to a sync server.
#[derive(Debug)]
pub struct Connection {
    ws: Ws,
    pub peer_id: PeerId,
    pub server_id: PeerId,
    pub server_metadata: Option<PeerMetadata>,
    /// The close frame's code and reason, once the server closed the connection.
    pub closed_with: Option<(u16, String)>,
}

/// A document and our sync state towards the server.
#[derive(Debug)]
pub struct DocSync {
    pub id: DocumentId,
    pub doc: AutoCommit,
    pub state: sync::State,
}

/// What [`Connection::next_event`] saw.
#[derive(Debug)]
pub enum Event {
    /// A sync message for this document was applied; `changed` if our heads moved.
    Synced {
        id: DocumentId,
        changed: bool,
    },
    Unavailable(DocumentId),
    Ephemeral {
        id: DocumentId,
        sender: PeerId,
        data: Vec<u8>,
    },
}

/// Where a token comes from, for the messages of a refused one.
pub const TOKEN_HINT: &str = "the server wants a valid token: pass --token or set TORON_TOKEN; an organizer issues one with `toron admin token issue PARTICIPANT` (the first organizer's is in the server's <data>/admin-token)";

/// The server's address as a WebSocket URL: `http://` and `https://` (what a person copies
/// from the browser) become `ws://` and `wss://`, a bare `host:port` gets `ws://`.
pub fn ws_url(server: &str) -> String {
    if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if server.contains("://") {
        server.to_string()
    } else {
        format!("ws://{server}")
    }
}

/// `url` without its token, for messages.
fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?token=…"),
        None => url.to_string(),
    }
}

/// The server URL with `?token=…` added (browsers and this client pass the token that way).
pub fn url_with_token(server: &str, token: Option<&str>) -> String {
    let server = ws_url(server);
    match token {
        None => server,
        Some(t) => {
            let encoded: String = t
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            // `ws://host:port?token=` has no path, which servers refuse: add the `/`.
            let has_path = server
                .split_once("://")
                .is_some_and(|(_, rest)| rest.contains('/'));
            let base = if has_path {
                server.to_string()
            } else {
                format!("{server}/")
            };
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}token={encoded}")
        }
    }
}

fn random_peer_id() -> PeerId {
    let n: u64 = rand::random();
    PeerId::new(format!("toron-cli-{n:016x}")).unwrap_or_else(|_| unreachable!("non-empty"))
}

impl Connection {
    /// Connects and performs the handshake within `limit`, under a random peer id.
    pub async fn connect(url: &str, limit: Duration) -> Result<Self, ClientError> {
        Self::connect_as(url, random_peer_id(), limit).await
    }

    /// Connects as `peer_id` (a client that reconnects keeps its id).
    pub async fn connect_as(
        url: &str,
        peer_id: PeerId,
        limit: Duration,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + limit;
        let config = WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (ws, _) = timeout_at(
            deadline,
            tokio_tungstenite::connect_async_with_config(url, Some(config), true),
        )
        .await
        .map_err(|_| ClientError::Timeout(limit, "connecting"))?
        .map_err(|e| {
            let unauthorized =
                matches!(&e, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401);
            ClientError::Connect {
                url: redact(url),
                reason: if unauthorized {
                    format!("{e}: {TOKEN_HINT}")
                } else {
                    e.to_string()
                },
            }
        })?;
        let mut conn = Self {
            ws,
            server_id: peer_id.clone(),
            peer_id,
            server_metadata: None,
            closed_with: None,
        };
        conn.send(&Message::Join {
            sender_id: conn.peer_id.clone(),
            supported_protocol_versions: Some(vec![PROTOCOL_VERSION.into()]),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
        })
        .await?;
        match timeout_at(deadline, conn.recv()).await {
            Err(_) => Err(ClientError::Timeout(
                limit,
                "waiting for the server's `peer` reply",
            )),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Message::Peer {
                sender_id,
                selected_protocol_version,
                peer_metadata,
                ..
            })) => {
                if selected_protocol_version != PROTOCOL_VERSION {
                    return Err(ClientError::Protocol(format!(
                        "server selected protocol {selected_protocol_version}"
                    )));
                }
                conn.server_id = sender_id;
                conn.server_metadata = peer_metadata;
                Ok(conn)
            }
            Ok(Ok(other)) => Err(ClientError::Protocol(format!(
                "expected `peer`, got `{}`",
                other.type_name()
            ))),
        }
    }

    pub async fn send(&mut self, msg: &Message) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Binary(encode(msg).into())).await?;
        Ok(())
    }

    /// Sends raw bytes as one binary frame (tests of hostile input use this).
    pub async fn send_raw(&mut self, frame: Vec<u8>) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Binary(frame.into())).await?;
        Ok(())
    }

    /// Sends a text frame (tests of hostile input use this).
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::Text(text.to_string().into()))
            .await?;
        Ok(())
    }

    /// The next protocol message; `error` from the server becomes [`ClientError::Server`].
    pub async fn recv(&mut self) -> Result<Message, ClientError> {
        loop {
            match self.ws.next().await {
                None => return Err(ClientError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(WsMessage::Binary(b))) => {
                    let m = decode(&b).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if let Message::Error { message, .. } = m {
                        return Err(ClientError::Server(message));
                    }
                    return Ok(m);
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    self.closed_with = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return Err(ClientError::Closed);
                }
                Some(Ok(_)) => continue, // pings are answered by tungstenite
            }
        }
    }

    /// Sends our next sync message for `d`, if automerge has one.
    pub async fn sync_doc(&mut self, d: &mut DocSync, request: bool) -> Result<bool, ClientError> {
        let Some(m) = d.doc.sync().generate_sync_message(&mut d.state) else {
            return Ok(false);
        };
        let kind = if request {
            SyncKind::Request
        } else {
            SyncKind::Sync
        };
        self.send_sync(kind, d.id, m).await?;
        Ok(true)
    }

    /// Sends one sync message about `id` to the server.
    pub async fn send_sync(
        &mut self,
        kind: SyncKind,
        id: DocumentId,
        m: sync::Message,
    ) -> Result<(), ClientError> {
        let msg = Message::sync_of_kind(
            kind,
            self.peer_id.clone(),
            self.server_id.clone(),
            id,
            m.encode(),
        );
        self.send(&msg).await
    }

    /// Receives one message and applies it to the matching document in `docs`, replying if
    /// the sync protocol wants a reply.
    pub async fn next_event(&mut self, docs: &mut [&mut DocSync]) -> Result<Event, ClientError> {
        loop {
            match self.recv().await? {
                Message::Sync {
                    document_id, data, ..
                } => {
                    let Some(d) = docs.iter_mut().find(|d| d.id == document_id) else {
                        continue;
                    };
                    let before = d.doc.get_heads();
                    let m = sync::Message::decode(&data)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    toron_protocol::sync_receive::receive(&mut d.doc, &mut d.state, m)?;
                    let changed = d.doc.get_heads() != before;
                    self.sync_doc(d, false).await?;
                    return Ok(Event::Synced {
                        id: document_id,
                        changed,
                    });
                }
                Message::DocUnavailable { document_id, .. } => {
                    return Ok(Event::Unavailable(document_id))
                }
                Message::Ephemeral {
                    document_id,
                    sender_id,
                    data,
                    ..
                } => {
                    return Ok(Event::Ephemeral {
                        id: document_id,
                        sender: sender_id,
                        data,
                    })
                }
                _ => continue,
            }
        }
    }

    /// Asks the server for `id` and waits until we hold what it has.
    pub async fn find(&mut self, id: DocumentId, limit: Duration) -> Result<DocSync, ClientError> {
        let deadline = Instant::now() + limit;
        let mut d = DocSync::new(id, AutoCommit::new());
        self.sync_doc(&mut d, true).await?;
        loop {
            let ev = timeout_at(deadline, self.next_event(&mut [&mut d]))
                .await
                .map_err(|_| ClientError::Timeout(limit, "waiting for the document"))??;
            match ev {
                Event::Unavailable(u) if u == id => return Err(ClientError::Unavailable(id)),
                Event::Synced { .. } if d.has_their_heads() => return Ok(d),
                _ => {}
            }
        }
    }

    /// Sends our changes of `d` and waits until the server acknowledges our heads — which it
    /// does only once they are durable in its log.
    pub async fn push(&mut self, d: &mut DocSync, limit: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + limit;
        let ours = d.heads();
        self.sync_doc(d, false).await?;
        while !d.server_has(&ours) {
            let ev = timeout_at(deadline, self.next_event(&mut [&mut *d]))
                .await
                .map_err(|_| {
                    ClientError::Timeout(limit, "waiting for the server to store the changes")
                })??;
            if let Event::Unavailable(u) = ev {
                if u == d.id {
                    return Err(ClientError::Unavailable(u));
                }
            }
        }
        Ok(())
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl DocSync {
    pub fn new(id: DocumentId, doc: AutoCommit) -> Self {
        Self {
            id,
            doc,
            state: sync::State::new(),
        }
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// We hold everything the server last said it has (and it has something). Unlike
    /// "their heads equal ours" this is reached even while others keep editing.
    pub fn has_their_heads(&mut self) -> bool {
        match self.state.their_heads.clone() {
            Some(heads) if !heads.is_empty() => self.doc.get_missing_deps(&heads).is_empty(),
            _ => false,
        }
    }

    /// The server has told us it holds `hashes` (or changes that depend on them). The
    /// server only says so once they are durable in its log.
    pub fn server_has(&mut self, hashes: &[ChangeHash]) -> bool {
        let shared = self.state.shared_heads.clone();
        if shared.is_empty() {
            return hashes.is_empty();
        }
        let unshared: std::collections::HashSet<ChangeHash> = self
            .doc
            .get_changes(&shared)
            .iter()
            .map(|c| c.hash())
            .collect();
        hashes.iter().all(|h| !unshared.contains(h))
    }
}
