//! The command line of `toron` (the binary is a one-line wrapper around [`main`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{bench, commands};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{json, Value as Json};
use toron_protocol::AutomergeUrl;

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
    New {
        /// A JSON file with the initial content (an object); `-` reads standard input.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Print a document as JSON.
    Get {
        /// The document: `automerge:…` or its id.
        url: AutomergeUrl,
    },
    /// Set the value at PATH (`a.b.0` or `/a/b/0`); VALUE is JSON, or else a string.
    Set {
        /// The document: `automerge:…` or its id.
        url: AutomergeUrl,
        /// Where: `a.b.0` or `/a/b/0`.
        path: String,
        /// JSON (`"text"`, `3`, `{"k": 1}`), or else taken as a string.
        value: String,
        /// Start the document if the server has no content for it yet (a registered, empty
        /// document such as your own `notes:` layer).
        #[arg(long)]
        create: bool,
    },
    /// Print the document, then again after each change (one JSON document per line).
    Watch {
        /// The document: `automerge:…` or its id.
        url: AutomergeUrl,
        /// Stop after this many changes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// A document's history (who changed it, when, in which role), or a session's timeline
    /// in the debate's terms when TARGET is a session key such as `S05`.
    History(HistoryArgs),
    /// The document as it was after change number SEQ, or at a moment.
    At(AtArgs),
    /// Load a debate bundle (docs/bundle-format.md): checks all of it first, writes nothing
    /// if anything is wrong, and creates nothing a second time.
    Import(ImportArgs),
    /// Write a series or a session back in the bundle format (JSON on standard output or
    /// FILE), or a session's annotations as W3C Web Annotations (`--format w3c`, JSON-LD).
    Export {
        /// A series key, or a session key.
        key: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// bundle, or w3c (a session's annotations as a Web Annotation collection).
        #[arg(long, default_value = "bundle")]
        format: String,
    },
    /// The final report of a series or a session: html, md (Markdown) or csv (department tables).
    Report(ReportArgs),
    /// Annotate a passage of a document (into your own notes layer of the session); prints
    /// the annotation's id.
    Annotate(AnnotateArgs),
    /// Reply to (or, with --kind answer, answer) an annotation.
    Reply(ReplyArgs),
    /// Agree with an annotation (공감), or take it back with --remove.
    React(ReactArgs),
    /// Promote annotations to a finding of the report (organizers): the finding is written
    /// with them as its sources, and each is triaged `accepted` into it. Prints its key.
    Promote(PromoteArgs),
    /// Record your department's response to a finding addressed to it (department reviewers).
    Respond(RespondArgs),
    /// Fill in your evaluation form of a case, and submit it with --submit (evaluators, while
    /// the session is scheduled, live or closed).
    Evaluate(EvaluateArgs),
    /// Set the triage status of a root annotation (organizers; the chair while live).
    Triage(TriageArgs),
    /// Play a session back, printing its timeline as it plays.
    Replay(ReplayArgs),
    /// What changed between change numbers FROM and TO (patches: path, action, values).
    Diff {
        /// The document: `automerge:…` or its id.
        url: AutomergeUrl,
        /// A change number of the document.
        from: u64,
        /// A later change number.
        to: u64,
    },
    /// Participants, roles, tokens, sessions, cases and documents (organizers; `whoami` and
    /// `docs` for everybody). Prints JSON.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Load generator: N clients on D documents, one edit every I ms each, for T seconds.
    Bench(BenchArgs),
    /// Benchmark: clients hold documents open; restart the server when this says "ready"
    /// (same address); every client edits offline, reconnects at once and resyncs. Reports
    /// how long until each is back in sync.
    Storm(StormArgs),
}

/// `toron annotate`'s arguments.
#[derive(Debug, clap::Args)]
struct AnnotateArgs {
    /// The document: a key such as `case:C-LIB-HB` or an `automerge:` URL.
    doc: String,
    /// Where the text is: `sections.method`, `criteria.sustainability.text`, `overall`…
    #[arg(long)]
    path: String,
    /// The exact passage (NFC-normalised; Korean text as typed).
    #[arg(long)]
    quote: String,
    /// Text just before / after the passage, to choose between repeats.
    #[arg(long)]
    prefix: Option<String>,
    /// Text just after the passage.
    #[arg(long)]
    suffix: Option<String>,
    /// comment, question, highlight, strength, gap, lesson, score.
    #[arg(long, default_value = "comment")]
    kind: String,
    /// What you say about the passage.
    #[arg(long)]
    body: Option<String>,
    /// The session (its key, `S-LIB`) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// gap/strength/score: the template criterion; score: its value 1–5.
    #[arg(long)]
    criterion: Option<String>,
    /// score: the value, 1 to 5.
    #[arg(long)]
    value: Option<u8>,
    /// gap/lesson: departments concerned (comma-separated keys).
    #[arg(long, value_delimiter = ',')]
    departments: Vec<String>,
    /// lesson: the government it comes from.
    #[arg(long)]
    source_government: Option<String>,
    /// gap: high, medium or low.
    #[arg(long)]
    severity: Option<String>,
}

/// `toron history`'s arguments.
#[derive(Debug, clap::Args)]
struct HistoryArgs {
    /// A document (`automerge:…` or its id) or a session key.
    target: String,
    /// Only what this participant did (a key such as `P-KIM`).
    #[arg(long)]
    participant: Option<String>,
    /// Only what was done in this role (`activist`, `evaluator`, …).
    #[arg(long)]
    role: Option<String>,
    /// Sessions only: entries of this kind (`annotation`, `triage.status_set`, …).
    #[arg(long)]
    kind: Option<String>,
    /// From this moment: `16:10[:30]` (KST, on --date or the session's own date — a
    /// document's first day), UTC milliseconds, or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Up to this moment (inclusive), written as --since.
    #[arg(long)]
    until: Option<String>,
    /// The day of a clock time in --since/--until, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Which clock --since/--until and the order are on: when acts happened (an imported
    /// act's own time; the timeline's order) or when the server received them.
    #[arg(long, value_enum, default_value_t = crate::history::Clock::Happened)]
    clock: crate::history::Clock,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `toron at`'s arguments.
#[derive(Debug, clap::Args)]
struct AtArgs {
    /// The document: `automerge:…` or its id.
    url: AutomergeUrl,
    /// After change number SEQ of the document.
    #[arg(long, conflicts_with = "time", required_unless_present = "time")]
    seq: Option<u64>,
    /// `17:30[:15]` (KST, on --date or the document's first day), UTC milliseconds, or
    /// RFC 3339 such as 2026-11-26T17:30:00+09:00.
    #[arg(long)]
    time: Option<String>,
    /// The day of a clock time, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Which clock --time is on: when acts happened (an imported act's own time; the
    /// timeline's order) or when the server received them.
    #[arg(long, value_enum, default_value_t = crate::history::Clock::Happened)]
    clock: crate::history::Clock,
}

/// `toron import`'s arguments.
#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The bundle (JSON), or a CSV file with --csv.
    bundle: std::path::PathBuf,
    /// Check the bundle and show what would be created, without writing.
    #[arg(long)]
    dry_run: bool,
    /// The file is CSV of this kind (columns in docs/bundle-format.md), joined to --series.
    #[arg(long, requires = "series")]
    csv: Option<crate::import::CsvKind>,
    /// `w3c`: the file is W3C Web Annotations (JSON-LD, as `toron export --format w3c`
    /// writes), brought into the notes of --session, each re-anchored by its quote.
    #[arg(long, requires = "session", value_parser = ["bundle", "w3c"])]
    format: Option<String>,
    /// The session W3C annotations join.
    #[arg(long)]
    session: Option<String>,
    /// The series a CSV file adds to.
    #[arg(long)]
    series: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Refuse the bundle if anything in it is suspicious (an evaluation changed after it
    /// was submitted, a reply dated before its parent, …), not only if it is invalid.
    #[arg(long)]
    strict: bool,
    /// Also move sessions that exist already to the phase the bundle gives them (without
    /// it only the sessions this import creates get their phase: a re-import never moves
    /// a live session back).
    #[arg(long)]
    set_phases: bool,
}

/// `toron report`'s arguments.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// A series key, or a session key.
    key: String,
    /// html, md (Markdown), csv, xlsx (the department tables), hwpx (한글) or pdf; the
    /// last three are files: they need --output.
    #[arg(long, default_value = "html")]
    format: String,
    /// ko (Korean) or en (English).
    #[arg(long, default_value = "ko")]
    lang: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    /// Only this department's part (its key): what its department reviewers may read.
    #[arg(long)]
    department: Option<String>,
    /// Where the report's links lead, for a file mailed to readers who reach the server
    /// by another address (`https://toron.example.go.kr`); by default the --server's.
    #[arg(long)]
    base_url: Option<String>,
}

/// `toron reply`'s arguments.
#[derive(Debug, clap::Args)]
struct ReplyArgs {
    /// The annotation replied to (its id).
    parent: String,
    /// The session (its key) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// What you say.
    #[arg(long)]
    body: String,
    /// `reply`, or `answer` (a presenter answering a question).
    #[arg(long, default_value = "reply")]
    kind: String,
    /// The top of the thread, if the parent is itself a reply.
    #[arg(long)]
    root: Option<String>,
}

/// `toron react`'s arguments.
#[derive(Debug, clap::Args)]
struct ReactArgs {
    /// The annotation (its id).
    annotation: String,
    /// The session (its key) whose notes layer takes it.
    #[arg(long)]
    session: String,
    /// Take the agreement back.
    #[arg(long)]
    remove: bool,
}

/// `toron triage`'s arguments.
#[derive(Debug, clap::Args)]
struct TriageArgs {
    /// The annotation: its id, or the ref people see (`L-04`, `W-04`).
    annotation: String,
    /// The session (its key, `S-LIB`).
    #[arg(long)]
    session: String,
    /// open, answered, accepted, merged, noted, deferred, withdrawn.
    #[arg(long)]
    status: String,
    /// Why, in a word (shown in the queue and the report).
    #[arg(long)]
    note: Option<String>,
    /// accepted: the finding of the report it went into (`F-LIB-01`).
    #[arg(long)]
    finding: Option<String>,
}

/// `toron promote`'s arguments.
#[derive(Debug, clap::Args)]
struct PromoteArgs {
    /// The session the annotations are in (`S-LIB`).
    #[arg(long)]
    session: String,
    /// An annotation to promote, by id or ref (`L-04`); give two or more to merge duplicates
    /// into one finding.
    #[arg(long = "from", required = true)]
    from: Vec<String>,
    /// gap, lesson, recommendation or open_question.
    #[arg(long = "type")]
    kind: String,
    /// The finding's title (the department tables show it).
    #[arg(long)]
    title: String,
    /// A department it is addressed to, by key or name (the first leads); repeat for more.
    #[arg(long = "department", required = true)]
    departments: Vec<String>,
    /// high, medium or low.
    #[arg(long, default_value = "medium")]
    priority: String,
    /// What was found, in a sentence or two.
    #[arg(long)]
    text: Option<String>,
    /// What the department should do.
    #[arg(long)]
    recommendation: Option<String>,
    /// A pledge (공약) it concerns, by key; repeat for more.
    #[arg(long = "pledge")]
    pledges: Vec<String>,
    /// The finding's key (by default the next `F-{session}-NN`).
    #[arg(long)]
    key: Option<String>,
}

/// `toron respond`'s arguments.
#[derive(Debug, clap::Args)]
struct RespondArgs {
    /// The finding (`F-LIB-02`).
    finding: String,
    /// The series (`HB-BENCH-2012`).
    #[arg(long)]
    series: String,
    /// Your department's key (`DEP-CULT`).
    #[arg(long)]
    department: String,
    /// accepted, partially_accepted, not_accepted or long_term_review.
    #[arg(long)]
    stance: String,
    /// What the department will do (조치계획).
    #[arg(long)]
    plan: Option<String>,
    /// By when (`2013-06`).
    #[arg(long)]
    due: Option<String>,
    /// Where it stands (추진상황).
    #[arg(long)]
    progress: Option<String>,
}

/// `toron evaluate`'s arguments.
#[derive(Debug, clap::Args)]
struct EvaluateArgs {
    /// The case (`C-LIB-HB`).
    case: String,
    /// The session the case is presented in (`S-LIB`).
    #[arg(long)]
    session: String,
    /// A criterion's score: `relevance=4`, or `relevance=na` (not applicable); repeat.
    #[arg(long = "score")]
    scores: Vec<String>,
    /// A criterion's comment: `relevance=수요 근거가 있다.`; repeat.
    #[arg(long = "comment")]
    comments: Vec<String>,
    /// 강점.
    #[arg(long)]
    strengths: Option<String>,
    /// 부족한 점.
    #[arg(long)]
    gaps: Option<String>,
    /// 배울 점.
    #[arg(long)]
    lessons: Option<String>,
    /// 총평.
    #[arg(long)]
    overall: Option<String>,
    /// Submit the form (its scores then count in the report).
    #[arg(long)]
    submit: bool,
}

/// `toron replay`'s arguments.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The session (its key, `S-LIB`).
    session: String,
    /// 1, 4, 16… times real time, or `max` for as fast as possible.
    #[arg(long, default_value = "1")]
    speed: String,
    /// Start at `17:00[:00]` (KST, on --date or the session's first day), UTC
    /// milliseconds or RFC 3339; default: the session's first entry.
    #[arg(long)]
    from: Option<String>,
    /// The day of a clock time, `2026-11-26`.
    #[arg(long)]
    date: Option<String>,
    /// Print each entry as JSON (one per line).
    #[arg(long)]
    json: bool,
}

/// `toron bench`'s arguments.
#[derive(Debug, clap::Args)]
struct BenchArgs {
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

/// `toron storm`'s arguments.
#[derive(Debug, clap::Args)]
struct StormArgs {
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

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Who your token belongs to, and your roles.
    Whoami,
    /// The documents you may read (and whether you may write them).
    Docs,
    /// Add and list participants.
    #[command(subcommand)]
    Participant(ParticipantCommand),
    /// Give a participant a role in a session or a whole series.
    Grant(RoleArgs),
    /// Take a role away (the participant's open connections are closed).
    Revoke(RoleArgs),
    /// Issue or revoke a participant's token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add, list and move sessions through their phases.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Add a case (one government's) to a session.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Register a document by its key.
    #[command(subcommand)]
    Doc(DocCommand),
    /// Add a department to a series (whom findings are addressed to; its reviewers answer).
    Department {
        /// The department's key, such as `DEP-CULT`.
        key: String,
        /// The series it belongs to.
        #[arg(long)]
        series: String,
        /// Its Korean name, such as `문화도서관과`.
        #[arg(long)]
        name: String,
        /// Its English name.
        #[arg(long)]
        name_en: Option<String>,
    },
    /// Set a series' evaluation template: `--criterion relevance=적절성:15` for each criterion
    /// (its key, Korean name and weight), in order.
    Template {
        /// The series.
        series: String,
        /// KEY=NAME:WEIGHT, repeated in the order the form shows them.
        #[arg(long = "criterion", required = true)]
        criteria: Vec<String>,
    },
    /// Set a session's agenda: `--item AG-1=개회` for each item, in order, optionally with its
    /// hours: `--item 'AG-2=사례발표@2026-12-08T16:10:00+09:00/2026-12-08T16:50:00+09:00'`.
    Agenda {
        /// The session's key.
        session: String,
        /// KEY=TITLE[@START/END], repeated in order.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
    },
    /// Join links for everyone in a session who has none yet (the invite sheet): prints them,
    /// or writes a CSV to send. The web client prints the same sheet with QR codes.
    Invites {
        /// The session's key.
        session: String,
        /// Replace the links people already have (their open connections close).
        #[arg(long)]
        reissue: bool,
        /// The address participants open, if not the one this command uses (behind a proxy).
        #[arg(long)]
        base: Option<String>,
        /// Write the links as CSV (UTF-8 with a byte-order mark, for spreadsheets) to this file.
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ParticipantCommand {
    /// Add a participant; prints it with its invite token.
    Add {
        /// Their key, such as `P-KIM` (letters, digits, `-`, `_`, `.`).
        key: String,
        /// Their name, as shown where they consent to it.
        #[arg(long)]
        name: String,
        /// Their organisation (shown with `affiliation_only`).
        #[arg(long, default_value = "")]
        affiliation: String,
        /// official, expert, activist or resident.
        #[arg(long, default_value = "activist")]
        kind: String,
        /// name_and_affiliation, affiliation_only or role_only.
        #[arg(long)]
        attribution: Option<String>,
        /// An official's department (a key of the series' departments).
        #[arg(long)]
        department: Option<String>,
    },
    /// Everybody, with their kinds and how they are shown.
    List,
}

#[derive(Debug, clap::Args)]
struct RoleArgs {
    /// The participant's key.
    participant: String,
    /// organizer, facilitator, scribe, presenter, evaluator, activist, official,
    /// department_reviewer, observer or importer.
    role: String,
    /// For this session only.
    #[arg(long, conflicts_with = "series", required_unless_present = "series")]
    session: Option<String>,
    /// For every session of this series.
    #[arg(long)]
    series: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a new token (the old one stops working).
    Issue {
        /// The participant's key.
        participant: String,
    },
    /// Revoke the participant's token and close their connections.
    Revoke {
        /// The participant's key.
        participant: String,
    },
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// Add a session to a series (or update it; its phase moves only with `phase`).
    Add {
        /// The session's key, such as `S05`.
        key: String,
        /// The series it belongs to.
        #[arg(long)]
        series: String,
        /// Its title, as shown to the hall.
        #[arg(long, default_value = "")]
        title: String,
        /// draft, scheduled, live, closed, reporting or published.
        #[arg(long)]
        phase: Option<String>,
        /// The chair (a participant's key).
        #[arg(long)]
        facilitator: Option<String>,
    },
    /// Move a session to another phase (organizers; its facilitator: scheduled → live → closed).
    Phase {
        /// The session's key.
        key: String,
        /// draft, scheduled, live, closed, reporting or published.
        phase: String,
        /// Move the session back (`live` → `scheduled`), which takes rights away.
        #[arg(long)]
        force: bool,
    },
    /// Set the agenda item under way (the chair or an organizer); without ITEM, none. Every
    /// open page of the session shows it at once; the timeline and the replay keep it.
    Item {
        /// The session's key.
        key: String,
        /// The agenda item's key, such as `AG-2`.
        item: Option<String>,
    },
    /// The sessions you take part in (organizers: of their series).
    List,
}

#[derive(Debug, Subcommand)]
enum CaseCommand {
    /// Add a case to a session (or update it).
    Add {
        /// The case's key, such as `C-S05-SB`.
        key: String,
        /// The session it is presented in.
        #[arg(long)]
        session: String,
        /// A presenter's participant key (repeat for several).
        #[arg(long = "presenter")]
        presenters: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DocCommand {
    /// Register a document key (case:…, eval:…:…, notes:…:…, triage:…, session:…, report:…,
    /// response:…:…); prints its automerge: URL.
    Register {
        /// The document's key.
        key: String,
    },
}

/// `KEY=NAME:WEIGHT` → a template criterion.
fn criterion(given: &str) -> anyhow::Result<Json> {
    let (key, rest) = given.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("criterion `{given}`: write KEY=NAME:WEIGHT, such as relevance=적절성:15")
    })?;
    let (name, weight) = rest.rsplit_once(':').ok_or_else(|| {
        anyhow::anyhow!(
            "criterion `{given}`: its weight after a colon, such as relevance=적절성:15"
        )
    })?;
    let weight: u32 = weight.trim().parse().map_err(|_| {
        anyhow::anyhow!("criterion `{given}`: the weight `{weight}` is not a whole number")
    })?;
    Ok(json!({ "key": key.trim(), "name_ko": name.trim(), "weight": weight }))
}

/// `KEY=TITLE[@START/END]` → an agenda item.
fn agenda_item(given: &str) -> anyhow::Result<Json> {
    let (key, rest) = given.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("agenda item `{given}`: write KEY=TITLE, such as AG-1=개회")
    })?;
    let (title, hours) = match rest.split_once('@') {
        Some((t, h)) => (t, Some(h)),
        None => (rest, None),
    };
    let mut item = json!({ "key": key.trim(), "title_ko": title.trim() });
    if let Some(h) = hours {
        let (start, end) = h
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("agenda item `{given}`: its hours as START/END"))?;
        item["start"] = json!(start.trim());
        item["end"] = json!(end.trim());
    }
    Ok(item)
}

/// The invite sheet as CSV: one row per participant, the link empty where they keep theirs.
fn write_invites_csv(path: &std::path::Path, invites: &[Json]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record([
            "participant",
            "name",
            "affiliation",
            "role",
            "role_ko",
            "link",
            "note",
        ])?;
        for i in invites {
            // (Names and affiliations are typed by people: never a formula in a spreadsheet.)
            let f =
                |k: &str| toron_domain::report::csv_cell(i[k].as_str().unwrap_or("")).into_owned();
            w.write_record([
                f("participant"),
                f("name"),
                f("affiliation"),
                f("role"),
                f("role_ko"),
                f("link"),
                f("note"),
            ])?;
        }
        w.flush()?;
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

fn admin_call(
    cli_server: &str,
    token: Option<String>,
    limit: Duration,
    command: AdminCommand,
) -> anyhow::Result<Json> {
    use serde_json::json;
    let api = crate::admin::Admin::new(cli_server, token, limit);
    let role_body = |a: &RoleArgs| json!({ "participant": a.participant, "role": a.role, "session": a.session, "series": a.series });
    match command {
        AdminCommand::Whoami => api.call("GET", "/api/v1/whoami", None),
        AdminCommand::Docs => api.call("GET", "/api/v1/docs", None),
        AdminCommand::Participant(ParticipantCommand::Add { key, name, affiliation, kind, attribution, department }) => api.call(
            "POST",
            "/api/v1/participants",
            Some(json!({ "key": key, "name": name, "affiliation": affiliation, "kind": kind, "attribution": attribution, "department": department })),
        ),
        AdminCommand::Participant(ParticipantCommand::List) => api.call("GET", "/api/v1/participants", None),
        AdminCommand::Grant(a) => api.call("POST", "/api/v1/roles", Some(role_body(&a))),
        AdminCommand::Revoke(a) => api.call("DELETE", "/api/v1/roles", Some(role_body(&a))),
        AdminCommand::Invites { session, reissue, base, csv } => {
            let base = base.unwrap_or_else(|| crate::admin::http_base(cli_server));
            let mut answer = api.call(
                "POST",
                &format!("/api/v1/sessions/{session}/invites"),
                Some(json!({ "base": base, "reissue": reissue })),
            )?;
            let invites = answer["invites"].as_array_mut().map(std::mem::take).unwrap_or_default();
            if let Some(path) = csv {
                write_invites_csv(&path, &invites)?;
                answer["csv"] = json!(path.display().to_string());
            }
            // The QR codes are for the web sheet; a terminal shows the links.
            answer["invites"] = invites
                .into_iter()
                .map(|mut i| {
                    if let Some(o) = i.as_object_mut() {
                        o.remove("qr_svg");
                    }
                    i
                })
                .collect();
            Ok(answer)
        }
        AdminCommand::Token(TokenCommand::Issue { participant }) => api.call("POST", &format!("/api/v1/participants/{participant}/token"), None),
        AdminCommand::Token(TokenCommand::Revoke { participant }) => api.call("DELETE", &format!("/api/v1/participants/{participant}/token"), None),
        AdminCommand::Session(SessionCommand::Add { key, series, title, phase, facilitator }) => api.call(
            "POST",
            "/api/v1/sessions",
            Some(json!({ "key": key, "series": series, "title": title, "phase": phase, "facilitator": facilitator })),
        ),
        AdminCommand::Session(SessionCommand::Phase { key, phase, force }) => api.call("PUT", &format!("/api/v1/sessions/{key}/phase"), Some(json!({ "phase": phase, "force": force }))),
        AdminCommand::Session(SessionCommand::Item { key, item }) => {
            api.call("PUT", &format!("/api/v1/sessions/{key}/item"), Some(json!({ "item": item })))
        }
        AdminCommand::Session(SessionCommand::List) => api.call("GET", "/api/v1/sessions", None),
        AdminCommand::Case(CaseCommand::Add { key, session, presenters }) => {
            api.call("POST", "/api/v1/cases", Some(json!({ "key": key, "session": session, "presenters": presenters })))
        }
        AdminCommand::Doc(DocCommand::Register { key }) => api.call("POST", "/api/v1/documents", Some(json!({ "key": key }))),
        AdminCommand::Department { key, series, name, name_en } => api.call(
            "PUT",
            &format!("/api/v1/series/{series}/departments/{key}"),
            Some(json!({ "name_ko": name, "name_en": name_en })),
        ),
        AdminCommand::Template { series, criteria } => {
            let criteria = criteria.iter().map(|c| criterion(c)).collect::<anyhow::Result<Vec<_>>>()?;
            api.call("PUT", &format!("/api/v1/series/{series}/template"), Some(json!({ "criteria": criteria })))
        }
        AdminCommand::Agenda { session, items } => {
            let items = items.iter().map(|i| agenda_item(i)).collect::<anyhow::Result<Vec<_>>>()?;
            api.call("PUT", &format!("/api/v1/sessions/{session}/agenda"), Some(json!({ "items": items })))
        }
    }
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

/// Writes to standard output. A reader that went away (`toron replay … | head`) ends the
/// program quietly, as Unix tools do, where `print!` would panic on the broken pipe.
fn emit(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

macro_rules! out {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

macro_rules! outln {
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}

fn print_json(v: &Json) {
    outln!("{v}");
}

/// What every command is run with: the server as given, the caller's token, the sync URL
/// with it, and the time allowed.
struct Ctx<'a> {
    cli_server: &'a str,
    token: Option<String>,
    server: String,
    limit: Duration,
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    let limit = Duration::from_secs(cli.timeout);
    if cli.server.contains(',') {
        cli.server = first_answering(&cli.server, limit).await?;
    }
    let server = crate::sync_client::url_with_token(&cli.server, cli.token.as_deref());
    let ctx = Ctx {
        cli_server: &cli.server,
        token: cli.token.clone(),
        server: server.clone(),
        limit,
    };
    match cli.command {
        Command::New { json } => {
            let initial = match json {
                None => None,
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?
                    };
                    Some(
                        serde_json::from_str::<Json>(&text)
                            .with_context(|| format!("{} is not JSON", path.display()))?,
                    )
                }
            };
            let url = commands::new_document(&server, initial.as_ref(), limit).await?;
            outln!("{url}");
        }
        Command::Get { url } => print_json(&commands::get_document(&server, &url, limit).await?),
        Command::Set {
            url,
            path,
            value,
            create,
        } => {
            let value = serde_json::from_str(&value).unwrap_or(Json::String(value));
            commands::set_value(&server, &url, &path, &value, create, limit).await?;
        }
        Command::History(args) => {
            out!(
                "{}",
                history(&cli.server, cli.token.clone(), limit, args).await?
            );
        }
        Command::At(args) => at_cmd(&ctx, args).await?,
        Command::Import(args) => import_cmd(&ctx, args).await?,
        Command::Export {
            key,
            output,
            format,
        } => export_cmd(&ctx, key, output, format).await?,
        Command::Report(args) => report_cmd(&ctx, args).await?,
        Command::Annotate(args) => {
            let aid = annotate(&cli.server, cli.token.clone(), &server, limit, args).await?;
            outln!("{aid}");
        }
        Command::Reply(args) => reply_cmd(&ctx, args).await?,
        Command::React(args) => react_cmd(&ctx, args).await?,
        Command::Triage(args) => triage_cmd(&ctx, args).await?,
        Command::Promote(args) => promote_cmd(&ctx, args).await?,
        Command::Respond(args) => respond_cmd(&ctx, args).await?,
        Command::Evaluate(args) => evaluate_cmd(&ctx, args).await?,
        Command::Replay(args) => replay_cmd(&ctx, args).await?,
        Command::Diff { url, from, to } => {
            let (srv, token, url) = (cli.server.clone(), cli.token.clone(), url.to_string());
            let answer = tokio::task::spawn_blocking(move || {
                crate::history::diff(
                    &crate::admin::Admin::new(&srv, token, limit),
                    &url,
                    from,
                    to,
                )
            })
            .await??;
            outln!("{}", serde_json::to_string_pretty(&answer["patches"])?);
        }
        Command::Admin { command } => {
            let (srv, token) = (cli.server.clone(), cli.token.clone());
            let answer =
                tokio::task::spawn_blocking(move || admin_call(&srv, token, limit, command))
                    .await??;
            outln!("{}", serde_json::to_string_pretty(&answer)?);
        }
        Command::Watch { url, count } => {
            commands::watch_document(&server, &url, count, limit, print_json).await?
        }
        Command::Bench(args) => bench_cmd(&ctx, args).await?,
        Command::Storm(args) => storm_cmd(&ctx, args).await?,
    }
    Ok(())
}

/// The fields of an annotation beyond its kind and body, as `toron annotate` was given them.
fn annotation_extras(
    kind: &str,
    criterion: Option<String>,
    value: Option<u8>,
    source_government: Option<String>,
    severity: Option<String>,
    departments: Vec<String>,
) -> serde_json::Map<String, Json> {
    let mut extra = serde_json::Map::new();
    for (k, v) in [
        ("criterion", criterion.map(Json::from)),
        ("value", value.map(Json::from)),
        ("source_government", source_government.map(Json::from)),
        ("severity", severity.map(Json::from)),
        (
            "departments",
            (!departments.is_empty()).then(|| Json::from(departments)),
        ),
    ] {
        if let Some(v) = v {
            extra.insert(k.into(), v);
        }
    }
    if kind == "score" {
        extra.insert("score_class".into(), Json::from("reference"));
    }
    extra
}

/// The caller's participant key and the role they act in for `session` (a role granted for
/// the session first, else one for its series).
/// The notes layers of `session` the caller may read.
/// The session as the caller sees it (`/api/v1/me/sessions`): its documents, people and the
/// series' departments.
/// `toron annotate`: a passage of a document annotated in the caller's notes layer of the
/// session; the annotation's id.
async fn annotate(
    cli_server: &str,
    token: Option<String>,
    server: &str,
    limit: Duration,
    args: AnnotateArgs,
) -> anyhow::Result<String> {
    let AnnotateArgs {
        doc,
        path,
        quote,
        prefix,
        suffix,
        kind,
        body,
        session,
        criterion,
        value,
        departments,
        source_government,
        severity,
    } = args;
    const KINDS: [&str; 7] = [
        "comment",
        "question",
        "highlight",
        "strength",
        "gap",
        "lesson",
        "score",
    ];
    if !KINDS.contains(&kind.as_str()) {
        anyhow::bail!("--kind is one of {}", KINDS.join(", "));
    }
    if kind == "score" && !(criterion.is_some() && value.is_some_and(|v| (1..=5).contains(&v))) {
        anyhow::bail!("a score needs --criterion and --value from 1 to 5");
    }
    let (me, role) = whoami(cli_server, token.clone(), &session, limit).await?;
    // Departments by key or by name, as the series lists them.
    let departments = if departments.is_empty() {
        departments
    } else {
        let s = my_session(cli_server, token.clone(), &session, limit).await?;
        crate::annotate::resolve_departments(&departments, &s["departments"])?
    };
    let id = crate::annotate::document_id(&doc)?;
    let mut conn = crate::sync_client::Connection::connect(server, limit).await?;
    let mut target = conn.find(id, limit).await?;
    let doc_key = if doc.parse::<toron_domain::policy::DocKey>().is_ok() {
        doc.clone()
    } else {
        id.to_string()
    };
    let t = crate::annotate::text_target(
        &mut target.doc,
        &doc_key,
        &crate::annotate::split_path(&path),
        &quote,
        prefix.as_deref(),
        suffix.as_deref(),
    )?;
    let extra = annotation_extras(
        &kind,
        criterion,
        value,
        source_government,
        severity,
        departments,
    );
    let a = crate::annotate::annotation(
        &crate::annotate::NewAnnotation {
            session: session.clone(),
            kind,
            body,
            author: me.clone(),
            author_role: role,
            extra,
        },
        Some(t),
    );
    let aid = a["id"].as_str().unwrap_or_default().to_string();
    crate::annotate::write_layer(
        &mut conn,
        &session,
        &me,
        "annotations",
        &aid,
        Some(&a),
        limit,
    )
    .await?;
    conn.close().await;
    Ok(aid)
}

/// `toron history`: a document's changes or a session's timeline, filtered, as a table or
/// JSON (the text to print).
async fn history(
    cli_server: &str,
    token: Option<String>,
    limit: Duration,
    args: HistoryArgs,
) -> anyhow::Result<String> {
    let HistoryArgs {
        target,
        participant,
        role,
        kind,
        since,
        until,
        date,
        clock,
        json,
    } = args;
    let srv = cli_server.to_string();
    let is_doc = target.parse::<AutomergeUrl>().is_ok()
        || target.parse::<toron_protocol::DocumentId>().is_ok();
    let (rows, text) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let api = crate::admin::Admin::new(&srv, token, limit);
        let mut rows = if is_doc {
            crate::history::history(&api, &target, participant.as_deref(), role.as_deref())?
        } else {
            let f = crate::history::TimelineFilter {
                participant,
                role,
                kind,
                ..Default::default()
            };
            crate::history::timeline(&api, &target, &f)?
        };
        // A clock time is on the session's own date (a document's first day).
        let day = match (&date, since.is_some() || until.is_some()) {
            (Some(d), _) => Some(d.clone()),
            (None, false) => None,
            (None, true) if is_doc => rows
                .iter()
                .filter_map(|e| clock.of(e))
                .min()
                .and_then(crate::history::kst_date),
            (None, true) => crate::history::session_day(&api, &target)?,
        };
        let bound = |t: &Option<String>| {
            t.as_deref()
                .map(|t| crate::history::parse_time_on(t, day.as_deref()))
                .transpose()
        };
        let (from, to) = (bound(&since)?, bound(&until)?);
        crate::history::on_clock(&mut rows, clock, from, to);
        let t = if is_doc {
            crate::history::table(&rows)
        } else {
            crate::history::timeline_table(&rows)
        };
        Ok((rows, t))
    })
    .await??;
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&rows)?)
    } else {
        text
    })
}

/// `toron at`: the document after change SEQ or at a moment.
async fn at_cmd(ctx: &Ctx<'_>, args: AtArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let AtArgs {
        url,
        seq,
        time,
        date,
        clock,
    } = args;
    let (srv, token, url) = (
        ctx.cli_server.to_string(),
        ctx.token.clone(),
        url.to_string(),
    );
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let api = crate::admin::Admin::new(&srv, token, limit);
        let time = match time {
            None => None,
            Some(t) => {
                // A clock time without a day means the document's first day, on
                // the same clock.
                let day = match date {
                    Some(d) => Some(d),
                    None => crate::history::history(&api, &url, None, None)?
                        .first()
                        .and_then(|e| clock.of(e))
                        .and_then(crate::history::kst_date),
                };
                Some(crate::history::parse_time_on(&t, day.as_deref())?)
            }
        };
        crate::history::state_at(&api, &url, seq, time, clock)
    })
    .await??;
    outln!("{}", serde_json::to_string_pretty(&answer["state"])?);
    Ok(())
}

/// `toron import`: a bundle or a CSV checked and written.
async fn import_cmd(ctx: &Ctx<'_>, args: ImportArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let ImportArgs {
        bundle,
        dry_run,
        csv,
        series,
        json,
        set_phases,
        strict,
        format,
        session,
    } = args;
    let opts = crate::import::Options {
        dry_run,
        set_phases,
        strict,
    };
    let summary = match (csv, series) {
        _ if format.as_deref() == Some("w3c") => {
            let session = session.unwrap_or_default();
            crate::import::run_w3c(
                ctx.cli_server,
                ctx.token.clone(),
                &bundle,
                &session,
                opts,
                limit,
            )
            .await?
        }
        (Some(kind), Some(series)) => {
            crate::import::run_csv(
                ctx.cli_server,
                ctx.token.clone(),
                &bundle,
                kind,
                &series,
                opts,
                limit,
            )
            .await?
        }
        _ => crate::import::run(ctx.cli_server, ctx.token.clone(), &bundle, opts, limit).await?,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        out!("{}", crate::import::summary_table(&summary));
    }
    Ok(())
}

/// `toron export`: a series or session as a bundle, or a session's annotations as W3C Web
/// Annotations.
async fn export_cmd(
    ctx: &Ctx<'_>,
    key: String,
    output: Option<std::path::PathBuf>,
    format: String,
) -> anyhow::Result<()> {
    let limit = ctx.limit;
    if !matches!(format.as_str(), "bundle" | "w3c") {
        anyhow::bail!("--format is bundle or w3c");
    }
    let (srv, token, k) = (ctx.cli_server.to_string(), ctx.token.clone(), key.clone());
    let mut v =
        tokio::task::spawn_blocking(move || {
            crate::admin::Admin::new(&srv, token, limit.max(std::time::Duration::from_secs(60)))
                .call("GET", &format!("/api/v1/export/{k}"), None)
        })
        .await??;
    if format == "w3c" {
        let bundle = toron_domain::integrity::read_export(v).map_err(anyhow::Error::msg)?;
        if !bundle.sessions.iter().any(|s| s.key == key) {
            anyhow::bail!("`{key}` is not a session: W3C exports one session's annotations");
        }
        // The annotations' sources name the server as participants reach it: its
        // `--public-url`, else the address this command was given.
        let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
        let me = tokio::task::spawn_blocking(move || {
            crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
        })
        .await??;
        let base = me["public_url"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| crate::admin::http_base(ctx.cli_server));
        v = toron_domain::w3c::export(&bundle, &key, &base).map_err(anyhow::Error::msg)?;
    }
    let text = serde_json::to_string_pretty(&v)? + "\n";
    match output {
        Some(p) => std::fs::write(&p, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
        None => out!("{text}"),
    }
    Ok(())
}

/// `toron report`: the series' report in a format and language.
async fn report_cmd(ctx: &Ctx<'_>, args: ReportArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let ReportArgs {
        key,
        format,
        lang,
        output,
        department,
        base_url,
    } = args;
    if !matches!(
        format.as_str(),
        "html" | "md" | "csv" | "xlsx" | "hwpx" | "pdf"
    ) {
        anyhow::bail!("--format is html, md, csv, xlsx, hwpx or pdf");
    }
    if matches!(format.as_str(), "xlsx" | "hwpx" | "pdf") && output.is_none() {
        anyhow::bail!("a .{format} report is a file: name it with --output (-o) FILE.{format}");
    }
    if !matches!(lang.as_str(), "ko" | "en") {
        anyhow::bail!("--lang is ko or en");
    }
    let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit.max(std::time::Duration::from_secs(60)))
            .get_bytes(&format!(
                "/api/v1/reports/{key}?format={format}&lang={lang}{}{}",
                department
                    .map(|d| format!(
                        "&department={}",
                        url::form_urlencoded::byte_serialize(d.as_bytes()).collect::<String>()
                    ))
                    .unwrap_or_default(),
                base_url
                    .map(|b| format!(
                        "&base={}",
                        url::form_urlencoded::byte_serialize(b.as_bytes()).collect::<String>()
                    ))
                    .unwrap_or_default()
            ))
    })
    .await??;
    match output {
        Some(p) => std::fs::write(&p, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
        None => out!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}

/// `toron reply`: a reply or an answer to an annotation.
async fn reply_cmd(ctx: &Ctx<'_>, args: ReplyArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let ReplyArgs {
        parent,
        session,
        body,
        kind,
        root,
    } = args;
    if !matches!(kind.as_str(), "reply" | "answer") {
        anyhow::bail!("--kind is reply or answer");
    }
    let (me, role) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mut extra = serde_json::Map::new();
    extra.insert("parent".into(), Json::from(parent.clone()));
    extra.insert("root".into(), Json::from(root.unwrap_or(parent)));
    let a = crate::annotate::annotation(
        &crate::annotate::NewAnnotation {
            session: session.clone(),
            kind,
            body: Some(body),
            author: me.clone(),
            author_role: role,
            extra,
        },
        None,
    );
    let aid = a["id"].as_str().unwrap_or_default().to_string();
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::annotate::write_layer(
        &mut conn,
        &session,
        &me,
        "annotations",
        &aid,
        Some(&a),
        limit,
    )
    .await?;
    conn.close().await;
    outln!("{aid}");
    Ok(())
}

/// `toron react`: 공감 given or taken back.
async fn react_cmd(ctx: &Ctx<'_>, args: ReactArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let ReactArgs {
        annotation,
        session,
        remove,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    let v = serde_json::json!({ "kind": "agree", "at": crate::annotate::triage_entry("open", &me, None, None)?["at"] });
    crate::annotate::write_layer(
        &mut conn,
        &session,
        &me,
        "reactions",
        &annotation,
        (!remove).then_some(&v),
        limit,
    )
    .await?;
    conn.close().await;
    Ok(())
}

/// `toron triage`: an item's status in the session's triage.
async fn triage_cmd(ctx: &Ctx<'_>, args: TriageArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let TriageArgs {
        annotation,
        session,
        status,
        note,
        finding,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let entry = crate::annotate::triage_entry(&status, &me, note.as_deref(), finding.as_deref())?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let layers = layer_ids(&mine);
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    if let (Some(f), Some(series)) = (&finding, mine["series"].as_str()) {
        crate::annotate::known_finding(&mut conn, series, f, limit).await?;
    }
    let id = crate::annotate::resolve_annotation(&mut conn, &layers, &annotation, &session, limit)
        .await?;
    crate::annotate::set_triage(&mut conn, &session, &id, &entry, limit).await?;
    conn.close().await;
    Ok(())
}

/// `toron promote`: a finding from annotations.
async fn promote_cmd(ctx: &Ctx<'_>, args: PromoteArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let PromoteArgs {
        session,
        from,
        kind,
        title,
        departments,
        priority,
        text,
        recommendation,
        pledges,
        key,
    } = args;
    if !crate::after::FINDING_TYPES.contains(&kind.as_str()) {
        anyhow::bail!(
            "--type is one of {}",
            crate::after::FINDING_TYPES.join(", ")
        );
    }
    if !matches!(priority.as_str(), "high" | "medium" | "low") {
        anyhow::bail!("--priority is high, medium or low");
    }
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let series = mine["series"].as_str().unwrap_or_default().to_string();
    let departments = crate::annotate::resolve_departments(&departments, &mine["departments"])?;
    let layers = layer_ids(&mine);
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    let mut report_doc = crate::after::report_of(&mut conn, &series, limit).await?;
    let report = toron_protocol::json::doc_to_json(&report_doc.doc);
    let all = crate::after::annotations_in(&mut conn, &layers, limit).await?;
    let mut sources = Vec::new();
    let mut ids = Vec::new();
    let mut cases = Vec::new();
    let mut from_government = None;
    for given in &from {
        let (id, a) = crate::after::pick(&all, given, &session)?;
        let name = a["ref"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| id.clone());
        sources.push(json!({ "kind": "annotation", "ref": name }));
        cases.extend(
            a["subject_cases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string)),
        );
        from_government = from_government.or(a["source_government"].as_str().map(str::to_string));
        ids.push(id);
    }
    let key = key.unwrap_or_else(|| crate::after::next_finding_key(&report, &session));
    let mut finding = json!({
        "key": key, "type": kind, "title": toron_domain::anchor::nfc(&title),
        "text": text.as_deref().map(toron_domain::anchor::nfc).unwrap_or_default(),
        "departments": departments, "priority": priority, "pledges": pledges,
        "sources": sources, "promoted_by": me, "promoted_at": crate::annotate::now_kst(),
    });
    if let Some(f) = mine["field"].as_str() {
        finding["fields"] = json!([f]);
    }
    if let Some(r) = recommendation {
        finding["recommendation"] = json!(toron_domain::anchor::nfc(&r));
    }
    cases.dedup();
    if let Some(c) = cases.first() {
        finding["case"] = json!(c);
    }
    if let (Some(g), "lesson") = (&from_government, kind.as_str()) {
        finding["source_government"] = json!(g);
    }
    crate::after::write_finding(&mut conn, &mut report_doc, &series, &finding, limit).await?;
    // Each source is decided: accepted into the finding (the queue and the report say so).
    let entry = crate::after::accepted_into(&me, &key)?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    crate::annotate::set_triages(&mut conn, &session, &ids, &entry, limit).await?;
    conn.close().await;
    outln!("{key}");
    Ok(())
}

/// `toron respond`: a department's response to a finding.
async fn respond_cmd(ctx: &Ctx<'_>, args: RespondArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let RespondArgs {
        finding,
        series,
        department,
        stance,
        plan,
        due,
        progress,
    } = args;
    let srv = ctx.cli_server.to_string();
    let token = ctx.token.clone();
    let me = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
    })
    .await??;
    let me = me["participant"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("responding needs a participant's token (--token)"))?
        .to_string();
    let response = crate::after::response(
        &finding,
        &department,
        &me,
        &stance,
        plan.as_deref(),
        due.as_deref(),
        progress.as_deref(),
    )?;
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::after::write_response(&mut conn, &series, &department, &finding, &response, limit)
        .await?;
    conn.close().await;
    Ok(())
}

/// `toron evaluate`: the caller's evaluation form of a case.
async fn evaluate_cmd(ctx: &Ctx<'_>, args: EvaluateArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let EvaluateArgs {
        case,
        session,
        scores,
        comments,
        strengths,
        gaps,
        lessons,
        overall,
        submit,
    } = args;
    let (me, _) = whoami(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let mine = my_session(ctx.cli_server, ctx.token.clone(), &session, limit).await?;
    let criteria: Vec<String> = mine["template"]["criteria"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["key"].as_str().map(str::to_string))
        .collect();
    let mut edit = crate::after::FormEdit {
        submit,
        ..Default::default()
    };
    for s in &scores {
        edit.scores.push(crate::after::score_arg(s)?);
    }
    for c in &comments {
        let (k, t) = c
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--comment {c}: write criterion=text"))?;
        edit.comments.push((k.trim().to_string(), t.to_string()));
    }
    for (k, v) in [
        ("strengths", strengths),
        ("gaps", gaps),
        ("lessons", lessons),
        ("overall", overall),
    ] {
        if let Some(v) = v {
            edit.texts.push((k, v));
        }
    }
    let mut conn = crate::sync_client::Connection::connect(&ctx.server, limit).await?;
    crate::after::write_evaluation(&mut conn, &case, &me, &criteria, &edit, limit).await?;
    conn.close().await;
    Ok(())
}

/// `toron replay`: the session's timeline played back.
async fn replay_cmd(ctx: &Ctx<'_>, args: ReplayArgs) -> anyhow::Result<()> {
    let limit = ctx.limit;
    let ReplayArgs {
        session,
        speed,
        from,
        date,
        json,
    } = args;
    let (srv, token) = (ctx.cli_server.to_string(), ctx.token.clone());
    let n = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let from = match from {
            None => None,
            Some(f) => {
                // The timeline is on the clock of what happened: a clock time
                // without a day is on the session's own date.
                let day = match date {
                    Some(d) => Some(d),
                    None => crate::history::session_day(
                        &crate::admin::Admin::new(&srv, token.clone(), limit),
                        &session,
                    )?,
                };
                Some(crate::history::parse_time_on(&f, day.as_deref())?)
            }
        };
        crate::history::replay(&srv, token.as_deref(), &session, &speed, from, |e| {
            if json {
                outln!("{e}");
            } else {
                outln!("{}", crate::history::timeline_line(e));
            }
        })
    })
    .await??;
    eprintln!("replayed {n} entries");
    Ok(())
}

/// `toron bench`: the load generator.
async fn bench_cmd(ctx: &Ctx<'_>, args: BenchArgs) -> anyhow::Result<()> {
    let BenchArgs {
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
    let cfg = bench::BenchConfig {
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
    let report = bench::run(cfg, |p| eprintln!("bench: {p}")).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.human());
    }
    Ok(())
}

/// `toron storm`: many clients reconnecting at once.
async fn storm_cmd(ctx: &Ctx<'_>, args: StormArgs) -> anyhow::Result<()> {
    let StormArgs {
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

/// Of comma-separated servers (a cluster's nodes), the first whose `/healthz` answers `ok`.
async fn first_answering(servers: &str, limit: Duration) -> anyhow::Result<String> {
    let candidates: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let each = (limit / candidates.len().max(1) as u32).max(Duration::from_secs(1));
    let list = candidates.clone();
    let found = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(each))
            .build()
            .new_agent();
        list.into_iter().find(|s| {
            let url = format!("{}/healthz", crate::admin::http_base(s));
            agent.get(&url).call().is_ok_and(|r| r.status() == 200)
        })
    })
    .await?;
    found.ok_or_else(|| anyhow::anyhow!("none of the servers answered: {}", candidates.join(", ")))
}

async fn my_session(
    server: &str,
    token: Option<String>,
    session: &str,
    limit: std::time::Duration,
) -> anyhow::Result<Json> {
    let srv = server.to_string();
    let mine = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/me/sessions", None)
    })
    .await??;
    mine["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["key"] == session)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("you take no part in session {session}"))
}

/// The session's notes layers the caller may read.
fn layer_ids(s: &Json) -> Vec<toron_protocol::DocumentId> {
    s["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["doc"].as_str()?.parse().ok())
        .collect()
}

async fn whoami(
    server: &str,
    token: Option<String>,
    session: &str,
    limit: std::time::Duration,
) -> anyhow::Result<(String, String)> {
    let srv = server.to_string();
    let me = tokio::task::spawn_blocking(move || {
        crate::admin::Admin::new(&srv, token, limit).call("GET", "/api/v1/whoami", None)
    })
    .await??;
    let who = me["participant"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("annotating needs a participant's token (--token)"))?
        .to_string();
    let roles = me["roles"].as_array().cloned().unwrap_or_default();
    let pick = |scope: &str| {
        roles.iter().find_map(|g| {
            (g["scope"] == scope && (scope == "series" || g["name"] == session))
                .then(|| g["role"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let role = pick("session")
        .or_else(|| pick("series"))
        .ok_or_else(|| anyhow::anyhow!("you hold no role in session {session}"))?;
    Ok((who, role))
}
