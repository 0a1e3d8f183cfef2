//! `toron bench`: the load generator.

use std::time::Duration;

use super::Ctx;

/// `toron bench`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Clients, all in this process.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Documents the clients share (at least two clients each).
    #[arg(long, default_value_t = 1)]
    docs: usize,
    /// Milliseconds between two edits of one client.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Seconds of editing.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Seconds to keep receiving after the last edit.
    #[arg(long, default_value_t = 10)]
    drain_secs: u64,
    /// Report this process's CPU and memory (the server, when it runs on this machine).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Only the first N clients of each document edit; the others follow it.
    #[arg(long)]
    writers_per_doc: Option<usize>,
    /// Type one character per edit into a text (the *typing* scenario).
    #[arg(long)]
    text: bool,
    /// Clients that do not edit keep only the change graph (hashes and dependencies), not
    /// the document: a cheaper load generator for high edit rates. Use with
    /// --writers-per-doc.
    #[arg(long)]
    light_followers: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `toron bench`: the load generator.
pub(crate) async fn run(ctx: &Ctx<'_>, args: Args) -> anyhow::Result<()> {
    let Args {
        clients,
        docs,
        interval_ms,
        duration_secs,
        drain_secs,
        server_pid,
        writers_per_doc,
        text,
        light_followers,
        json,
    } = args;
    let cfg = crate::bench::BenchConfig {
        writers_per_doc,
        text,
        light_followers,
        server: ctx.server.clone(),
        clients,
        docs,
        interval: Duration::from_millis(interval_ms.max(1)),
        duration: Duration::from_secs(duration_secs),
        drain: Duration::from_secs(drain_secs),
        server_pid,
    };
    let report = crate::bench::run(cfg, |p| eprintln!("bench: {p}")).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.human());
    }
    Ok(())
}
