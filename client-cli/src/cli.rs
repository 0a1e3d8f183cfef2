//! The command line of `toron`: its shape (clap) and the dispatch to one module per command
//! ([`crate::cmd`]). The binary is a one-line wrapper around [`main`].

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::cmd::{self, Ctx};

/// Command-line client of Toron: create, read, edit and follow documents; measure a server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// The server's address: `ws://host:port` (or `wss://`, or the `http(s)://` of its page).
    /// A cluster's nodes may be given comma-separated: the first that answers is used.
    #[arg(
        long,
        global = true,
        env = "TORON_SERVER",
        default_value = "ws://127.0.0.1:7878"
    )]
    server: String,
    /// Your bearer token (from an organizer; the first organizer's is in <data>/admin-token).
    #[arg(long, global = true, env = "TORON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seconds to wait for the server before giving up.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a document and print its automerge: URL once the server has stored it.
    New(cmd::new::Args),
    /// Print a document as JSON.
    Get(cmd::get::Args),
    /// Set the value at PATH (`a.b.0` or `/a/b/0`); VALUE is JSON, or else a string.
    Set(cmd::set::Args),
    /// Print the document, then again after each change (one JSON document per line).
    Watch(cmd::watch::Args),
    /// A document's history (who changed it, when, in which role), or a session's timeline
    /// in the debate's terms when TARGET is a session key such as `S05`.
    History(cmd::history::Args),
    /// The document as it was after change number SEQ, or at a moment.
    At(cmd::at::Args),
    /// Load a debate bundle (docs/bundle-format.md): checks all of it first, writes nothing
    /// if anything is wrong, and creates nothing a second time.
    Import(cmd::import::Args),
    /// Write a series or a session back in the bundle format (JSON on standard output or
    /// FILE), or a session's annotations as W3C Web Annotations (`--format w3c`, JSON-LD).
    Export(cmd::export::Args),
    /// The final report of a series or a session: html, md (Markdown) or csv (department tables).
    Report(cmd::report::Args),
    /// Annotate a passage of a document (into your own notes layer of the session); prints
    /// the annotation's id.
    Annotate(cmd::annotate::Args),
    /// Reply to (or, with --kind answer, answer) an annotation.
    Reply(cmd::reply::Args),
    /// Agree with an annotation (공감), or take it back with --remove.
    React(cmd::react::Args),
    /// Promote annotations to a finding of the report (organizers): the finding is written
    /// with them as its sources, and each is triaged `accepted` into it. Prints its key.
    Promote(cmd::promote::Args),
    /// Record your department's response to a finding addressed to it (department reviewers).
    Respond(cmd::respond::Args),
    /// Fill in your evaluation form of a case, and submit it with --submit (evaluators, while
    /// the session is scheduled, live or closed).
    Evaluate(cmd::evaluate::Args),
    /// Set the triage status of a root annotation (organizers; the chair while live).
    Triage(cmd::triage::Args),
    /// Play a session back, printing its timeline as it plays.
    Replay(cmd::replay::Args),
    /// What changed between change numbers FROM and TO (patches: path, action, values).
    Diff(cmd::diff::Args),
    /// Participants, roles, tokens, sessions, cases and documents (organizers; `whoami` and
    /// `docs` for everybody). Prints JSON.
    #[command(subcommand)]
    Admin(cmd::admin::Command),
    /// Load generator: N clients on D documents, one edit every I ms each, for T seconds.
    Bench(cmd::bench::Args),
    /// Benchmark: clients hold documents open; restart the server when this says "ready"
    /// (same address); every client edits offline, reconnects at once and resyncs. Reports
    /// how long until each is back in sync.
    Storm(cmd::storm::Args),
}

/// Parses the arguments, runs the command, and returns the exit code (0 ok, 1 failure, 2 usage).
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("toron: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toron: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    let limit = Duration::from_secs(cli.timeout);
    if cli.server.contains(',') {
        cli.server = cmd::first_answering(&cli.server, limit).await?;
    }
    let ctx = Ctx {
        cli_server: &cli.server,
        token: cli.token.clone(),
        server: crate::sync_client::url_with_token(&cli.server, cli.token.as_deref()),
        limit,
    };
    match cli.command {
        Command::New(args) => cmd::new::run(&ctx, args).await,
        Command::Get(args) => cmd::get::run(&ctx, args).await,
        Command::Set(args) => cmd::set::run(&ctx, args).await,
        Command::Watch(args) => cmd::watch::run(&ctx, args).await,
        Command::History(args) => cmd::history::run(&ctx, args).await,
        Command::At(args) => cmd::at::run(&ctx, args).await,
        Command::Import(args) => cmd::import::run(&ctx, args).await,
        Command::Export(args) => cmd::export::run(&ctx, args).await,
        Command::Report(args) => cmd::report::run(&ctx, args).await,
        Command::Annotate(args) => cmd::annotate::run(&ctx, args).await,
        Command::Reply(args) => cmd::reply::run(&ctx, args).await,
        Command::React(args) => cmd::react::run(&ctx, args).await,
        Command::Promote(args) => cmd::promote::run(&ctx, args).await,
        Command::Respond(args) => cmd::respond::run(&ctx, args).await,
        Command::Evaluate(args) => cmd::evaluate::run(&ctx, args).await,
        Command::Triage(args) => cmd::triage::run(&ctx, args).await,
        Command::Replay(args) => cmd::replay::run(&ctx, args).await,
        Command::Diff(args) => cmd::diff::run(&ctx, args).await,
        Command::Admin(command) => cmd::admin::run(&ctx, command).await,
        Command::Bench(args) => cmd::bench::run(&ctx, args).await,
        Command::Storm(args) => cmd::storm::run(&ctx, args).await,
    }
}
