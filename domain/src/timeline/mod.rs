//! The session timeline: the event log told in the debate's terms — annotation created,
//! reply, reaction, triage status set, section edited (+N/−M characters), score set,
//! evaluation submitted, participant joined and left, phase changed, import applied.
//!
//! This is a *projection*: a pure function of the log, computed record by record, so it can
//! be dropped and rebuilt at any time (`toron-server rebuild`) and checked against what is
//! stored (`toron-server verify`). It reads the operations inside each change rather than
//! diffing documents: a change's operations name exactly what that change did, and reading
//! them costs time proportional to the change, not to the document's history.
//!
//! Paths come from the documents' layouts ([`crate::schema`]: `annotations/<id>/…` in notes
//! layers, `items/<id>/status` in the triage document, `sections/<name>` in a case,
//! `criteria/<criterion>/score` in an evaluation). A change that fits none of them is still
//! listed, as `doc.changed` with the paths it touched: nothing accepted is left out.

use automerge::Change;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::policy::DocKey;

mod drafts;
mod objects;

use drafts::{
    eval_drafts, notes_drafts, report_drafts, response_drafts, section_edit, session_drafts, short,
    text_edits, triage_drafts, Draft,
};
pub use objects::DocObjects;
use toron_protocol::record::{AdminAction, ChangeRecord, Presence};

/// One line of a session's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub session: String,
    /// Server receive time, UTC milliseconds (the log's clock).
    pub time_ms: u64,
    /// When an imported action happened (the importer's clock), if it said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_ms: Option<u64>,
    pub global_seq: u64,
    /// Position among the entries one record produced.
    pub index: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `annotation.created`, `reply.created`, `section.edited`, … (see the module docs).
    pub kind: String,
    /// The same in words, for people.
    pub summary: String,
    pub detail: Json,
}

impl Entry {
    /// The time the timeline is ordered by: when it happened if an importer said so,
    /// otherwise when the server received it.
    pub fn order_ms(&self) -> u64 {
        self.occurred_ms.unwrap_or(self.time_ms)
    }
}

/// Where a document belongs, as the registry knows it.
#[derive(Debug, Clone)]
pub struct DocContext {
    pub key: DocKey,
    pub session: String,
}

/// The timeline entries of one accepted change. `objects` is what the projector knows of the
/// document so far; it learns the objects this change makes.
pub fn change_entries(
    objects: &mut DocObjects,
    ctx: &DocContext,
    rec: &ChangeRecord,
) -> Result<Vec<Entry>, automerge::LoadChangeError> {
    let change = Change::from_bytes(rec.change.bytes.clone())?;
    let touches = objects.touches(&change);
    objects.upto = rec.doc_seq;
    let Some(first) = objects.creates(&change, &ctx.key) else {
        return Ok(Vec::new());
    };
    let mut drafts = match ctx.key {
        DocKey::Notes { .. } | DocKey::NotesPrivate { .. } => notes_drafts(&touches),
        DocKey::Triage { .. } => triage_drafts(&touches),
        DocKey::Eval { .. } => eval_drafts(&touches, first),
        DocKey::Session { .. } => session_drafts(&touches),
        DocKey::Report { .. } => report_drafts(&touches),
        DocKey::Response { ref department, .. } => response_drafts(&touches, department),
        DocKey::Case { .. } => Vec::new(),
    };
    // Text edits the kind-specific rules did not already tell (annotation bodies are); a
    // document's first change writes its initial content, which "created" already tells.
    // (A triage item's fields are its decision, which `triage_drafts` tells, typed or not.)
    if !first
        && !matches!(
            ctx.key,
            DocKey::Notes { .. }
                | DocKey::NotesPrivate { .. }
                | DocKey::Triage { .. }
                | DocKey::Report { .. }
                | DocKey::Response { .. }
        )
    {
        for (path, e) in text_edits(&touches) {
            // A vocabulary value typed as text (an evaluation's status) is a new value, which
            // the kind's own entry tells, not an edit of a text.
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            // A form's `submitted_at` is part of its submission, which is told already.
            let stamp = matches!(ctx.key, DocKey::Eval { .. }) && p == ["submitted_at"];
            if crate::schema::vocabulary(&ctx.key, &p).is_none() && !stamp {
                drafts.push(section_edit(&path, &e));
            }
        }
    }
    if first {
        drafts.insert(
            0,
            Draft {
                kind: "document.created",
                summary: format!("created {}", ctx.key),
                detail: json!({}),
            },
        );
    }
    if drafts.is_empty() {
        let mut paths: Vec<String> = Vec::new();
        for t in &touches {
            let mut p = t.path.clone();
            if let Some(k) = &t.key {
                p.push(k.clone());
            }
            let p = p.join("/");
            if !paths.contains(&p) && paths.len() < 5 {
                paths.push(p);
            }
        }
        drafts.push(Draft {
            kind: "doc.changed",
            summary: format!("changed {}", paths.join(", ")),
            detail: json!({ "paths": paths }),
        });
    }
    let c = &rec.change;
    // An importer may say when a historical action happened: Automerge's change time
    // (seconds, as the JavaScript and Rust libraries write it). Nobody else is trusted to.
    let occurred_ms = (c.by.role.as_deref() == Some("importer") && change.timestamp() > 0)
        .then(|| change.timestamp() as u64 * 1000);
    Ok(drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| Entry {
            session: ctx.session.clone(),
            time_ms: c.received_at_ms,
            occurred_ms,
            global_seq: rec.global_seq,
            index: i.min(u16::MAX as usize) as u16,
            document: Some(ctx.key.to_string()),
            document_id: Some(c.document_id.to_string()),
            doc_seq: Some(rec.doc_seq),
            participant: c.by.participant.clone(),
            role: c.by.role.clone(),
            kind: d.kind.to_string(),
            summary: d.summary,
            detail: d.detail,
        })
        .collect())
}

/// What an entry that creates an annotation tells of it for later entries to name it by:
/// its id, and its ref and the start of its text.
pub fn annotation_label(e: &Entry) -> Option<(String, Json)> {
    // Only shared notes: a private note's text must not reach others through a label.
    let shared = e
        .document
        .as_deref()
        .is_some_and(|d| d.starts_with("notes:"));
    if !shared || !matches!(e.kind.as_str(), "annotation.created" | "reply.created") {
        return None;
    }
    let id = e.detail["annotation"].as_str()?.to_string();
    let mut label = json!({ "body": e.detail["body"] });
    if let Some(r) = e.detail.get("ref").filter(|r| !r.is_null()) {
        label["ref"] = r.clone();
    }
    Some((id, label))
}

/// The annotation an entry is about (reactions, triage, a reply's parent), if any.
pub fn referenced_annotation(e: &Entry) -> Option<String> {
    match e.kind.as_str() {
        "reaction.added" | "reaction.removed" | "triage.status_set" | "triage.flag_set"
        | "finding.linked" => e.detail["annotation"].as_str().map(str::to_string),
        "reply.created" => e.detail["parent"].as_str().map(str::to_string),
        _ => None,
    }
}

/// Names the annotation an entry is about by its ref and text (from its `annotation_label`),
/// as people know it — `agreed with L-04 “평일 저녁…”` rather than an id.
pub fn name_referenced(e: &mut Entry, label: &Json) {
    let reference = label["ref"].as_str();
    let body = label["body"].as_str().unwrap_or_default();
    let named = match (reference, body.is_empty()) {
        (Some(r), false) => format!("{r} “{}”", short(body)),
        (Some(r), true) => r.to_string(),
        (None, false) => format!("“{}”", short(body)),
        (None, true) => return,
    };
    let field = if e.kind == "reply.created" {
        "parent"
    } else {
        "annotation"
    };
    if let Some(r) = reference {
        e.detail[format!("{field}_ref")] = json!(r);
    }
    e.detail[format!("{field}_text")] = json!(short(body));
    e.summary = match e.kind.as_str() {
        "reaction.added" => format!("agreed with {named} (공감)"),
        "reaction.removed" => format!("took back agreement with {named}"),
        "triage.status_set" => format!(
            "set {named} to {}",
            e.detail["status"].as_str().unwrap_or("?")
        ),
        "triage.flag_set" => format!("{} {named}", e.detail["flag"].as_str().unwrap_or("?")),
        "finding.linked" => format!(
            "linked {named} to finding {}",
            e.detail["finding"].as_str().unwrap_or("?")
        ),
        "reply.created" => format!(
            "{} to {named}: \"{}\"",
            e.detail["annotation_kind"].as_str().unwrap_or("reply"),
            e.detail["body"].as_str().unwrap_or_default()
        ),
        _ => return,
    };
}

/// The entry a presence record makes.
pub fn presence_entry(global_seq: u64, p: &Presence) -> Entry {
    Entry {
        session: p.session.clone(),
        time_ms: p.at_ms,
        occurred_ms: None,
        global_seq,
        index: 0,
        document: None,
        document_id: None,
        doc_seq: None,
        participant: Some(p.participant.clone()),
        role: p.role.clone(),
        kind: if p.joined {
            "participant.joined"
        } else {
            "participant.left"
        }
        .into(),
        summary: if p.joined { "joined" } else { "left" }.into(),
        detail: json!({}),
    }
}

/// The entry a metadata action makes in a session's timeline, if it concerns one:
/// a phase change (`previous_phase` is the phase the projection last saw), a session-scoped
/// role grant or revocation, an applied import.
pub fn admin_entry(
    global_seq: u64,
    a: &AdminAction,
    previous_phase: impl Fn(&str) -> Option<String>,
) -> Option<Entry> {
    let v: Json = serde_json::from_str(&a.action).ok()?;
    let (session, kind, summary, detail) = if let Some(i) = v.get("agenda_item") {
        let item = i.get("item").and_then(Json::as_str);
        (
            i.get("session")?.as_str()?.to_string(),
            "session.agenda_item",
            match item {
                Some(k) => format!("agenda item {k} begun"),
                None => "no agenda item under way".into(),
            },
            json!({ "item": item }),
        )
    } else if let Some(s) = v.get("session") {
        let key = s.get("key")?.as_str()?.to_string();
        let phase = s.get("phase")?.as_str()?.to_string();
        let before = previous_phase(&key);
        if before.as_deref() == Some(phase.as_str()) {
            return None;
        }
        let summary = match &before {
            Some(b) => format!("phase {b} → {phase}"),
            None => format!("session created ({phase})"),
        };
        (
            key,
            "session.phase_changed",
            summary,
            json!({ "from": before, "to": phase }),
        )
    } else if let Some(g) = v.get("role_granted").or_else(|| v.get("role_revoked")) {
        if g.get("scope")?.as_str()? != "session" {
            return None;
        }
        let granted = v.get("role_granted").is_some();
        let who = g.get("participant")?.as_str()?;
        let role = g.get("role")?.as_str()?;
        (
            g.get("name")?.as_str()?.to_string(),
            if granted {
                "role.granted"
            } else {
                "role.revoked"
            },
            format!(
                "{} {role} {} {who}",
                if granted { "granted" } else { "revoked" },
                if granted { "to" } else { "from" }
            ),
            json!({ "participant": who, "role": role }),
        )
    } else if let Some(i) = v.get("import_applied") {
        let session = i.get("session")?.as_str()?.to_string();
        (
            session,
            "import.applied",
            format!(
                "import {} applied",
                i.get("batch").and_then(Json::as_str).unwrap_or("?")
            ),
            i.clone(),
        )
    } else {
        return None;
    };
    Some(Entry {
        session,
        time_ms: a.at_ms,
        occurred_ms: None,
        global_seq,
        index: 0,
        document: None,
        document_id: None,
        doc_seq: None,
        participant: Some(a.by.clone()),
        role: None,
        kind: kind.into(),
        summary,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};
    use toron_protocol::ids::{ConnId, DocumentId, PeerId};
    use toron_protocol::record::{Attribution, NewChange};

    fn rec(doc: &mut AutoCommit, seq: u64, role: &str) -> ChangeRecord {
        let bytes = doc
            .get_last_local_change()
            .expect("a change")
            .raw_bytes()
            .to_vec();
        ChangeRecord {
            global_seq: 100 + seq,
            doc_seq: seq,
            change: NewChange {
                document_id: DocumentId::from_bytes([1; 16]),
                received_at_ms: 1_000 * seq,
                conn: ConnId(1),
                peer: PeerId::new("p").expect("peer"),
                by: Attribution {
                    participant: Some("P-1".into()),
                    role: Some(role.into()),
                },
                actor: vec![],
                hash: [0; 32],
                bytes,
                heads_after: vec![],
            },
        }
    }

    fn kinds(es: &[Entry]) -> Vec<&str> {
        es.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_notes_layer_tells_annotations_replies_reactions_edits_and_withdrawals() {
        let ctx = DocContext {
            key: DocKey::Notes {
                session: "S1".into(),
                participant: "P-1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        d.put(ROOT, "schema", "notes/1").expect("put");
        let anns = d
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("map");
        let reacts = d.put_object(ROOT, "reactions", ObjType::Map).expect("map");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["document.created"]);

        let a = d.put_object(&anns, "a-1", ObjType::Map).expect("ann");
        d.put(&a, "kind", "gap").expect("kind");
        let body = d.put_object(&a, "body", ObjType::Text).expect("body");
        d.splice_text(&body, 0, 0, "돌봄 공백 😀 있음")
            .expect("text");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "gap");
        assert_eq!(e[0].detail["body"], "돌봄 공백 😀 있음");
        assert_eq!(e[0].participant.as_deref(), Some("P-1"));
        assert_eq!(e[0].doc_seq, Some(2));

        let r = d.put_object(&anns, "a-2", ObjType::Map).expect("reply");
        d.put(&r, "kind", "reply").expect("kind");
        d.put(&r, "parent", "a-0").expect("parent");
        d.put(&r, "body", "동의합니다").expect("body");
        let re = d
            .put_object(&reacts, "a-0", ObjType::Map)
            .expect("reaction");
        d.put(&re, "kind", "agree").expect("kind");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["reply.created", "reaction.added"]);
        assert_eq!(e[0].detail["parent"], "a-0");

        d.splice_text(&body, 2, 3, "보완").expect("edit");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 4, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.edited"]);
        assert_eq!(
            (
                e[0].detail["added"].as_u64(),
                e[0].detail["removed"].as_u64()
            ),
            (Some(2), Some(3))
        );

        d.put(&a, "withdrawn", true).expect("withdraw");
        d.delete(&reacts, "a-0").expect("unreact");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 5, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.withdrawn", "reaction.removed"]);
        assert_eq!(d.length(&body), 9);
    }

    #[test]
    fn triage_evaluation_and_case_changes_and_the_importers_clock() {
        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Eval {
                case: "C1".into(),
                evaluator: "P-ev".into(),
            },
            session: "S1".into(),
        };
        let mut d = AutoCommit::new();
        let crit = d.put_object(ROOT, "criteria", ObjType::Map).expect("map");
        let eff = d
            .put_object(&crit, "effectiveness", ObjType::Map)
            .expect("map");
        let text = d.put_object(&eff, "text", ObjType::Text).expect("text");
        d.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "evaluator")).expect("entries");
        d.put(&eff, "score", 4).expect("score");
        d.splice_text(&text, 0, 0, "효과가 크다").expect("text");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["score.set", "section.edited"]);
        assert_eq!(
            e[0].detail,
            json!({"criterion": "effectiveness", "value": 4})
        );
        assert_eq!(
            e[1].detail["path"],
            json!(["criteria", "effectiveness", "text"])
        );
        assert_eq!(e[1].detail["added"], 6);
        assert_eq!(e[1].occurred_ms, None);

        // An importer's change keeps its own time; the same from anybody else does not count.
        d.put(ROOT, "status", "submitted").expect("status");
        d.commit_with(automerge::transaction::CommitOptions::default().with_time(1_790_000_000));
        let r = rec(&mut d, 3, "importer");
        let e = change_entries(&mut objs, &ctx, &r).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.submitted"]);
        assert_eq!(e[0].occurred_ms, Some(1_790_000_000_000));
        assert_eq!(e[0].order_ms(), 1_790_000_000_000);

        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Triage {
                session: "S1".into(),
            },
            session: "S1".into(),
        };
        let mut t = AutoCommit::new();
        let items = t.put_object(ROOT, "items", ObjType::Map).expect("map");
        t.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut t, 1, "organizer")).expect("entries");
        let it = t.put_object(&items, "a-1", ObjType::Map).expect("item");
        t.put(&it, "status", "answered").expect("status");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 2, "facilitator")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set"]);
        assert_eq!(e[0].detail["status"], "answered");
        t.put(&it, "status", "accepted").expect("status");
        t.put(&it, "finding", "F-1").expect("finding");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 3, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set", "finding.linked"]);
        assert_eq!(
            e[1].detail,
            json!({ "annotation": "a-1", "finding": "F-1" })
        );
        t.put(&items, "junk", 1).expect("other");
        t.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut t, 4, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["doc.changed"]);
        assert_eq!(e[0].detail["paths"], json!(["items/junk"]));
    }

    /// The series' documents: a finding added then edited in the report, a department's
    /// stance on it typed as text (as the JavaScript client writes strings).
    #[test]
    fn findings_and_department_responses() {
        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Report {
                series: "BM".into(),
            },
            session: "BM".into(),
        };
        let mut r = AutoCommit::new();
        let fs = r.put_object(ROOT, "findings", ObjType::Map).expect("map");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 1, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["document.created"]);
        let f = r.put_object(&fs, "F-1", ObjType::Map).expect("finding");
        r.put(&f, "type", "gap").expect("type");
        r.put(&f, "title", "인력 부족").expect("title");
        let text = r.put_object(&f, "text", ObjType::Text).expect("text");
        r.splice_text(&text, 0, 0, "사서가 없다").expect("typed");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 2, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["finding.created"]);
        assert_eq!(
            e[0].detail,
            json!({ "finding": "F-1", "type": "gap", "title": "인력 부족" })
        );
        r.splice_text(&text, 5, 0, " 순회").expect("edit");
        r.put(&f, "priority", "high").expect("priority");
        r.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut r, 3, "organizer")).expect("entries");
        assert_eq!(kinds(&e), ["finding.updated"]);
        assert_eq!(e[0].detail["fields"], json!(["priority", "text"]));

        let mut objs = DocObjects::default();
        let ctx = DocContext {
            key: DocKey::Response {
                series: "BM".into(),
                department: "DEP-CULT".into(),
            },
            session: "BM".into(),
        };
        let mut d = AutoCommit::new();
        let rs = d.put_object(ROOT, "responses", ObjType::Map).expect("map");
        d.commit();
        let _ = change_entries(&mut objs, &ctx, &rec(&mut d, 1, "department_reviewer"));
        let one = d.put_object(&rs, "F-1", ObjType::Map).expect("response");
        put_text(&mut d, &one, "stance", "partially_accepted");
        put_text(&mut d, &one, "due", "2013-03");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "department_reviewer")).expect("e");
        assert_eq!(kinds(&e), ["department.responded"]);
        assert_eq!(e[0].detail["finding"], "F-1");
        assert_eq!(e[0].detail["department"], "DEP-CULT");
        assert_eq!(e[0].detail["stance"], "partially_accepted");
        assert_eq!(e[0].detail["due"], "2013-03");
    }

    #[test]
    fn metadata_actions_in_a_session() {
        let a = |action: Json| AdminAction {
            at_ms: 5,
            by: "admin".into(),
            action: action.to_string(),
        };
        let e = admin_entry(
            1,
            &a(json!({"session": {"key": "S1", "phase": "live"}})),
            |_| Some("scheduled".into()),
        )
        .expect("entry");
        assert_eq!(
            (e.kind.as_str(), e.session.as_str()),
            ("session.phase_changed", "S1")
        );
        assert!(admin_entry(
            2,
            &a(json!({"session": {"key": "S1", "phase": "live"}})),
            |_| { Some("live".into()) }
        )
        .is_none());
        let g = json!({"role_granted": {"participant": "P-1", "role": "activist", "scope": "session", "name": "S1"}});
        assert_eq!(
            admin_entry(3, &a(g), |_| None).expect("grant").kind,
            "role.granted"
        );
        assert!(admin_entry(
            4,
            &a(json!({"token_issued": {"participant": "P-1"}})),
            |_| None
        )
        .is_none());
    }

    /// Text, as the JavaScript client writes every string: a field made as a text object and
    /// typed into in the same change.
    fn put_text(d: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str) {
        let t = d.put_object(obj, key, ObjType::Text).expect("text");
        d.splice_text(&t, 0, 0, value).expect("splice");
    }

    #[test]
    fn strings_written_as_text_are_read_as_the_strings_typed() {
        // A notes layer: a question and a reply whose kind and parent are texts.
        let ctx = DocContext {
            key: DocKey::Notes {
                session: "S1".into(),
                participant: "P-1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        let anns = d
            .put_object(ROOT, "annotations", ObjType::Map)
            .expect("map");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "activist")).expect("entries");
        let a = d.put_object(&anns, "q-1", ObjType::Map).expect("ann");
        put_text(&mut d, &a, "kind", "question");
        put_text(&mut d, &a, "body", "예산은 어디서 오나요?");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["annotation.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "question", "{:?}", e[0]);
        let r = d.put_object(&anns, "r-1", ObjType::Map).expect("reply");
        put_text(&mut d, &r, "kind", "answer");
        put_text(&mut d, &r, "parent", "q-1");
        put_text(&mut d, &r, "body", "구비 예산입니다");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "activist")).expect("entries");
        assert_eq!(kinds(&e), ["reply.created"]);
        assert_eq!(e[0].detail["annotation_kind"], "answer");
        assert_eq!(e[0].detail["parent"], "q-1");

        // The triage document: a status typed as text is one decision, not section edits.
        let ctx = DocContext {
            key: DocKey::Triage {
                session: "S1".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        let items = d.put_object(ROOT, "items", ObjType::Map).expect("items");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "facilitator")).expect("entries");
        let item = d.put_object(&items, "q-1", ObjType::Map).expect("item");
        put_text(&mut d, &item, "status", "answered");
        put_text(&mut d, &item, "note", "구청장 답변");
        let history = d
            .put_object(&item, "history", ObjType::List)
            .expect("history");
        let h = d.insert_object(&history, 0, ObjType::Map).expect("entry");
        put_text(&mut d, &h, "status", "answered");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "facilitator")).expect("entries");
        assert_eq!(kinds(&e), ["triage.status_set"], "{e:?}");
        assert_eq!(e[0].detail["status"], "answered");
        assert_eq!(e[0].detail["note"], "구청장 답변");

        // An evaluation submitted, then reopened, with its status as text.
        let ctx = DocContext {
            key: DocKey::Eval {
                case: "C1".into(),
                evaluator: "P-E".into(),
            },
            session: "S1".into(),
        };
        let mut objs = DocObjects::default();
        let mut d = AutoCommit::new();
        put_text(&mut d, &ROOT, "status", "draft");
        d.commit();
        change_entries(&mut objs, &ctx, &rec(&mut d, 1, "evaluator")).expect("entries");
        put_text(&mut d, &ROOT, "status", "submitted");
        // The web client stamps the submission as text beside it: one entry, not an edit too.
        put_text(&mut d, &ROOT, "submitted_at", "2026-12-07T10:42:00.000Z");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 2, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.submitted"], "{e:?}");
        put_text(&mut d, &ROOT, "status", "draft");
        d.commit();
        let e = change_entries(&mut objs, &ctx, &rec(&mut d, 3, "evaluator")).expect("entries");
        assert_eq!(kinds(&e), ["evaluation.reopened"], "{e:?}");
    }
}
