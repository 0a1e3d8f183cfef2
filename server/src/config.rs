//! Server settings. Every flag of the binary maps onto one field here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::DurabilityGate;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// The data directory: sled's files live here.
    pub data: PathBuf,
    /// WebSocket ping period; a peer that misses one pong is dropped at the next.
    pub ping_interval: Duration,
    /// How long an HTTP client may take to send a request's headers, and to stay idle between
    /// requests on a kept-alive connection; a request body gets three times as long (an
    /// import's, sixty times). See `listener.rs`.
    pub http_timeout: Duration,
    /// Most TCP connections that are not (yet) WebSockets; more are closed at once.
    pub max_http_connections: usize,
    /// How long after a participant's last connection into a session closes "left" is logged,
    /// unless they come back first (zero: at once).
    pub presence_grace: Duration,
    /// An open document with no subscriber is evicted from memory after this long.
    pub idle_evict: Duration,
    /// Most simultaneous WebSocket connections; more get HTTP 503.
    pub max_connections: usize,
    /// Largest WebSocket message and frame accepted (a first sync carries a whole document).
    pub max_message_bytes: usize,
    /// Bytes queued towards one peer before it is closed as too slow.
    pub max_outbound_bytes: usize,
    /// Most documents loaded from disk at the same time.
    pub max_concurrent_loads: usize,
    /// Most simultaneous connections with one token (open mode: not limited).
    pub max_connections_per_token: usize,
    /// Most documents one connection may open.
    pub max_docs_per_connection: usize,
    /// Changes per second one token (one participant) may make, sustained; bursts of ten
    /// seconds' worth pass. Open mode has no tokens and no such bound.
    pub max_changes_per_sec_per_token: u32,
    /// Largest size of one document (see `DocEngine::stored_bytes`); changes that would grow
    /// it past this are refused.
    pub max_document_bytes: u64,
    /// Operations one connection's changes may bring in one message (see
    /// `EngineConfig::max_ops_per_message`).
    pub max_ops_per_message: u64,
    /// Operations one document may hold (its highest operation counter).
    pub max_document_ops: u64,
    /// Largest ephemeral payload (presence, cursors) a connection may send; a larger one
    /// closes it.
    pub max_ephemeral_bytes: usize,
    /// Ephemeral bytes per second one token may send, sustained (bursts of four seconds'
    /// worth pass); more are dropped.
    pub max_ephemeral_bytes_per_sec_per_token: u32,
    /// Long-lived HTTP responses (replays) one token may hold open at once.
    pub max_streams_per_token: usize,
    /// Long-lived HTTP responses open at once, all tokens together. They are counted apart
    /// from `max_http_connections`, whose slots requests and WebSocket handshakes need.
    pub max_streams: usize,
    /// Web origins (`https://host[:port]`) whose pages may open a WebSocket, besides the
    /// server's own. Empty: any. Requests without `Origin` (not from a browser) always may.
    pub allowed_origins: Vec<String>,
    /// The address participants reach the server by (`https://toron.example.go.kr`), checked
    /// at start: every link the server makes — invites and their QR codes, report links —
    /// uses it. Unset: the address a request came by (a page opened on the server itself
    /// then makes links only that computer can open; the invite sheet says so).
    pub public_url: Option<String>,
    /// Snapshot a document after this many new changes (0 = never).
    pub snapshot_every: u64,
    /// Tests only: hold appends back before they are declared durable.
    pub durability_gate: Option<DurabilityGate>,
    /// `--open`: no tokens, anybody may create and edit anything (local experiments only).
    pub open: bool,
    /// The bootstrap organizer token to use instead of generating one (`TORON_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Where times come from (tests drive a manual clock).
    pub clock: Clock,
    /// `--cluster`: this server is a node of a cluster whose log is a JetStream stream.
    pub cluster: Option<ClusterConfig>,
    /// How PDF and HWPX reports are typeset (the binary: in a child process with limits).
    pub typeset: TypesetLimits,
}

/// How office files (PDF, HWPX) are typeset: in a child process with these limits.
#[derive(Debug, Clone, Default)]
pub struct TypesetLimits {
    /// The server's own binary, run as `render-report` for each file; `None`: typeset in this
    /// process (a library embedding the server; tests that do not exercise the limits).
    pub program: Option<PathBuf>,
    /// The child's data segment, in bytes.
    pub max_bytes: u64,
    /// How long one file may take.
    pub timeout: Duration,
}

/// A cluster node's settings (`--cluster`, `--node`, `--cluster-replicas`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS servers (`nats://host:port`), any of which will do.
    pub urls: Vec<String>,
    /// This node's name, unique in the cluster: it marks what the node publishes.
    pub node: String,
    /// The JetStream stream that is the cluster's log.
    pub stream: String,
    /// Copies of the stream the NATS servers keep (3: one server may fail).
    pub replicas: usize,
    /// The secret every node holds: what a node publishes is signed with it, and a node
    /// applies only what verifies (`cluster::auth`).
    pub key: crate::cluster::auth::ClusterKey,
}

impl Config {
    pub fn new(listen: SocketAddr, data: PathBuf) -> Self {
        Self {
            listen,
            data,
            ping_interval: Duration::from_secs(20),
            http_timeout: Duration::from_secs(10),
            max_http_connections: 1_024,
            presence_grace: Duration::from_secs(10),
            idle_evict: Duration::from_secs(60),
            max_connections: 10_000,
            max_message_bytes: 4 * 1024 * 1024,
            max_outbound_bytes: 64 * 1024 * 1024,
            max_concurrent_loads: 8,
            max_connections_per_token: 32,
            max_docs_per_connection: 1_000,
            max_changes_per_sec_per_token: 200,
            max_document_bytes: 64 * 1024 * 1024,
            max_ops_per_message: 100_000,
            max_document_ops: 1_000_000,
            max_ephemeral_bytes: toron_protocol::connection::MAX_EPHEMERAL_BYTES,
            max_ephemeral_bytes_per_sec_per_token: 32 * 1024,
            max_streams_per_token: 4,
            max_streams: 64,
            allowed_origins: Vec::new(),
            public_url: None,
            snapshot_every: 1000,
            durability_gate: None,
            open: false,
            admin_token: None,
            clock: Clock::system(),
            cluster: None,
            typeset: TypesetLimits {
                program: None,
                max_bytes: 1 << 30,
                timeout: Duration::from_secs(120),
            },
        }
    }
}
