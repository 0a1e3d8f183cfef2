//! The command line of `toron-server` (the binary is a one-line wrapper around [`main`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Toron's sync server: automerge-repo over WebSocket, with every change in a durable sled log.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "TORON_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Data directory (created if missing).
    #[arg(
        long,
        env = "TORON_DATA",
        default_value = "./toron-data",
        global = true
    )]
    data: PathBuf,
    /// Seconds between WebSocket pings.
    #[arg(long, env = "TORON_PING_SECS", default_value_t = 20)]
    ping_secs: u64,
    /// Seconds an HTTP client may take to send a request's headers, or stay idle between
    /// requests; a request body gets three times as long, an import's sixty times.
    #[arg(long, env = "TORON_HTTP_TIMEOUT_SECS", default_value_t = 10)]
    http_timeout_secs: u64,
    /// Most TCP connections open at once that are not WebSockets (plain HTTP, or not yet
    /// upgraded); more are closed at once.
    #[arg(long, env = "TORON_MAX_HTTP_CONNECTIONS", default_value_t = 1_024)]
    max_http_connections: usize,
    /// Seconds after a participant's last connection into a session closes before "left" is
    /// logged; back sooner, they never left (a phone on venue Wi-Fi; a reconnect loop).
    #[arg(long, env = "TORON_PRESENCE_GRACE_SECS", default_value_t = 10)]
    presence_grace_secs: u64,
    /// Seconds an unused document stays in memory.
    #[arg(long, env = "TORON_IDLE_EVICT_SECS", default_value_t = 60)]
    idle_evict_secs: u64,
    /// Most simultaneous connections.
    #[arg(long, env = "TORON_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Most simultaneous connections with one token.
    #[arg(long, env = "TORON_MAX_CONNECTIONS_PER_TOKEN", default_value_t = 32)]
    max_connections_per_token: usize,
    /// Most documents one connection may open.
    #[arg(long, env = "TORON_MAX_DOCS_PER_CONNECTION", default_value_t = 1_000)]
    max_docs_per_connection: usize,
    /// Changes per second one token may make, sustained (bursts of ten seconds' worth pass).
    #[arg(
        long,
        env = "TORON_MAX_CHANGES_PER_SEC_PER_TOKEN",
        default_value_t = 200
    )]
    max_changes_per_sec_per_token: u32,
    /// Largest document, in bytes (its newest snapshot and the changes after it).
    #[arg(long, env = "TORON_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_document_bytes: u64,
    /// Most Automerge operations (a character typed is one) the changes of one message may
    /// hold: each costs the server memory while it is applied (see SECURITY.md).
    #[arg(long, env = "TORON_MAX_OPS_PER_MESSAGE", default_value_t = 100_000)]
    max_ops_per_message: u64,
    /// Most Automerge operations one document may hold (its highest operation counter).
    #[arg(long, env = "TORON_MAX_DOCUMENT_OPS", default_value_t = 1_000_000)]
    max_document_ops: u64,
    /// Largest WebSocket message, in bytes (a first sync may carry a whole document). Each
    /// connection may hold one partial message of this size: see SECURITY.md.
    #[arg(long, env = "TORON_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Bytes queued towards one peer before it is disconnected as too slow.
    #[arg(long, env = "TORON_MAX_OUTBOUND_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_outbound_bytes: usize,
    /// Most documents loaded from disk at the same time.
    #[arg(long, env = "TORON_MAX_CONCURRENT_LOADS", default_value_t = 8)]
    max_concurrent_loads: usize,
    /// Largest ephemeral message payload (presence, cursors), in bytes; a larger one closes
    /// its connection.
    #[arg(long, env = "TORON_MAX_EPHEMERAL_BYTES", default_value_t = 16 * 1024)]
    max_ephemeral_bytes: usize,
    /// Ephemeral bytes per second one token may send (bursts of four seconds' worth pass);
    /// more are dropped.
    #[arg(
        long,
        env = "TORON_MAX_EPHEMERAL_BYTES_PER_SEC_PER_TOKEN",
        default_value_t = 32 * 1024
    )]
    max_ephemeral_bytes_per_sec_per_token: u32,
    /// Replays (long-lived HTTP responses) one token may hold open at once.
    #[arg(long, env = "TORON_MAX_STREAMS_PER_TOKEN", default_value_t = 4)]
    max_streams_per_token: usize,
    /// Replays open at once, all tokens together (counted apart from
    /// --max-http-connections, which requests and WebSocket handshakes need).
    #[arg(long, env = "TORON_MAX_STREAMS", default_value_t = 64)]
    max_streams: usize,
    /// Memory a report's typesetting (PDF, HWPX) may take, in MiB: it runs in a child process
    /// with this limit; a report that needs more is answered 503 saying so.
    #[arg(long, env = "TORON_MAX_RENDER_MIB", default_value_t = 1024)]
    max_render_mib: u64,
    /// Seconds a report's typesetting may take.
    #[arg(long, env = "TORON_RENDER_TIMEOUT_SECS", default_value_t = 120)]
    render_timeout_secs: u64,
    /// Web origins whose pages may connect, comma-separated (`https://toron.example.kr`);
    /// the server's own pages always may, and so may clients that send no `Origin`.
    /// Unset: any origin.
    #[arg(long, env = "TORON_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// The address participants open (`https://toron.example.go.kr`): every link the server
    /// makes uses it — invites and their QR codes, report links. Unset: the address each
    /// request came by.
    #[arg(long, env = "TORON_PUBLIC_URL")]
    public_url: Option<String>,
    /// Local experiments only: no tokens, anybody may create and edit anything.
    #[arg(long, env = "TORON_OPEN")]
    open: bool,
    /// The first start's organizer token (instead of generating one into <data>/admin-token).
    #[arg(long, env = "TORON_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Join a cluster: the NATS servers (comma-separated `nats://host:port`) whose JetStream
    /// stream is the cluster's log; this node's sled becomes a replica of it. Unset: one node
    /// on its own sled.
    #[arg(long, env = "TORON_CLUSTER", value_delimiter = ',')]
    cluster: Vec<String>,
    /// This node's name in the cluster (unique; it marks what the node writes).
    #[arg(long, env = "TORON_NODE", requires = "cluster")]
    node: Option<String>,
    /// The cluster's key (at least 32 characters; `openssl rand -hex 32`), the same on every
    /// node: what a node publishes is signed with it, and only what verifies is applied.
    #[arg(long, env = "TORON_CLUSTER_KEY", hide_env_values = true)]
    cluster_key: Option<String>,
    /// Copies of the cluster's stream the NATS servers keep (3: one server may fail).
    #[arg(long, env = "TORON_CLUSTER_REPLICAS", default_value_t = 3)]
    cluster_replicas: usize,
    /// The JetStream stream that is the cluster's log.
    #[arg(long, env = "TORON_CLUSTER_STREAM", default_value = "TORON")]
    cluster_stream: String,
    /// Log lines as text (for people) or as one JSON object per line (for log collectors).
    /// Lines about a connection carry its id (`conn`) either way.
    #[arg(long, env = "TORON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Offline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Work on a data directory instead of serving it.
#[derive(Debug, clap::Subcommand)]
enum Offline {
    /// Replay the whole log and check every record, sequence, document and snapshot
    /// (the server must be stopped).
    Verify,
    /// Rebuild every snapshot and the timeline from the log (the server must be stopped).
    Rebuild,
    /// Write a consistent copy of the log to OUT, while the server runs (through its control
    /// socket in the data directory) or not.
    Backup {
        /// The backup file to create (it must not exist yet).
        out: PathBuf,
    },
    /// Make the data directory (new or empty) from a backup, rebuild its caches and verify it.
    Restore {
        /// A file written by `backup`.
        backup: PathBuf,
    },
    /// (The server's own typesetter: a report's inputs on stdin, the file on stdout.)
    #[command(hide = true)]
    RenderReport {
        #[arg(long, default_value_t = 0)]
        max_bytes: u64,
    },
}

/// Parses the flags, runs the server until SIGTERM or Ctrl-C, then stops it gracefully.
/// Runs the command line; its exit code (an error is printed first).
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(Offline::RenderReport { max_bytes }) = &args.command {
        return crate::api::typeset::child_main(*max_bytes);
    }
    match tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(serve_from_args(args)))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toron-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The commands that work on a stopped server's data directory (or ask a running one for a
/// backup).
fn run_offline(command: Offline, data: &std::path::Path) -> anyhow::Result<()> {
    match command {
        Offline::Verify => {
            let store = crate::ops::verify::open(data)?;
            let report = crate::ops::verify::verify(&store)?;
            println!(
                "{} records, {} changes, {} documents, timeline checked up to record {}",
                report.records, report.changes, report.documents, report.timeline_checked_upto
            );
            for p in &report.problems {
                println!("problem: {p}");
            }
            if !report.ok() {
                anyhow::bail!("verify found {} problem(s)", report.problems.len());
            }
            println!("ok");
            Ok(())
        }
        Offline::Rebuild => {
            let store = crate::ops::verify::open(data)?;
            let n = crate::ops::verify::rebuild(&store)?;
            println!(
                "rebuilt the snapshots of {} documents and {} timeline entries",
                n.documents, n.timeline_entries
            );
            Ok(())
        }
        Offline::Backup { out } => {
            let s = crate::ops::backup::run_backup(data, &out)?;
            println!(
                "backup of {} records ({} documents, {} bytes) written to {}",
                s.header.records,
                s.documents,
                s.bytes,
                out.display()
            );
            Ok(())
        }
        Offline::Restore { backup } => {
            let r = crate::ops::backup::run_restore(&backup, data)?;
            println!(
                "restored {} records ({} documents) into {}; rebuilt {} snapshots and {} timeline entries",
                r.summary.header.records,
                r.summary.documents,
                data.display(),
                r.rebuilt.documents,
                r.rebuilt.timeline_entries
            );
            for p in &r.report.problems {
                println!("problem: {p}");
            }
            if !r.report.ok() {
                anyhow::bail!(
                    "verify found {} problem(s) in the restored directory",
                    r.report.problems.len()
                );
            }
            println!("verify: ok");
            Ok(())
        }
        // Run by `main` before anything else.
        Offline::RenderReport { .. } => Ok(()),
    }
}

/// The server's configuration from its arguments, each limit at least its smallest
/// workable value.
fn config_of(args: Args) -> anyhow::Result<crate::Config> {
    let cluster = cluster_of(&args)?;
    let mut config = crate::Config::new(args.listen, args.data);
    config.ping_interval = Duration::from_secs(args.ping_secs.max(1));
    config.http_timeout = Duration::from_secs(args.http_timeout_secs.max(1));
    config.max_http_connections = args.max_http_connections.max(1);
    config.presence_grace = Duration::from_secs(args.presence_grace_secs);
    config.idle_evict = Duration::from_secs(args.idle_evict_secs.max(1));
    config.max_connections = args.max_connections.max(1);
    config.max_connections_per_token = args.max_connections_per_token.max(1);
    config.max_docs_per_connection = args.max_docs_per_connection.max(1);
    config.max_changes_per_sec_per_token = args.max_changes_per_sec_per_token.max(1);
    config.max_document_bytes = args.max_document_bytes.max(1024);
    config.max_ops_per_message = args.max_ops_per_message.max(1);
    config.max_document_ops = args.max_document_ops.max(1);
    config.max_message_bytes = args.max_message_bytes.max(1024);
    config.max_outbound_bytes = args.max_outbound_bytes.max(1024);
    config.max_concurrent_loads = args.max_concurrent_loads.max(1);
    config.max_ephemeral_bytes = args.max_ephemeral_bytes.max(256);
    config.max_ephemeral_bytes_per_sec_per_token =
        args.max_ephemeral_bytes_per_sec_per_token.max(1024);
    config.max_streams_per_token = args.max_streams_per_token.max(1);
    config.max_streams = args.max_streams.max(1);
    config.allowed_origins = args
        .allowed_origins
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    config.public_url = args
        .public_url
        .as_deref()
        .map(|u| crate::api::report::link_base(u).map_err(|e| anyhow::anyhow!("--public-url: {e}")))
        .transpose()?;
    config.cluster = cluster;
    config.typeset = crate::config::TypesetLimits {
        program: std::env::current_exe().ok(),
        max_bytes: args.max_render_mib.max(64) << 20,
        timeout: Duration::from_secs(args.render_timeout_secs.max(5)),
    };
    config.open = args.open;
    config.admin_token = args.admin_token;
    Ok(config)
}

/// `--cluster`, `--node` and the stream's settings, if this is a cluster node.
fn cluster_of(args: &Args) -> anyhow::Result<Option<crate::config::ClusterConfig>> {
    let urls: Vec<String> = args
        .cluster
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    let Some(node) = args.node.clone().filter(|n| !n.trim().is_empty()) else {
        anyhow::bail!("--cluster needs --node NAME (TORON_NODE): each node's own name");
    };
    Ok(Some(crate::config::ClusterConfig {
        urls,
        node,
        stream: args.cluster_stream.clone(),
        replicas: args.cluster_replicas.clamp(1, 5),
        key: cluster_key(args)?,
    }))
}

/// The cluster's key, which a cluster cannot run without.
fn cluster_key(args: &Args) -> anyhow::Result<crate::cluster::auth::ClusterKey> {
    let Some(secret) = args.cluster_key.as_deref() else {
        anyhow::bail!(
            "--cluster needs the cluster's key (--cluster-key or TORON_CLUSTER_KEY, the same on every node; make one with `openssl rand -hex 32`)"
        );
    };
    crate::cluster::auth::ClusterKey::new(secret).map_err(anyhow::Error::msg)
}

async fn serve_from_args(mut args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal; a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    if let Some(command) = args.command.take() {
        if let (Offline::Restore { backup }, false) = (&command, args.cluster.is_empty()) {
            let cluster =
                cluster_of(&args)?.ok_or_else(|| anyhow::anyhow!("--cluster needs --node NAME"))?;
            let seeded = crate::cluster::restore::into_stream(backup, &cluster).await?;
            println!(
                "restored {} records into the cluster's log ({} entries in stream {}); start the nodes",
                seeded.records, seeded.entries, cluster.stream
            );
            return Ok(());
        }
        let against = matches!(command, Offline::Verify) && !args.cluster.is_empty();
        run_offline(command, &args.data)?;
        if against {
            let key = cluster_key(&args)?;
            verify_against_stream(&args.data, &args.cluster, &args.cluster_stream, &key).await?;
        }
        return Ok(());
    }
    let config = config_of(args)?;
    let server = crate::start(config).await?;
    // Scripts wait for this line to learn the port.
    println!("toron-server listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(())
}

/// `--cluster … verify`: after the replica's own check, the replica against the stream.
async fn verify_against_stream(
    data: &std::path::Path,
    urls: &[String],
    stream: &str,
    key: &crate::cluster::auth::ClusterKey,
) -> anyhow::Result<()> {
    let store = crate::ops::verify::open(data)?;
    let check = crate::cluster::verify::against_stream(&store, urls, stream, key).await;
    store.close();
    let check = check?;
    println!(
        "against the stream: {} records compared up to entry {} of {} ({} not applied yet)",
        check.records,
        check.position,
        check.stream_end,
        check.stream_end.saturating_sub(check.position)
    );
    for p in &check.problems {
        println!("problem: {p}");
    }
    if !check.problems.is_empty() {
        anyhow::bail!(
            "the replica differs from the stream in {} way(s)",
            check.problems.len()
        );
    }
    println!("ok");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
