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
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use toron_domain::bundle::{Annotation, Bundle, Session, Target, MAX_BUNDLE_BYTES};
use toron_domain::policy::DocKey;
use toron_domain::schema;
use toron_protocol::json::put_json;

use crate::admin::Admin;
use crate::sync_client::{url_with_token, ClientError, Connection, DocSync};

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

/// UTC seconds of an RFC 3339 time (Automerge change times are seconds).
fn secs(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp())
}

fn commit_at(doc: &mut AutoCommit, time: Option<i64>) {
    let mut opts = CommitOptions::default();
    if let Some(t) = time {
        opts = opts.with_time(t);
    }
    doc.commit_with(opts);
}

fn get_map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (automerge::Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// The object at `path`, creating maps on the way.
fn ensure_map(doc: &mut AutoCommit, path: &[&str]) -> anyhow::Result<ObjId> {
    let mut obj = ROOT;
    for p in path {
        obj = match get_map(doc, &obj, p) {
            Some(o) => o,
            None => doc.put_object(&obj, *p, ObjType::Map)?,
        };
    }
    Ok(obj)
}

/// Writes `value` under `key` of the map at `path`, unless the key exists. Returns whether it
/// wrote.
fn put_new(doc: &mut AutoCommit, path: &[&str], key: &str, value: &Value) -> anyhow::Result<bool> {
    let obj = ensure_map(doc, path)?;
    if doc.get(&obj, key)?.is_some() {
        return Ok(false);
    }
    put_json(doc, &obj, key.into(), value)?;
    Ok(true)
}

/// Puts the root fields of `content` that the document lacks, or holds only as its skeleton
/// left them (the server gives every document a skeleton when it is registered:
/// `toron_domain::provision::skeleton`): a form's `draft` status and empty criteria take the
/// bundle's; what anyone wrote since stays. Whether anything was written.
fn init_root(doc: &mut AutoCommit, key: &DocKey, content: &Value) -> anyhow::Result<bool> {
    let Value::Object(m) = content else {
        return Ok(false);
    };
    let skeleton = toron_domain::provision::skeleton(key);
    let now = toron_protocol::json::doc_to_json(doc);
    let mut wrote = false;
    for (k, v) in m {
        let put = match now.get(k) {
            None => true,
            Some(current) => current != v && skeleton.get(k) == Some(current),
        };
        if put {
            put_json(doc, &ROOT, k.as_str().into(), v)?;
            wrote = true;
        }
    }
    Ok(wrote)
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The text object at `path` of a document, if there is one.
fn text_obj(doc: &AutoCommit, path: &[String]) -> Option<ObjId> {
    let mut obj = ROOT;
    for p in path {
        obj = doc.get(&obj, p.as_str()).ok()??.1;
    }
    matches!(doc.object_type(&obj), Ok(ObjType::Text)).then_some(obj)
}

/// An annotation as its layer stores it: the bundle's fields, its id, the batch, and for a
/// text anchor the Automerge cursors and heads of the target as written.
fn annotation_json(
    a: &Annotation,
    batch: &str,
    targets: &mut BTreeMap<String, AutoCommit>,
) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(a)?;
    v["id"] = json!(a.uuid());
    v["import_batch"] = json!(batch);
    if let Some(Target::TextRange {
        doc,
        path,
        position,
        quote,
        ..
    }) = &a.target
    {
        if let Some(d) = targets.get_mut(doc) {
            if let Some(t) = text_obj(d, path) {
                // Without a position (a CSV row), the quote tells where it is.
                let text = d.text(&t).unwrap_or_default();
                let Some(p) = toron_domain::anchor::locate(&text, quote, *position).range() else {
                    return Ok(without_nulls(&v));
                };
                if position.is_none() {
                    v["target"]["position"] = json!(p);
                }
                let heads = d.get_heads();
                let start = d.get_cursor(&t, p.start, None);
                let end = d.get_cursor(&t, p.end, None);
                if let (Ok(s), Ok(e)) = (start, end) {
                    v["target"]["cursor"] = json!({
                        "start": s.to_string(),
                        "end": e.to_string(),
                    });
                    v["target"]["heads"] =
                        json!(heads.iter().map(|h| h.to_string()).collect::<Vec<_>>());
                }
            }
        }
    }
    Ok(without_nulls(&v))
}

/// The documents' content for one bundle, and the order to write it in.
struct Writer<'a> {
    conn: Option<Connection>,
    limit: Duration,
    dry: bool,
    counts: ContentCounts,
    /// Documents written so far (targets of anchors), by key.
    written: BTreeMap<String, AutoCommit>,
    progress: &'a indicatif::ProgressBar,
}

impl Writer<'_> {
    async fn open(&mut self, key: &DocKey) -> anyhow::Result<DocSync> {
        let id = key.document_id();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(DocSync::new(id, AutoCommit::new()));
        };
        match conn.find(id, self.limit).await {
            Ok(d) => Ok(d),
            Err(ClientError::Unavailable(_)) => Ok(DocSync::new(id, AutoCommit::new())),
            Err(e) => Err(anyhow::anyhow!("{key}: {e}")),
        }
    }

    async fn save(&mut self, key: &DocKey, mut d: DocSync) -> anyhow::Result<()> {
        if !self.dry {
            if let Some(conn) = self.conn.as_mut() {
                conn.push(&mut d, self.limit)
                    .await
                    .with_context(|| format!("writing {key}"))?;
            }
        }
        self.written.insert(key.to_string(), d.doc);
        self.progress.inc(1);
        Ok(())
    }
}

/// Writes the content of `b` (or, with `dry`, only counts what it would write). `conn` is a
/// connection as the importer (reading with the caller's token for a dry run).
pub async fn write_content(
    b: &Bundle,
    batch: &str,
    conn: Connection,
    dry: bool,
    limit: Duration,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(ContentCounts, BTreeMap<String, Value>)> {
    let mut w = Writer {
        conn: Some(conn),
        limit,
        dry,
        counts: ContentCounts::default(),
        written: BTreeMap::new(),
        progress,
    };
    // The report first: a triage decision links one of its findings, which the server checks.
    w.write_report(b).await?;
    let mut per_session: BTreeMap<String, Value> = BTreeMap::new();
    for s in &b.sessions {
        let before = w.counts.created.clone();
        w.write_session(b, s, batch).await?;
        let created: BTreeMap<String, u64> = w
            .counts
            .created
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        per_session.insert(s.key.clone(), json!(created));
    }
    w.write_responses(b).await?;
    if let Some(c) = w.conn.take() {
        c.close().await;
    }
    Ok((w.counts, per_session))
}

/// An annotation or a reaction of a notes layer, written in the order they happened.
enum LayerItem<'b> {
    Annotation(&'b Annotation),
    Reaction(&'b toron_domain::bundle::Reaction),
}

impl Writer<'_> {
    /// The series' report with its findings.
    async fn write_report(&mut self, b: &Bundle) -> anyhow::Result<()> {
        if b.findings.is_empty() {
            return Ok(());
        }
        let key = DocKey::Report {
            series: b.series.key.clone(),
        };
        let mut d = self.open(&key).await?;
        let status = b
            .series
            .rest
            .get("report")
            .and_then(|r| r.get("status"))
            .cloned()
            .unwrap_or(json!("drafting"));
        if init_root(
            &mut d.doc,
            &key,
            &json!({ "schema": schema::tag(&key), "status": status, "findings": {} }),
        )? {
            commit_at(&mut d.doc, None);
        }
        for f in &b.findings {
            let v = without_nulls(&serde_json::to_value(f)?);
            let created = put_new(&mut d.doc, &["findings"], &f.key, &v)?;
            commit_at(&mut d.doc, None);
            self.counts.count("findings", created);
        }
        self.save(&key, d).await
    }

    /// One session: cases and evaluations first (annotations anchor into them), then the
    /// notes layers, then the triage.
    async fn write_session(&mut self, b: &Bundle, s: &Session, batch: &str) -> anyhow::Result<()> {
        let start = s
            .rest
            .get("scheduled")
            .and_then(|x| x.get("start"))
            .and_then(Value::as_str)
            .and_then(secs);
        for c in &s.cases {
            let key = DocKey::Case {
                case: c.key.clone(),
            };
            let mut d = self.open(&key).await?;
            let content = without_nulls(&json!({
                "schema": schema::tag(&key), "case": c.key, "government": c.government,
                "title": c.title, "sections": c.sections, "section_order": c.section_order,
                "indicators": c.indicators,
            }));
            let created = init_root(&mut d.doc, &key, &content)?;
            commit_at(&mut d.doc, start);
            self.counts.count("case documents", created);
            self.save(&key, d).await?;
        }
        for e in &s.evaluations {
            let key = DocKey::Eval {
                case: e.case.clone(),
                evaluator: e.evaluator.clone(),
            };
            let mut d = self.open(&key).await?;
            // The whole form: its scores and texts, and what the bundle says about it.
            let mut content = without_nulls(&serde_json::to_value(e)?);
            content["schema"] = json!(schema::tag(&key));
            let created = init_root(&mut d.doc, &key, &content)?;
            commit_at(
                &mut d.doc,
                e.submitted_at.as_deref().and_then(secs).or(start),
            );
            self.counts.count("evaluation forms", created);
            self.save(&key, d).await?;
        }
        // Notes layers: each annotation is its own change, dated when it was made.
        let mut layers: BTreeMap<String, Vec<&Annotation>> = BTreeMap::new();
        for a in &s.annotations {
            layers.entry(a.layer()).or_default().push(a);
        }
        for r in &s.reactions {
            layers
                .entry(format!("notes:{}:{}", s.key, r.participant))
                .or_default();
        }
        for (layer, anns) in layers {
            self.write_layer(b, s, &layer, anns, batch, start).await?;
        }
        if !s.triage.is_empty() {
            self.write_triage(b, s, start).await?;
        }
        Ok(())
    }

    /// One participant's notes layer: its annotations and reactions in the order they
    /// happened, so that the layer's history runs forward in time (replay reads it by that
    /// clock).
    async fn write_layer(
        &mut self,
        b: &Bundle,
        s: &Session,
        layer: &str,
        anns: Vec<&Annotation>,
        batch: &str,
        start: Option<i64>,
    ) -> anyhow::Result<()> {
        let key: DocKey = layer.parse().context("a notes layer")?;
        let owner = match &key {
            DocKey::Notes { participant, .. } | DocKey::NotesPrivate { participant, .. } => {
                participant.clone()
            }
            _ => String::new(),
        };
        let mut d = self.open(&key).await?;
        if init_root(
            &mut d.doc,
            &key,
            &json!({ "schema": schema::tag(&key), "session": s.key, "owner": owner, "annotations": {}, "reactions": {} }),
        )? {
            commit_at(&mut d.doc, start);
        }
        let mut items: Vec<(i64, LayerItem<'_>)> = anns
            .into_iter()
            .map(|a| (secs(&a.created_at).unwrap_or(0), LayerItem::Annotation(a)))
            .chain(
                s.reactions
                    .iter()
                    .filter(|r| r.participant == owner)
                    .map(|r| (secs(&r.at).unwrap_or(0), LayerItem::Reaction(r))),
            )
            .collect();
        items.sort_by_key(|(t, _)| *t);
        for (at, item) in items {
            match item {
                LayerItem::Annotation(a) => {
                    let v = annotation_json(a, batch, &mut self.written)?;
                    let created = put_new(&mut d.doc, &["annotations"], &a.uuid(), &v)?;
                    self.counts.count("annotations", created);
                }
                LayerItem::Reaction(r) => {
                    let target = b
                        .annotation(&r.annotation)
                        .map(Annotation::uuid)
                        .unwrap_or_else(|| r.annotation.clone());
                    let v = json!({ "kind": r.kind, "at": r.at, "import_batch": batch });
                    let created = put_new(&mut d.doc, &["reactions"], &target, &v)?;
                    self.counts.count("reactions", created);
                }
            }
            commit_at(&mut d.doc, Some(at).filter(|t| *t > 0));
        }
        self.save(&key, d).await
    }

    /// The session's triage, entry by entry in time order.
    async fn write_triage(
        &mut self,
        b: &Bundle,
        s: &Session,
        start: Option<i64>,
    ) -> anyhow::Result<()> {
        let key = DocKey::Triage {
            session: s.key.clone(),
        };
        let mut d = self.open(&key).await?;
        if init_root(
            &mut d.doc,
            &key,
            &json!({ "schema": schema::tag(&key), "items": {} }),
        )? {
            commit_at(&mut d.doc, start);
        }
        let mut entries: Vec<_> = s.triage.iter().collect();
        entries.sort_by_key(|t| secs(&t.at).unwrap_or(0));
        for t in entries {
            let id = b
                .annotation(&t.annotation)
                .map(Annotation::uuid)
                .unwrap_or_else(|| t.annotation.clone());
            let added = add_triage_entry(&mut d.doc, &id, t)?;
            commit_at(&mut d.doc, secs(&t.at));
            self.counts.count("triage entries", added);
        }
        self.save(&key, d).await
    }

    /// The departments' responses, one document per department.
    async fn write_responses(&mut self, b: &Bundle) -> anyhow::Result<()> {
        let mut by_dept: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        for r in &b.department_responses {
            by_dept.entry(r.department.as_str()).or_default().push(r);
        }
        for (dept, responses) in by_dept {
            let key = DocKey::Response {
                series: b.series.key.clone(),
                department: dept.to_string(),
            };
            let mut d = self.open(&key).await?;
            if init_root(
                &mut d.doc,
                &key,
                &json!({ "schema": schema::tag(&key), "department": dept, "responses": {} }),
            )? {
                commit_at(&mut d.doc, None);
            }
            for r in responses {
                let v = without_nulls(&serde_json::to_value(r)?);
                let at = r.rest.get("at").and_then(Value::as_str).and_then(secs);
                let created = put_new(&mut d.doc, &["responses"], &r.finding, &v)?;
                commit_at(&mut d.doc, at);
                self.counts.count("department responses", created);
            }
            self.save(&key, d).await?;
        }
        Ok(())
    }
}

/// Adds triage entry `t` to item `id`: the item shows its current status and keeps every
/// transition (who, when, note) in `history`; a transition already there is not added again.
/// Returns whether it was added.
fn add_triage_entry(
    doc: &mut AutoCommit,
    id: &str,
    t: &toron_domain::bundle::TriageEntry,
) -> anyhow::Result<bool> {
    let mut entry = without_nulls(&serde_json::to_value(t)?);
    if let Value::Object(m) = &mut entry {
        m.remove("annotation");
    }
    let items = ensure_map(doc, &["items"])?;
    let current = crate::json::obj_json(doc, &items).get(id).cloned();
    let history: Vec<Value> = current
        .as_ref()
        .and_then(|c| c.get("history"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let known = history
        .iter()
        .any(|h| h.get("status") == entry.get("status") && h.get("at") == entry.get("at"));
    if known {
        return Ok(false);
    }
    let latest = current
        .as_ref()
        .and_then(|c| c.get("at"))
        .and_then(Value::as_str)
        .and_then(secs);
    let item = match get_map(doc, &items, id) {
        Some(o) => o,
        None => {
            let o = doc.put_object(&items, id, ObjType::Map)?;
            doc.put(&o, "ref", t.annotation.as_str())?;
            doc.put_object(&o, "history", ObjType::List)?;
            o
        }
    };
    if latest <= secs(&t.at) {
        if let Value::Object(m) = &entry {
            for (k, v) in m {
                put_json(doc, &item, k.as_str().into(), v)?;
            }
        }
    }
    let list = match doc.get(&item, "history")? {
        Some((automerge::Value::Object(ObjType::List), o)) => o,
        _ => doc.put_object(&item, "history", ObjType::List)?,
    };
    let n = doc.length(&list);
    put_json(doc, &list, n.into(), &entry)?;
    Ok(true)
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

/// A bundle's problems said of a CSV file: each at its line and column where it is in a row
/// this file added (`placed`: where each row went), else of the series it joined.
fn csv_problems(
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

/// Brings a W3C Web Annotation file into `session`: the session as the server holds it (its
/// export) gains the file's annotations — each re-anchored by its quote in the text as it is
/// now, those already there left alone — and the whole is checked and imported like a bundle.
pub async fn run_w3c(
    server: &str,
    token: Option<String>,
    path: &std::path::Path,
    session: &str,
    opts: Options,
    limit: Duration,
) -> anyhow::Result<Value> {
    let (name, bytes) = read_limited(path)?;
    let file: Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{name}: not JSON"))?;
    // The whole series the session is in: its findings and triage name annotations and
    // findings of its other sessions too, which a bundle of this session alone would lack.
    let of_session = export_of(server, token.clone(), session, limit).await?;
    let series = of_session["series"]["key"]
        .as_str()
        .with_context(|| format!("the export of {session} names no series"))?
        .to_string();
    let mut bundle = export_of(server, token.clone(), &series, limit).await?;
    let current =
        toron_domain::integrity::read_export(bundle.clone()).map_err(anyhow::Error::msg)?;
    let annotations = toron_domain::w3c::annotations_from(&file, &current, session)
        .map_err(|errors| anyhow::anyhow!("{name}: {}", errors.join(&format!("\n{name}: "))))?;
    let sessions = bundle["sessions"]
        .as_array_mut()
        .with_context(|| format!("the export of {session} has no sessions"))?;
    let target = sessions
        .iter_mut()
        .find(|s| s["key"] == session)
        .with_context(|| format!("the server has no session `{session}`"))?;
    let list = target["annotations"]
        .as_array_mut()
        .with_context(|| format!("the export of {session} has no annotation list"))?;
    let have: std::collections::BTreeSet<String> = list
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    list.extend(
        annotations
            .into_iter()
            .filter(|a| !a["id"].as_str().is_some_and(|id| have.contains(id))),
    );
    let merged = serde_json::to_vec(&bundle)?;
    let parsed = Bundle::parse(&merged)
        .map_err(|e| anyhow::anyhow!("{name} (joined to session {session}): {e}"))?;
    run_bytes(server, token, merged, parsed, opts, limit).await
}

/// One row of a CSV file, read by column name.
struct CsvRow<'r> {
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
fn participant_row(
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
fn annotation_row(
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

fn anchor_nfc(s: &str) -> String {
    toron_domain::anchor::nfc(s)
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
        let phases: BTreeMap<String, String> = bundle
            .sessions
            .iter()
            .map(|s| (s.key.clone(), s.phase.clone()))
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
