//! `toron admin …`: participants, roles, tokens, sessions, cases, documents, departments,
//! templates, agendas and invite sheets, through the admin API.

use std::time::Duration;

use clap::Subcommand;

use serde_json::{json, Value as Json};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum ParticipantCommand {
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
pub(crate) struct RoleArgs {
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
pub(crate) enum TokenCommand {
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
pub(crate) enum SessionCommand {
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
pub(crate) enum CaseCommand {
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
pub(crate) enum DocCommand {
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
    command: Command,
) -> anyhow::Result<Json> {
    use serde_json::json;
    let api = crate::admin::Admin::new(cli_server, token, limit);
    let role_body = |a: &RoleArgs| json!({ "participant": a.participant, "role": a.role, "session": a.session, "series": a.series });
    match command {
        Command::Whoami => api.call("GET", "/api/v1/whoami", None),
        Command::Docs => api.call("GET", "/api/v1/docs", None),
        Command::Participant(ParticipantCommand::Add { key, name, affiliation, kind, attribution, department }) => api.call(
            "POST",
            "/api/v1/participants",
            Some(json!({ "key": key, "name": name, "affiliation": affiliation, "kind": kind, "attribution": attribution, "department": department })),
        ),
        Command::Participant(ParticipantCommand::List) => api.call("GET", "/api/v1/participants", None),
        Command::Grant(a) => api.call("POST", "/api/v1/roles", Some(role_body(&a))),
        Command::Revoke(a) => api.call("DELETE", "/api/v1/roles", Some(role_body(&a))),
        Command::Invites { session, reissue, base, csv } => {
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
        Command::Token(TokenCommand::Issue { participant }) => api.call("POST", &format!("/api/v1/participants/{participant}/token"), None),
        Command::Token(TokenCommand::Revoke { participant }) => api.call("DELETE", &format!("/api/v1/participants/{participant}/token"), None),
        Command::Session(SessionCommand::Add { key, series, title, phase, facilitator }) => api.call(
            "POST",
            "/api/v1/sessions",
            Some(json!({ "key": key, "series": series, "title": title, "phase": phase, "facilitator": facilitator })),
        ),
        Command::Session(SessionCommand::Phase { key, phase, force }) => api.call("PUT", &format!("/api/v1/sessions/{key}/phase"), Some(json!({ "phase": phase, "force": force }))),
        Command::Session(SessionCommand::Item { key, item }) => {
            api.call("PUT", &format!("/api/v1/sessions/{key}/item"), Some(json!({ "item": item })))
        }
        Command::Session(SessionCommand::List) => api.call("GET", "/api/v1/sessions", None),
        Command::Case(CaseCommand::Add { key, session, presenters }) => {
            api.call("POST", "/api/v1/cases", Some(json!({ "key": key, "session": session, "presenters": presenters })))
        }
        Command::Doc(DocCommand::Register { key }) => api.call("POST", "/api/v1/documents", Some(json!({ "key": key }))),
        Command::Department { key, series, name, name_en } => api.call(
            "PUT",
            &format!("/api/v1/series/{series}/departments/{key}"),
            Some(json!({ "name_ko": name, "name_en": name_en })),
        ),
        Command::Template { series, criteria } => {
            let criteria = criteria.iter().map(|c| criterion(c)).collect::<anyhow::Result<Vec<_>>>()?;
            api.call("PUT", &format!("/api/v1/series/{series}/template"), Some(json!({ "criteria": criteria })))
        }
        Command::Agenda { session, items } => {
            let items = items.iter().map(|i| agenda_item(i)).collect::<anyhow::Result<Vec<_>>>()?;
            api.call("PUT", &format!("/api/v1/sessions/{session}/agenda"), Some(json!({ "items": items })))
        }
    }
}

pub(crate) async fn run(ctx: &Ctx<'_>, command: Command) -> anyhow::Result<()> {
    let (srv, token, limit) = (ctx.cli_server.to_string(), ctx.token.clone(), ctx.limit);
    let answer =
        tokio::task::spawn_blocking(move || admin_call(&srv, token, limit, command)).await??;
    outln!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
