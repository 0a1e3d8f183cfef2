//! A cluster node: the log is a NATS JetStream stream, this node's sled a replica of it.
//!
//! **Every node appends** (see ARCHITECTURE.md, "The cluster"): a node's writes — the
//! changes its document actors accept, rejections, admin and presence records — are
//! published to the stream ([`publisher`]); the stream's order is the log's order. Each node
//! reads the whole stream in that order and writes it into its sled ([`applier`]): its own
//! entries (which its writers are waiting for) and the other nodes' (whose changes reach the
//! documents open here, whose registry entries change the registry here). So a write is
//! shown to nobody before a quorum of the stream holds it, and every node's log holds the
//! same records under the same numbers. Automerge changes commute, so two nodes appending
//! to one document need no coordination: the heads each record stores are those of the
//! log's prefix, computed as the record is applied (`store::replica`).

pub mod applier;
pub mod auth;
pub mod ephemeral;
pub mod presence;
pub mod publisher;
pub mod restore;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

use crate::config::ClusterConfig;
use crate::store::Store;

/// The stream's subjects: `toron.log.doc.<document>` for changes, `toron.log.event` for the
/// rest.
pub const SUBJECTS: &str = "toron.log.>";
/// Header naming the node that published an entry.
pub const NODE_HEADER: &str = "Toron-Node";
/// How long joining waits for the stream (a cluster electing its JetStream leader) and for
/// this node to catch up with it.
const JOIN_WITHIN: Duration = Duration::from_secs(120);
/// How often a node asks the stream where it ends.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long a publish waits for the quorum's acknowledgement before it is an error.
const ACK_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the NATS servers {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("the JetStream stream `{stream}` is not available: {reason}")]
    Stream { stream: String, reason: String },
    #[error("this node did not catch up with the stream within {0:?} (at {1} of {2})")]
    CatchUp(Duration, u64, u64),
}

/// A node joined to the cluster: its connection, the stream and the applier's handle.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub stream_name: String,
    client: async_nats::Client,
    key: auth::ClusterKey,
    applier: applier::Handle,
}

impl Node {
    /// Connects, creates the stream if nobody has yet, makes `store` a replica whose writes
    /// go to the stream, and starts applying the stream; returns once this node holds every
    /// entry the stream held when it joined.
    pub async fn join(config: &ClusterConfig, store: Arc<Store>) -> Result<Self, ClusterError> {
        let (client, js) = connect(config).await?;
        let mut stream = ensure_stream(&js, config).await?;
        let target = stream
            .info()
            .await
            .map(|i| i.state.last_sequence)
            .map_err(|e| ClusterError::Stream {
                stream: config.stream.clone(),
                reason: e.to_string(),
            })?;
        let max_payload = client.server_info().max_payload;
        store.set_replicator(Arc::new(publisher::Publisher::new(
            js.clone(),
            config.node.clone(),
            max_payload,
            config.key.clone(),
        )));
        let applier = applier::spawn(
            stream.clone(),
            store.clone(),
            config.node.clone(),
            config.key.clone(),
        );
        tokio::spawn(watch_stream(stream, store.clone(), applier.stopped()));
        let started = Instant::now();
        while store.replica_position() < target {
            if started.elapsed() > JOIN_WITHIN {
                return Err(ClusterError::CatchUp(
                    JOIN_WITHIN,
                    store.replica_position(),
                    target,
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(node = %config.node, stream = %config.stream, position = target, "joined the cluster");
        Ok(Self {
            name: config.node.clone(),
            stream_name: config.stream.clone(),
            client,
            key: config.key.clone(),
            applier,
        })
    }

    /// From now on, entries of other nodes also reach this node's registry and open
    /// documents (before, the registry was loaded from the log after catching up).
    pub fn attach(&self, hooks: applier::Hooks) {
        let bus = ephemeral::start(
            self.client.clone(),
            self.name.clone(),
            self.key.clone(),
            hooks.hub.clone(),
            self.applier.stopped(),
        );
        hooks.hub.set_ephemeral_bus(Arc::new(bus));
        let presence = presence::start(
            self.client.clone(),
            self.name.clone(),
            self.key.clone(),
            hooks.hub.clone(),
            self.applier.stopped(),
        );
        hooks.hub.set_presence_bus(Arc::new(presence));
        self.applier.attach(hooks);
    }

    /// Stops applying (the server is stopping).
    pub fn stop(&self) {
        self.applier.stop();
    }

    /// A publisher into the cluster's stream, which must be empty (a restore seeds a new
    /// cluster, never one that holds a log already).
    pub async fn publisher_for(config: &ClusterConfig) -> anyhow::Result<publisher::Publisher> {
        let (client, js) = connect(config).await?;
        let stream = ensure_stream(&js, config).await?;
        let last = stream.get_info().await?.state.last_sequence;
        anyhow::ensure!(
            last == 0,
            "the cluster's log already holds {last} entries: restore only into a new cluster (nothing was written)"
        );
        let max_payload = client.server_info().max_payload;
        Ok(publisher::Publisher::new(
            js,
            config.node.clone(),
            max_payload,
            config.key.clone(),
        ))
    }
}

/// The NATS servers' addresses without credentials, and connect options with the user and
/// password the addresses carried (`nats://USER:PASSWORD@host:4222`; the client does not read
/// them from an address itself). The addresses are what logs may show.
pub fn nats_options(urls: &[String]) -> (async_nats::ConnectOptions, Vec<String>) {
    let mut options = async_nats::ConnectOptions::new();
    let mut plain = Vec::new();
    let mut credentials = None;
    for u in urls {
        match url::Url::parse(u) {
            Ok(mut parsed) if !parsed.username().is_empty() => {
                let user = percent_decoded(parsed.username());
                let password = percent_decoded(parsed.password().unwrap_or_default());
                credentials.get_or_insert((user, password));
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                plain.push(parsed.to_string().trim_end_matches('/').to_string());
            }
            _ => plain.push(u.clone()),
        }
    }
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user, password);
    }
    (options, plain)
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Connects to any of the NATS servers (waiting for one while none answers yet), once it is
/// clear that they let nobody in without credentials.
async fn connect(
    config: &ClusterConfig,
) -> Result<(async_nats::Client, jetstream::Context), ClusterError> {
    let (options, urls) = nats_options(&config.urls);
    let refused = |reason: String| ClusterError::Connect {
        urls: urls.join(","),
        reason,
    };
    let client = options
        .name(format!("toron-{}", config.node))
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(urls.clone())
        .await
        .map_err(|e| refused(e.to_string()))?;
    // NATS that lets anyone in lets anyone read the whole log, private notes included (the
    // key keeps them from writing, not from reading): a node does not join it.
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(urls.clone())
        .await;
    if let Ok(c) = anonymous {
        drop(c);
        return Err(refused(
            "the NATS servers let clients in without credentials: anyone who reaches them could read the whole log. Give them users (authorization { users: [...] }, as scripts/cluster-up.sh does) and the node its user in the address (nats://USER:PASSWORD@host:4222)".into(),
        ));
    }
    let mut js = jetstream::new(client.clone());
    js.set_timeout(ACK_WITHIN);
    Ok((client, js))
}

/// Hands each message published on `subject` (plain NATS, not the stream) to `each`, until
/// `stopped`.
async fn each_message(
    client: async_nats::Client,
    subject: &'static str,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    mut each: impl FnMut(async_nats::Message),
) {
    let mut sub = match client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, subject, "cannot hear the other nodes");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = futures_util::StreamExt::next(&mut sub) => m,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Some(msg) = msg else { return };
        each(msg);
    }
}

/// Every second, asks the stream where it ends (for `/healthz` and `/metrics`: the replica's
/// lag, and whether the stream has a quorum — without one it does not answer).
async fn watch_stream(
    stream: stream::Stream,
    store: Arc<Store>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let answer = tokio::time::timeout(WATCH_EVERY * 2, stream.get_info()).await;
        match answer {
            Ok(Ok(info)) => store.set_stream_status(Some(info.state.last_sequence), quorum(&info)),
            _ => store.set_stream_status(None, false),
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// Whether the stream has a leader and, with it, a majority of its replicas current and
/// seen lately. A leader cut off from the others keeps answering for a while, so an answer
/// alone does not say it.
fn quorum(info: &stream::Info) -> bool {
    let Some(cluster) = &info.cluster else {
        return true;
    };
    if cluster.leader.is_none() {
        return false;
    }
    let live = cluster
        .replicas
        .iter()
        .filter(|p| p.current && !p.offline && p.active < WATCH_EVERY * 3)
        .count();
    let replicas = info.config.num_replicas.max(1);
    1 + live > replicas / 2
}

/// Gets the stream, creating it on first use; retries while the cluster elects its leader.
async fn ensure_stream(
    js: &jetstream::Context,
    config: &ClusterConfig,
) -> Result<stream::Stream, ClusterError> {
    let started = Instant::now();
    loop {
        let wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![SUBJECTS.into()],
            num_replicas: config.replicas,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        match js.get_or_create_stream(wanted).await {
            Ok(s) => return Ok(s),
            Err(e) if started.elapsed() < JOIN_WITHIN => {
                tracing::info!(error = %e, "waiting for the cluster's stream");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(ClusterError::Stream {
                    stream: config.stream.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }
}
