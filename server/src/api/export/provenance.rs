//! Who wrote what, as the log says: an annotation's creator and time from the session's
//! timeline, checked against what the document itself claims (its author, role and time).

use crate::net::hub::Hub;
use crate::views::projection::session_prefix;
use serde_json::{json, Value};
use std::collections::HashMap;
use toron_domain::integrity::Problem;
use toron_domain::policy::{Role, Scope};
use toron_domain::timeline::Entry;

use super::ExportError;

/// Who created an annotation, as the log says (from the session's timeline).
#[derive(Debug, Clone)]
pub(super) struct Created {
    pub(super) participant: Option<String>,
    pub(super) role: Option<String>,
    pub(super) time_ms: u64,
    pub(super) occurred_ms: Option<u64>,
}

/// What an evaluation form's record says of its submissions.
#[derive(Debug, Clone, Default)]
pub(super) struct Submissions {
    /// The document sequence number of its last submission.
    pub(super) last: Option<u64>,
    /// How many times it was reopened after a submission.
    pub(super) reopened: u32,
}

/// What the log says of a session's documents: who created each annotation (notes document
/// key, annotation id) and when, and each evaluation form's submissions (by document key).
#[derive(Debug, Default)]
pub(super) struct SessionLog {
    pub(super) creators: HashMap<(String, String), Created>,
    pub(super) submissions: HashMap<String, Submissions>,
    /// Everybody the presence record says was there (joined the session at least once).
    pub(super) attended: std::collections::BTreeSet<String>,
}

/// Reads `session`'s timeline once for its [`SessionLog`].
pub(super) fn session_log(hub: &Hub, session: &str) -> Result<SessionLog, ExportError> {
    hub.projection
        .catch_up()
        .map_err(|e| ExportError::Timeline(e.to_string()))?;
    let prefix = session_prefix(session);
    let mut from = prefix.clone();
    let mut out = SessionLog::default();
    // Bounded: every page moves `from` past its last key.
    loop {
        let rows = hub
            .store
            .timeline_page(&prefix, &mut from, 1_000)
            .map_err(|e| ExportError::Timeline(e.to_string()))?;
        if rows.is_empty() {
            break;
        }
        for (_, v) in rows {
            let Ok(e) = serde_json::from_slice::<Entry>(&v) else {
                continue;
            };
            if e.kind == "participant.joined" {
                out.attended.extend(e.participant.clone());
                continue;
            }
            let Some(doc) = e.document.clone() else {
                continue;
            };
            match e.kind.as_str() {
                "evaluation.submitted" => {
                    out.submissions.entry(doc).or_default().last = e.doc_seq;
                }
                "evaluation.reopened" => out.submissions.entry(doc).or_default().reopened += 1,
                "annotation.created" | "reply.created" => {
                    let Some(id) = e.detail["annotation"].as_str() else {
                        continue;
                    };
                    out.creators
                        .entry((doc, id.to_string()))
                        .or_insert(Created {
                            participant: e.participant,
                            role: e.role,
                            time_ms: e.time_ms,
                            occurred_ms: e.occurred_ms,
                        });
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Sets `field` of `v` to `truth`, recording a problem if the content said otherwise.
pub(super) fn claim(
    v: &mut Value,
    field: &str,
    truth: &str,
    doc: &str,
    item: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let said = v.get(field).cloned();
    if said.as_ref().and_then(Value::as_str) == Some(truth) {
        return;
    }
    if let Some(said) = said.filter(|s| !s.is_null()) {
        problems.push(Problem::corrected(
            doc,
            item,
            format!("`{field}` said {}; the document is {truth}'s", short(&said)),
        ));
    }
    if let Value::Object(m) = v {
        m.insert(field.to_string(), json!(truth));
    }
}

pub(super) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Where an annotation was found and what the log says of it.
pub(super) struct Origin<'a> {
    pub(super) doc: &'a str,
    pub(super) id: &'a str,
    pub(super) session: &'a str,
    pub(super) owner: &'a str,
    pub(super) created: Option<&'a Created>,
    /// When the session opened for notes: its scheduled start (an hour's grace before it).
    pub(super) opened_ms: Option<u64>,
}

/// How far back a note written offline may date itself, whatever the session's hours.
const OFFLINE_AT_MOST_MS: u64 = 12 * 3600 * 1000;

/// A participant's roles in a session as the registry grants them, session grants first.
pub(super) fn roles_in(hub: &Hub, participant: &str, session: &str) -> Vec<Role> {
    let series = hub.registry.session(session).map(|s| s.series);
    let mut grants = hub
        .registry
        .grants_in_session(participant, session, series.as_deref(), true);
    grants.sort_by_key(|g| matches!(g.scope(), Scope::Series(_)));
    grants.into_iter().map(|g| g.role).collect()
}

pub(super) fn role_in(hub: &Hub, participant: &str, session: &str) -> Option<String> {
    roles_in(hub, participant, session)
        .into_iter()
        .next()
        .map(|r| r.as_str().to_string())
}

/// Server time (UTC ms) as the report prints times: RFC 3339 in Korean time.
pub(super) fn kst(ms: u64) -> String {
    chrono::FixedOffset::east_opt(9 * 3600)
        .zip(chrono::DateTime::from_timestamp_millis(ms as i64))
        .map(|(kst, t)| {
            t.with_timezone(&kst)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        })
        .unwrap_or_default()
}

/// A `ref` — the short code people cite — is given by an import; what anyone else
/// writes there is content, never a name the report may match on: it is dropped, and said.
fn drop_live_ref(a: &mut Value, o: &Origin<'_>, problems: &mut Vec<Problem>) {
    if let Some(r) = a.get("ref").filter(|r| !r.is_null()).cloned() {
        problems.push(Problem::corrected(
            o.doc,
            Some(o.id),
            format!(
                "`ref` said {}; only an import gives an annotation a ref",
                short(&r)
            ),
        ));
        if let Value::Object(m) = a {
            m.remove("ref");
        }
    }
}

/// Whether an annotation's own `created_at` stands beside the log's record `c` of it: a note
/// written offline keeps its own time — within the session's span: not before the session
/// opened (`opened_ms`; nor half a day before it arrived), not after it arrived (a minute's
/// clock skew allowed). Any other time is the log's.
fn believable_time(a: &Value, c: &Created, opened_ms: Option<u64>) -> bool {
    let said = a.get("created_at").and_then(Value::as_str).and_then(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis())
    });
    let truth = c.occurred_ms.unwrap_or(c.time_ms);
    let earliest = truth.saturating_sub(OFFLINE_AT_MOST_MS);
    let earliest = opened_ms.map_or(earliest, |s| s.max(earliest));
    said.is_some_and(|t| {
        t.abs_diff(truth as i64) <= 60_000 || (t >= earliest as i64 && t <= truth as i64)
    })
}

/// An annotation's identity from where it lives and from the log, never from what it says of
/// itself: its session is its layer's, its author the layer's owner (a scribe's remark keeps
/// the speaker it names; something written into the layer by somebody else is theirs), its
/// role and time those of the change that created it. An importer's batch is trusted for
/// role and time (it dates each item with its own time). Each disagreement is a problem.
pub(super) fn attribute(hub: &Hub, a: &mut Value, o: &Origin<'_>, problems: &mut Vec<Problem>) {
    let item = Some(o.id);
    // The map key is the annotation's id.
    claim(a, "id", o.id, o.doc, item, problems);
    claim(a, "session", o.session, o.doc, item, problems);
    let said_author = a.get("author").and_then(Value::as_str).map(str::to_string);
    let said_recorder = a
        .get("recorded_by")
        .and_then(Value::as_str)
        .map(str::to_string);
    let creator = o.created.and_then(|c| c.participant.clone());
    let by_importer = creator
        .as_deref()
        .is_some_and(toron_domain::import_plan::is_importer);
    let scribe = roles_in(hub, o.owner, o.session).contains(&Role::Scribe);
    // Whose words these are.
    // (The speaker a scribe names must take part in the session: a remark cannot be put in
    // the mouth of anyone the registry knows.)
    let speaker = said_author
        .as_deref()
        .filter(|a| *a != o.owner && !roles_in(hub, a, o.session).is_empty());
    let (author, recorder) = match &creator {
        Some(c) if c != o.owner && !by_importer => (c.clone(), None),
        _ if said_recorder.as_deref() == Some(o.owner)
            && speaker.is_some()
            && (scribe || by_importer) =>
        {
            (
                speaker.unwrap_or(o.owner).to_string(),
                Some(o.owner.to_string()),
            )
        }
        _ => (o.owner.to_string(), None),
    };
    claim(a, "author", &author, o.doc, item, problems);
    if !by_importer {
        drop_live_ref(a, o, problems);
    }
    match (&recorder, &said_recorder) {
        (Some(r), _) => claim(a, "recorded_by", r, o.doc, item, problems),
        (None, Some(r)) => {
            problems.push(Problem::corrected(
                o.doc,
                item,
                format!("`recorded_by` said {r}; nobody recorded it for another"),
            ));
            if let Value::Object(m) = a {
                m.remove("recorded_by");
            }
        }
        (None, None) => {}
    }
    if let Some(c) = &creator {
        if c != o.owner && !by_importer {
            problems.push(Problem::corrected(
                o.doc,
                item,
                format!("written by {c} into {}'s notes", o.owner),
            ));
        }
    }
    // Role and time.
    let said_role = a
        .get("author_role")
        .and_then(Value::as_str)
        .map(str::to_string);
    let role = match (o.created, by_importer, recorder.is_some()) {
        (Some(_), true, _) => said_role
            .clone()
            .or_else(|| role_in(hub, &author, o.session)),
        (_, _, true) => role_in(hub, &author, o.session),
        (Some(c), false, false) => c.role.clone(),
        (None, _, _) => role_in(hub, &author, o.session),
    }
    .unwrap_or_else(|| "observer".into());
    claim(a, "author_role", &role, o.doc, item, problems);
    match o.created {
        Some(c) if !by_importer => {
            if !believable_time(a, c, o.opened_ms) {
                claim(
                    a,
                    "created_at",
                    &kst(c.occurred_ms.unwrap_or(c.time_ms)),
                    o.doc,
                    item,
                    problems,
                );
            }
        }
        Some(_) => {}
        None => {
            if !a.get("created_at").is_some_and(Value::is_string) {
                claim(a, "created_at", "", o.doc, item, problems);
            }
        }
    }
}
