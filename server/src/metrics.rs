//! What `/metrics` shows, in the Prometheus text format (OpenMetrics).
//!
//! One [`Metrics`] per server (tests run several servers in one process, each must count its
//! own). Counters and histograms are updated where things happen; gauges that already live
//! elsewhere — connections, open documents, the log's size — are read when scraped, so they
//! cannot drift from the truth.

use std::sync::atomic::{AtomicU64, AtomicUsize};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// What went wrong, for `toron_errors_total{kind=…}`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ErrorKind {
    /// A frame that is not the protocol (bad CBOR, a text frame, a message out of order).
    bad_frame,
    /// Changes refused by the permission or content checks.
    refused_change,
    /// A peer that did not read its messages and was disconnected.
    slow_peer,
    /// A failed write to the event log.
    storage,
    /// A connection turned away because the server was at its limit.
    over_capacity,
    /// A request without a valid token.
    unauthorized,
    /// A bound of the server was hit (documents per connection, connections per token, rate).
    limit,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: ErrorKind,
}

/// A refusal's kind, for `toron_changes_refused_by_kind_total{kind=…}` (the words of
/// `toron_protocol::RefusalKind::as_str`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    kind: String,
}

/// Histogram buckets from 0.1 ms to about 3.3 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 16)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    open_documents: Gauge,
    log_records: Gauge,
    log_bytes: Gauge,
    pub changes_accepted: Counter,
    pub changes_rejected: Counter,
    /// From a document actor taking a batch to its sync messages being queued, durability
    /// included.
    pub fanout_seconds: Histogram,
    /// One group commit of the log writer: write, flush and fdatasync.
    group_commit_seconds: Histogram,
    /// Records per group commit.
    group_commit_changes: Histogram,
    errors: Family<ErrorLabels, Counter>,
    /// Refused changes by the kind of refusal.
    refusals: Family<RefusalLabels, Counter>,
    /// Documents being read from disk now (each holds one of `--max-concurrent-loads`).
    document_loads: Gauge,
    /// Documents waiting for one of those permits.
    document_loads_waiting: Gauge,
    /// The most documents ever read from disk at once since the start.
    document_loads_peak: Gauge,
    /// Server-sent replays streaming now (each ends with its client, its access or its
    /// length bound).
    replays: Gauge,
    /// Ephemeral messages (or copies of one for a subscriber) dropped: over their sender's
    /// rate, a full inbox lane, or a subscriber behind.
    pub ephemeral_dropped: Counter,
    /// On a cluster node: the replica's position, the stream's end, and whether the stream
    /// answered (has a quorum).
    cluster_replica_position: Gauge,
    cluster_stream_position: Gauge,
    cluster_lag: Gauge,
    cluster_quorum: Gauge,
}

/// Counts one long-lived task (a replay) while it lives; owned, so the task can keep it.
#[derive(Debug)]
pub struct Live(Gauge);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts one document load (or one wait for a permit) while it lives.
#[derive(Debug)]
pub struct InProgress<'a>(&'a Gauge);

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// `group_commit_seconds` and `group_commit_changes` are the store's own histograms (the
    /// log writer observes them), registered here.
    pub fn new(group_commit_seconds: Histogram, group_commit_changes: Histogram) -> Self {
        let mut registry = Registry::with_prefix("toron");
        let m = Self {
            connections: Gauge::default(),
            open_documents: Gauge::default(),
            log_records: Gauge::default(),
            log_bytes: Gauge::default(),
            changes_accepted: Counter::default(),
            changes_rejected: Counter::default(),
            fanout_seconds: Histogram::new(latency_buckets()),
            group_commit_seconds,
            group_commit_changes,
            errors: Family::default(),
            refusals: Family::default(),
            document_loads: Gauge::default(),
            document_loads_waiting: Gauge::default(),
            document_loads_peak: Gauge::default(),
            replays: Gauge::default(),
            ephemeral_dropped: Counter::default(),
            cluster_replica_position: Gauge::default(),
            cluster_stream_position: Gauge::default(),
            cluster_lag: Gauge::default(),
            cluster_quorum: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "open_documents",
            "Documents loaded in memory",
            m.open_documents.clone(),
        );
        registry.register(
            "log_records",
            "Records in the event log",
            m.log_records.clone(),
        );
        registry.register(
            "log_bytes",
            "Size of the data directory's store on disk, in bytes",
            m.log_bytes.clone(),
        );
        registry.register(
            "changes_accepted",
            "Changes accepted and made durable",
            m.changes_accepted.clone(),
        );
        registry.register(
            "changes_rejected",
            "Changes refused by the permission or content checks",
            m.changes_rejected.clone(),
        );
        registry.register(
            "changes_refused_by_kind",
            "Changes refused, by the kind of refusal (read_only, value, reference, size, actor, follows, rate)",
            m.refusals.clone(),
        );
        registry.register(
            "fanout_seconds",
            "From a batch reaching its document to its sync messages being sent, durability included",
            m.fanout_seconds.clone(),
        );
        registry.register(
            "group_commit_seconds",
            "Duration of one group commit of the event log (write, flush, fdatasync)",
            m.group_commit_seconds.clone(),
        );
        registry.register(
            "group_commit_records",
            "Records (changes and other events) written by one group commit",
            m.group_commit_changes.clone(),
        );
        registry.register("errors", "Errors by kind", m.errors.clone());
        m.register_loads(&mut registry);
        registry.register(
            "replays",
            "Session replays (server-sent events) streaming now",
            m.replays.clone(),
        );
        m.register_cluster(&mut registry);
        registry.register(
            "ephemeral_dropped",
            "Ephemeral messages (or their copies for a subscriber) dropped: over the sender's rate, the document's inbox lane full, or the subscriber behind",
            m.ephemeral_dropped.clone(),
        );
        Self { registry, ..m }
    }

    fn register_loads(&self, registry: &mut Registry) {
        registry.register(
            "document_loads",
            "Documents being read from disk now",
            self.document_loads.clone(),
        );
        registry.register(
            "document_loads_waiting",
            "Documents waiting to be read from disk (the --max-concurrent-loads bound)",
            self.document_loads_waiting.clone(),
        );
        registry.register(
            "document_loads_peak",
            "The most documents read from disk at once since the start",
            self.document_loads_peak.clone(),
        );
    }

    fn register_cluster(&self, registry: &mut Registry) {
        registry.register(
            "cluster_replica_position",
            "On a cluster node: the position in the cluster's log of the last entry this node applied (0 on a single node)",
            self.cluster_replica_position.clone(),
        );
        registry.register(
            "cluster_stream_position",
            "On a cluster node: the cluster's log's last position, as the stream last said",
            self.cluster_stream_position.clone(),
        );
        registry.register(
            "cluster_lag_entries",
            "On a cluster node: entries of the cluster's log this node has not applied yet",
            self.cluster_lag.clone(),
        );
        registry.register(
            "cluster_quorum",
            "On a cluster node: 1 when the stream answered at the last check (it has a quorum), else 0",
            self.cluster_quorum.clone(),
        );
    }

    /// A replay streams until the returned guard drops.
    pub fn replay_started(&self) -> Live {
        self.replays.inc();
        Live(self.replays.clone())
    }

    /// A document waits for a load permit until the returned guard drops.
    pub fn load_waiting(&self) -> InProgress<'_> {
        self.document_loads_waiting.inc();
        InProgress(&self.document_loads_waiting)
    }

    /// A document is read from disk until the returned guard drops.
    pub fn loading(&self) -> InProgress<'_> {
        let now = self.document_loads.inc() + 1;
        self.document_loads_peak
            .inner()
            .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
        InProgress(&self.document_loads)
    }

    /// `changes` changes refused, for a reason of `kind`.
    pub fn refused(&self, kind: toron_protocol::RefusalKind, changes: u64) {
        self.changes_rejected.inc_by(changes);
        self.refusals
            .get_or_create(&RefusalLabels {
                kind: kind.as_str().to_string(),
            })
            .inc_by(changes);
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }

    /// The text a scrape gets; `now` carries the gauges read at this moment.
    pub fn render(&self, now: Snapshot) -> String {
        self.connections.set(now.connections);
        self.open_documents.set(now.open_documents);
        self.log_records.set(now.log_records);
        self.log_bytes.set(now.log_bytes);
        if let Some((replica, stream, quorum)) = now.cluster {
            self.cluster_replica_position.set(replica as i64);
            self.cluster_stream_position.set(stream as i64);
            self.cluster_lag.set(stream.saturating_sub(replica) as i64);
            self.cluster_quorum.set(i64::from(quorum));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub connections: i64,
    pub open_documents: i64,
    pub log_records: i64,
    pub log_bytes: i64,
    /// On a cluster node: (replica position, stream position, quorum).
    pub cluster: Option<(u64, u64, bool)>,
}

/// Counters for `/healthz` and the benchmark report.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicUsize,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
}
