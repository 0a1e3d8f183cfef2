//! `toron import BUNDLE.json [--dry-run]`: loads a debate bundle into a server.
//!
//! 1. The file is read and checked completely — size, JSON, every field's type, NFC, keys,
//!    references, anchors — before anything is sent ([`Bundle::parse`]); the server checks it
//!    again with the same code.
//! 2. `POST /api/v1/import` brings the registry to what the bundle describes and returns the
//!    batch id and an importer token.
//! 3. The content is written through the sync protocol as the importer, one Automerge change
//!    per imported item, dated with the item's own time (so the timeline tells the session as
//!    it happened): cases, evaluations, every annotation into its notes layer (with Automerge
//!    cursors for text anchors), reactions, triage, findings, department responses. Items
//!    already present are left alone, so a second run creates nothing.
//! 4. `POST /api/v1/import/{batch}/applied` logs the import in each session's timeline and sets
//!    the sessions' phases.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use toron_domain::bundle::{Annotation, Bundle, MAX_BUNDLE_BYTES};

use crate::admin::Admin;
use crate::sync_client::{url_with_token, Connection};

mod content;
mod csv;
mod w3c;

pub use content::write_content;
pub use csv::{run_csv, CsvKind};
pub use w3c::run_w3c;

/// What the content step did, per kind of item.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ContentCounts {
    pub created: BTreeMap<String, u64>,
    pub unchanged: BTreeMap<String, u64>,
}

impl ContentCounts {
    fn count(&mut self, what: &str, created: bool) {
        let m = if created {
            &mut self.created
        } else {
            &mut self.unchanged
        };
        *m.entry(what.to_string()).or_default() += 1;
    }
}

/// Reads and checks a bundle file without sending anything.
pub fn read_bundle(path: &std::path::Path) -> anyhow::Result<(Vec<u8>, Bundle)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_BUNDLE_BYTES as u64 {
        bail!(
            "{}: the file is {:.1} MB; a bundle may be at most {} MB",
            path.display(),
            size as f64 / 1_048_576.0,
            MAX_BUNDLE_BYTES / 1_048_576
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bundle = Bundle::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((bytes, bundle))
}

/// How many documents [`write_content`] visits (for the progress bar).
pub fn document_count(b: &Bundle) -> u64 {
    let mut n = 0u64;
    for s in &b.sessions {
        let mut layers: std::collections::BTreeSet<String> =
            s.annotations.iter().map(Annotation::layer).collect();
        for r in &s.reactions {
            layers.insert(format!("notes:{}:{}", s.key, r.participant));
        }
        n += (s.cases.len() + s.evaluations.len() + layers.len()) as u64;
        n += u64::from(!s.triage.is_empty());
    }
    n += u64::from(!b.findings.is_empty());
    let depts: std::collections::BTreeSet<&str> = b
        .department_responses
        .iter()
        .map(|r| r.department.as_str())
        .collect();
    n + depts.len() as u64
}

/// How an import runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Check and count, write nothing.
    pub dry_run: bool,
    /// Also move sessions that exist already to the bundle's phase (without it only the
    /// sessions the import creates get it: a re-import never moves a live session back).
    pub set_phases: bool,
    /// Refuse a bundle with warnings (what is valid but suspicious), as if they were errors.
    pub strict: bool,
}

/// The whole import. Prints progress to standard error; returns the summary as JSON.
pub async fn run(
    server: &str,
    token: Option<String>,
    path: &std::path::Path,
    opts: Options,
    limit: Duration,
) -> anyhow::Result<Value> {
    let (bytes, bundle) = read_bundle(path)?;
    run_bytes(server, token, bytes, bundle, opts, limit).await
}

async fn run_bytes(
    server: &str,
    token: Option<String>,
    bytes: Vec<u8>,
    bundle: Bundle,
    opts: Options,
    limit: Duration,
) -> anyhow::Result<Value> {
    let dry_run = opts.dry_run;
    // What is valid but suspicious is said before anything is sent; `--strict` stops here.
    let warnings = bundle.warnings();
    if opts.strict && !warnings.is_empty() {
        bail!(
            "--strict: {} warning{}, nothing imported:\n  {}",
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" },
            warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    let strict = opts.strict;
    let (srv, tok, body) = (server.to_string(), token.clone(), bytes.clone());
    let meta = tokio::task::spawn_blocking(move || {
        Admin::new(&srv, tok, limit.max(Duration::from_secs(60))).post_bytes(
            &format!("/api/v1/import?dry_run={dry_run}&strict={strict}"),
            body,
        )
    })
    .await??;
    let batch = meta["batch"].as_str().unwrap_or_default().to_string();
    let importer_token = meta["importer"]["token"].as_str().map(str::to_string);
    let progress = indicatif::ProgressBar::new(document_count(&bundle));
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} documents")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress.set_message(if dry_run { "checking" } else { "writing" });
    let sync_token = if dry_run {
        token.clone()
    } else {
        importer_token
    };
    let conn = Connection::connect(&url_with_token(server, sync_token.as_deref()), limit).await?;
    let (content, per_session) =
        write_content(&bundle, &batch, conn, dry_run, limit, &progress).await?;
    progress.finish_and_clear();
    let mut applied = Value::Null;
    if !dry_run {
        let phases: BTreeMap<&str, &str> = bundle
            .sessions
            .iter()
            .map(|s| (s.key.as_str(), s.phase.as_str()))
            .collect();
        let (srv, tok) = (server.to_string(), token);
        let body =
            json!({ "sessions": per_session, "phases": phases, "set_phases": opts.set_phases });
        let b = batch.clone();
        applied = tokio::task::spawn_blocking(move || {
            Admin::new(&srv, tok, limit).call(
                "POST",
                &format!("/api/v1/import/{b}/applied"),
                Some(body),
            )
        })
        .await??;
    }
    Ok(json!({
        "batch": batch,
        "dry_run": dry_run,
        "registry": meta["counts"],
        "content": content,
        "phases_set": applied["phases_set"],
        "phases_kept": applied["phases_kept"],
        "warnings": warnings,
    }))
}

/// The summary as a table: what was created and what was already there, per kind of item.
pub fn summary_table(summary: &Value) -> String {
    let mut rows: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for part in ["registry", "content"] {
        for (col, idx) in [("created", 0), ("unchanged", 1)] {
            if let Some(m) = summary[part][col].as_object() {
                for (k, v) in m {
                    let e = rows.entry(k.clone()).or_default();
                    let n = v.as_u64().unwrap_or(0);
                    if idx == 0 {
                        e.0 += n;
                    } else {
                        e.1 += n;
                    }
                }
            }
        }
    }
    let dry = summary["dry_run"].as_bool().unwrap_or(false);
    let mut s = format!(
        "{:<22} {:>9} {:>14}\n",
        "",
        if dry { "to create" } else { "created" },
        "already there"
    );
    for (k, (c, u)) in rows {
        s.push_str(&format!("{k:<22} {c:>9} {u:>14}\n"));
    }
    let changes: Vec<&str> = summary["registry"]["changes"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !changes.is_empty() {
        s.push_str(if dry { "would change:\n" } else { "changed:\n" });
        for c in changes {
            s.push_str(&format!("  {c}\n"));
        }
    }
    let field = |p: &Value, k: &str| p[k].as_str().unwrap_or("?").to_string();
    let phases = |k: &str| summary[k].as_object().into_iter().flatten();
    for (session, p) in phases("phases_set") {
        let (from, to) = (field(p, "from"), field(p, "to"));
        s.push_str(&format!("phase of {session}: {from} → {to}\n"));
    }
    for (session, p) in phases("phases_kept") {
        let (phase, says) = (field(p, "phase"), field(p, "bundle_says"));
        s.push_str(&format!(
            "phase of {session} kept: {phase} (the bundle says {says}; --set-phases moves it)\n"
        ));
    }
    if let Some(w) = summary["warnings"].as_array().filter(|w| !w.is_empty()) {
        s.push_str(&format!(
            "{} warning{} (imported all the same; --strict refuses):\n",
            w.len(),
            if w.len() == 1 { "" } else { "s" }
        ));
        for x in w {
            s.push_str(&format!(
                "  warning: {}: {}\n",
                x["place"].as_str().unwrap_or("?"),
                x["message"].as_str().unwrap_or("?")
            ));
        }
    }
    s.push_str(&format!(
        "batch {}\n",
        summary["batch"].as_str().unwrap_or("?")
    ));
    s
}

/// The series or session as the server holds it (its export), the base an import of CSV rows
/// or W3C annotations joins.
async fn export_of(
    server: &str,
    token: Option<String>,
    key: &str,
    limit: Duration,
) -> anyhow::Result<Value> {
    let (srv, k) = (server.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || {
        Admin::new(&srv, token, limit.max(Duration::from_secs(60))).call(
            "GET",
            &format!("/api/v1/export/{k}"),
            None,
        )
    })
    .await?
}

/// A file an import reads beside a bundle (CSV, W3C), with its name: refused before it is
/// read when it is larger than a bundle may be.
fn read_limited(path: &std::path::Path) -> anyhow::Result<(String, Vec<u8>)> {
    let name = path.display().to_string();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {name}"))?
        .len();
    if size > MAX_BUNDLE_BYTES as u64 {
        bail!(
            "{name}: the file is {:.1} MB; at most {} MB",
            size as f64 / 1_048_576.0,
            MAX_BUNDLE_BYTES / 1_048_576
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
    Ok((name, bytes))
}
