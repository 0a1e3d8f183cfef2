//! The import bundle: one JSON file with a series' reference data, participants, sessions with
//! their cases, evaluations, annotations, reactions and triage, and the report's findings and
//! department responses (the format of the shared sample; described in `docs/bundle-format.md`).
//!
//! [`Bundle::parse`] reads it strictly and completely before anything is written: size limit,
//! JSON syntax, every field's type (errors name the place, e.g.
//! `sessions[0].annotations[3].target.type`), all text normalised to NFC, then
//! [`Bundle::validate`]: duplicate keys, dangling references and anchors whose quote is not in
//! the text they point at.
//!
//! Entities keep the fields Toron does not interpret (`rest`), so that an export gives back
//! what was imported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::anchor::{self, Position, Quote, Resolution};
use crate::policy::DocKey;

/// Largest bundle read (the sample of two sessions is 160 KB).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// What is wrong with a bundle, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct BundleError {
    /// A path into the bundle (`sessions[0].cases[1].government`), or `bundle`.
    pub place: String,
    pub message: String,
}

fn err(place: impl Into<String>, message: impl Into<String>) -> BundleError {
    BundleError {
        place: place.into(),
        message: message.into(),
    }
}

type Rest = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub meta: Value,
    pub series: Series,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub governments: Vec<Government>,
    #[serde(default)]
    pub departments: Vec<Department>,
    #[serde(default)]
    pub pledges: Vec<Pledge>,
    pub evaluation_template: Template,
    #[serde(default)]
    pub participants: Vec<Participant>,
    #[serde(default)]
    pub sessions: Vec<Session>,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub department_responses: Vec<DeptResponse>,
    /// What an export found wrong in the documents it read (see [`crate::integrity`]);
    /// empty in a bundle written by hand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity: Vec<crate::integrity::Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub key: String,
    pub title_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    pub evaluation_template: String,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Government {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub government: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pledge {
    pub key: String,
    pub title_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_department: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub key: String,
    pub criteria: Vec<Criterion>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    pub weight: u32,
    #[serde(flatten)]
    pub rest: Rest,
}

/// How a participant's name may be shown (domain §2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    NameAndAffiliation,
    AffiliationOnly,
    RoleOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub affiliation: String,
    pub kind: String,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub government: Option<String>,
    pub attribution: Attribution,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRef {
    pub participant: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgendaItem {
    pub key: String,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub key: String,
    pub series: String,
    #[serde(default)]
    pub no: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator: Option<String>,
    #[serde(default)]
    pub governments: Vec<String>,
    #[serde(default = "scheduled")]
    pub phase: String,
    #[serde(default)]
    pub agenda: Vec<AgendaItem>,
    #[serde(default)]
    pub roles: Vec<RoleRef>,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub triage: Vec<TriageEntry>,
    /// Expected output of a replay in the sample; not imported (the server makes its own).
    #[serde(default, skip_serializing)]
    pub events: Vec<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

fn scheduled() -> String {
    "scheduled".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub key: String,
    pub government: String,
    #[serde(default)]
    pub presenters: Vec<String>,
    pub title: String,
    #[serde(default)]
    pub pledges: Vec<String>,
    #[serde(default)]
    pub responsible_departments: Vec<String>,
    #[serde(default)]
    pub sections: BTreeMap<String, String>,
    #[serde(default)]
    pub indicators: Vec<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionScore {
    pub score: Option<u8>,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub na_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub case: String,
    pub evaluator: String,
    #[serde(default = "draft")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    pub criteria: BTreeMap<String, CriterionScore>,
    #[serde(default)]
    pub strengths: String,
    #[serde(default)]
    pub gaps: String,
    #[serde(default)]
    pub lessons: String,
    #[serde(default)]
    pub overall: String,
    #[serde(flatten)]
    pub rest: Rest,
}

fn draft() -> String {
    "draft".into()
}

/// The annotation kinds of domain §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationKind {
    Comment,
    Question,
    Answer,
    Reply,
    Highlight,
    Strength,
    Gap,
    Lesson,
    Score,
}

impl AnnotationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::Question => "question",
            Self::Answer => "answer",
            Self::Reply => "reply",
            Self::Highlight => "highlight",
            Self::Strength => "strength",
            Self::Gap => "gap",
            Self::Lesson => "lesson",
            Self::Score => "score",
        }
    }
}

/// Where an annotation points (domain §2.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    TextRange {
        doc: String,
        path: Vec<String>,
        quote: Quote,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<Position>,
        /// Automerge cursors (their text form, as the JavaScript library reads them) and heads
        /// at creation, in the live system.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heads: Option<Vec<String>>,
    },
    Document {
        doc: String,
    },
    AgendaItem {
        agenda_item: String,
    },
    Indicator {
        doc: String,
        path: Vec<Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub session: String,
    pub kind: AnnotationKind,
    pub author: String,
    pub author_role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_doc: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_cases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_government: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_in_aggregate: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_fields: Vec<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

impl Annotation {
    /// Its stable id: given, or derived from the session and its short code.
    pub fn uuid(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => uuid::Uuid::new_v5(
                &crate::policy::TORON_NAMESPACE,
                format!(
                    "annotation:{}:{}",
                    self.session,
                    self.reference.as_deref().unwrap_or(&self.created_at)
                )
                .as_bytes(),
            )
            .to_string(),
        }
    }

    /// The notes layer it lives in: given, or the recorder's (scribe) or author's.
    pub fn layer(&self) -> String {
        self.layer_doc.clone().unwrap_or_else(|| {
            format!(
                "notes:{}:{}",
                self.session,
                self.recorded_by.as_deref().unwrap_or(&self.author)
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub annotation: String,
    pub participant: String,
    pub kind: String,
    pub at: String,
}

/// Triage statuses (domain §2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageStatus {
    Open,
    Answered,
    Accepted,
    Merged,
    Noted,
    Deferred,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageEntry {
    pub annotation: String,
    pub status: TriageStatus,
    pub by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub finding: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingType {
    Gap,
    Lesson,
    Recommendation,
    OpenQuestion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: FindingType,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_government: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_government: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    #[serde(default)]
    pub departments: Vec<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub pledges: Vec<String>,
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_findings: Vec<String>,
    #[serde(default)]
    pub sources: Vec<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptResponse {
    pub finding: String,
    pub department: String,
    pub stance: String,
    #[serde(flatten)]
    pub rest: Rest,
}

/// Every string of a JSON tree in NFC.
fn normalise(v: &mut Value) {
    match v {
        Value::String(s) => {
            let n = anchor::nfc(s);
            if n != *s {
                *s = n;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        Value::Object(m) => {
            let entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            for (k, mut x) in entries {
                normalise(&mut x);
                m.insert(anchor::nfc(&k), x);
            }
        }
        _ => {}
    }
}

/// A `serde_path_to_error` path in the bundle's own notation.
fn place_of(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                out.push_str(&format!("({variant})"));
            }
            serde_path_to_error::Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        "bundle".into()
    } else {
        out
    }
}

const ROLES: [&str; 10] = [
    "organizer",
    "facilitator",
    "scribe",
    "presenter",
    "evaluator",
    "activist",
    "official",
    "department_reviewer",
    "observer",
    "importer",
];

/// `reference` must name an annotation of the bundle (by its short code or id).
fn known_annotation(
    refs: &HashMap<String, (usize, String)>,
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

impl Bundle {
    /// Reads a bundle; nothing is accepted until all of it has been read and checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(err(
                "bundle",
                format!(
                    "the file is {:.1} MB; a bundle may be at most {} MB",
                    bytes.len() as f64 / 1_048_576.0,
                    MAX_BUNDLE_BYTES / 1_048_576
                ),
            ));
        }
        let mut v: Value = serde_json::from_slice(bytes).map_err(|e| {
            let what = if e.is_eof() {
                "the file ends early (truncated?)".to_string()
            } else {
                e.to_string()
            };
            err(
                format!("line {}, column {}", e.line(), e.column()),
                format!("not valid JSON: {what}"),
            )
        })?;
        normalise(&mut v);
        let b: Bundle = serde_path_to_error::deserialize(v).map_err(|e| {
            let place = place_of(e.path());
            err(place, e.into_inner().to_string())
        })?;
        b.validate()?;
        Ok(b)
    }

    /// The text an anchor's document and path point at, from the bundle itself.
    pub fn text_at(&self, doc: &str, path: &[String]) -> Option<String> {
        let key: DocKey = doc.parse().ok()?;
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match key {
            DocKey::Case { case } => {
                let c = self.case(&case)?;
                match p.as_slice() {
                    ["sections", s] => c.sections.get(*s).cloned(),
                    ["title"] => Some(c.title.clone()),
                    _ => None,
                }
            }
            DocKey::Eval { case, evaluator } => {
                let e = self
                    .sessions
                    .iter()
                    .flat_map(|s| &s.evaluations)
                    .find(|e| e.case == case && e.evaluator == evaluator)?;
                match p.as_slice() {
                    ["criteria", c, "text"] => e.criteria.get(*c).map(|c| c.text.clone()),
                    ["strengths"] => Some(e.strengths.clone()),
                    ["gaps"] => Some(e.gaps.clone()),
                    ["lessons"] => Some(e.lessons.clone()),
                    ["overall"] => Some(e.overall.clone()),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub fn case(&self, key: &str) -> Option<&Case> {
        self.sessions
            .iter()
            .flat_map(|s| &s.cases)
            .find(|c| c.key == key)
    }

    /// Every check that needs the whole bundle. Returns the first problem found, in file order.
    pub fn validate(&self) -> Result<(), BundleError> {
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
        let fields = unique("fields", self.fields.iter().map(|x| x.key.as_str()))?;
        let govs = unique(
            "governments",
            self.governments.iter().map(|x| x.key.as_str()),
        )?;
        let deps = unique(
            "departments",
            self.departments.iter().map(|x| x.key.as_str()),
        )?;
        let pledges = unique("pledges", self.pledges.iter().map(|x| x.key.as_str()))?;
        let people = unique(
            "participants",
            self.participants.iter().map(|x| x.key.as_str()),
        )?;
        unique("sessions", self.sessions.iter().map(|x| x.key.as_str()))?;
        let criteria = unique(
            "evaluation_template.criteria",
            self.evaluation_template
                .criteria
                .iter()
                .map(|c| c.key.as_str()),
        )?;
        let findings = unique("findings", self.findings.iter().map(|x| x.key.as_str()))?;
        let check = |place: String, what: &str, key: &str, set: &BTreeSet<&str>| {
            if set.contains(key) {
                Ok(())
            } else {
                Err(err(
                    place,
                    format!("refers to {what} `{key}`, which the bundle does not define"),
                ))
            }
        };
        // Every item of a list must name something the bundle defines.
        let each = |place: String, what: &str, items: &[String], set: &BTreeSet<&str>| {
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, k)| check(format!("{place}[{i}]"), what, k, set))
        };
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
        for (i, p) in self.participants.iter().enumerate() {
            if let Some(d) = &p.department {
                check(
                    format!("participants[{i}].department"),
                    "department",
                    d,
                    &deps,
                )?;
            }
            if let Some(g) = &p.government {
                check(
                    format!("participants[{i}].government"),
                    "government",
                    g,
                    &govs,
                )?;
            }
        }
        for (i, d) in self.departments.iter().enumerate() {
            if let Some(g) = &d.government {
                check(
                    format!("departments[{i}].government"),
                    "government",
                    g,
                    &govs,
                )?;
            }
        }
        for (i, p) in self.pledges.iter().enumerate() {
            if let Some(f) = &p.field {
                check(format!("pledges[{i}].field"), "field", f, &fields)?;
            }
            if let Some(d) = &p.lead_department {
                check(
                    format!("pledges[{i}].lead_department"),
                    "department",
                    d,
                    &deps,
                )?;
            }
        }
        let all_cases = unique(
            "cases",
            self.sessions
                .iter()
                .flat_map(|s| s.cases.iter().map(|c| c.key.as_str())),
        )?;
        let mut all_refs: HashMap<String, (usize, String)> = HashMap::new();
        for (si, s) in self.sessions.iter().enumerate() {
            let at = |rest: &str| format!("sessions[{si}].{rest}");
            if s.series != self.series.key {
                return Err(err(
                    at("series"),
                    format!(
                        "refers to series `{}`, which the bundle does not define",
                        s.series
                    ),
                ));
            }
            if let Some(f) = &s.field {
                check(at("field"), "field", f, &fields)?;
            }
            if let Some(f) = &s.facilitator {
                check(at("facilitator"), "participant", f, &people)?;
            }
            if s.phase.parse::<crate::policy::Phase>().is_err() {
                return Err(err(at("phase"), format!("unknown phase `{}`", s.phase)));
            }
            each(at("governments"), "government", &s.governments, &govs)?;
            let agenda = unique(&at("agenda"), s.agenda.iter().map(|a| a.key.as_str()))?;
            for (i, r) in s.roles.iter().enumerate() {
                check(
                    at(&format!("roles[{i}].participant")),
                    "participant",
                    &r.participant,
                    &people,
                )?;
                if !ROLES.contains(&r.role.as_str()) {
                    return Err(err(
                        at(&format!("roles[{i}].role")),
                        format!("unknown role `{}`", r.role),
                    ));
                }
            }
            for (ci, c) in s.cases.iter().enumerate() {
                let at = |rest: &str| at(&format!("cases[{ci}].{rest}"));
                check(at("government"), "government", &c.government, &govs)?;
                each(at("presenters"), "participant", &c.presenters, &people)?;
                each(at("pledges"), "pledge", &c.pledges, &pledges)?;
                each(
                    at("responsible_departments"),
                    "department",
                    &c.responsible_departments,
                    &deps,
                )?;
            }
            let session_cases: BTreeSet<&str> = s.cases.iter().map(|c| c.key.as_str()).collect();
            // One form per (case, evaluator).
            let pairs: Vec<String> = s
                .evaluations
                .iter()
                .map(|e| format!("{}/{}", e.case, e.evaluator))
                .collect();
            unique(&at("evaluations"), pairs.iter().map(String::as_str)).map_err(|e| {
                err(
                    e.place,
                    "a second evaluation by the same evaluator of the same case",
                )
            })?;
            for (ei, e) in s.evaluations.iter().enumerate() {
                let at = |rest: &str| at(&format!("evaluations[{ei}].{rest}"));
                check(at("case"), "case of this session", &e.case, &session_cases)?;
                check(at("evaluator"), "participant", &e.evaluator, &people)?;
                for (k, c) in &e.criteria {
                    check(at(&format!("criteria.{k}")), "criterion", k, &criteria)?;
                    if let Some(x) = c.score {
                        if !(1..=5).contains(&x) {
                            return Err(err(
                                at(&format!("criteria.{k}.score")),
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
            }
            // Annotations: refs unique across the bundle, references resolvable, anchors found.
            for (ai, a) in s.annotations.iter().enumerate() {
                let name = a.reference.clone().unwrap_or_else(|| a.uuid());
                if all_refs.insert(name.clone(), (si, a.uuid())).is_some() {
                    return Err(err(
                        at(&format!("annotations[{ai}]")),
                        format!("duplicate annotation `{name}`"),
                    ));
                }
            }
            for (ai, a) in s.annotations.iter().enumerate() {
                let label = a.reference.clone().unwrap_or_default();
                let at = |rest: &str| at(&format!("annotations[{ai}]{rest}"));
                if a.session != s.key {
                    return Err(err(
                        at(".session"),
                        format!("is `{}` inside session `{}`", a.session, s.key),
                    ));
                }
                check(at(".author"), "participant", &a.author, &people)?;
                if !ROLES.contains(&a.author_role.as_str()) {
                    return Err(err(
                        at(".author_role"),
                        format!("unknown role `{}`", a.author_role),
                    ));
                }
                if let Some(r) = &a.recorded_by {
                    check(at(".recorded_by"), "participant", r, &people)?;
                }
                each(at(".subject_cases"), "case", &a.subject_cases, &all_cases)?;
                each(at(".departments"), "department", &a.departments, &deps)?;
                each(at(".related_fields"), "field", &a.related_fields, &fields)?;
                if let Some(g) = &a.source_government {
                    check(at(".source_government"), "government", g, &govs)?;
                }
                for (what, r) in [("parent", &a.parent), ("root", &a.root)] {
                    if let Some(r) = r {
                        known_annotation(&all_refs, at(&format!(".{what}")), r)?;
                    }
                }
                if a.kind == AnnotationKind::Score {
                    match (&a.criterion, a.value) {
                        (Some(c), Some(v)) if (1..=5).contains(&v) => {
                            check(at(".criterion"), "criterion", c, &criteria)?;
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
                match &a.target {
                    Some(Target::TextRange {
                        doc,
                        path,
                        quote,
                        position,
                        ..
                    }) => {
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
                                format!("{label}: «{}» is at {}–{}, not {}–{} (positions count code points)", quote.exact, found.start, found.end, p.start, p.end),
                            ));
                        }
                    }
                    Some(Target::Document { doc }) | Some(Target::Indicator { doc, .. }) => {
                        let known = match doc.parse::<DocKey>() {
                            Ok(DocKey::Case { case }) => all_cases.contains(case.as_str()),
                            Ok(DocKey::Eval { case, evaluator }) => s
                                .evaluations
                                .iter()
                                .any(|e| e.case == case && e.evaluator == evaluator),
                            _ => false,
                        };
                        if !known {
                            return Err(err(
                                at(".target.doc"),
                                format!(
                                    "refers to document `{doc}`, which the bundle does not define"
                                ),
                            ));
                        }
                    }
                    Some(Target::AgendaItem { agenda_item }) => {
                        check(
                            at(".target.agenda_item"),
                            "agenda item",
                            agenda_item,
                            &agenda,
                        )?;
                    }
                    None => {
                        if a.parent.is_none() {
                            return Err(err(
                                at(""),
                                "an annotation without a target must be a reply (give `parent`)",
                            ));
                        }
                    }
                }
            }
            for (i, r) in s.reactions.iter().enumerate() {
                let at = |rest: &str| at(&format!("reactions[{i}].{rest}"));
                known_annotation(&all_refs, at("annotation"), &r.annotation)?;
                check(at("participant"), "participant", &r.participant, &people)?;
            }
            for (i, t) in s.triage.iter().enumerate() {
                let at = |rest: &str| at(&format!("triage[{i}].{rest}"));
                known_annotation(&all_refs, at("annotation"), &t.annotation)?;
                check(at("by"), "participant", &t.by, &people)?;
                if let Some(f) = &t.finding {
                    check(at("finding"), "finding", f, &findings)?;
                }
            }
        }
        for (i, f) in self.findings.iter().enumerate() {
            let at = |rest: &str| format!("findings[{i}].{rest}");
            each(at("fields"), "field", &f.fields, &fields)?;
            each(at("departments"), "department", &f.departments, &deps)?;
            each(at("pledges"), "pledge", &f.pledges, &pledges)?;
            each(
                at("related_findings"),
                "finding",
                &f.related_findings,
                &findings,
            )?;
            if let Some(c) = &f.case {
                check(at("case"), "case", c, &all_cases)?;
            }
            for g in [&f.subject_government, &f.source_government]
                .into_iter()
                .flatten()
            {
                check(at("government"), "government", g, &govs)?;
            }
            for (j, src) in f.sources.iter().enumerate() {
                if src.get("kind").and_then(Value::as_str) == Some("annotation") {
                    let r = src.get("ref").and_then(Value::as_str).unwrap_or_default();
                    known_annotation(&all_refs, at(&format!("sources[{j}].ref")), r)?;
                }
            }
        }
        for (i, r) in self.department_responses.iter().enumerate() {
            check(
                format!("department_responses[{i}].finding"),
                "finding",
                &r.finding,
                &findings,
            )?;
            check(
                format!("department_responses[{i}].department"),
                "department",
                &r.department,
                &deps,
            )?;
        }
        Ok(())
    }

    /// Every annotation with its session, by reference and by id.
    pub fn annotation(&self, reference: &str) -> Option<&Annotation> {
        self.sessions
            .iter()
            .flat_map(|s| &s.annotations)
            .find(|a| a.reference.as_deref() == Some(reference) || a.uuid() == reference)
    }
}
