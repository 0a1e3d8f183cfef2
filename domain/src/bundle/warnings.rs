//! What is valid in a bundle but suspicious ([`Bundle::warnings`]): the import goes ahead
//! and says each, with its place, unless the importer asks to be strict (`--strict`).
//!
//! Each is something a person would want to look at before the record becomes the district's
//! history: an evaluation edited after it was submitted with no reopening on record; a reaction
//! or a triage decision dated before the annotation it is about; a reply dated before its
//! parent; a quote that occurs more than once in its text with nothing (prefix, suffix or
//! position) to say which occurrence is meant.

use std::collections::HashMap;

use chrono::DateTime;

use super::{Annotation, Bundle, Session, Target};

/// A suspicious thing in a valid bundle, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleWarning {
    /// A path into the bundle (`sessions[0].reactions[3].at`).
    pub place: String,
    pub message: String,
}

impl std::fmt::Display for BundleWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

fn warn(place: String, message: String) -> BundleWarning {
    BundleWarning { place, message }
}

/// Seconds since the epoch of an RFC 3339 time; `None` for anything else (the check is then
/// skipped: the time's form is validated elsewhere).
fn secs(t: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp())
}

/// Whether `later` is strictly before `earlier`.
fn before(later: &str, earlier: &str) -> bool {
    matches!((secs(later), secs(earlier)), (Some(a), Some(b)) if a < b)
}

/// How many times `needle` occurs in `hay` (overlapping occurrences count).
fn occurrences(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.char_indices()
        .filter(|(i, _)| hay[*i..].starts_with(needle))
        .count()
}

impl Bundle {
    /// Everything valid but suspicious, in file order. Call on a bundle that validates.
    pub fn warnings(&self) -> Vec<BundleWarning> {
        let mut out = Vec::new();
        for (si, s) in self.sessions.iter().enumerate() {
            evaluation_warnings(si, s, &mut out);
            self.annotation_warnings(si, s, &mut out);
        }
        out
    }

    /// Replies before their parents, ambiguous quotes, reactions and triage before their
    /// annotations.
    fn annotation_warnings(&self, si: usize, s: &Session, out: &mut Vec<BundleWarning>) {
        let at = |rest: String| format!("sessions[{si}].{rest}");
        let by_ref: HashMap<String, &Annotation> = s
            .annotations
            .iter()
            .flat_map(|a| {
                let mut keys = vec![a.uuid()];
                keys.extend(a.reference.clone());
                keys.into_iter().map(move |k| (k, a))
            })
            .collect();
        let name = |a: &Annotation| a.reference.clone().unwrap_or_else(|| a.uuid());
        for (ai, a) in s.annotations.iter().enumerate() {
            if let Some(p) = a.parent.as_deref().and_then(|p| by_ref.get(p)) {
                if before(&a.created_at, &p.created_at) {
                    out.push(warn(
                        at(format!("annotations[{ai}].created_at")),
                        format!(
                            "reply {} is dated {}, before its parent {} ({})",
                            name(a),
                            a.created_at,
                            name(p),
                            p.created_at
                        ),
                    ));
                }
            }
            if let Some(Target::TextRange {
                doc,
                path,
                quote,
                position,
                ..
            }) = &a.target
            {
                if quote.prefix.is_empty() && quote.suffix.is_empty() && position.is_none() {
                    let n = self
                        .text_at(doc, path)
                        .map(|t| occurrences(&t, &quote.exact))
                        .unwrap_or(0);
                    if n > 1 {
                        out.push(warn(
                            at(format!("annotations[{ai}].target.quote")),
                            format!(
                                "{}: «{}» occurs {n} times in {doc} {} and nothing (prefix, suffix or position) says which; the first is taken",
                                name(a),
                                quote.exact,
                                path.join("/")
                            ),
                        ));
                    }
                }
            }
        }
        for (i, r) in s.reactions.iter().enumerate() {
            if let Some(a) = by_ref.get(&r.annotation) {
                if before(&r.at, &a.created_at) {
                    out.push(warn(
                        at(format!("reactions[{i}].at")),
                        format!(
                            "{}'s reaction to {} is dated {}, before the annotation ({})",
                            r.participant, r.annotation, r.at, a.created_at
                        ),
                    ));
                }
            }
        }
        for (i, t) in s.triage.iter().enumerate() {
            if let Some(a) = by_ref.get(&t.annotation) {
                if before(&t.at, &a.created_at) {
                    out.push(warn(
                        at(format!("triage[{i}].at")),
                        format!(
                            "the triage of {} is dated {}, before the annotation ({})",
                            t.annotation, t.at, a.created_at
                        ),
                    ));
                }
            }
        }
    }
}

/// A submitted evaluation changed after its submission with no reopening on record.
fn evaluation_warnings(si: usize, s: &Session, out: &mut Vec<BundleWarning>) {
    let at = |rest: String| format!("sessions[{si}].{rest}");
    for (ei, e) in s.evaluations.iter().enumerate() {
        let updated = e.rest.get("updated_at").and_then(|v| v.as_str());
        let reopened = e.rest.get("reopened_at").and_then(|v| v.as_str());
        if let (Some(sub), Some(upd)) = (e.submitted_at.as_deref(), updated) {
            let reopened_in_time = reopened.is_some_and(|r| !before(upd, r) && !before(r, sub));
            if e.status == "submitted" && before(sub, upd) && !reopened_in_time {
                out.push(warn(
                        at(format!("evaluations[{ei}].updated_at")),
                        format!(
                            "the evaluation of {} by {} was changed at {upd}, after it was submitted at {sub}, and no reopening (`reopened_at`) is recorded",
                            e.case, e.evaluator
                        ),
                    ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_count_overlaps_and_ignore_empty() {
        assert_eq!(occurrences("도서관 도서관 도서관", "도서관"), 3);
        assert_eq!(occurrences("aaa", "aa"), 2);
        assert_eq!(occurrences("abc", ""), 0);
    }

    #[test]
    fn times_compare_across_offsets() {
        assert!(before("2012-11-07T07:00:00Z", "2012-11-07T16:20:00+09:00"));
        assert!(!before("2012-11-07T16:20:00+09:00", "2012-11-07T07:20:00Z"));
        assert!(!before("어제", "2012-11-07T16:20:00+09:00"));
    }
}
