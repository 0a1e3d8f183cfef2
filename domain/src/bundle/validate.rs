//! [`Bundle::validate`]: every check that needs the whole bundle, each part in its own
//! function, all sharing the bundle's key sets ([`Keys`]). Every item (a case, an evaluation,
//! an annotation, a finding…) is checked, and the first problem of each is reported, so that
//! whoever fixes the file sees all of them at once; only duplicate keys stop the check early,
//! since everything after depends on knowing what the keys mean.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{err, AnnotationKind, Bundle, BundleError, BundleErrors, Session, Target};
use crate::anchor::{self, Resolution};
use crate::policy::DocKey;
use crate::vocab::Role;

/// Every annotation of the bundle by its reference (or id): the session index and its id.
type AnnotationRefs = HashMap<String, (usize, String)>;

/// The problems found so far, in file order: the first of each item checked.
#[derive(Default)]
struct Found(Vec<BundleError>);

impl Found {
    fn add(&mut self, r: Result<(), BundleError>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    /// The keys of a list; a duplicate is a problem, and the check goes on.
    fn unique<'a>(
        &mut self,
        place: &str,
        keys: impl Iterator<Item = &'a str> + Clone,
    ) -> BTreeSet<&'a str> {
        self.add(unique(place, keys.clone()).map(|_| ()));
        keys.collect()
    }
}

/// The keys the bundle defines, each list checked for duplicates when collected.
struct Keys<'a> {
    fields: BTreeSet<&'a str>,
    governments: BTreeSet<&'a str>,
    departments: BTreeSet<&'a str>,
    pledges: BTreeSet<&'a str>,
    people: BTreeSet<&'a str>,
    criteria: BTreeSet<&'a str>,
    findings: BTreeSet<&'a str>,
    cases: BTreeSet<&'a str>,
}

/// The keys of a list, or an error at the first duplicate.
fn unique<'a>(
    place: &str,
    keys: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<&'a str>, BundleError> {
    let mut seen = BTreeSet::new();
    for (i, k) in keys.enumerate() {
        if !seen.insert(k) {
            return Err(err(format!("{place}[{i}]"), format!("duplicate key `{k}`")));
        }
    }
    Ok(seen)
}

/// `key` must name a `what` that the bundle defines (is in `set`).
fn check(place: String, what: &str, key: &str, set: &BTreeSet<&str>) -> Result<(), BundleError> {
    if set.contains(key) {
        Ok(())
    } else {
        Err(err(
            place,
            format!("refers to {what} `{key}`, which the bundle does not define"),
        ))
    }
}

/// Every item of a list must name something the bundle defines.
fn each(
    place: String,
    what: &str,
    items: &[String],
    set: &BTreeSet<&str>,
) -> Result<(), BundleError> {
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, k)| check(format!("{place}[{i}]"), what, k, set))
}

fn known_annotation(
    refs: &AnnotationRefs,
    place: String,
    reference: &str,
) -> Result<(), BundleError> {
    if refs.contains_key(reference) {
        Ok(())
    } else {
        Err(err(
            place,
            format!("refers to annotation `{reference}`, which the bundle does not define"),
        ))
    }
}

impl<'a> Keys<'a> {
    fn of(b: &'a Bundle) -> Result<Self, BundleError> {
        let fields = unique("fields", b.fields.iter().map(|x| x.key.as_str()))?;
        let governments = unique("governments", b.governments.iter().map(|x| x.key.as_str()))?;
        let departments = unique("departments", b.departments.iter().map(|x| x.key.as_str()))?;
        let pledges = unique("pledges", b.pledges.iter().map(|x| x.key.as_str()))?;
        let people = unique(
            "participants",
            b.participants.iter().map(|x| x.key.as_str()),
        )?;
        unique("sessions", b.sessions.iter().map(|x| x.key.as_str()))?;
        let criteria = unique(
            "evaluation_template.criteria",
            b.evaluation_template
                .criteria
                .iter()
                .map(|c| c.key.as_str()),
        )?;
        let findings = unique("findings", b.findings.iter().map(|x| x.key.as_str()))?;
        Ok(Self {
            fields,
            governments,
            departments,
            pledges,
            people,
            criteria,
            findings,
            cases: BTreeSet::new(),
        })
    }
}

impl Bundle {
    /// Every check that needs the whole bundle: every problem found, in file order (the first
    /// of each item).
    pub fn validate(&self) -> Result<(), BundleErrors> {
        let mut keys = Keys::of(self).map_err(BundleErrors::from)?;
        let mut found = Found::default();
        found.add(self.validate_template());
        found.add(self.validate_directory(&keys));
        keys.cases = found.unique(
            "cases",
            self.sessions
                .iter()
                .flat_map(|s| s.cases.iter().map(|c| c.key.as_str())),
        );
        let mut refs = AnnotationRefs::new();
        for (si, s) in self.sessions.iter().enumerate() {
            self.validate_session(si, s, &keys, &mut refs, &mut found);
        }
        self.validate_findings(&keys, &refs, &mut found);
        for (i, r) in self.department_responses.iter().enumerate() {
            let at = |rest: &str| format!("department_responses[{i}].{rest}");
            found.add(check(at("finding"), "finding", &r.finding, &keys.findings));
            found.add(check(
                at("department"),
                "department",
                &r.department,
                &keys.departments,
            ));
            // A department answers for its own findings (the server holds the live hall to
            // the same rule).
            if let Some(f) = self.findings.iter().find(|f| f.key == r.finding) {
                if !f.departments.contains(&r.department) {
                    found.add(Err(err(
                        at("department"),
                        format!(
                            "finding `{}` is addressed to {}, not to {}",
                            f.key,
                            f.departments.join(", "),
                            r.department
                        ),
                    )));
                }
            }
        }
        BundleErrors::of(found.0)
    }

    fn validate_template(&self) -> Result<(), BundleError> {
        if self.series.evaluation_template != self.evaluation_template.key {
            return Err(err(
                "series.evaluation_template",
                format!(
                    "names template `{}` but the bundle's template is `{}`",
                    self.series.evaluation_template, self.evaluation_template.key
                ),
            ));
        }
        if let Some((i, c)) = self
            .evaluation_template
            .criteria
            .iter()
            .enumerate()
            .find(|(_, c)| c.weight == 0)
        {
            return Err(err(
                format!("evaluation_template.criteria[{i}].weight"),
                format!("criterion `{}` has weight 0", c.key),
            ));
        }
        Ok(())
    }

    /// Participants, departments and pledges name what the bundle defines.
    fn validate_directory(&self, k: &Keys<'_>) -> Result<(), BundleError> {
        for (i, p) in self.participants.iter().enumerate() {
            if let Some(d) = &p.department {
                check(
                    format!("participants[{i}].department"),
                    "department",
                    d,
                    &k.departments,
                )?;
            }
            if let Some(g) = &p.government {
                check(
                    format!("participants[{i}].government"),
                    "government",
                    g,
                    &k.governments,
                )?;
            }
        }
        for (i, d) in self.departments.iter().enumerate() {
            if let Some(g) = &d.government {
                check(
                    format!("departments[{i}].government"),
                    "government",
                    g,
                    &k.governments,
                )?;
            }
        }
        for (i, p) in self.pledges.iter().enumerate() {
            if let Some(f) = &p.field {
                check(format!("pledges[{i}].field"), "field", f, &k.fields)?;
            }
            if let Some(d) = &p.lead_department {
                check(
                    format!("pledges[{i}].lead_department"),
                    "department",
                    d,
                    &k.departments,
                )?;
            }
        }
        Ok(())
    }

    fn validate_session(
        &self,
        si: usize,
        s: &Session,
        k: &Keys<'_>,
        refs: &mut AnnotationRefs,
        found: &mut Found,
    ) {
        let at = |rest: &str| format!("sessions[{si}].{rest}");
        if s.series != self.series.key {
            found.add(Err(err(
                at("series"),
                format!(
                    "refers to series `{}`, which the bundle does not define",
                    s.series
                ),
            )));
        }
        if let Some(f) = &s.field {
            found.add(check(at("field"), "field", f, &k.fields));
        }
        if let Some(f) = &s.facilitator {
            found.add(check(at("facilitator"), "participant", f, &k.people));
        }
        if s.phase.parse::<crate::policy::Phase>().is_err() {
            found.add(Err(err(
                at("phase"),
                format!("unknown phase `{}`", s.phase),
            )));
        }
        found.add(each(
            at("governments"),
            "government",
            &s.governments,
            &k.governments,
        ));
        let agenda = found.unique(&at("agenda"), s.agenda.iter().map(|a| a.key.as_str()));
        for (i, r) in s.roles.iter().enumerate() {
            found.add(check(
                at(&format!("roles[{i}].participant")),
                "participant",
                &r.participant,
                &k.people,
            ));
            if Role::parse(&r.role).is_none() {
                found.add(Err(err(
                    at(&format!("roles[{i}].role")),
                    format!("unknown role `{}`", r.role),
                )));
            }
        }
        for (ci, c) in s.cases.iter().enumerate() {
            let at = |rest: &str| at(&format!("cases[{ci}].{rest}"));
            found.add((|| {
                check(
                    at("government"),
                    "government",
                    &c.government,
                    &k.governments,
                )?;
                each(at("presenters"), "participant", &c.presenters, &k.people)?;
                each(at("pledges"), "pledge", &c.pledges, &k.pledges)?;
                each(
                    at("responsible_departments"),
                    "department",
                    &c.responsible_departments,
                    &k.departments,
                )
            })());
        }
        validate_evaluations(si, s, k, found);
        // Annotations: refs unique across the bundle, references resolvable, anchors found.
        for (ai, a) in s.annotations.iter().enumerate() {
            let name = a.reference.clone().unwrap_or_else(|| a.uuid());
            if refs.insert(name.clone(), (si, a.uuid())).is_some() {
                found.add(Err(err(
                    at(&format!("annotations[{ai}]")),
                    format!("duplicate annotation `{name}`"),
                )));
            }
            // A reply may name its parent by id even where the parent has a ref (the hall
            // writes ids; an export keeps what was written).
            if a.reference.is_some() {
                refs.entry(a.uuid()).or_insert((si, a.uuid()));
            }
        }
        for ai in 0..s.annotations.len() {
            found.add(self.validate_annotation(si, s, ai, k, &agenda, refs));
        }
        validate_decisions(si, s, k, refs, found);
    }
}

/// Reactions and triage entries name annotations and people the bundle has.
fn validate_decisions(
    si: usize,
    s: &Session,
    k: &Keys<'_>,
    refs: &AnnotationRefs,
    found: &mut Found,
) {
    let at = |rest: &str| format!("sessions[{si}].{rest}");
    for (i, r) in s.reactions.iter().enumerate() {
        let at = |rest: &str| at(&format!("reactions[{i}].{rest}"));
        found.add(known_annotation(refs, at("annotation"), &r.annotation));
        found.add(check(
            at("participant"),
            "participant",
            &r.participant,
            &k.people,
        ));
    }
    for (i, t) in s.triage.iter().enumerate() {
        let at = |rest: &str| at(&format!("triage[{i}].{rest}"));
        found.add(known_annotation(refs, at("annotation"), &t.annotation));
        found.add(check(at("by"), "participant", &t.by, &k.people));
        if let Some(f) = &t.finding {
            found.add(check(at("finding"), "finding", f, &k.findings));
        }
    }
}

impl Bundle {
    fn validate_annotation(
        &self,
        si: usize,
        s: &Session,
        ai: usize,
        k: &Keys<'_>,
        agenda: &BTreeSet<&str>,
        refs: &AnnotationRefs,
    ) -> Result<(), BundleError> {
        let a = &s.annotations[ai];
        let at = |rest: &str| format!("sessions[{si}].annotations[{ai}]{rest}");
        if a.session != s.key {
            return Err(err(
                at(".session"),
                format!("is `{}` inside session `{}`", a.session, s.key),
            ));
        }
        check(at(".author"), "participant", &a.author, &k.people)?;
        if Role::parse(&a.author_role).is_none() {
            return Err(err(
                at(".author_role"),
                format!("unknown role `{}`", a.author_role),
            ));
        }
        if let Some(r) = &a.recorded_by {
            check(at(".recorded_by"), "participant", r, &k.people)?;
        }
        each(at(".subject_cases"), "case", &a.subject_cases, &k.cases)?;
        each(
            at(".departments"),
            "department",
            &a.departments,
            &k.departments,
        )?;
        each(at(".related_fields"), "field", &a.related_fields, &k.fields)?;
        if let Some(g) = &a.source_government {
            check(at(".source_government"), "government", g, &k.governments)?;
        }
        for (what, r) in [("parent", &a.parent), ("root", &a.root)] {
            if let Some(r) = r {
                known_annotation(refs, at(&format!(".{what}")), r)?;
            }
        }
        if a.kind == AnnotationKind::Score {
            match (&a.criterion, a.value) {
                (Some(c), Some(v)) if (1..=5).contains(&v) => {
                    check(at(".criterion"), "criterion", c, &k.criteria)?;
                }
                _ => {
                    return Err(err(
                        at(""),
                        "a score needs a criterion and a value from 1 to 5",
                    ))
                }
            }
        }
        let layer: Result<DocKey, _> = a.layer().parse();
        if !matches!(
            layer,
            Ok(DocKey::Notes { .. }) | Ok(DocKey::NotesPrivate { .. })
        ) {
            return Err(err(
                at(".layer_doc"),
                format!("`{}` is not a notes layer", a.layer()),
            ));
        }
        let label = a.reference.clone().unwrap_or_default();
        match &a.target {
            Some(target) => self.validate_target(s, target, &label, &at, k, agenda),
            None if a.parent.is_none() => Err(err(
                at(""),
                "an annotation without a target must be a reply (give `parent`)",
            )),
            None => Ok(()),
        }
    }

    /// What an annotation points at exists: the quoted text where it says, the document, or
    /// the agenda item.
    fn validate_target(
        &self,
        s: &Session,
        target: &Target,
        label: &str,
        at: &dyn Fn(&str) -> String,
        k: &Keys<'_>,
        agenda: &BTreeSet<&str>,
    ) -> Result<(), BundleError> {
        match target {
            Target::TextRange {
                doc,
                path,
                quote,
                position,
                ..
            } => {
                let Some(text) = self.text_at(doc, path) else {
                    return Err(err(
                        at(".target"),
                        format!("{label}: no text at {doc} {}", path.join("/")),
                    ));
                };
                let r = anchor::locate(&text, quote, *position);
                if r == Resolution::Orphaned {
                    return Err(err(
                        at(".target.quote"),
                        format!(
                            "{label}: «{}» is not in {doc} {}",
                            quote.exact,
                            path.join("/")
                        ),
                    ));
                }
                if let (Some(p), Resolution::Quote(found)) = (position, r) {
                    return Err(err(
                        at(".target.position"),
                        format!(
                            "{label}: «{}» is at {}–{}, not {}–{} (positions count code points)",
                            quote.exact, found.start, found.end, p.start, p.end
                        ),
                    ));
                }
                Ok(())
            }
            Target::Document { doc } | Target::Indicator { doc, .. } => {
                let known = match doc.parse::<DocKey>() {
                    Ok(DocKey::Case { case }) => k.cases.contains(case.as_str()),
                    Ok(DocKey::Eval { case, evaluator }) => s
                        .evaluations
                        .iter()
                        .any(|e| e.case == case && e.evaluator == evaluator),
                    _ => false,
                };
                if known {
                    Ok(())
                } else {
                    Err(err(
                        at(".target.doc"),
                        format!("refers to document `{doc}`, which the bundle does not define"),
                    ))
                }
            }
            Target::AgendaItem { agenda_item } => check(
                at(".target.agenda_item"),
                "agenda item",
                agenda_item,
                agenda,
            ),
        }
    }

    fn validate_findings(&self, k: &Keys<'_>, refs: &AnnotationRefs, found: &mut Found) {
        for i in 0..self.findings.len() {
            found.add(self.validate_finding(i, k, refs));
        }
    }

    fn validate_finding(
        &self,
        i: usize,
        k: &Keys<'_>,
        refs: &AnnotationRefs,
    ) -> Result<(), BundleError> {
        let f = &self.findings[i];
        let at = |rest: &str| format!("findings[{i}].{rest}");
        each(at("fields"), "field", &f.fields, &k.fields)?;
        each(
            at("departments"),
            "department",
            &f.departments,
            &k.departments,
        )?;
        each(at("pledges"), "pledge", &f.pledges, &k.pledges)?;
        each(
            at("related_findings"),
            "finding",
            &f.related_findings,
            &k.findings,
        )?;
        if let Some(c) = &f.case {
            check(at("case"), "case", c, &k.cases)?;
        }
        for g in [&f.subject_government, &f.source_government]
            .into_iter()
            .flatten()
        {
            check(at("government"), "government", g, &k.governments)?;
        }
        for (j, src) in f.sources.iter().enumerate() {
            if src.get("kind").and_then(Value::as_str) == Some("annotation") {
                let r = src.get("ref").and_then(Value::as_str).unwrap_or_default();
                known_annotation(refs, at(&format!("sources[{j}].ref")), r)?;
            }
        }
        Ok(())
    }
}

/// One form per (case, evaluator), of a case of this session, criteria of the template,
/// scores 1–5, a known status.
fn validate_evaluations(si: usize, s: &Session, k: &Keys<'_>, found: &mut Found) {
    let at = |rest: &str| format!("sessions[{si}].{rest}");
    let pairs: Vec<String> = s
        .evaluations
        .iter()
        .map(|e| format!("{}/{}", e.case, e.evaluator))
        .collect();
    found.add(
        unique(&at("evaluations"), pairs.iter().map(String::as_str))
            .map(|_| ())
            .map_err(|e| {
                err(
                    e.place,
                    "a second evaluation by the same evaluator of the same case",
                )
            }),
    );
    for ei in 0..s.evaluations.len() {
        found.add(validate_evaluation(si, s, ei, k));
    }
}

fn validate_evaluation(si: usize, s: &Session, ei: usize, k: &Keys<'_>) -> Result<(), BundleError> {
    let session_cases: BTreeSet<&str> = s.cases.iter().map(|c| c.key.as_str()).collect();
    let e = &s.evaluations[ei];
    let at = |rest: &str| format!("sessions[{si}].evaluations[{ei}].{rest}");
    check(at("case"), "case of this session", &e.case, &session_cases)?;
    check(at("evaluator"), "participant", &e.evaluator, &k.people)?;
    for (key, c) in &e.criteria {
        check(
            at(&format!("criteria.{key}")),
            "criterion",
            key,
            &k.criteria,
        )?;
        if let Some(x) = c.score {
            if !(1..=5).contains(&x) {
                return Err(err(
                    at(&format!("criteria.{key}.score")),
                    format!("score {x} is outside 1–5"),
                ));
            }
        }
    }
    if !matches!(e.status.as_str(), "draft" | "submitted") {
        return Err(err(
            at("status"),
            format!("unknown status `{}` (draft or submitted)", e.status),
        ));
    }
    Ok(())
}
