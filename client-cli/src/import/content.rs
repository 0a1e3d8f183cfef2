//! The bundle's content written through the sync protocol as the importer: one Automerge
//! change per imported item, dated with the item's own time; what is there already is left
//! alone.

use crate::sync_client::{ClientError, Connection, DocSync};
use anyhow::Context;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use toron_domain::bundle::{Annotation, Bundle, Session, Target};
use toron_domain::policy::DocKey;
use toron_domain::schema;
use toron_protocol::json::put_json;

use super::ContentCounts;

/// UTC seconds of an RFC 3339 time (Automerge change times are seconds).
pub(super) fn secs(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp())
}

pub(super) fn commit_at(doc: &mut AutoCommit, time: Option<i64>) {
    let mut opts = CommitOptions::default();
    if let Some(t) = time {
        opts = opts.with_time(t);
    }
    doc.commit_with(opts);
}

pub(super) fn get_map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (automerge::Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// The object at `path`, creating maps on the way.
pub(super) fn ensure_map(doc: &mut AutoCommit, path: &[&str]) -> anyhow::Result<ObjId> {
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
pub(super) fn put_new(
    doc: &mut AutoCommit,
    path: &[&str],
    key: &str,
    value: &Value,
) -> anyhow::Result<bool> {
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
pub(super) fn init_root(
    doc: &mut AutoCommit,
    key: &DocKey,
    content: &Value,
) -> anyhow::Result<bool> {
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

pub(super) fn without_nulls(v: &Value) -> Value {
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
pub(super) fn text_obj(doc: &AutoCommit, path: &[String]) -> Option<ObjId> {
    let mut obj = ROOT;
    for p in path {
        obj = doc.get(&obj, p.as_str()).ok()??.1;
    }
    matches!(doc.object_type(&obj), Ok(ObjType::Text)).then_some(obj)
}

/// An annotation as its layer stores it: the bundle's fields, its id, the batch, and for a
/// text anchor the Automerge cursors and heads of the target as written.
pub(super) fn annotation_json(
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
pub(super) struct Writer<'a> {
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
pub(super) enum LayerItem<'b> {
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
pub(super) fn add_triage_entry(
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
