//! `toron storm`: many clients reconnecting at once, and how long until each is back.

use std::time::Duration;

use super::Ctx;

/// `toron storm`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 100)]
    docs: usize,
    /// Documents each client keeps open.
    #[arg(long, default_value_t = 10)]
    per_client: usize,
    /// Changes in each document before the storm.
    #[arg(long, default_value_t = 50)]
    history: usize,
    /// How many clients make an edit while the server is away.
    #[arg(long, default_value_t = 100)]
    offline_editors: usize,
    /// Seconds to wait for the server to go away, and again for it to come back.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
    /// Seconds each client has to get back in sync once reconnected.
    #[arg(long, default_value_t = 60)]
    limit_secs: u64,
    /// A file with the restarted server's pid, for its CPU and memory.
    #[arg(long)]
    server_pid_file: Option<std::path::PathBuf>,
    /// A cluster behind a front: kill one node when this says "ready". Only the clients whose
    /// connection drops reconnect (through the front, to another node); times count from the
    /// first drop, i.e. the failover as the clients see it.
    #[arg(long)]
    failover: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `toron storm`: many clients reconnecting at once.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let Args {
        clients,
        docs,
        per_client,
        history,
        offline_editors,
        wait_secs,
        limit_secs,
        server_pid_file,
        failover,
        json,
    } = args;
    let cfg = crate::storm::StormConfig {
        failover,
        server: ctx.server.clone(),
        clients,
        docs,
        per_client,
        history,
        offline_editors,
        wait: Duration::from_secs(wait_secs),
        limit: Duration::from_secs(limit_secs),
        server_pid_file,
    };
    let report = crate::storm::run(cfg, |p| eprintln!("storm: {p}")).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.human());
    }
    Ok(())
}
