//! What a report or an export found wrong in the documents it read, and the lenient reading
//! of an exported bundle that lets one bad item cost only itself.
//!
//! Documents are written by participants: whatever they hold is content, never identity or
//! structure. The export corrects what the log and the document keys say better than the
//! content (an annotation's author, an evaluation's case) and records each disagreement as a
//! [`Problem`]; the report skips any item that does not read as its type, lists it in its
//! appendix and goes on. A report therefore never fails because of one document.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::{Annotation, Bundle, DeptResponse, Evaluation, Finding, Reaction, TriageEntry};

/// One thing found wrong in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The document's key (`notes:S-LIB:P-KIM`), or the bundle place when no key is known.
    pub doc: String,
    /// The item inside it (an annotation's id or ref, a criterion…), if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// What was wrong, in words.
    pub problem: String,
    /// `true` if the item was left out; `false` if a wrong value was replaced.
    #[serde(default)]
    pub skipped: bool,
}

impl Problem {
    pub fn corrected(doc: &str, item: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            doc: doc.to_string(),
            item: item.map(str::to_string),
            problem: problem.into(),
            skipped: false,
        }
    }

    pub fn skipped(doc: &str, item: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            doc: doc.to_string(),
            item: item.map(str::to_string),
            problem: problem.into(),
            skipped: true,
        }
    }
}

/// Whether `v` reads as a `T`; the reason when it does not.
pub fn reads_as<T: DeserializeOwned>(v: &Value) -> Result<(), String> {
    serde_path_to_error::deserialize::<_, T>(v)
        .map(|_| ())
        .map_err(|e| {
            let path = e.path().to_string();
            if path == "." || path.is_empty() {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            }
        })
}

/// A short label for an item: its ref, id or key, whichever it has.
pub fn label(v: &Value) -> Option<String> {
    ["ref", "id", "key", "finding", "annotation"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(|s| s.chars().take(80).collect())
}

fn keep_readable<T: DeserializeOwned>(list: &mut Value, place: &str, out: &mut Vec<Problem>) {
    keep_by(list, place, reads_as::<T>, out);
}

/// Reads an exported bundle (a JSON value), leaving out every item that does not read as its
/// type and recording it in `integrity` beside what the export recorded there already. Fails
/// only when the bundle's frame (series, template) is unreadable.
pub fn read_export(mut v: Value) -> Result<Bundle, String> {
    let mut problems: Vec<Problem> = v
        .get("integrity")
        .cloned()
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("integrity");
    }
    if let Some(sessions) = v.get_mut("sessions").and_then(Value::as_array_mut) {
        for (n, s) in sessions.iter_mut().enumerate() {
            let at = format!("sessions[{n}]");
            if let Some(cases) = s.get_mut("cases").and_then(Value::as_array_mut) {
                for c in cases.iter_mut() {
                    keep_text_sections(c, &at, &mut problems);
                }
            }
            for (list, check) in [
                ("cases", reads_as::<crate::bundle::Case> as fn(&Value) -> _),
                ("evaluations", reads_as::<Evaluation>),
                ("annotations", reads_as::<Annotation>),
                ("reactions", reads_as::<Reaction>),
                ("triage", reads_as::<TriageEntry>),
            ] {
                if let Some(items) = s.get_mut(list) {
                    keep_by(items, &format!("{at}.{list}"), check, &mut problems);
                }
            }
        }
    }
    if let Some(items) = v.get_mut("findings") {
        keep_readable::<Finding>(items, "findings", &mut problems);
    }
    if let Some(items) = v.get_mut("department_responses") {
        keep_readable::<DeptResponse>(items, "department_responses", &mut problems);
    }
    let mut b: Bundle = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })?;
    b.integrity = problems;
    Ok(b)
}

fn keep_by(
    list: &mut Value,
    place: &str,
    check: fn(&Value) -> Result<(), String>,
    out: &mut Vec<Problem>,
) {
    let Some(items) = list.as_array_mut() else {
        if !list.is_null() {
            out.push(Problem::skipped(place, None, "not a list"));
            *list = Value::Array(Vec::new());
        }
        return;
    };
    let mut i = 0;
    items.retain(|item| {
        let here = format!("{place}[{i}]");
        i += 1;
        match check(item) {
            Ok(()) => true,
            Err(why) => {
                out.push(Problem::skipped(&here, label(item).as_deref(), why));
                false
            }
        }
    });
}

/// A case's sections are texts: any other value is left out (the rest of the case stays).
pub fn keep_text_sections(case: &mut Value, place: &str, out: &mut Vec<Problem>) {
    let key = case
        .get("key")
        .and_then(Value::as_str)
        .map(|k| format!("case:{k}"))
        .unwrap_or_else(|| place.to_string());
    match case.get_mut("sections") {
        Some(Value::Object(m)) => m.retain(|name, v| {
            if v.is_string() {
                true
            } else {
                out.push(Problem::skipped(
                    &key,
                    Some(&format!("sections/{name}")),
                    "a section is text; this one is not",
                ));
                false
            }
        }),
        Some(Value::Null) | None => {}
        Some(other) => {
            out.push(Problem::skipped(
                &key,
                Some("sections"),
                "sections is not a map",
            ));
            *other = Value::Object(Default::default());
        }
    }
    if let Some(ind) = case.get_mut("indicators") {
        if !ind.is_array() && !ind.is_null() {
            out.push(Problem::skipped(
                &key,
                Some("indicators"),
                "indicators is not a list",
            ));
            *ind = Value::Array(Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(annotations: Value, criteria_score: Value) -> Value {
        json!({
            "series": { "key": "S", "title_ko": "시리즈", "host_government": "G",
                        "evaluation_template": "T" },
            "evaluation_template": { "key": "T", "criteria": [] },
            "sessions": [{
                "key": "S1", "series": "S", "title": "세션",
                "cases": [{ "key": "C1", "government": "G", "title": "사례",
                            "sections": { "a": "본문", "b": [1, 2] } }],
                "evaluations": [{ "case": "C1", "evaluator": "E", "criteria": {
                    "x": { "score": criteria_score } } }],
                "annotations": annotations,
            }],
        })
    }

    #[test]
    fn one_bad_item_costs_only_itself() {
        let anns = json!([
            { "ref": "A-1", "session": "S1", "kind": "comment", "author": "P", "author_role":
              "activist", "created_at": "2026-01-01T00:00:00Z", "body": "좋음" },
            { "ref": "A-2", "kind": "comment", "author": "P", "author_role": "activist",
              "created_at": "2026-01-01T00:00:00Z" },
        ]);
        let b = read_export(bundle(anns, json!([3]))).expect("the frame reads");
        let s = &b.sessions[0];
        assert_eq!(
            s.annotations.len(),
            1,
            "the annotation without a session is left out"
        );
        assert_eq!(s.annotations[0].reference.as_deref(), Some("A-1"));
        assert!(
            s.evaluations.is_empty(),
            "a score written as a list is left out"
        );
        assert_eq!(s.cases.len(), 1, "a bad section costs only the section");
        assert_eq!(s.cases[0].sections.len(), 1);
        let items: Vec<_> = b
            .integrity
            .iter()
            .map(|p| (p.doc.as_str(), p.skipped))
            .collect();
        assert_eq!(
            items,
            [
                ("case:C1", true),
                ("sessions[0].evaluations[0]", true),
                ("sessions[0].annotations[1]", true)
            ]
        );
        assert!(
            b.integrity[2].problem.contains("session"),
            "{:?}",
            b.integrity[2]
        );
    }

    #[test]
    fn problems_the_export_found_are_kept() {
        let mut v = bundle(json!([]), json!(3));
        v["integrity"] =
            json!([{ "doc": "eval:C1:E", "problem": "case said C2", "skipped": false }]);
        let b = read_export(v).expect("reads");
        assert_eq!(b.integrity.len(), 2, "{:?}", b.integrity);
        assert_eq!(b.integrity[0].doc, "eval:C1:E");
    }

    #[test]
    fn an_unreadable_frame_is_an_error() {
        assert!(read_export(json!({ "series": 3 })).is_err());
    }
}
