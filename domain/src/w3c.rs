//! A session's annotations as W3C Web Annotations (JSON-LD, <https://www.w3.org/TR/annotation-model/>),
//! and back.
//!
//! [`export`] writes an `AnnotationCollection` whose one page holds every annotation of the
//! session: a text range as a `SpecificResource` with a `TextQuoteSelector` (exact, prefix,
//! suffix) and a `TextPositionSelector` (code points, as the model counts them); the kind as a
//! motivation (a reply `replying`, a score `assessing`); the creator named as they consented
//! (the report's rule); what the model has no word for — the kind itself, the participant's
//! key and role, the text's path in its document, the Automerge cursor — under `toron:`.
//!
//! [`annotations_from`] reads such a collection (ours, or another tool's that keeps to the
//! model) into bundle annotations of a session: each is re-anchored by its quote first, in the
//! text as the server holds it now, and its position is taken from where the quote is found;
//! the position selector is used only where the quote occurs more than once. The annotations
//! then go through the bundle's checks like any import.

use serde_json::{json, Map, Value};

use crate::anchor::{self, Position, Quote, Resolution};
use crate::bundle::{Annotation, AnnotationKind, Bundle, Target};
use crate::report::{display_name, Lang};

/// The namespace of Toron's extension properties.
pub const TORON_NS: &str = "https://toron.dev/ns/annotation#";
const ANNO_CONTEXT: &str = "http://www.w3.org/ns/anno.jsonld";

/// The motivation of a kind (the model's list: commenting, questioning, replying,
/// highlighting, assessing, …).
pub fn motivation(kind: AnnotationKind) -> &'static str {
    match kind {
        AnnotationKind::Comment
        | AnnotationKind::Strength
        | AnnotationKind::Gap
        | AnnotationKind::Lesson => "commenting",
        AnnotationKind::Question => "questioning",
        AnnotationKind::Answer | AnnotationKind::Reply => "replying",
        AnnotationKind::Highlight => "highlighting",
        AnnotationKind::Score => "assessing",
    }
}

/// The kind a motivation stands for, where an annotation does not say its own.
fn kind_of_motivation(m: &str) -> AnnotationKind {
    match m {
        "questioning" => AnnotationKind::Question,
        "replying" => AnnotationKind::Reply,
        "highlighting" | "bookmarking" => AnnotationKind::Highlight,
        _ => AnnotationKind::Comment,
    }
}

fn urn(id: &str) -> String {
    format!("urn:uuid:{id}")
}

fn source(base: &str, session: &str, doc: &str) -> String {
    format!("{base}/sessions/{session}/docs/{doc}")
}

/// The session's annotations as a Web Annotation collection. `base` is the server's address
/// (`https://toron.example.go.kr`), before every document's address.
pub fn export(b: &Bundle, session: &str, base: &str) -> Result<Value, String> {
    let s = b
        .sessions
        .iter()
        .find(|s| s.key == session)
        .ok_or_else(|| format!("no session `{session}` in the export"))?;
    let people: std::collections::BTreeMap<&str, _> =
        b.participants.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut anns: Vec<&Annotation> = s.annotations.iter().collect();
    anns.sort_by(|x, y| (&x.created_at, x.uuid()).cmp(&(&y.created_at, y.uuid())));
    let items: Vec<Value> = anns
        .iter()
        .map(|a| {
            let mut item = Map::new();
            item.insert("id".into(), json!(urn(&a.uuid())));
            item.insert("type".into(), json!("Annotation"));
            item.insert("motivation".into(), json!(motivation(a.kind)));
            item.insert("created".into(), json!(a.created_at));
            item.insert(
                "creator".into(),
                json!({
                    "type": "Person",
                    "name": display_name(Lang::Ko, people.get(a.author.as_str()).copied(), &a.author_role),
                }),
            );
            if let Some(body) = a.body.as_deref().filter(|t| !t.is_empty()) {
                item.insert(
                    "body".into(),
                    json!({ "type": "TextualBody", "value": body, "format": "text/plain", "language": "ko" }),
                );
            }
            item.insert("target".into(), target_of(b, s.key.as_str(), a, base));
            item.insert("toron:kind".into(), json!(a.kind.as_str()));
            item.insert("toron:author".into(), json!(a.author));
            item.insert("toron:author_role".into(), json!(a.author_role));
            if let Some(r) = &a.reference {
                item.insert("toron:ref".into(), json!(r));
            }
            if let (Some(c), Some(v)) = (&a.criterion, a.value) {
                item.insert("toron:score".into(), json!({ "criterion": c, "value": v }));
            }
            Value::Object(item)
        })
        .collect();
    Ok(json!({
        "@context": [ANNO_CONTEXT, { "toron": TORON_NS }],
        "id": format!("{base}/sessions/{}/annotations", s.key),
        "type": "AnnotationCollection",
        "label": s.title,
        "total": items.len(),
        "first": { "type": "AnnotationPage", "startIndex": 0, "items": items },
    }))
}

fn target_of(b: &Bundle, session: &str, a: &Annotation, base: &str) -> Value {
    match &a.target {
        Some(Target::TextRange {
            doc,
            path,
            quote,
            position,
            cursor,
            ..
        }) => {
            let mut selectors = vec![json!({
                "type": "TextQuoteSelector",
                "exact": quote.exact,
                "prefix": quote.prefix,
                "suffix": quote.suffix,
            })];
            if let Some(p) = position {
                selectors.push(
                    json!({ "type": "TextPositionSelector", "start": p.start, "end": p.end }),
                );
            }
            let mut t = json!({
                "type": "SpecificResource",
                "source": source(base, session, doc),
                "selector": selectors,
                "toron:doc": doc,
                "toron:path": path,
            });
            if let Some(c) = cursor {
                t["toron:cursor"] = c.clone();
            }
            t
        }
        Some(Target::Document { doc }) => json!({
            "type": "SpecificResource",
            "source": source(base, session, doc),
            "toron:doc": doc,
        }),
        Some(Target::Indicator { doc, path }) => json!({
            "type": "SpecificResource",
            "source": source(base, session, doc),
            "toron:doc": doc,
            "toron:indicator": path,
        }),
        Some(Target::AgendaItem { agenda_item }) => json!({
            "type": "SpecificResource",
            "source": format!("{base}/sessions/{session}"),
            "toron:agenda_item": agenda_item,
        }),
        // A reply's target is the annotation it answers.
        None => {
            let parent = a
                .parent
                .as_deref()
                .and_then(|p| b.annotation(p))
                .map(|p| p.uuid())
                .unwrap_or_default();
            json!(urn(&parent))
        }
    }
}

/// The annotations of a collection (or a page, or one annotation), read in order.
fn items(doc: &Value) -> Vec<&Value> {
    match doc.get("type").and_then(Value::as_str) {
        Some("AnnotationCollection") => doc["first"]["items"]
            .as_array()
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
        Some("AnnotationPage") => doc["items"]
            .as_array()
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
        Some("Annotation") => vec![doc],
        _ => Vec::new(),
    }
}

fn selector<'v>(target: &'v Value, kind: &str) -> Option<&'v Value> {
    let s = &target["selector"];
    match s {
        Value::Array(list) => list.iter().find(|x| x["type"] == kind),
        Value::Object(_) if s["type"] == kind => Some(s),
        _ => None,
    }
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The id an imported annotation keeps: its `urn:uuid:`, or (for another tool's id) a name-based
/// UUID of it, so that importing the same file twice creates nothing the second time.
fn uuid_of(id: &str) -> String {
    match id.strip_prefix("urn:uuid:") {
        Some(u) if uuid::Uuid::parse_str(u).is_ok() => u.to_string(),
        _ => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, id.as_bytes()).to_string(),
    }
}

/// The Web Annotations of `doc` as bundle annotations (JSON) of `session`, each re-anchored in
/// `b` — the series as the server holds it — by its quote first. Every annotation that cannot
/// be read is an error naming it; nothing is returned unless all of them can.
pub fn annotations_from(doc: &Value, b: &Bundle, session: &str) -> Result<Vec<Value>, Vec<String>> {
    let Some(s) = b.sessions.iter().find(|s| s.key == session) else {
        return Err(vec![format!("the server has no session `{session}`")]);
    };
    let list = items(doc);
    if list.is_empty() {
        return Err(vec![
            "no annotations: expected an AnnotationCollection, an AnnotationPage or an Annotation"
                .into(),
        ]);
    }
    let known: std::collections::BTreeSet<&str> =
        b.participants.iter().map(|p| p.key.as_str()).collect();
    let taken_refs: std::collections::BTreeSet<String> = b
        .sessions
        .iter()
        .flat_map(|s| &s.annotations)
        .filter_map(|a| a.reference.clone())
        .collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let id = str_of(item, "id");
        let place = if id.is_empty() {
            format!("items[{i}]")
        } else {
            format!("items[{i}] ({id})")
        };
        match one(item, b, s, &known, &taken_refs) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(format!("{place}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The roles `who` holds in session `s`, as an import grants them: the session's roles, a
/// case's presenters, the evaluators of its forms.
fn roles_in<'s>(s: &'s crate::bundle::Session, who: &str) -> Vec<&'s str> {
    let mut held: Vec<&str> = s
        .roles
        .iter()
        .filter(|r| r.participant == who)
        .map(|r| r.role.as_str())
        .collect();
    if s.cases
        .iter()
        .any(|c| c.presenters.iter().any(|p| p == who))
    {
        held.push("presenter");
    }
    if s.evaluations.iter().any(|e| e.evaluator == who) {
        held.push("evaluator");
    }
    held
}

fn one(
    item: &Value,
    b: &Bundle,
    s: &crate::bundle::Session,
    known: &std::collections::BTreeSet<&str>,
    taken_refs: &std::collections::BTreeSet<String>,
) -> Result<Value, String> {
    let author = str_of(item, "toron:author");
    if !known.contains(author) {
        return Err(if author.is_empty() {
            "no `toron:author`: whose annotation is it? (add the participant to the series and name them)".into()
        } else {
            format!("author `{author}` is not a participant of the series")
        });
    }
    let kind = match item
        .get("toron:kind")
        .cloned()
        .map(serde_json::from_value::<AnnotationKind>)
    {
        Some(Ok(k)) => k,
        _ => kind_of_motivation(str_of(item, "motivation")),
    };
    let created = str_of(item, "created");
    if chrono::DateTime::parse_from_rfc3339(created).is_err() {
        return Err(format!("`created` is `{created}`, not an RFC 3339 time"));
    }
    // The file says who wrote it and in which role; the session says what roles they hold.
    let held = roles_in(s, author);
    let role = match (str_of(item, "toron:author_role"), held.first()) {
        (_, None) => {
            return Err(format!(
                "author `{author}` holds no role in session {}: give them one first",
                s.key
            ))
        }
        ("", Some(first)) => first.to_string(),
        (r, _) if held.contains(&r) => r.to_string(),
        (r, _) => {
            return Err(format!(
                "author `{author}` does not hold the role `{r}` in session {} (they hold {})",
                s.key,
                held.join(", ")
            ))
        }
    };
    let mut a = json!({
        "id": uuid_of(str_of(item, "id")),
        "session": s.key,
        "kind": kind,
        "author": author,
        "author_role": role,
        "created_at": created,
        // Where it came from: its author and time are what the file says.
        "imported_from": format!("w3c:{}", str_of(item, "id")),
    });
    let reference = str_of(item, "toron:ref");
    if !reference.is_empty() && !taken_refs.contains(reference) {
        a["ref"] = json!(reference);
    }
    let body = match &item["body"] {
        Value::Array(list) => list
            .iter()
            .map(|x| str_of(x, "value"))
            .find(|v| !v.is_empty()),
        v => Some(str_of(v, "value")).filter(|v| !v.is_empty()),
    };
    if let Some(body) = body {
        a["body"] = json!(body);
    }
    if let Some(score) = item.get("toron:score") {
        a["criterion"] = score["criterion"].clone();
        a["value"] = score["value"].clone();
    }
    let target = &item["target"];
    match target {
        // A reply: the annotation it answers, by id.
        Value::String(parent) => {
            a["parent"] = json!(uuid_of(parent));
        }
        Value::Object(_) => a["target"] = anchored(target, b)?,
        _ => return Err("no target".into()),
    }
    Ok(a)
}

/// A target re-anchored in the text as the server holds it: by the quote (with its prefix and
/// suffix) first; where the quote occurs more than once and nothing else chooses, by the
/// position selector.
fn anchored(target: &Value, b: &Bundle) -> Result<Value, String> {
    let doc = match str_of(target, "toron:doc") {
        "" => str_of(target, "source")
            .rsplit_once("/docs/")
            .map(|(_, d)| d.to_string())
            .unwrap_or_default(),
        d => d.to_string(),
    };
    if doc.is_empty() {
        return Err("the target names no document (`source` …/docs/{doc})".into());
    }
    if let Some(item) = target.get("toron:agenda_item") {
        return Ok(json!({ "type": "agenda_item", "agenda_item": item }));
    }
    if let Some(path) = target.get("toron:indicator") {
        return Ok(json!({ "type": "indicator", "doc": doc, "path": path }));
    }
    let Some(q) = selector(target, "TextQuoteSelector") else {
        return Ok(json!({ "type": "document", "doc": doc }));
    };
    let path: Vec<String> = target["toron:path"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let quote = Quote {
        exact: str_of(q, "exact").to_string(),
        prefix: str_of(q, "prefix").to_string(),
        suffix: str_of(q, "suffix").to_string(),
    };
    let text = b
        .text_at(&doc, &path)
        .ok_or_else(|| format!("no text at {doc} {}", path.join("/")))?;
    let hint = selector(target, "TextPositionSelector").and_then(|p| {
        Some(Position {
            start: usize::try_from(p.get("start")?.as_u64()?).ok()?,
            end: usize::try_from(p.get("end")?.as_u64()?).ok()?,
        })
    });
    // The quote decides; the position only breaks a tie between equal quotes.
    let found = match anchor::locate(&text, &quote, None) {
        Resolution::Quote(p) => match hint {
            Some(h) if anchor::locate(&text, &quote, Some(h)) == Resolution::Position(h) => h,
            _ => p,
        },
        _ => {
            return Err(format!(
                "«{}» is no longer in {doc} {}",
                quote.exact,
                path.join("/")
            ))
        }
    };
    Ok(json!({
        "type": "text_range",
        "doc": doc,
        "path": path,
        "quote": { "exact": quote.exact, "prefix": quote.prefix, "suffix": quote.suffix },
        "position": { "start": found.start, "end": found.end },
    }))
}
