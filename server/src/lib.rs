//! # toron-server — the IO shell around `toron-protocol`
//!
//! - [`http`]: axum router — WebSocket upgrade on `/` and `/sync`, `GET /healthz`.
//! - [`connection`]: one task per socket: handshake, decoding, routing, pings.
//! - [`hub`]: who is connected, which documents are open; routes messages to actors.
//! - [`doc_actor`]: one task per open document driving a `DocEngine`: batch, append, then send.
//! - [`store`]: the sled event log (group commit + fdatasync), snapshots, loading.
//! - [`registry`]: participants, tokens, roles, sessions, cases, registered documents, actor
//!   bindings — the inputs of the permission policy.
//! - [`backup`] and `control`: a consistent copy of the log while serving (asked for through
//!   a Unix socket in the data directory), and a restore from it.
//!
//! [`start`] runs a server and returns a handle; the binary and the tests both use it.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// The allocator of every process that runs a server (the binary, the tests): jemalloc.
/// glibc's malloc keeps what is freed in the arena of the thread that took it, and a server's
/// memory is freed on other threads than it was taken on; under the memory test's attacks the
/// server's resident memory peaked at 540–640 MiB with glibc (SECURITY.md, "The memory test").
/// Not under `cargo fuzz` (`cfg(fuzzing)`), whose sanitizer must see every allocation.
#[cfg(all(not(target_env = "msvc"), not(fuzzing)))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod api;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod http;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod registry;
pub mod store;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::net::hub::Hub;
use crate::store::Store;

/// A running server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    /// The control socket's task (backups), if it could bind.
    control: Option<JoinHandle<()>>,
    /// On a cluster node: its membership (the applier reading the stream).
    cluster: Option<Arc<cluster::Node>>,
}

/// Opens the store, binds the listener and starts serving.
/// How long a graceful shutdown may take before the log's final commit (which follows).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = Store::open(&config.data, config.durability_gate.clone())?;
    // A cluster node first catches up with the cluster's log, so that its registry is the
    // cluster's before it bootstraps or serves anything.
    let node = match &config.cluster {
        Some(c) => Some(Arc::new(cluster::Node::join(c, store.clone()).await?)),
        None => None,
    };
    let registry = registry::Registry::load(store.clone(), config.clock.clone())?;
    if config.open {
        tracing::warn!("OPEN MODE: no tokens are checked; anybody who can reach this port may read, create and change every document");
    } else if let Some(place) = registry
        .bootstrap(&config.data, config.admin_token.clone())
        .await?
    {
        tracing::info!("first start: created the organizer `admin`; its token is {place}");
    }
    // Earlier versions had one importer for every series, with a token that never expired and
    // reached every series it had imported; importers are per series now, their tokens short.
    if registry
        .revoke_token("server", toron_domain::import_plan::IMPORTER)
        .await?
    {
        tracing::info!(
            "revoked the token of `{}`, the shared importer of earlier versions",
            toron_domain::import_plan::IMPORTER
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let config = Arc::new(config);
    let hub = Hub::new(config.clone(), store, registry.clone());
    if let Some(node) = &node {
        node.attach(cluster::applier::Hooks {
            registry: registry.clone(),
            hub: hub.clone(),
        });
        // What other nodes changed while this one was starting.
        registry.reload()?;
    }
    // A data directory of an older build (or one whose sessions were made before their
    // documents were) gets every document its sessions need before anyone connects.
    hub.provision("server").await?;
    // A crash (a SIGKILL, a power cut) logged nobody's departure: whoever the presence record
    // still has in a session left when the log last heard anything.
    // (A cluster's log holds the other nodes' presence too, whose people may be there still:
    // each node closes only what it knows it lost, so this is left to a single server.)
    if node.is_none() {
        hub.close_open_presence().await;
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    #[cfg(unix)]
    let control = ops::control::serve(&config.data, hub.store.clone(), shutdown_rx.clone());
    #[cfg(not(unix))]
    let control = None;
    let state = api::state::AppState {
        hub: hub.clone(),
        shutdown: shutdown_rx.clone(),
        connection_permits: Arc::new(Semaphore::new(config.max_connections)),
        token_conns: Default::default(),
        streams: net::listener::Streams::new(config.max_streams_per_token, config.max_streams),
        typesetter: Arc::new(api::typeset::Typesetter::new(config.typeset.clone())),
    };
    let app = http::router(state);
    let bounds = net::listener::HttpBounds {
        header_timeout: config.http_timeout,
        max_sockets: config.max_http_connections,
        metrics: hub.metrics.clone(),
    };
    let task = tokio::spawn(async move {
        net::listener::serve(listener, app, bounds, shutdown_rx).await;
        Ok(())
    });
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        hub,
        shutdown,
        task,
        control,
        cluster: node,
    })
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://addr` — what clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.hub.store
    }

    pub fn registry(&self) -> &Arc<registry::Registry> {
        &self.hub.registry
    }

    /// Graceful stop: no new connections, every socket closed, the log's queue committed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // Everything below shares one budget, so that SIGTERM ends the process within 5 s
        // even when a step stalls: sockets close (1001), the HTTP task ends, the document
        // actors hand their last batches to the log, and the log commits and flushes.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        let _ = self.shutdown.send(true);
        while self
            .hub
            .stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tokio::time::timeout_at(deadline, self.task).await;
        if let Some(control) = self.control {
            let _ = tokio::time::timeout_at(deadline, control).await;
        }
        // Departures still in their grace period are logged now, dated when they happened.
        let _ = tokio::time::timeout_at(deadline, self.hub.flush_presence()).await;
        self.hub.close_documents();
        if let Some(node) = &self.cluster {
            // The actors' last appends wait for this node's applier: stop it after them.
            while self.hub.documents_running() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            node.stop();
        }
        // Wait (bounded) until every task that shares the hub, and every document actor (they
        // share the documents' context, not the hub), has ended, so that the store — and
        // sled's lock on the data directory — is released when we return.
        while (Arc::strong_count(&self.hub) > 1 || self.hub.documents_running())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let store = self.hub.store.clone();
        drop(self.hub);
        tokio::task::spawn_blocking(move || {
            store.close();
            drop(store);
        })
        .await?;
        Ok(())
    }
}
