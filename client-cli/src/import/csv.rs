//! `toron import --csv`: participants or annotations from a spreadsheet, joined to a series.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::Duration;
use toron_domain::bundle::Bundle;

use super::{export_of, read_limited, run_bytes, Options};

/// What a CSV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvKind {
    /// key, name, affiliation, kind, department, government, attribution, session, role
    Participants,
    /// ref, session, kind, author, author_role, created_at, doc, path, quote, prefix, suffix,
    /// body, parent, criterion, value, departments, source_government, severity, recorded_by,
    /// subject_cases
    Annotations,
}

/// Imports a CSV of participants or annotations into `series`: the rows join the series as
/// it stands (its export), and the whole is checked and imported like a bundle — so a row
/// refers to what the server already has, and a second run creates nothing.
pub async fn run_csv(
    server: &str,
    token: Option<String>,
    path: &std::path::Path,
    kind: CsvKind,
    series: &str,
    opts: Options,
    limit: Duration,
) -> anyhow::Result<Value> {
    let (name, bytes) = read_limited(path)?;
    let mut bundle = export_of(server, token.clone(), series, limit).await?;
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = rd
        .headers()
        .with_context(|| format!("{name}: no header line"))?
        .clone();
    let required: &[&str] = match kind {
        CsvKind::Participants => &["key", "name", "kind", "attribution"],
        CsvKind::Annotations => &[
            "ref",
            "session",
            "kind",
            "author",
            "author_role",
            "created_at",
        ],
    };
    for r in required {
        if !headers.iter().any(|x| x == *r) {
            bail!(
                "{name}: the header has no `{r}` column (it needs {})",
                required.join(", ")
            );
        }
    }
    // Where each appended row went, to name its line in an error about it.
    let mut placed: Vec<(String, usize)> = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{name} line {line}: not valid CSV"))?;
        let row = CsvRow {
            headers: &headers,
            rec: &rec,
            file: &name,
            line,
        };
        let at = match kind {
            CsvKind::Participants => participant_row(&row, &mut bundle, series)?,
            CsvKind::Annotations => annotation_row(&row, &mut bundle, series)?,
        };
        if let Some(place) = at {
            placed.push((place, line));
        }
    }
    let merged = serde_json::to_vec(&bundle)?;
    let parsed =
        Bundle::parse(&merged).map_err(|all| csv_problems(&name, series, &placed, &all))?;
    run_bytes(server, token, merged, parsed, opts, limit).await
}

/// A bundle's problems said of a CSV file: each at its line and column where it is in a row
/// this file added (`placed`: where each row went), else of the series it joined.
pub(super) fn csv_problems(
    name: &str,
    series: &str,
    placed: &[(String, usize)],
    all: &toron_domain::bundle::BundleErrors,
) -> anyhow::Error {
    let told: Vec<String> = all
        .errors
        .iter()
        .map(
            |e| match placed.iter().find(|(p, _)| e.place.starts_with(p.as_str())) {
                Some((p, line)) => {
                    let column = e.place[p.len()..].trim_start_matches('.');
                    format!(
                        "{name} line {line}{}: {}",
                        if column.is_empty() {
                            String::new()
                        } else {
                            format!(", column {column}")
                        },
                        e.message
                    )
                }
                None => format!("{name} (joined to series {series}): {e}"),
            },
        )
        .collect();
    let more = if all.more > 0 {
        format!("\n… and {} more", all.more)
    } else {
        String::new()
    };
    anyhow::anyhow!("{}{more}", told.join("\n"))
}

/// One row of a CSV file, read by column name.
pub(super) struct CsvRow<'r> {
    headers: &'r csv::StringRecord,
    rec: &'r csv::StringRecord,
    file: &'r str,
    line: usize,
}

impl CsvRow<'_> {
    /// The cell of column `h`, NFC, if not empty.
    fn get(&self, h: &str) -> Option<String> {
        self.headers
            .iter()
            .position(|x| x == h)
            .and_then(|c| self.rec.get(c))
            .map(anchor_nfc)
            .filter(|v| !v.is_empty())
    }

    /// The cell of column `h` as a `;`-separated list.
    fn list(&self, h: &str) -> Vec<String> {
        self.get(h)
            .map(|v| {
                v.split(';')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cell of column `h`, which must not be empty.
    fn required(&self, h: &str) -> anyhow::Result<String> {
        self.get(h)
            .ok_or_else(|| anyhow::anyhow!("{}: empty", self.at(h)))
    }

    /// Where a cell is, for an error about it.
    fn at(&self, what: &str) -> String {
        format!("{} line {}, column {what}", self.file, self.line)
    }
}

/// Adds a participant row to `bundle` (and their role in a session, if given). Returns where
/// the participant went, if new.
pub(super) fn participant_row(
    row: &CsvRow<'_>,
    bundle: &mut Value,
    series: &str,
) -> anyhow::Result<Option<String>> {
    let key = row.required("key")?;
    let mut p = json!({
        "key": key, "name": row.required("name")?,
        "affiliation": row.get("affiliation").unwrap_or_default(),
        "kind": row.required("kind")?,
        "attribution": row.required("attribution")?,
    });
    if let Some(v) = row.get("government") {
        p["government"] = json!(v);
    }
    // A department by key or by name, as the series lists it.
    if let Some(v) = row.get("department") {
        let k = crate::annotate::resolve_departments(&[v], &bundle["departments"])
            .map_err(|e| anyhow::anyhow!("{}: {e}", row.at("department")))?;
        p["department"] = json!(k[0]);
    }
    let list = bundle["participants"]
        .as_array_mut()
        .context("export: participants")?;
    let mut placed = None;
    if !list.iter().any(|x| x["key"] == key.as_str()) {
        placed = Some(format!("participants[{}]", list.len()));
        list.push(p);
    }
    if let (Some(session), Some(role)) = (row.get("session"), row.get("role")) {
        let s = bundle["sessions"]
            .as_array_mut()
            .and_then(|ss| ss.iter_mut().find(|s| s["key"] == session.as_str()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: session `{session}` is not in series {series}",
                    row.at("session")
                )
            })?;
        let r = json!({ "participant": key, "role": role });
        let roles = s["roles"].as_array_mut().context("export: roles")?;
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    Ok(placed)
}

/// Adds an annotation row to its session in `bundle`. Returns where it went, if new.
pub(super) fn annotation_row(
    row: &CsvRow<'_>,
    bundle: &mut Value,
    series: &str,
) -> anyhow::Result<Option<String>> {
    let session = row.get("session").unwrap_or_default();
    let mut a = json!({
        "session": session, "kind": row.get("kind"), "author": row.get("author"),
        "author_role": row.get("author_role"), "created_at": row.get("created_at"),
        "capture": row.get("capture").unwrap_or_else(|| "import".into()),
        "visibility": "session", "source": { "kind": "import", "file": row.file },
        "body": row.get("body"),
    });
    for k in [
        "ref",
        "parent",
        "root",
        "criterion",
        "source_government",
        "severity",
        "recorded_by",
        "layer_doc",
    ] {
        if let Some(v) = row.get(k) {
            a[k] = json!(v);
        }
    }
    if let Some(v) = row.get("value") {
        a["value"] = json!(v
            .parse::<u8>()
            .map_err(|_| anyhow::anyhow!("{}: `{v}` is not a score 1–5", row.at("value")))?);
    }
    let l = row.list("subject_cases");
    if !l.is_empty() {
        a["subject_cases"] = json!(l);
    }
    let l = row.list("departments");
    if !l.is_empty() {
        a["departments"] = json!(
            crate::annotate::resolve_departments(&l, &bundle["departments"])
                .map_err(|e| anyhow::anyhow!("{}: {e}", row.at("departments")))?
        );
    }
    if let (Some(doc), Some(path), Some(quote)) =
        (row.get("doc"), row.get("path"), row.get("quote"))
    {
        a["target"] = json!({
            "type": "text_range", "doc": doc,
            "path": crate::annotate::split_path(&path),
            "quote": { "exact": quote, "prefix": row.get("prefix").unwrap_or_default(), "suffix": row.get("suffix").unwrap_or_default() },
        });
    } else if let Some(doc) = row.get("doc") {
        a["target"] = json!({ "type": "document", "doc": doc });
    }
    let sessions = bundle["sessions"]
        .as_array_mut()
        .context("export: sessions")?;
    let si = sessions
        .iter()
        .position(|s| s["key"] == session.as_str())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: session `{session}` is not in series {series}",
                row.at("session")
            )
        })?;
    let anns = sessions[si]["annotations"]
        .as_array_mut()
        .context("export: annotations")?;
    let same = |x: &Value| x.get("ref").is_some() && x.get("ref") == a.get("ref");
    if anns.iter().any(same) {
        return Ok(None);
    }
    let placed = format!("sessions[{si}].annotations[{}]", anns.len());
    anns.push(a);
    Ok(Some(placed))
}

pub(super) fn anchor_nfc(s: &str) -> String {
    toron_domain::anchor::nfc(s)
}
