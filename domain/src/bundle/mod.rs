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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::anchor::{self, Position, Quote};
use crate::policy::{DocKey, Phase};

mod validate;
mod warnings;

pub use crate::vocab::{AnnotationKind, Attribution, FindingType, ParticipantKind, TriageStatus};
pub use warnings::BundleWarning;

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

/// Every problem found in a bundle, in file order; past [`BundleErrors::MAX`], only how many
/// more there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleErrors {
    pub errors: Vec<BundleError>,
    /// Problems found beyond the first [`BundleErrors::MAX`].
    pub more: usize,
}

impl BundleErrors {
    /// How many problems are told one by one: enough to fix a file in one go, not a wall.
    pub const MAX: usize = 50;

    fn of(mut all: Vec<BundleError>) -> Result<(), Self> {
        if all.is_empty() {
            return Ok(());
        }
        let more = all.len().saturating_sub(Self::MAX);
        all.truncate(Self::MAX);
        Err(Self { errors: all, more })
    }
}

impl From<BundleError> for BundleErrors {
    fn from(e: BundleError) -> Self {
        Self {
            errors: vec![e],
            more: 0,
        }
    }
}

impl std::fmt::Display for BundleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errors.as_slice() {
            [one] if self.more == 0 => write!(f, "{one}"),
            all => {
                write!(f, "{} problems:", all.len() + self.more)?;
                for e in all {
                    write!(f, "\n  {e}")?;
                }
                if self.more > 0 {
                    write!(f, "\n  … and {} more", self.more)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BundleErrors {}

pub(crate) fn err(place: impl Into<String>, message: impl Into<String>) -> BundleError {
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub affiliation: String,
    pub kind: ParticipantKind,
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
    /// Checked with every other problem of the bundle ([`Bundle::parse`]), then read as a
    /// [`Phase`] where it is used.
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
    Phase::Scheduled.as_str().into()
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
    /// The sections' order as the case presents them: given, or the order the bundle's text
    /// wrote `sections` in ([`Bundle::parse`] reads it). The hall, the replay and the report's
    /// 붙임 show them in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub section_order: Vec<String>,
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
    /// How many times it was reopened after a submission (the export says so from the log;
    /// the report counts the form as of its last submission and lists it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopened: u32,
    #[serde(flatten)]
    pub rest: Rest,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn draft() -> String {
    "draft".into()
}

/// Where an annotation points ([`crate::anchor`]).
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
/// Each case's section names in the order the bundle's text writes them (a `Value` keeps its
/// keys sorted, so the order is read from the text itself), in NFC like everything else.
/// Nothing when the text does not have this shape: the full parse says why.
fn section_orders(bytes: &[u8]) -> BTreeMap<String, Vec<String>> {
    #[derive(Deserialize)]
    struct Text {
        #[serde(default)]
        sessions: Vec<SessionText>,
    }
    #[derive(Deserialize)]
    struct SessionText {
        #[serde(default)]
        cases: Vec<CaseText>,
    }
    #[derive(Deserialize)]
    struct CaseText {
        key: String,
        #[serde(default)]
        sections: Names,
    }
    /// A JSON object's keys, in the order written.
    #[derive(Default)]
    struct Names(Vec<String>);
    impl<'de> Deserialize<'de> for Names {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> serde::de::Visitor<'de> for Keys {
                type Value = Names;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    mut m: M,
                ) -> Result<Names, M::Error> {
                    let mut out = Vec::new();
                    while let Some((k, serde::de::IgnoredAny)) = m.next_entry::<String, _>()? {
                        // A name written twice is where it was first written.
                        let k = crate::anchor::nfc(&k);
                        if !out.contains(&k) {
                            out.push(k);
                        }
                    }
                    Ok(Names(out))
                }
            }
            d.deserialize_map(Keys)
        }
    }
    serde_json::from_slice::<Text>(bytes)
        .map(|t| {
            t.sessions
                .into_iter()
                .flat_map(|s| s.cases)
                .map(|c| (crate::anchor::nfc(&c.key), c.sections.0))
                .collect()
        })
        .unwrap_or_default()
}

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

impl Bundle {
    /// Reads a bundle; nothing is accepted until all of it has been read and checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleErrors> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(err(
                "bundle",
                format!(
                    "the file is {:.1} MB; a bundle may be at most {} MB",
                    bytes.len() as f64 / 1_048_576.0,
                    MAX_BUNDLE_BYTES / 1_048_576
                ),
            )
            .into());
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
        let mut b: Bundle = serde_path_to_error::deserialize(v).map_err(|e| {
            let place = place_of(e.path());
            err(place, e.into_inner().to_string())
        })?;
        let orders = section_orders(bytes);
        for c in b.sessions.iter_mut().flat_map(|s| s.cases.iter_mut()) {
            if c.section_order.is_empty() {
                if let Some(order) = orders.get(&c.key) {
                    c.section_order = order
                        .iter()
                        .filter(|k| c.sections.contains_key(*k))
                        .cloned()
                        .collect();
                }
            }
        }
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

    /// The annotation a source names: by its id, or else by the ref an import gave it (ids
    /// first: a ref never shadows an id).
    pub fn annotation(&self, reference: &str) -> Option<&Annotation> {
        self.annotation_in(reference).map(|(_, a)| a)
    }

    /// [`Bundle::annotation`], with its session.
    pub fn annotation_in(&self, reference: &str) -> Option<(&Session, &Annotation)> {
        let all = || {
            self.sessions
                .iter()
                .flat_map(|s| s.annotations.iter().map(move |a| (s, a)))
        };
        all()
            .find(|(_, a)| a.uuid() == reference)
            .or_else(|| all().find(|(_, a)| a.reference.as_deref() == Some(reference)))
    }
}
