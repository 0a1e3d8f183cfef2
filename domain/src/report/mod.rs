//! The final report (결과보고서, domain §4), built from a bundle — what `export` gives for a
//! series or a session — and rendered as Markdown, HTML or CSV (the department tables), in
//! Korean or English. Everything is sorted by keys and nothing depends on the clock, so the
//! same inputs give byte-identical output.

use crate::consent::Consented;
use std::collections::{BTreeMap, BTreeSet};

mod chart;
mod cover;

pub use chart::{Chart, Series};
pub use cover::{date_words, number_words, Cover, CoverLine};

use serde_json::Value;

use crate::bundle::{
    Annotation, AnnotationKind, Bundle, Evaluation, Finding, FindingType, Participant, Session,
    Target, TriageStatus,
};
use crate::scoring::{self, Exact, Rated};

pub use crate::vocab::Lang;
use crate::vocab::{ParticipantKind, Priority, Role, Stance};

fn t(lang: Lang, ko: &str, en: &str) -> String {
    match lang {
        Lang::Ko => ko.to_string(),
        Lang::En => en.to_string(),
    }
}

/// A piece of text, possibly a link.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Link(String, String),
}

pub type Cell = Vec<Inline>;

/// Longest participant text the report prints whole in its lists and appendices; a longer
/// one is cut there, saying so and how long it is (its link — the replay at that note, or the
/// form — shows all of it). What one participant writes cannot make every printed report
/// long.
pub const PRINTED_CHARS: usize = 600;

/// A cell as a spreadsheet should take it from a CSV file: text beginning with `=`, `+`, `-`,
/// `@`, a tab or a carriage return would be read as a formula (OWASP, "CSV injection":
/// `=HYPERLINK(…)` runs when the cell is opened), so it gets an apostrophe in front, which
/// Excel and 한셀 show as text and never run.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// `text`, cut after `max` characters with a note of what was left out.
pub fn cut(lang: Lang, text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    match lang {
        Lang::Ko => format!("{head}… (이하 생략: 전체 {n}자, 연결된 기록에서 볼 수 있음)"),
        Lang::En => format!("{head}… (cut: {n} characters in all, in the linked record)"),
    }
}

fn txt(s: impl Into<String>) -> Cell {
    vec![Inline::Text(s.into())]
}

/// The report as blocks, rendered by [`markdown`], [`html`] and [`csv`].
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(Cell),
    List(Vec<Cell>),
    Table {
        /// Identifies the table for CSV (`department:DEP-WELF`, `scores:S05`…).
        id: String,
        head: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
    /// A bar chart; where nothing draws, its numbers as a table.
    Chart(Chart),
    /// The cover page: title, date, department, approval box.
    Cover(Cover),
}

/// One case's official scores.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseScores {
    pub case: String,
    /// Per criterion: (mean, min, max, n).
    pub criteria: BTreeMap<String, (Exact, u8, u8, usize)>,
    /// Mean of the evaluators' exact weighted totals, and whether any was rescaled (N/A).
    pub total: Option<(Exact, bool)>,
    pub evaluators: usize,
}

/// Why a triage decision may not link `finding`: it is not among the `known` findings of the
/// series' report. Names at most twelve of them, so that whoever chose it can pick another.
pub fn no_such_finding<'a>(
    finding: &str,
    series: &str,
    known: impl ExactSizeIterator<Item = &'a str>,
) -> String {
    let total = known.len();
    let shown: Vec<&str> = known.take(12).collect();
    let head = format!("no finding `{finding}` in the report of series {series}");
    match (shown.is_empty(), total > shown.len()) {
        (true, _) => format!("{head} (it has none yet)"),
        (false, more) => format!(
            "{head}; its findings: {}{}",
            shown.join(", "),
            if more { ", …" } else { "" }
        ),
    }
}

/// Official scores of every case in `evaluations` (weights from the template).
pub fn case_scores(b: &Bundle, evaluations: &[&Evaluation], case: &str) -> CaseScores {
    let forms: Vec<&&Evaluation> = evaluations.iter().filter(|e| e.case == case).collect();
    let mut criteria = BTreeMap::new();
    for c in &b.evaluation_template.criteria {
        let scores: Vec<u8> = forms
            .iter()
            .filter_map(|e| e.criteria.get(&c.key).and_then(|x| x.score))
            .collect();
        if let (Some(min), Some(max)) = (scores.iter().min(), scores.iter().max()) {
            let sum: u128 = scores.iter().map(|s| u128::from(*s)).sum();
            criteria.insert(
                c.key.clone(),
                (
                    Exact::new(sum, scores.len() as u128),
                    *min,
                    *max,
                    scores.len(),
                ),
            );
        }
    }
    let totals: Vec<(Exact, bool)> = forms
        .iter()
        .filter_map(|e| {
            let items: Vec<Rated> = b
                .evaluation_template
                .criteria
                .iter()
                .map(|c| Rated {
                    weight: c.weight,
                    score: e.criteria.get(&c.key).and_then(|x| x.score),
                })
                .collect();
            scoring::weighted_total(&items)
        })
        .collect();
    let exact: Vec<Exact> = totals.iter().map(|t| t.0).collect();
    CaseScores {
        case: case.to_string(),
        criteria,
        total: scoring::mean(&exact).map(|m| (m, totals.iter().any(|t| t.1))),
        evaluators: forms.len(),
    }
}

/// A role (or a participant's kind) in Korean and English.
pub fn role_words(role: &str) -> (&'static str, &'static str) {
    if let Some(r) = Role::parse(role) {
        (r.ko(), r.en())
    } else if let Some(k) = ParticipantKind::parse(role) {
        (k.ko(), k.en())
    } else {
        ("참여자", "participant")
    }
}

fn role_label(lang: Lang, role: &str) -> String {
    let (ko, en) = role_words(role);
    t(lang, ko, en)
}

/// A participant as they consented to be shown (domain §2.10), in a role.
pub fn display_name(lang: Lang, p: Option<&Participant>, role: &str) -> String {
    let Some(p) = p else {
        return role_label(lang, role);
    };
    let label = role_label(lang, role);
    match crate::consent::consented(p.attribution, &p.name, &p.affiliation) {
        Consented::Name(name) => format!("{name}({label})"),
        Consented::NameAndAffiliation { name, affiliation } => {
            format!("{name}({affiliation}, {label})")
        }
        Consented::Affiliation(affiliation) => affiliation.to_string(),
        Consented::RoleOnly => label,
    }
}

fn median(v: &mut [u8]) -> Exact {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        Exact::new(u128::from(v[n / 2]), 1)
    } else {
        Exact::new(u128::from(v[n / 2 - 1]) + u128::from(v[n / 2]), 2)
    }
}

/// A report of `b` (all its sessions, or `only` one).
/// Korea Standard Time, the zone of a session that says none.
pub const KST: chrono::FixedOffset = match chrono::FixedOffset::east_opt(9 * 3600) {
    Some(z) => z,
    None => panic!("+09:00 is an offset"),
};

/// The zone a series' times are told in: the offset its sessions were scheduled in (a district
/// writes `16:00+09:00`), else Korea's.
fn zone_of(sessions: &[&Session]) -> chrono::FixedOffset {
    sessions
        .iter()
        .filter_map(|s| s.rest.get("scheduled")?.get("start")?.as_str())
        .find_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| *t.offset())
        .unwrap_or(KST)
}

#[derive(Debug)]
pub struct Builder<'a> {
    b: &'a Bundle,
    lang: Lang,
    /// The zone every time is told in ([`zone_of`]).
    zone: chrono::FixedOffset,
    sessions: Vec<&'a Session>,
    /// Whether the report is of one session (findings of its fields only).
    one_session: bool,
    people: BTreeMap<&'a str, &'a Participant>,
    /// Each annotation's short ref, as people cite it (by its id): the ref an import gave it,
    /// else its kind and number in its session in the log's order (`질의 3`). Never a UUID.
    refs: BTreeMap<String, String>,
}

/// The short refs of [`Builder::refs`]: an annotation an import named keeps its name; any
/// other is its kind's word and its number among the session's annotations of that kind, in
/// the order the log gave them (the export's order).
fn short_refs(b: &Bundle, lang: Lang) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in &b.sessions {
        let mut counts: BTreeMap<AnnotationKind, usize> = BTreeMap::new();
        for a in &s.annotations {
            let n = counts.entry(a.kind).or_default();
            *n += 1;
            let shown = match &a.reference {
                Some(r) => r.clone(),
                None => format!("{} {n}", kind_word(lang, a.kind)),
            };
            out.insert(a.uuid(), shown);
        }
    }
    out
}

/// An annotation kind in words.
fn kind_word(lang: Lang, k: AnnotationKind) -> String {
    k.word(lang).to_string()
}

impl<'a> Builder<'a> {
    pub fn new(b: &'a Bundle, only: Option<&str>, lang: Lang) -> Self {
        let mut sessions: Vec<&Session> = b
            .sessions
            .iter()
            .filter(|s| only.is_none_or(|k| s.key == k))
            .collect();
        sessions.sort_by_key(|s| (s.no, s.key.clone()));
        Self {
            b,
            lang,
            zone: zone_of(&sessions),
            sessions,
            one_session: only.is_some(),
            people: b.participants.iter().map(|p| (p.key.as_str(), p)).collect(),
            refs: short_refs(b, lang),
        }
    }

    /// An item the export named by id, as the reader can cite it: its short ref, else (an item
    /// the export left out) the first characters of its id — never a whole UUID.
    fn item_ref(&self, id: &str) -> String {
        if let Some(r) = self.refs.get(id) {
            return r.clone();
        }
        if uuid::Uuid::parse_str(id).is_ok() {
            let head: String = id.chars().take(8).collect();
            return format!("{}: {head}…", self.t("식별자", "id"));
        }
        id.to_string()
    }

    /// The short ref people cite an annotation by ([`short_refs`]).
    fn shown_ref(&self, a: &Annotation) -> String {
        let id = a.uuid();
        self.refs.get(&id).cloned().unwrap_or(id)
    }

    fn t(&self, ko: &str, en: &str) -> String {
        t(self.lang, ko, en)
    }

    fn person(&self, key: &str, role: &str) -> String {
        display_name(self.lang, self.people.get(key).copied(), role)
    }

    fn name_of<'x>(&self, ko: &'x str, en: Option<&'x String>) -> &'x str {
        match (self.lang, en) {
            (Lang::En, Some(e)) => e,
            _ => ko,
        }
    }

    fn gov(&self, key: &str) -> String {
        self.b
            .governments
            .iter()
            .find(|g| g.key == key)
            .map(|g| self.name_of(&g.name_ko, g.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    fn dept(&self, key: &str) -> String {
        self.b
            .departments
            .iter()
            .find(|d| d.key == key)
            .map(|d| self.name_of(&d.name_ko, d.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    fn field(&self, key: &str) -> String {
        self.b
            .fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| self.name_of(&f.name_ko, f.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    fn criterion(&self, key: &str) -> String {
        self.b
            .evaluation_template
            .criteria
            .iter()
            .find(|c| c.key == key)
            .map(|c| self.name_of(&c.name_ko, c.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    fn annotations(&self) -> impl Iterator<Item = (&'a Session, &'a Annotation)> + '_ {
        self.sessions
            .iter()
            .flat_map(|s| s.annotations.iter().map(move |a| (*s, a)))
    }

    /// The replay link of an annotation: its session, id and the moment it was made.
    fn link(&self, s: &Session, a: &Annotation) -> Inline {
        Inline::Link(
            self.shown_ref(a),
            format!(
                "/sessions/{}/annotations/{}?at={}",
                s.key,
                // The id's first eight characters find it among the session's (the page
                // matches the start): a link that carries no whole UUID into any file.
                a.uuid().chars().take(8).collect::<String>(),
                // `+` in a query reads as a space.
                a.created_at.replace('+', "%2B")
            ),
        )
    }

    /// The findings in scope: those of the sessions' fields, or drawn from what was said in
    /// them (all for a whole series).
    fn findings(&self) -> Vec<&'a Finding> {
        let fields: BTreeSet<&str> = self
            .sessions
            .iter()
            .filter_map(|s| s.field.as_deref())
            .collect();
        let all = !self.one_session;
        let mut out: Vec<&Finding> = self
            .b
            .findings
            .iter()
            .filter(|f| {
                all || f.fields.iter().any(|x| fields.contains(x.as_str()))
                    || self.sessions.iter().any(|s| self.drawn_from(s, f))
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Whether finding `f` is of session `s`: of its field, or drawn from what was said in it
    /// (a session with no field of its own — one made without a bundle — has its findings too).
    fn drawn_from(&self, s: &Session, f: &Finding) -> bool {
        if s.field.as_ref().is_some_and(|x| f.fields.contains(x)) {
            return true;
        }
        f.sources.iter().any(|src| {
            src.get("ref").and_then(Value::as_str).is_some_and(|r| {
                s.annotations
                    .iter()
                    .any(|a| a.uuid() == r || a.reference.as_deref() == Some(r))
            })
        })
    }

    /// Who said an annotation, and who recorded it when a scribe did ("김민서 · 활동가 (기록:
    /// 이하은 · 기록)").
    fn author_of(&self, a: &Annotation) -> String {
        let mut who = self.person(&a.author, &a.author_role);
        // Brought in from a W3C file: its author and time are the file's word.
        if a.rest
            .get("imported_from")
            .and_then(Value::as_str)
            .is_some_and(|f| f.starts_with("w3c:"))
        {
            who.push_str(&self.t(" (W3C 파일에서 가져옴)", " (from a W3C file)"));
        }
        match a.recorded_by.as_deref() {
            Some(r) if r != a.author => format!(
                "{who} ({}: {})",
                self.t("기록", "recorded by"),
                self.person(r, "scribe")
            ),
            _ => who,
        }
    }

    /// Who raised a finding, derived from its sources (never typed by hand), and its 공감 count.
    /// Whoever answered (an `answer` among the sources) responded; they did not raise it.
    fn raised_by(&self, f: &Finding) -> (Vec<String>, usize) {
        let mut names: Vec<String> = Vec::new();
        let mut agree = 0;
        for src in &f.sources {
            let who = match src.get("kind").and_then(Value::as_str) {
                Some("annotation") => {
                    let r = src.get("ref").and_then(Value::as_str).unwrap_or_default();
                    self.b
                        .annotation(r)
                        .filter(|a| a.kind != AnnotationKind::Answer)
                        .map(|a| {
                            agree += self
                                .b
                                .sessions
                                .iter()
                                .flat_map(|s| &s.reactions)
                                .filter(|x| x.annotation == r && x.kind == "agree")
                                .count();
                            self.person(&a.author, &a.author_role)
                        })
                }
                Some("evaluation_text") => src
                    .get("doc")
                    .and_then(Value::as_str)
                    .and_then(|d| d.rsplit(':').next())
                    .map(|ev| self.person(ev, "evaluator")),
                _ => None,
            };
            if let Some(w) = who {
                if !names.contains(&w) {
                    names.push(w);
                }
            }
        }
        (names, agree)
    }

    fn source_links(&self, f: &Finding) -> Cell {
        let mut out: Cell = Vec::new();
        for src in &f.sources {
            if !out.is_empty() {
                out.push(Inline::Text(" · ".into()));
            }
            match src.get("kind").and_then(Value::as_str) {
                Some("annotation") => {
                    let r = src.get("ref").and_then(Value::as_str).unwrap_or_default();
                    // By the ref people see, or by id (a finding promoted from a live
                    // annotation that has no ref).
                    match self.b.annotation_in(r) {
                        Some((s, a)) => out.push(self.link(s, a)),
                        None => out.push(Inline::Text(self.item_ref(r))),
                    }
                }
                Some("evaluation_text") => {
                    let doc = src.get("doc").and_then(Value::as_str).unwrap_or_default();
                    let path = src.get("path").and_then(Value::as_str).unwrap_or_default();
                    let ev = doc.rsplit(':').next().unwrap_or_default();
                    let session = self
                        .b
                        .sessions
                        .iter()
                        .find(|s| {
                            s.evaluations
                                .iter()
                                .any(|e| format!("eval:{}:{}", e.case, e.evaluator) == doc)
                        })
                        .map(|s| s.key.clone())
                        .unwrap_or_default();
                    let name = self
                        .people
                        .get(ev)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| ev.to_string());
                    out.push(Inline::Link(
                        format!(
                            "{}({name}) {}",
                            self.t("평가서", "evaluation"),
                            self.evaluation_part(path)
                        ),
                        format!("/sessions/{session}/docs/{doc}#{path}"),
                    ));
                }
                _ => {}
            }
        }
        out
    }

    /// A part of an evaluation form in words (`/gaps` is 부족한 점, `/criteria/process/text`
    /// is 추진체계·민관협력 의견): the report's reader never sees a JSON path.
    fn evaluation_part(&self, path: &str) -> String {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            ["strengths", ..] => self.t("강점", "strengths"),
            ["gaps", ..] => self.t("부족한 점", "shortfalls"),
            ["lessons", ..] => self.t("배울 점", "lessons"),
            ["overall", ..] => self.t("총평", "overall comment"),
            ["criteria", key, ..] => {
                format!("{} {}", self.criterion(key), self.t("의견", "comment"))
            }
            [] => String::new(),
            other => other.join(" "),
        }
    }

    /// A pledge by its title (생활권 도서관 확충), its key where the bundle lists none.
    fn pledge(&self, key: &str) -> String {
        self.b
            .pledges
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.title_ko.clone())
            .unwrap_or_else(|| key.to_string())
    }

    fn finding_type(&self, k: FindingType) -> String {
        k.word(self.lang).to_string()
    }

    fn priority(&self, p: Option<&str>) -> String {
        match p {
            Some(p) => {
                Priority::parse(p).map_or_else(|| p.to_string(), |p| p.word(self.lang).into())
            }
            None => "-".into(),
        }
    }

    /// An annotation's kind as the report's reader says it (the web client's words).
    fn kind_word(&self, k: AnnotationKind) -> String {
        kind_word(self.lang, k)
    }

    /// An annotation's triage status in words; `None` is one nobody has decided on yet.
    fn status_word(&self, s: Option<TriageStatus>) -> String {
        s.unwrap_or(TriageStatus::Open).word(self.lang).to_string()
    }

    fn stance(&self, s: &str) -> String {
        Stance::parse(s).map_or_else(|| s.to_string(), |s| s.word(self.lang).into())
    }

    fn finding_block(&self, f: &Finding, out: &mut Vec<Block>) {
        let depts: Vec<String> = f.departments.iter().map(|d| self.dept(d)).collect();
        let mut head = format!("[{}] {}", f.key, f.title);
        head.push_str(&format!(
            " ({} · {} {} · {}",
            self.finding_type(f.kind),
            self.t("우선순위", "priority"),
            self.priority(f.priority.as_deref()),
            depts.join(", ")
        ));
        if !f.pledges.is_empty() {
            head.push_str(&format!(
                " · {} {}",
                self.t("공약", "pledge"),
                f.pledges
                    .iter()
                    .map(|p| self.pledge(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        head.push(')');
        out.push(Block::Heading(4, head));
        if !f.text.is_empty() {
            out.push(Block::Para(txt(f.text.clone())));
        }
        let mut items: Vec<Cell> = Vec::new();
        if let Some(r) = &f.recommendation {
            items.push(txt(format!("{}: {r}", self.t("제언", "Recommendation"))));
        }
        if !f.related_findings.is_empty() {
            items.push(txt(format!(
                "{}: {}",
                self.t("관련 항목", "Related"),
                f.related_findings.join(", ")
            )));
        }
        let (names, agree) = self.raised_by(f);
        if !names.is_empty() {
            let mut s = format!("{}: {}", self.t("제기", "Raised by"), names.join(" · "));
            if agree > 0 {
                s.push_str(&format!(" — {} {agree}", self.t("공감", "agreed")));
            }
            items.push(txt(s));
        }
        let responded: Vec<String> = f
            .sources
            .iter()
            .filter_map(|src| self.b.annotation(src.get("ref")?.as_str()?))
            .filter(|a| a.kind == AnnotationKind::Answer)
            .map(|a| self.person(&a.author, &a.author_role))
            .collect();
        if !responded.is_empty() {
            items.push(txt(format!(
                "{}: {}",
                self.t("답변", "Answered by"),
                responded.join(" · ")
            )));
        }
        let links = self.source_links(f);
        if !links.is_empty() {
            let mut c = txt(format!("{}: ", self.t("근거", "Sources")));
            c.extend(links);
            items.push(c);
        }
        items.extend(self.responses_to(f));
        if !items.is_empty() {
            out.push(Block::List(items));
        }
    }

    /// The departments' answers to finding `f`, one line each: stance, plan, and when given
    /// the due date and progress.
    fn responses_to(&self, f: &Finding) -> Vec<Cell> {
        let mut out = Vec::new();
        for r in self
            .b
            .department_responses
            .iter()
            .filter(|r| r.finding == f.key)
        {
            let plan = r
                .rest
                .get("action_plan")
                .and_then(Value::as_str)
                .unwrap_or("");
            let due = r
                .rest
                .get("due")
                .and_then(Value::as_str)
                .filter(|d| !d.trim().is_empty())
                .map(|d| format!(" ({} {d}", self.t("완료 예정", "due")));
            let progress = r
                .rest
                .get("progress")
                .and_then(Value::as_str)
                .map(|p| format!("; {}: {p}", self.t("추진상황", "progress")))
                .unwrap_or_default();
            // "(완료 예정 2013-12-31; 추진상황: …)", each part only when given.
            let tail = match (due, progress.is_empty()) {
                (Some(d), _) => format!("{d}{progress})"),
                (None, false) => format!(" ({})", progress.trim_start_matches("; ")),
                (None, true) => String::new(),
            };
            out.push(txt(format!(
                "{} ({}): {} — {plan}{tail}",
                self.t("부서 검토", "Department response"),
                self.dept(&r.department),
                self.stance(&r.stance),
            )));
        }
        out
    }

    fn status_of(&self, s: &Session, a: &Annotation) -> Option<TriageStatus> {
        // A decision names the annotation it resolves to: by id, or by the ref an import gave
        // it when no annotation has that id.
        let id = a.uuid();
        s.triage
            .iter()
            .filter(|t| {
                t.annotation == id
                    || (a.reference.as_deref() == Some(t.annotation.as_str())
                        && self
                            .b
                            .annotation(&t.annotation)
                            .is_some_and(|x| x.uuid() == id))
            })
            // The latest decision by the moment it was made, not by its text: `…+09:00` and
            // `…Z` order as instants (unreadable times first; among equals, the later entry).
            .max_by_key(|t| {
                chrono::DateTime::parse_from_rfc3339(&t.at)
                    .ok()
                    .map(|d| d.timestamp_millis())
            })
            .map(|t| t.status)
    }

    /// The whole report.
    pub fn build(&self) -> Vec<Block> {
        let b = self.b;
        let mut out = Vec::new();
        // A report of one session is titled for it: the series, then the session.
        let session = match self.sessions.as_slice() {
            [s] if self.one_session => Some(self.session_short_name(s)),
            _ => None,
        };
        let title = match (self.lang, session) {
            (Lang::Ko, None) => format!("「{}」 결과보고서", b.series.title_ko),
            (Lang::Ko, Some(s)) => format!("「{}」 {s} 결과보고서", b.series.title_ko),
            (Lang::En, s) => format!(
                "Results report: {}{}",
                b.series.title_en.as_deref().unwrap_or(&b.series.title_ko),
                s.map(|s| format!(" — {s}")).unwrap_or_default()
            ),
        };
        let cover = self.cover(&title);
        out.push(Block::Heading(1, title));
        out.push(Block::Cover(cover));
        let findings = self.findings();
        let anns: Vec<(&Session, &Annotation)> = self.annotations().collect();
        self.summary(&anns, &findings, &mut out);
        self.overview(&mut out);
        // Results by field.
        out.push(Block::Heading(
            2,
            self.t("Ⅱ. 분야별 결과", "II. Results by field"),
        ));
        for s in &self.sessions {
            self.session_chapter(s, &findings, &mut out);
        }
        self.by_department(&findings, &mut out);
        self.annotations_appendix(&anns, &mut out);
        self.forms_appendix(&mut out);
        self.cases_appendix(&mut out);
        self.integrity_appendix(&mut out);
        out
    }

    /// Summary: counts of sessions, cases, evaluations, annotations by kind, findings by type.
    fn summary(
        &self,
        anns: &[(&Session, &Annotation)],
        findings: &[&Finding],
        out: &mut Vec<Block>,
    ) {
        let b = self.b;
        // Summary: counts.
        out.push(Block::Heading(2, self.t("요약", "Summary")));
        let mut kinds: BTreeMap<AnnotationKind, usize> = BTreeMap::new();
        for (_, a) in anns {
            *kinds.entry(a.kind).or_default() += 1;
        }
        let mut types: BTreeMap<FindingType, usize> = BTreeMap::new();
        for f in findings {
            *types.entry(f.kind).or_default() += 1;
        }
        let cases: usize = self.sessions.iter().map(|s| s.cases.len()).sum();
        let evals: usize = self.sessions.iter().map(|s| s.evaluations.len()).sum();
        let submitted: usize = self
            .sessions
            .iter()
            .flat_map(|s| &s.evaluations)
            .filter(|e| e.status == "submitted")
            .count();
        out.push(Block::List(vec![
            txt(format!(
                "{}: {}",
                self.t("토론회", "Sessions"),
                self.sessions.len()
            )),
            txt(format!("{}: {cases}", self.t("사례", "Cases"))),
            txt(format!(
                "{}: {submitted}/{evals} {}",
                self.t("평가서", "Evaluations"),
                self.t("제출", "submitted")
            )),
            txt(format!(
                "{}: {} ({})",
                self.t("주석", "Annotations"),
                anns.len(),
                kinds
                    .iter()
                    .map(|(k, n)| format!("{} {n}", self.kind_word(*k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            txt(format!(
                "{}: {} ({})",
                self.t("결과 항목", "Findings"),
                findings.len(),
                types
                    .iter()
                    .map(|(k, n)| format!("{} {n}", self.finding_type(*k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]));
        if !b.integrity.is_empty() {
            out.push(Block::Para(txt(format!(
                "{}: {}",
                self.t(
                    "데이터 점검에서 바로잡거나 제외한 항목",
                    "Items corrected or left out by the data checks"
                ),
                b.integrity.len()
            ))));
        }
        self.key_points(findings, out);
    }

    /// 핵심 요약: per field the governments' weighted totals (host first) and how many
    /// findings it gave; then how many of the departments' answers are in.
    fn key_points(&self, findings: &[&Finding], out: &mut Vec<Block>) {
        let mut points: Vec<Cell> = Vec::new();
        for s in &self.sessions {
            let submitted: Vec<&Evaluation> = s
                .evaluations
                .iter()
                .filter(|e| e.status == "submitted")
                .collect();
            let totals: Vec<String> = self
                .cases_in_order(s)
                .iter()
                .filter_map(|c| {
                    let cs = case_scores(self.b, &submitted, &c.key);
                    cs.total.map(|(t, _)| {
                        format!(
                            "{} {}{}",
                            self.gov(&c.government),
                            t.rounded(1),
                            self.t("점", "")
                        )
                    })
                })
                .collect();
            let field = s
                .field
                .as_deref()
                .map(|f| self.field(f))
                .unwrap_or_default();
            let n = findings.iter().filter(|f| self.drawn_from(s, f)).count();
            let scores = if totals.is_empty() {
                self.t("평가 점수 없음", "no scores")
            } else {
                totals.join(", ")
            };
            points.push(txt(format!(
                "{field}: {scores} — {} {n}{}",
                self.t("결과 항목", "findings"),
                self.t("건", "")
            )));
            points.extend(self.in_words(s, findings, &submitted));
        }
        let addressed: usize = findings.iter().map(|f| f.departments.len()).sum();
        let answered = self.b.department_responses.len();
        points.push(txt(format!(
            "{}: {answered}/{addressed}",
            self.t("부서 검토의견 제출", "Department responses in")
        )));
        out.push(Block::Heading(3, self.t("핵심 요약", "Key points")));
        out.push(Block::List(points));
    }

    /// 핵심 요약 in words, per government in the order presented: its main shortfalls and
    /// what to learn from it — the findings' titles, else what the evaluators wrote (the first
    /// form's words, cut short).
    fn in_words(&self, s: &Session, findings: &[&Finding], submitted: &[&Evaluation]) -> Vec<Cell> {
        let mut out = Vec::new();
        for c in self.cases_in_order(s) {
            let of_gov = |kind: FindingType| -> Vec<String> {
                findings
                    .iter()
                    .filter(|f| f.kind == kind)
                    .filter(|f| {
                        let gov = f
                            .source_government
                            .as_deref()
                            .or(f.subject_government.as_deref())
                            .or_else(|| {
                                let case = f.case.as_deref()?;
                                s.cases
                                    .iter()
                                    .find(|x| x.key == case)
                                    .map(|x| x.government.as_str())
                            });
                        gov == Some(c.government.as_str())
                    })
                    .map(|f| f.title.clone())
                    .collect()
            };
            let written = |pick: fn(&Evaluation) -> &str| -> Option<String> {
                submitted
                    .iter()
                    .filter(|e| e.case == c.key)
                    .map(|e| pick(e).trim())
                    .find(|t| !t.is_empty())
                    .map(|t| cut(self.lang, t, 60))
            };
            let say = |titles: Vec<String>, fallback: Option<String>| {
                if titles.is_empty() {
                    fallback
                } else {
                    Some(titles.join(", "))
                }
            };
            let gaps = say(of_gov(FindingType::Gap), written(|e| &e.gaps));
            let lessons = say(of_gov(FindingType::Lesson), written(|e| &e.lessons));
            let mut parts = Vec::new();
            if let Some(g) = gaps {
                parts.push(format!("{} {g}", self.t("부족한 점은", "fell short in:")));
            }
            if let Some(l) = lessons {
                parts.push(format!("{} {l}", self.t("배울 점은", "to learn:")));
            }
            if !parts.is_empty() {
                out.push(txt(format!(
                    "{}: {}",
                    self.gov(&c.government),
                    parts.join(self.t(" / ", "; ").as_str())
                )));
            }
        }
        out
    }

    /// Overview of the sessions: one row each.
    fn overview(&self, out: &mut Vec<Block>) {
        // Overview of the sessions.
        out.push(Block::Heading(2, self.t("Ⅰ. 개요", "I. Overview")));
        out.push(Block::Table {
            id: "sessions".into(),
            head: vec![
                self.t("차수", "No."),
                self.t("분야", "Field"),
                self.t("일자", "Date"),
                self.t("좌장", "Chair"),
                self.t("참석", "Attendance"),
                self.t("주석", "Annotations"),
            ],
            rows: self
                .sessions
                .iter()
                .map(|s| {
                    vec![
                        txt(self.round(s.no)),
                        txt(s
                            .field
                            .as_deref()
                            .map(|f| self.field(f))
                            .unwrap_or_default()),
                        txt(s
                            .date
                            .as_deref()
                            .map(|d| date_words(self.lang, self.zone, d))
                            .unwrap_or_default()),
                        txt(s
                            .facilitator
                            .as_deref()
                            .map(|f| self.person(f, "facilitator"))
                            .unwrap_or_default()),
                        // As counted; else as the presence record has it.
                        txt(s
                            .rest
                            .get("attendance")
                            .and_then(|a| a.get("count"))
                            .or_else(|| s.rest.get("attended").and_then(|a| a.get("count")))
                            .map(|c| c.to_string())
                            .unwrap_or_default()),
                        txt(s.annotations.len().to_string()),
                    ]
                })
                .collect(),
        });
    }

    /// By department: the findings addressed to each, with its response.
    fn by_department(&self, findings: &[&Finding], out: &mut Vec<Block>) {
        let b = self.b;
        // By department.
        out.push(Block::Heading(
            2,
            self.t("Ⅲ. 부서별 정리", "III. By department"),
        ));
        let mut depts: BTreeSet<&str> = BTreeSet::new();
        for f in findings {
            depts.extend(f.departments.iter().map(String::as_str));
        }
        for d in depts {
            out.push(Block::Heading(3, self.dept(d)));
            let rows = findings
                .iter()
                .filter(|f| f.departments.iter().any(|x| x == d))
                .map(|f| {
                    let (names, _) = self.raised_by(f);
                    let resp = b
                        .department_responses
                        .iter()
                        .find(|r| r.finding == f.key && r.department == d);
                    let kind = match (f.kind, &f.source_government) {
                        (FindingType::Lesson, Some(g)) => {
                            format!("{}({})", self.finding_type(f.kind), self.gov(g))
                        }
                        _ => self.finding_type(f.kind),
                    };
                    vec![
                        txt(f.key.clone()),
                        txt(kind),
                        txt(f
                            .fields
                            .iter()
                            .map(|x| self.field(x))
                            .collect::<Vec<_>>()
                            .join("·")),
                        // The title, and what the department is asked to do.
                        txt(
                            match f.recommendation.as_deref().filter(|r| !r.is_empty()) {
                                Some(r) => format!("{} — {r}", f.title),
                                None => f.title.clone(),
                            },
                        ),
                        txt(names.join(" · ")),
                        self.source_links(f),
                        txt(self.priority(f.priority.as_deref())),
                        // The first department leads (주관), the others assist (협조).
                        txt(if f.departments.first().map(String::as_str) == Some(d) {
                            self.t("주관", "lead")
                        } else {
                            self.t("협조", "assist")
                        }),
                        txt(resp
                            .map(|r| self.stance(&r.stance))
                            .unwrap_or_else(|| self.t("(미제출)", "(not submitted)"))),
                        txt(resp
                            .and_then(|r| r.rest.get("action_plan"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()),
                        txt(resp
                            .and_then(|r| r.rest.get("due"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()),
                        txt(resp
                            .and_then(|r| r.rest.get("progress"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()),
                    ]
                })
                .collect();
            out.push(Block::Table {
                id: format!("department:{d}"),
                head: department_head(self.lang),
                rows,
            });
        }
    }

    /// Appendix: every root annotation with its status and replay link.
    /// 붙임: the submitted evaluation forms as their evaluators wrote them — each criterion's
    /// score and comment, then strengths, shortfalls, lessons and the overall view.
    fn forms_appendix(&self, out: &mut Vec<Block>) {
        // In the order the cases were presented (the host's first), each case's forms by
        // evaluator.
        let forms: Vec<(&Session, &Evaluation)> = self
            .sessions
            .iter()
            .flat_map(|s| {
                self.cases_in_order(s).into_iter().flat_map(move |c| {
                    s.evaluations
                        .iter()
                        .filter(move |e| e.case == c.key)
                        .map(move |e| (*s, e))
                })
            })
            .filter(|(_, e)| e.status == "submitted")
            .collect();
        if forms.is_empty() {
            return;
        }
        out.push(Block::Heading(
            2,
            self.t("붙임 1. 평가서", "Annex 1. Evaluation forms"),
        ));
        for (s, e) in forms {
            let government = s
                .cases
                .iter()
                .find(|c| c.key == e.case)
                .map(|c| self.gov(&c.government))
                .unwrap_or_else(|| e.case.clone());
            let reopened = match (e.reopened, self.lang) {
                (0, _) => String::new(),
                (n, Lang::Ko) => format!(" (제출 뒤 {n}회 다시 열림, 마지막 제출본)"),
                (n, Lang::En) => format!(" (reopened {n}× after submission; as last submitted)"),
            };
            out.push(Block::Heading(
                3,
                format!(
                    "{government} — {}{reopened}",
                    self.person(&e.evaluator, "evaluator")
                ),
            ));
            let rows = self
                .b
                .evaluation_template
                .criteria
                .iter()
                .filter_map(|c| e.criteria.get(&c.key).map(|x| (c, x)))
                .map(|(c, x)| {
                    // N/A with its reason, as the evaluator gave it.
                    let score = match (x.score, x.na_reason.as_deref().map(str::trim)) {
                        (Some(v), _) => v.to_string(),
                        (None, Some(r)) if !r.is_empty() => {
                            format!("{} ({r})", self.t("해당없음", "N/A"))
                        }
                        (None, _) => self.t("해당없음", "N/A"),
                    };
                    vec![
                        txt(self.criterion(&c.key)),
                        txt(score),
                        txt(cut(self.lang, &x.text, PRINTED_CHARS)),
                    ]
                })
                .collect();
            out.push(Block::Table {
                id: format!("form:{}:{}", e.case, e.evaluator),
                head: vec![
                    self.t("항목", "Criterion"),
                    self.t("점수", "Score"),
                    self.t("의견", "Comment"),
                ],
                rows,
            });
            let texts: Vec<Cell> = [
                (self.t("강점", "Strengths"), &e.strengths),
                (self.t("부족한 점", "Shortfalls"), &e.gaps),
                (self.t("배울 점", "Lessons"), &e.lessons),
                (self.t("총평", "Overall"), &e.overall),
            ]
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(label, t)| {
                txt(format!(
                    "{label}: {}",
                    cut(self.lang, t.trim(), PRINTED_CHARS * 2)
                ))
            })
            .collect();
            if !texts.is_empty() {
                out.push(Block::List(texts));
            }
        }
    }

    /// 붙임: each case's material as presented — its sections, in the case's order.
    fn cases_appendix(&self, out: &mut Vec<Block>) {
        let cases: Vec<(&Session, &crate::bundle::Case)> = self
            .sessions
            .iter()
            .flat_map(|s| self.cases_in_order(s).into_iter().map(move |c| (*s, c)))
            .filter(|(_, c)| !c.sections.is_empty())
            .collect();
        if cases.is_empty() {
            return;
        }
        out.push(Block::Heading(
            2,
            self.t("붙임 2. 사례 자료", "Annex 2. Case material"),
        ));
        for (_, c) in cases {
            out.push(Block::Heading(
                3,
                format!("{} — {}", self.gov(&c.government), c.title),
            ));
            // In the case's own order; without one, the four usual sections in the order a
            // case is presented, then any other by name.
            let known = ["background", "method", "results", "challenges"];
            let rank = |k: &str| {
                c.section_order.iter().position(|x| x == k).unwrap_or(
                    c.section_order.len()
                        + known.iter().position(|x| *x == k).unwrap_or(known.len()),
                )
            };
            let mut order: Vec<(&String, &String)> = c.sections.iter().collect();
            order.sort_by_key(|(k, _)| rank(k));
            for (name, text) in order {
                out.push(Block::Para(txt(format!(
                    "{}: {text}",
                    self.section_name(name)
                ))));
            }
        }
    }

    /// A case section's name as the hall shows it.
    fn section_name(&self, key: &str) -> String {
        match key {
            "background" => self.t("추진배경", "Background"),
            "method" => self.t("추진방법·추진체계", "Methods and delivery"),
            "results" => self.t("성과·추진실적", "Results"),
            "challenges" => self.t("한계 및 향후계획", "Limits and next steps"),
            other => other.to_string(),
        }
    }

    fn annotations_appendix(&self, anns: &[(&Session, &Annotation)], out: &mut Vec<Block>) {
        let b = self.b;
        // Appendix: every root annotation with its status and replay link.
        out.push(Block::Heading(
            2,
            self.t("부록. 주석 목록", "Appendix. Annotations"),
        ));
        let rows = anns
            .iter()
            .filter(|(_, a)| a.parent.is_none())
            .map(|(s, a)| {
                let orphan = match &a.target {
                    Some(Target::TextRange {
                        doc,
                        path,
                        quote,
                        position,
                        ..
                    }) => b.text_at(doc, path).is_none_or(|text| {
                        crate::anchor::locate(&text, quote, *position)
                            == crate::anchor::Resolution::Orphaned
                    }),
                    _ => false,
                };
                let status = self.status_word(self.status_of(s, a));
                vec![
                    vec![self.link(s, a)],
                    txt(self.kind_word(a.kind)),
                    txt(self.author_of(a)),
                    txt(date_words(self.lang, self.zone, &a.created_at)),
                    txt(if orphan {
                        format!("{status}, {}", self.t("앵커 유실(orphaned)", "orphaned"))
                    } else {
                        status
                    }),
                    txt(cut(
                        self.lang,
                        a.body.as_deref().unwrap_or_default(),
                        PRINTED_CHARS,
                    )),
                ]
            })
            .collect();
        out.push(Block::Table {
            id: "annotations".into(),
            head: vec![
                self.t("번호", "Ref"),
                self.t("종류", "Kind"),
                self.t("작성", "Author"),
                self.t("시각", "Time"),
                self.t("상태", "Status"),
                self.t("내용", "Text"),
            ],
            rows,
        });
    }

    /// What the export found wrong in the documents: each item left out or corrected, so the
    /// reader knows the report is whole except for these.
    fn integrity_appendix(&self, out: &mut Vec<Block>) {
        let problems = &self.b.integrity;
        if problems.is_empty() {
            return;
        }
        out.push(Block::Heading(
            2,
            self.t("부록. 데이터 점검", "Appendix. Data checks"),
        ));
        out.push(Block::Para(txt(self.t(
            "아래 항목은 문서 내용이 기록(로그)이나 문서 구조와 맞지 않아 제외하거나 기록에 따라 바로잡았습니다.",
            "The items below disagreed with the log or the document structure: each was left out or corrected from the log.",
        ))));
        let rows = problems
            .iter()
            .map(|p| {
                vec![
                    txt(p.doc.clone()),
                    txt(p
                        .item
                        .as_deref()
                        .map(|i| self.item_ref(i))
                        .unwrap_or_default()),
                    txt(if p.skipped {
                        self.t("제외", "left out")
                    } else {
                        self.t("바로잡음", "corrected")
                    }),
                    txt(p.problem.clone()),
                ]
            })
            .collect();
        out.push(Block::Table {
            id: "integrity".into(),
            head: vec![
                self.t("문서", "Document"),
                self.t("항목", "Item"),
                self.t("조치", "Action"),
                self.t("내용", "Problem"),
            ],
            rows,
        });
    }

    /// Case comparison: each case's indicators.
    fn indicators(&self, s: &Session, out: &mut Vec<Block>) {
        // 2. Case comparison: indicators.
        out.push(Block::Heading(4, self.t("사례 비교", "Case comparison")));
        let mut rows = Vec::new();
        for c in self.cases_in_order(s) {
            for i in &c.indicators {
                let g = |k: &str| match i.get(k) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(t)) => t.clone(),
                    Some(v) => v.to_string(),
                };
                // A value with its year: `8,400 (2012)`; a value nobody gave is `-`.
                let at = |value: &str, year: &str| {
                    let v = g(value);
                    let v = if v.is_empty() {
                        "-".to_string()
                    } else {
                        number_words(&v)
                    };
                    match g(year) {
                        y if y.is_empty() => v,
                        y => format!("{v} ({y})"),
                    }
                };
                let direction = match g("direction").as_str() {
                    "higher_is_better" => self.t("높을수록 좋음", "higher is better"),
                    "lower_is_better" => self.t("낮을수록 좋음", "lower is better"),
                    _ => String::new(),
                };
                rows.push(vec![
                    txt(self.gov(&c.government)),
                    txt(g("name")),
                    txt(at("baseline", "baseline_year")),
                    txt(at("latest", "latest_year")),
                    txt(g("unit")),
                    txt(direction),
                ]);
            }
        }
        out.push(Block::Table {
            id: format!("indicators:{}", s.key),
            head: vec![
                self.t("지자체", "Government"),
                self.t("지표", "Indicator"),
                self.t("기준", "Baseline"),
                self.t("최근", "Latest"),
                self.t("단위", "Unit"),
                self.t("방향", "Direction"),
            ],
            rows,
        });
    }

    /// 추진 개요 of a session: when (the day, and the hours it was scheduled for), where, how
    /// many attended, and the order of business.
    fn session_outline(&self, s: &Session) -> Vec<Cell> {
        let get = |k: &str| s.rest.get(k);
        let clock = |t: Option<&Value>| {
            t.and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&self.zone).format("%H:%M").to_string())
        };
        let scheduled = get("scheduled");
        let hours = match (
            clock(scheduled.and_then(|x| x.get("start"))),
            clock(scheduled.and_then(|x| x.get("end"))),
        ) {
            (Some(a), Some(b)) => format!(" {a}–{b}"),
            _ => String::new(),
        };
        let day = s
            .date
            .as_deref()
            .map(|d| date_words(self.lang, self.zone, d))
            .unwrap_or_default();
        let mut items = Vec::new();
        // Why: the session's own purpose, else the series'.
        let purpose = get("purpose")
            .or_else(|| self.b.series.rest.get("purpose"))
            .and_then(Value::as_str);
        if let Some(p) = purpose {
            items.push(txt(format!("{}: {p}", self.t("목적", "Purpose"))));
        }
        items.push(txt(format!("{}: {day}{hours}", self.t("일시", "When"))));
        if let Some(v) = get("venue").and_then(Value::as_str) {
            items.push(txt(format!("{}: {v}", self.t("장소", "Where"))));
        }
        if let Some(n) = get("attendance").and_then(|a| a.get("count")) {
            items.push(txt(format!(
                "{}: {}{}{}",
                self.t("참석", "Attendance"),
                number_words(&n.to_string()),
                self.t("명", ""),
                self.attendance_composition(get("attendance"))
            )));
        }
        // Who the presence record says was there (joined in the app), beside the number the
        // organizers counted.
        let attended =
            get("attended").filter(|a| a.get("count").and_then(Value::as_u64).unwrap_or(0) > 0);
        if let Some(a) = attended {
            items.push(txt(format!(
                "{}: {}{}{}",
                self.t("접속 기록", "Present in the app"),
                number_words(&a["count"].to_string()),
                self.t("명", ""),
                self.attendance_composition(Some(a))
            )));
        }
        items.push(txt(self.progress_of_series(s)));
        let agenda: Vec<String> = s
            .agenda
            .iter()
            .map(|a| {
                let title = a
                    .rest
                    .get("title_ko")
                    .and_then(Value::as_str)
                    .unwrap_or(&a.key)
                    .to_string();
                match (clock(a.rest.get("start")), clock(a.rest.get("end"))) {
                    (Some(x), Some(y)) => format!("{title}({x}–{y})"),
                    _ => title,
                }
            })
            .collect();
        if !agenda.is_empty() {
            items.push(txt(format!(
                "{}: {}",
                self.t("진행", "Order of business"),
                agenda.join(" · ")
            )));
        }
        items
    }

    /// Who attended, by kind (`attendance.composition`: kind → count):
    /// ` (공무원 14명, 전문가 6명, 활동가 21명)`, or nothing.
    fn attendance_composition(&self, attendance: Option<&Value>) -> String {
        let Some(parts) = attendance
            .and_then(|a| a.get("composition"))
            .and_then(Value::as_object)
        else {
            return String::new();
        };
        // Officials, experts, activists, residents — as an office lists them — then the rest.
        let order = ["official", "expert", "activist", "resident"];
        let mut parts: Vec<(&String, &Value)> = parts.iter().collect();
        parts.sort_by_key(|(k, _)| {
            order
                .iter()
                .position(|o| *o == k.as_str())
                .unwrap_or(order.len())
        });
        let words: Vec<String> = parts
            .into_iter()
            .filter_map(|(kind, n)| {
                let n = n.as_u64()?;
                let (ko, en) = role_words(kind);
                let name = match (ko, self.lang) {
                    // A kind this report has no word for is printed as the bundle names it.
                    ("참여자", _) => kind.clone(),
                    (ko, Lang::Ko) => ko.to_string(),
                    (_, Lang::En) => en.to_string(),
                };
                Some(format!(
                    "{name} {}{}",
                    number_words(&n.to_string()),
                    self.t("명", "")
                ))
            })
            .collect();
        if words.is_empty() {
            String::new()
        } else {
            format!(" ({})", words.join(", "))
        }
    }

    /// A session's place in its series as a Korean office numbers it: 제5차 (in English, 5.);
    /// nothing for a session nobody numbered (0).
    fn round(&self, no: u32) -> String {
        match (no, self.lang) {
            (0, _) => String::new(),
            (_, Lang::Ko) => format!("제{no}차"),
            (_, Lang::En) => format!("{no}."),
        }
    }

    /// A session as a title names it: its round and field ("제2차 도서관"), else its title.
    fn session_short_name(&self, s: &Session) -> String {
        let field = s
            .field
            .as_deref()
            .map(|f| self.field(f))
            .unwrap_or_default();
        let head: Vec<String> = [self.round(s.no), field]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect();
        if !head.is_empty() {
            head.join(" ")
        } else if !s.title.trim().is_empty() {
            s.title.clone()
        } else {
            s.key.clone()
        }
    }

    /// A session as a heading names it: its round, its field and its title, leaving out what
    /// it does not have ("제8차 도시재생 — 주민이 만드는 마을", or its title alone).
    fn session_name(&self, s: &Session) -> String {
        let short = self.session_short_name(s);
        if short == s.title || short == s.key || s.title.trim().is_empty() {
            short
        } else {
            format!("{short} — {}", s.title)
        }
    }

    /// Where the series stands: which round this is, the rounds the series has registered,
    /// and how many of them have been held (past `live`).
    ///
    /// The export lists every session of the series (`sessions_registered`, with its number
    /// and phase), so a report of one session counts the others too; a bundle from elsewhere
    /// counts what it holds.
    fn progress_of_series(&self, s: &Session) -> String {
        let registered: Vec<(u32, String)> = match self
            .b
            .series
            .rest
            .get("sessions_registered")
            .and_then(Value::as_array)
        {
            Some(list) => list
                .iter()
                .map(|x| {
                    (
                        x.get("no").and_then(Value::as_u64).unwrap_or(0) as u32,
                        x.get("phase")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect(),
            None => self
                .b
                .sessions
                .iter()
                .map(|x| (x.no, x.phase.clone()))
                .collect(),
        };
        let total = registered.len().max(1);
        let held = registered
            .iter()
            .filter(|(_, p)| matches!(p.as_str(), "closed" | "reporting" | "published"))
            .count();
        let this = self.round(s.no);
        // The rounds themselves when every one is numbered: "2회(제2차·제3차)".
        let mut nos: Vec<u32> = registered.iter().map(|(n, _)| *n).collect();
        nos.sort_unstable();
        let rounds = if nos.iter().all(|n| *n > 0) && !nos.is_empty() {
            format!(
                "({})",
                nos.iter()
                    .map(|n| self.round(*n))
                    .collect::<Vec<_>>()
                    .join("·")
            )
        } else {
            String::new()
        };
        match self.lang {
            Lang::Ko if this.is_empty() => {
                format!("시리즈 진행: 등록된 토론회 {total}회{rounds} 가운데 {held}회 개최")
            }
            Lang::Ko => format!(
                "시리즈 진행: 이번이 {this} — 등록된 토론회 {total}회{rounds} 가운데 {held}회 개최"
            ),
            Lang::En => format!("Series: {held} of its {total} registered sessions held"),
        }
    }

    /// The session's cases in presentation order: the host government's first, then the
    /// others in the order the session lists its governments, then any left, by key.
    fn cases_in_order(&self, s: &'a Session) -> Vec<&'a crate::bundle::Case> {
        let host = self
            .b
            .series
            .rest
            .get("host_government")
            .and_then(Value::as_str);
        let mut cases: Vec<&crate::bundle::Case> = s.cases.iter().collect();
        cases.sort_by_key(|c| {
            let listed = s
                .governments
                .iter()
                .position(|g| *g == c.government)
                .unwrap_or(usize::MAX);
            (Some(c.government.as_str()) != host, listed, c.key.clone())
        });
        cases
    }

    /// The cover: the title, the last session's date, the organizing department and its
    /// contact (the series' `contact`), and the approval box.
    fn cover(&self, title: &str) -> Cover {
        let rest = &self.b.series.rest;
        let date = self
            .sessions
            .iter()
            .filter_map(|s| s.date.as_deref())
            .max()
            .map(|d| date_words(self.lang, self.zone, d));
        let department = rest
            .get("organizer_department")
            .and_then(Value::as_str)
            .map(|d| self.dept(d));
        let contact = rest
            .get("contact")
            .and_then(Value::as_str)
            .map(|c| format!("{}: {c}", self.t("문의", "Contact")));
        Cover {
            title: title.to_string(),
            date,
            department,
            contact,
            approvals: match self.lang {
                Lang::Ko => vec!["담당".into(), "팀장".into(), "과장".into()],
                Lang::En => vec!["Officer".into(), "Team leader".into(), "Director".into()],
            },
            lang: self.lang,
        }
    }

    /// The weighted totals and the per-criterion means as bar charts, beside the table that
    /// holds the same numbers.
    fn score_charts(
        &self,
        s: &Session,
        cases: &[&crate::bundle::Case],
        scores: &[CaseScores],
        out: &mut Vec<Block>,
    ) {
        if scores.iter().all(|cs| cs.total.is_none()) {
            return;
        }
        let names: Vec<String> = cases.iter().map(|c| self.gov(&c.government)).collect();
        out.push(Block::Chart(Chart {
            id: format!("totals:{}", s.key),
            title: self.t("가중 총점 비교 (0–100)", "Weighted totals (0–100)"),
            max: 100.0,
            categories: names.clone(),
            series: vec![Series {
                name: self.t("가중 총점", "Weighted total"),
                values: scores
                    .iter()
                    .map(|cs| cs.total.map(|(t, _)| (t.as_f64(), t.rounded(1))))
                    .collect(),
            }],
            category_label: self.t("지자체", "Government"),
        }));
        let criteria = &self.b.evaluation_template.criteria;
        out.push(Block::Chart(Chart {
            id: format!("criteria:{}", s.key),
            title: self.t("항목별 평균 점수 (1–5)", "Mean score per criterion (1–5)"),
            max: 5.0,
            categories: criteria.iter().map(|c| self.criterion(&c.key)).collect(),
            series: names
                .into_iter()
                .zip(scores)
                .map(|(name, cs)| Series {
                    name,
                    values: criteria
                        .iter()
                        .map(|c| {
                            cs.criteria
                                .get(&c.key)
                                .map(|(mean, ..)| (mean.as_f64(), mean.rounded(2)))
                        })
                        .collect(),
                })
                .collect(),
            category_label: self.t("항목", "Criterion"),
        }));
    }

    /// Official scores per criterion and weighted totals, from the submitted evaluations.
    fn official_scores(&self, s: &Session, out: &mut Vec<Block>) {
        let b = self.b;
        // 3. Official scores, and reference scores apart.
        out.push(Block::Heading(
            4,
            self.t(
                "평가 결과 (공식 점수)",
                "Evaluation results (official scores)",
            ),
        ));
        // A draft is the evaluator's own until they submit it.
        let evals: Vec<&Evaluation> = s
            .evaluations
            .iter()
            .filter(|e| e.status == "submitted")
            .collect();
        let cases = self.cases_in_order(s);
        let scores: Vec<CaseScores> = cases
            .iter()
            .map(|c| case_scores(b, &evals, &c.key))
            .collect();
        let mut head = vec![self.t("항목(가중치)", "Criterion (weight)")];
        // Each column is a government, by name; one presenting two cases here is told apart
        // by the case's title.
        head.extend(cases.iter().map(|c| {
            let twice = cases
                .iter()
                .filter(|x| x.government == c.government)
                .count()
                > 1;
            if twice {
                format!("{} ({})", self.gov(&c.government), c.title)
            } else {
                self.gov(&c.government)
            }
        }));
        let mut rows: Vec<Vec<Cell>> = b
            .evaluation_template
            .criteria
            .iter()
            .map(|c| {
                let mut row = vec![txt(format!("{} ({})", self.criterion(&c.key), c.weight))];
                for cs in &scores {
                    row.push(txt(match cs.criteria.get(&c.key) {
                        Some((mean, min, max, n)) => {
                            format!("{} ({min}–{max}, n={n})", mean.rounded(2))
                        }
                        None => "-".into(),
                    }));
                }
                row
            })
            .collect();
        let mut total = vec![txt(self.t("가중 총점 (0–100)", "Weighted total (0–100)"))];
        for cs in &scores {
            total.push(txt(match cs.total {
                Some((t, rescaled)) => {
                    let mark = if rescaled {
                        self.t(" (해당없음 제외 환산)", " (rescaled for N/A)")
                    } else {
                        String::new()
                    };
                    format!("{}{mark}", t.rounded(1))
                }
                None => "-".into(),
            }));
        }
        rows.push(total);
        out.push(Block::Table {
            id: format!("scores:{}", s.key),
            head,
            rows,
        });
        out.push(Block::Para(txt(self.t(
            "점수는 사례를 평가표 기준과 비교한 것이며 지자체끼리 직접 비교한 것이 아니다.",
            "Scores compare each case with the template, not the governments with each other.",
        ))));
        self.score_charts(s, &cases, &scores, out);
    }

    /// Reference scores (score annotations), apart from the official ones; conflicts of interest excluded.
    fn reference_scores(&self, s: &Session, out: &mut Vec<Block>) {
        let b = self.b;
        // One score per participant, case and criterion: their latest (fifteen score notes of
        // one person are one voice, not fifteen).
        let mut latest: BTreeMap<(String, String, String), (u8, bool)> = BTreeMap::new();
        let mut scores: Vec<&Annotation> = s
            .annotations
            .iter()
            .filter(|a| a.kind == AnnotationKind::Score)
            .collect();
        scores.sort_by_key(|a| (a.created_at.clone(), a.uuid()));
        for a in scores {
            // The case of the document the score is anchored in (a passage of the case or of
            // an evaluation of it), else the case the annotation names.
            let case = match &a.target {
                Some(
                    Target::Document { doc }
                    | Target::TextRange { doc, .. }
                    | Target::Indicator { doc, .. },
                ) => doc
                    .parse::<crate::policy::DocKey>()
                    .ok()
                    .and_then(|k| match k {
                        crate::policy::DocKey::Case { case }
                        | crate::policy::DocKey::Eval { case, .. } => Some(case),
                        _ => None,
                    }),
                _ => None,
            }
            .or_else(|| a.subject_cases.first().cloned())
            .unwrap_or_default();
            let (Some(c), Some(v)) = (&a.criterion, a.value) else {
                continue;
            };
            let author_dept = self
                .people
                .get(a.author.as_str())
                .and_then(|p| p.department.clone());
            let conflict = b.case(&case).is_some_and(|c| {
                author_dept
                    .as_ref()
                    .is_some_and(|d| c.responsible_departments.contains(d))
            });
            let excluded = a.counted_in_aggregate == Some(false) || conflict;
            latest.insert((case, c.clone(), a.author.clone()), (v, excluded));
        }
        let mut refs: BTreeMap<(String, String), (Vec<u8>, usize)> = BTreeMap::new();
        for ((case, c, _), (v, excluded)) in latest {
            let e = refs.entry((case, c)).or_default();
            if excluded {
                e.1 += 1;
            } else {
                e.0.push(v);
            }
        }
        if !refs.is_empty() {
            out.push(Block::Heading(
                4,
                self.t(
                    "참고 점수 (공식 점수와 별도)",
                    "Reference scores (apart from official scores)",
                ),
            ));
            // A case by its government's name, as the score table heads it.
            let case_name = |k: &str| {
                s.cases
                    .iter()
                    .find(|c| c.key == k)
                    .map(|c| self.gov(&c.government))
                    .unwrap_or_else(|| k.to_string())
            };
            out.push(Block::Table {
                id: format!("reference:{}", s.key),
                head: vec![
                    self.t("지자체", "Government"),
                    self.t("항목", "Criterion"),
                    "n".into(),
                    self.t("중앙값", "Median"),
                    self.t("제외(이해충돌)", "Excluded (conflict of interest)"),
                ],
                rows: refs
                    .into_iter()
                    .map(|((case, c), (mut v, excluded))| {
                        vec![
                            txt(case_name(&case)),
                            txt(self.criterion(&c)),
                            txt(v.len().to_string()),
                            txt(if v.is_empty() {
                                "-".into()
                            } else {
                                median(&mut v).rounded(1)
                            }),
                            txt(excluded.to_string()),
                        ]
                    })
                    .collect(),
            });
        }
    }

    /// Findings of this field by type (4–7), then the deferred annotations.
    fn session_findings(&self, s: &Session, findings: &[&Finding], out: &mut Vec<Block>) {
        let b = self.b;
        // 4–7. Findings of this field.
        let mine: Vec<&&Finding> = findings.iter().filter(|f| self.drawn_from(s, f)).collect();
        // A heading only over what it heads: a kind without findings is left out, and a
        // session without any says so once.
        let section = |kind: FindingType, ko: &str, en: &str, out: &mut Vec<Block>| {
            let fs: Vec<&&&Finding> = mine.iter().filter(|f| f.kind == kind).collect();
            if !fs.is_empty() {
                out.push(Block::Heading(4, self.t(ko, en)));
            }
            fs
        };
        if mine.is_empty() {
            out.push(Block::Heading(4, self.t("결과 항목", "Findings")));
            out.push(Block::Para(txt(self.t(
                "이 토론회에서 정리한 결과 항목은 아직 없습니다.",
                "No findings have been drawn from this session yet.",
            ))));
        }
        // The host government's shortfalls (성북구 추진상 부족했던 부분 in the sample).
        let host = b
            .series
            .rest
            .get("host_government")
            .and_then(Value::as_str)
            .map(|g| self.gov(g));
        let (gap_ko, gap_en) = match &host {
            Some(h) => (
                format!("{h} 추진상 부족했던 부분"),
                format!("Shortfalls of {h}"),
            ),
            None => ("추진상 부족했던 부분".to_string(), "Shortfalls".to_string()),
        };
        for f in section(FindingType::Gap, &gap_ko, &gap_en, out) {
            self.finding_block(f, out);
        }
        let lessons = section(
            FindingType::Lesson,
            "타 지자체에서 배울 점",
            "Lessons from other governments",
            out,
        );
        let mut by_gov: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        for f in lessons {
            let g = f
                .source_government
                .clone()
                .or_else(|| f.subject_government.clone())
                .unwrap_or_default();
            by_gov.entry(g).or_default().push(f);
        }
        for (g, fs) in by_gov {
            out.push(Block::Heading(5, self.gov(&g)));
            for f in fs {
                self.finding_block(f, out);
            }
        }
        for f in section(
            FindingType::Recommendation,
            "개선 제언",
            "Recommendations",
            out,
        ) {
            self.finding_block(f, out);
        }
        let open = section(
            FindingType::OpenQuestion,
            "추가 검토 사항",
            "Items for further review",
            out,
        );
        for f in open {
            self.finding_block(f, out);
        }
        let deferred: Vec<Cell> = s
            .annotations
            .iter()
            .filter(|a| self.status_of(s, a) == Some(TriageStatus::Deferred))
            .map(|a| {
                let mut c = vec![self.link(s, a), Inline::Text(" ".into())];
                c.push(Inline::Text(cut(
                    self.lang,
                    a.body.as_deref().unwrap_or_default(),
                    PRINTED_CHARS,
                )));
                c
            })
            .collect();
        if !deferred.is_empty() {
            out.push(Block::List(deferred));
        }
    }

    fn session_chapter(&self, s: &Session, findings: &[&Finding], out: &mut Vec<Block>) {
        let field_name = s
            .field
            .as_deref()
            .map(|f| self.field(f))
            .unwrap_or_default();
        let _ = field_name;
        out.push(Block::Heading(3, self.session_name(s)));
        // 1. Session summary.
        let evaluators: BTreeSet<&str> =
            s.evaluations.iter().map(|e| e.evaluator.as_str()).collect();
        let mut items = self.session_outline(s);
        for (n, c) in self.cases_in_order(s).into_iter().enumerate() {
            let presenters: Vec<String> = c
                .presenters
                .iter()
                .map(|p| self.person(p, "presenter"))
                .collect();
            items.push(txt(format!(
                "{} {}: {} — {}",
                self.t("사례", "Case"),
                n + 1,
                self.gov(&c.government),
                c.title
            ) + &if presenters.is_empty() {
                String::new()
            } else {
                format!(" ({})", presenters.join(", "))
            }));
        }
        items.push(txt(format!(
            "{}: {}",
            self.t("평가자", "Evaluators"),
            evaluators
                .iter()
                .map(|e| self.person(e, "evaluator"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        if let Some(f) = &s.facilitator {
            items.push(txt(format!(
                "{}: {}",
                self.t("좌장", "Chair"),
                self.person(f, "facilitator")
            )));
        }
        out.push(Block::List(items));
        self.indicators(s, out);
        self.official_scores(s, out);
        self.evaluator_tables(s, out);
        self.reference_scores(s, out);
        self.questions_and_answers(s, out);
        self.session_findings(s, findings, out);
    }

    /// 주요 질의·응답: each question of the session (in the order asked), who asked it, the
    /// answers and replies it got and who gave them, and what the chair decided.
    fn questions_and_answers(&self, s: &Session, out: &mut Vec<Block>) {
        let questions: Vec<&Annotation> = s
            .annotations
            .iter()
            .filter(|a| a.kind == AnnotationKind::Question && a.parent.is_none())
            .collect();
        if questions.is_empty() {
            return;
        }
        out.push(Block::Heading(
            4,
            self.t("주요 질의·응답", "Questions and answers"),
        ));
        let rows = questions
            .iter()
            .map(|q| {
                let id = q.uuid();
                let answers: Vec<String> = s
                    .annotations
                    .iter()
                    .filter(|r| {
                        r.parent
                            .as_deref()
                            .is_some_and(|p| p == id || q.reference.as_deref() == Some(p))
                    })
                    .map(|r| {
                        format!(
                            "{}: {}",
                            self.author_of(r),
                            cut(
                                self.lang,
                                r.body.as_deref().unwrap_or_default(),
                                PRINTED_CHARS
                            )
                        )
                    })
                    .collect();
                vec![
                    vec![self.link(s, q)],
                    txt(cut(
                        self.lang,
                        q.body
                            .as_deref()
                            .filter(|b| !b.trim().is_empty())
                            .or(match &q.target {
                                Some(Target::TextRange { quote, .. }) => Some(quote.exact.as_str()),
                                _ => None,
                            })
                            .unwrap_or_default(),
                        PRINTED_CHARS,
                    )),
                    txt(self.author_of(q)),
                    txt(if answers.is_empty() {
                        self.t("답변 기록 없음", "no answer recorded")
                    } else {
                        answers.join(" / ")
                    }),
                    txt(self.status_word(self.status_of(s, q))),
                ]
            })
            .collect();
        out.push(Block::Table {
            id: format!("questions:{}", s.key),
            head: vec![
                self.t("번호", "Ref"),
                self.t("질의", "Question"),
                self.t("질의자", "Asked by"),
                self.t("답변", "Answers"),
                self.t("처리", "Status"),
            ],
            rows,
        });
    }

    /// Each evaluator's submitted scores per case, their weighted total, and their 총평: the
    /// official table is their mean, and the reader sees who gave what.
    fn evaluator_tables(&self, s: &Session, out: &mut Vec<Block>) {
        let b = self.b;
        let cases = self.cases_in_order(s);
        let submitted: Vec<&Evaluation> = s
            .evaluations
            .iter()
            .filter(|e| e.status == "submitted")
            .collect();
        if submitted.is_empty() {
            return;
        }
        out.push(Block::Heading(
            4,
            self.t("평가자별 점수와 총평", "Scores and comments by evaluator"),
        ));
        for c in cases {
            let forms: Vec<&&Evaluation> = submitted.iter().filter(|e| e.case == c.key).collect();
            if forms.is_empty() {
                continue;
            }
            let mut head = vec![format!(
                "{} — {}",
                self.gov(&c.government),
                self.t("항목", "criterion")
            )];
            head.extend(forms.iter().map(|e| self.person(&e.evaluator, "evaluator")));
            let score_word = |x: Option<u8>| match x {
                Some(v) => v.to_string(),
                None => self.t("해당없음", "N/A"),
            };
            let mut rows: Vec<Vec<Cell>> =
                b.evaluation_template
                    .criteria
                    .iter()
                    .map(|cr| {
                        let mut row = vec![txt(self.criterion(&cr.key))];
                        row.extend(forms.iter().map(|e| {
                            txt(score_word(e.criteria.get(&cr.key).and_then(|x| x.score)))
                        }));
                        row
                    })
                    .collect();
            let mut total = vec![txt(self.t("총점 (0–100)", "Total (0–100)"))];
            total.extend(forms.iter().map(|e| {
                let items: Vec<Rated> = b
                    .evaluation_template
                    .criteria
                    .iter()
                    .map(|cr| Rated {
                        weight: cr.weight,
                        score: e.criteria.get(&cr.key).and_then(|x| x.score),
                    })
                    .collect();
                txt(scoring::weighted_total(&items)
                    .map(|(t, _)| t.rounded(1))
                    .unwrap_or_else(|| "-".into()))
            }));
            rows.push(total);
            out.push(Block::Table {
                id: format!("evaluators:{}", c.key),
                head,
                rows,
            });
            let comments: Vec<Cell> = forms
                .iter()
                .filter(|e| !e.overall.trim().is_empty())
                .map(|e| {
                    txt(format!(
                        "{}: {}",
                        self.person(&e.evaluator, "evaluator"),
                        cut(self.lang, e.overall.trim(), PRINTED_CHARS * 2)
                    ))
                })
                .collect();
            if !comments.is_empty() {
                out.push(Block::List(comments));
            }
        }
    }
}

/// A bundle as exported (a JSON value) → the report's blocks.
pub fn from_export(v: Value, only: Option<&str>, lang: Lang) -> Result<Vec<Block>, String> {
    let b = crate::integrity::read_export(v)?;
    Ok(Builder::new(&b, only, lang).build())
}

fn cell_text(c: &Cell) -> String {
    c.iter()
        .map(|i| match i {
            Inline::Text(t) | Inline::Link(t, _) => t.as_str(),
        })
        .collect()
}

/// Text as Markdown shows it literally: every character with a meaning in Markdown (links,
/// emphasis, inline HTML, tables, headings) is backslash-escaped, and line breaks become
/// spaces, so that what a participant wrote cannot become a link, markup or HTML in the
/// report someone opens.
fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '&' | '~' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A link target made safe to print in Markdown or HTML: our links are paths on the server,
/// and whatever part of them came from content is percent-encoded, so it cannot end the link,
/// add an attribute or change the scheme.
fn href_safe(h: &str) -> String {
    let mut o = String::with_capacity(h.len() + 1);
    let absolute = h.starts_with("http://") || h.starts_with("https://");
    if !h.starts_with('/') && !absolute {
        o.push('/');
    }
    for b in h.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:?=#&%+,".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn md_cell(c: &Cell) -> String {
    c.iter()
        .map(|i| match i {
            Inline::Text(t) => md_escape(t),
            Inline::Link(t, href) => format!("[{}]({})", md_escape(t), href_safe(href)),
        })
        .collect()
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => s.push_str(&format!(
                "{} {}\n\n",
                "#".repeat(usize::from(*l)),
                md_escape(t)
            )),
            Block::Para(c) => s.push_str(&format!("{}\n\n", md_cell(c))),
            Block::List(items) => {
                for i in items {
                    s.push_str(&format!("- {}\n", md_cell(i)));
                }
                s.push('\n');
            }
            Block::Table { head, rows, .. } => {
                s.push_str(&format!(
                    "| {} |\n",
                    head.iter()
                        .map(|h| md_escape(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
                s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    s.push_str(&format!(
                        "| {} |\n",
                        r.iter().map(md_cell).collect::<Vec<_>>().join(" | ")
                    ));
                }
                s.push('\n');
            }
            // The numbers of a chart are in the table beside it.
            Block::Chart(_) => {}
            Block::Cover(cover) => {
                for line in cover.lines().iter().filter(|l| !l.title) {
                    s.push_str(&format!("{}  \n", md_escape(&line.text)));
                }
                s.push('\n');
            }
        }
    }
    s
}

/// Text as HTML or XML character data: markup characters escaped, and the characters neither
/// may hold (C0 controls other than tab and line breaks, U+FFFE, U+FFFF) dropped, so that
/// nothing a participant typed can make the page or the file unreadable.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

fn html_cell(c: &Cell) -> String {
    c.iter()
        .map(|i| match i {
            Inline::Text(t) => esc(t),
            Inline::Link(t, href) => {
                // `_top`: shown inside the web client's frame, a link opens the replay in the
                // page itself (a frame may not show the page).
                format!(
                    "<a href=\"{}\" target=\"_top\">{}</a>",
                    esc(&href_safe(href)),
                    esc(t)
                )
            }
        })
        .collect()
}

/// A standalone HTML page (inline style; prints well).
/// One department's part of the report, for its reviewers: the title and cover, its action
/// table, and the findings addressed to it as the report tells them. `None` when the report
/// has no table for `department` (a key).
pub fn department_part(blocks: &[Block], department: &str, lang: Lang) -> Option<Vec<Block>> {
    let table_at = blocks.iter().position(
        |b| matches!(b, Block::Table { id, .. } if id == &format!("department:{department}")),
    )?;
    let keys: BTreeSet<String> = match &blocks[table_at] {
        Block::Table { rows, .. } => rows
            .iter()
            .filter_map(|r| r.first().map(cell_text))
            .collect(),
        _ => BTreeSet::new(),
    };
    let name = match table_at.checked_sub(1).map(|i| &blocks[i]) {
        Some(Block::Heading(_, n)) => n.clone(),
        _ => department.to_string(),
    };
    let mut out: Vec<Block> = blocks
        .iter()
        .take_while(|b| matches!(b, Block::Heading(1, _) | Block::Cover(_)))
        .cloned()
        .collect();
    out.push(Block::Heading(
        2,
        format!("{} — {name}", t(lang, "부서별 정리", "By department")),
    ));
    out.push(blocks[table_at].clone());
    out.push(Block::Heading(2, t(lang, "결과 항목", "Findings")));
    // A finding's block: its heading (`[F-…] …`) and what follows up to the next heading.
    let mut keep = false;
    for b in blocks {
        match b {
            Block::Heading(_, text) => {
                keep = keys.iter().any(|k| text.starts_with(&format!("[{k}]")));
                if keep {
                    out.push(Block::Heading(3, text.clone()));
                }
            }
            other if keep => out.push(other.clone()),
            _ => {}
        }
    }
    Some(out)
}

/// The report's title: its first level-1 heading.
pub fn title(blocks: &[Block]) -> &str {
    blocks
        .iter()
        .find_map(|b| match b {
            Block::Heading(1, t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or_default()
}

pub fn html(blocks: &[Block], lang: Lang) -> String {
    let title = title(blocks);
    let mut s = format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n\
body{{font-family:'Noto Sans CJK KR','Noto Sans KR','Malgun Gothic',sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1d232a;line-height:1.55}}\n\
h1{{border-bottom:3px solid #234;padding-bottom:.3rem}}h2{{border-bottom:1px solid #9ab;margin-top:2.2rem}}h4{{margin-bottom:.3rem}}\n\
table{{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.92rem}}th,td{{border:1px solid #c5ced8;padding:.3rem .5rem;vertical-align:top;text-align:left}}\n\
th{{background:#eef2f6}}a{{color:#1a5fb4}}\n\
figure.chart{{margin:.6rem 0 1.2rem;overflow-x:auto}}figure.chart svg{{max-width:100%;height:auto}}figcaption{{font-size:.9rem;color:#4a5560}}.cover p{{margin:.1rem 0;color:#4a5560}}\n\
@media print{{body{{max-width:none;margin:0;font-size:10pt}}h2{{break-before:page}}table,figure{{break-inside:auto}}tr,figure.chart{{break-inside:avoid}}thead{{display:table-header-group}}a{{color:inherit;text-decoration:none}}}}\n</style>\n</head>\n<body>\n",
        if lang == Lang::Ko { "ko" } else { "en" },
        esc(title)
    );
    for b in blocks {
        match b {
            Block::Heading(l, t) => s.push_str(&format!("<h{l}>{}</h{l}>\n", esc(t))),
            Block::Para(c) => s.push_str(&format!("<p>{}</p>\n", html_cell(c))),
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    s.push_str(&format!("<li>{}</li>\n", html_cell(i)));
                }
                s.push_str("</ul>\n");
            }
            Block::Table { id, head, rows } => {
                s.push_str(&format!("<table data-table=\"{}\">\n<thead><tr>", esc(id)));
                for h in head {
                    s.push_str(&format!("<th>{}</th>", esc(h)));
                }
                s.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", html_cell(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody>\n</table>\n");
            }
            Block::Chart(chart) => s.push_str(&format!(
                "<figure class=\"chart\" data-chart=\"{}\">\n{}<figcaption>{}</figcaption>\n</figure>\n",
                esc(&chart.id),
                chart.svg(),
                esc(&chart.title)
            )),
            Block::Cover(cover) => {
                s.push_str("<div class=\"cover\">\n");
                for line in cover.lines().iter().filter(|l| !l.title) {
                    s.push_str(&format!("<p>{}</p>\n", esc(&line.text)));
                }
                s.push_str("</div>\n");
            }
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// Makes every link of the report absolute: `base` (`https://toron.example.go.kr`, checked by
/// the caller: a scheme and an authority, no trailing slash) before each server path, so that
/// a mailed file's links lead somewhere.
pub fn with_base(blocks: &mut [Block], base: &str) {
    let fix = |c: &mut Cell| {
        for i in c.iter_mut() {
            if let Inline::Link(_, href) = i {
                *href = format!("{base}{}", href_safe(href));
            }
        }
    };
    for b in blocks {
        match b {
            Block::Heading(..) | Block::Chart(_) | Block::Cover(_) => {}
            Block::Para(c) => fix(c),
            Block::List(items) => items.iter_mut().for_each(fix),
            Block::Table { rows, .. } => rows.iter_mut().flatten().for_each(fix),
        }
    }
}

/// The department tables as CSV: one header row, then the rows of every department, with the
/// department's name first and the row's links (its sources' replay moments) last.
/// The columns of a department's table.
fn department_head(lang: Lang) -> Vec<String> {
    [
        ("번호", "ID"),
        ("구분", "Type"),
        ("분야", "Field"),
        ("내용", "Content"),
        ("제기자", "Raised by"),
        ("근거", "Sources"),
        ("우선순위", "Priority"),
        ("주관/협조", "Lead/assist"),
        ("부서 검토의견", "Response"),
        ("조치계획", "Action plan"),
        ("완료 예정", "Due"),
        ("추진상황", "Progress"),
    ]
    .into_iter()
    .map(|(ko, en)| t(lang, ko, en))
    .collect()
}

/// The department tables as rows of one sheet: the department, the table's columns, the
/// links. With no finding yet the sheet is its header row alone.
pub fn department_rows(blocks: &[Block], lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head = vec![t(lang, "부서", "department")];
    head.extend(department_head(lang));
    head.push(t(lang, "출처 링크", "links"));
    let mut rows = Vec::new();
    // A department's table follows its heading, which names it.
    let mut name = "";
    for b in blocks {
        if let Block::Heading(_, text) = b {
            name = text;
        }
        if let Block::Table { id, rows: r, .. } = b {
            if id.starts_with("department:") {
                for row in r {
                    let mut line = vec![name.to_string()];
                    line.extend(row.iter().map(cell_text));
                    let links: Vec<String> = row
                        .iter()
                        .flatten()
                        .filter_map(|i| match i {
                            Inline::Link(_, href) => Some(href_safe(href)),
                            Inline::Text(_) => None,
                        })
                        .collect();
                    line.push(links.join(" "));
                    rows.push(line);
                }
            }
        }
    }
    (head, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case whose sections the district named and ordered itself: `재원` first, then the
    /// usual four, then `예산` (the example's own). The bundle's text order is kept (a JSON
    /// value would sort it), and the report's 붙임 prints them in it.
    #[test]
    fn sections_keep_the_names_and_order_the_district_wrote() {
        let text = include_str!("../../../examples/debate-bundle.json").replacen(
            "\"sections\": {",
            "\"sections\": { \"재원\": \"연 12억 원\", \"추진 성과\": \"회원 8,400명\",",
            1,
        );
        let b = Bundle::parse(text.as_bytes()).expect("parses");
        let c = &b.sessions[0].cases[0];
        let expected = [
            "재원",
            "추진 성과",
            "background",
            "method",
            "results",
            "challenges",
            "예산",
        ];
        assert_eq!(c.section_order, expected);
        let blocks = Builder::new(&b, None, Lang::Ko).build();
        let paras: Vec<String> = blocks
            .iter()
            .filter_map(|x| match x {
                Block::Para(cell) => Some(cell_text(cell)),
                _ => None,
            })
            .collect();
        let at = |p: &str| paras.iter().position(|x| x.starts_with(p));
        let order = [at("재원:"), at("추진 성과:"), at("추진배경:"), at("예산:")];
        assert!(
            order[0].is_some() && order.windows(2).all(|w| w[0] < w[1]),
            "{order:?}"
        );
    }

    /// Issue 30, point 6, on the example's library session as a district files it: titled
    /// for its session, the series' progress counted, 핵심 요약 in words per government,
    /// 주요 질의·응답 with who asked and who answered, evidence by the refs people see and
    /// never a UUID, no empty heading, the forms in presentation order (the host's first),
    /// attendance from the presence record beside the organizers' count.
    #[test]
    fn a_session_report_tells_the_session_as_it_happened() {
        let text = include_str!("../../../examples/debate-bundle.json").replacen(
            "\"attendance\": {",
            "\"attended\": { \"count\": 12, \"composition\": { \"official\": 5, \"activist\": 7 } }, \"attendance\": {",
            1,
        );
        let b = Bundle::parse(text.as_bytes()).expect("parses");
        let blocks = Builder::new(&b, Some("S-LIB"), Lang::Ko).build();
        let md = markdown(&blocks);
        let has = |s: &str| assert!(md.contains(s), "the report says {s:?}:\n{md}");
        has("# 「한빛구 벤치마킹 집단토론(예시)」 제2차 도서관 결과보고서");
        has("시리즈 진행: 이번이 제2차 — 등록된 토론회 2회(제2차·제3차) 가운데 2회 개최");
        has("- 한빛구: 부족한 점은 작은도서관 운영 인력의 자원봉사 의존");
        has("- 누리구: ");
        has("배울 점은 거점 도서관 공동 구입");
        has("#### 주요 질의·응답");
        has("| 운영자 교육은 누가 맡습니까? | 박민재(나래도서관연구소 연구위원, 평가자) | 이도현(한빛구 문화도서관과 주무관, 발표자): 구립도서관 사서가 분기마다 맡습니다. | 답변됨 |");
        has("- 참석: 41명 (공무원 14명, 전문가 6명, 활동가 21명)");
        has("- 접속 기록: 12명 (공무원 5명, 활동가 7명)");
        has("- 평가서: 4/4 제출");
        assert!(!md.contains("(없음)"), "no empty heading:\n{md}");
        let uuid = regex_free_uuid(&md.replace(['(', ')'], " "));
        assert!(uuid.is_none(), "no UUID, even in a link: {uuid:?}");
        // 붙임 1: the host's case (한빛구) before the model's (누리구).
        let forms = md.split("## 붙임 1. 평가서").nth(1).expect("붙임 1");
        let (hb, nr) = (forms.find("### 한빛구"), forms.find("### 누리구"));
        assert!(hb.is_some() && hb < nr, "presentation order: {hb:?} {nr:?}");
    }

    /// The first whole UUID in `s`, if any (8-4-4-4-12 hex digits).
    fn regex_free_uuid(s: &str) -> Option<String> {
        let b = s.as_bytes();
        (0..b.len().saturating_sub(35)).find_map(|i| {
            let w = &b[i..i + 36];
            w.iter()
                .enumerate()
                .all(|(j, c)| match j {
                    8 | 13 | 18 | 23 => *c == b'-',
                    _ => c.is_ascii_hexdigit(),
                })
                .then(|| String::from_utf8_lossy(w).into_owned())
        })
    }

    /// A series with no finding yet: the department sheet is its header row, not `""`.
    #[test]
    fn a_department_sheet_without_findings_is_its_header_row() {
        let (head, rows) = department_rows(&[], Lang::Ko);
        assert_eq!(head.first().map(String::as_str), Some("부서"));
        assert_eq!(head.last().map(String::as_str), Some("출처 링크"));
        assert!(head.iter().any(|h| h == "조치계획"));
        assert!(rows.is_empty());
    }

    /// The chair decided "noted" at 17:00 in Seoul and "deferred" at 09:00 UTC (18:00 in
    /// Seoul), the second written as JavaScript writes times. Compared as text, `T17` came
    /// after `T09` and the report printed the earlier decision.
    #[test]
    fn the_latest_triage_decision_is_the_latest_instant_not_the_greatest_text() {
        let text = include_str!("../../../examples/debate-bundle.json");
        let mut b = Bundle::parse(text.as_bytes()).expect("the example parses");
        let s = &mut b.sessions[0];
        let a = s.annotations[0].clone();
        let entry = |status, at: &str| crate::bundle::TriageEntry {
            annotation: a.uuid(),
            status,
            by: "P-MOON".into(),
            at: at.into(),
            note: None,
            finding: None,
            rest: Default::default(),
        };
        s.triage
            .retain(|t| t.annotation != a.uuid() && Some(&t.annotation) != a.reference.as_ref());
        s.triage
            .push(entry(TriageStatus::Deferred, "2012-11-07T09:00:00Z"));
        s.triage
            .push(entry(TriageStatus::Noted, "2012-11-07T17:00:00+09:00"));
        let r = Builder::new(&b, None, Lang::Ko);
        assert_eq!(
            r.status_of(&b.sessions[0], &a),
            Some(TriageStatus::Deferred)
        );
    }

    /// What a participant writes is shown as text by a Markdown renderer: no HTML, no link of
    /// theirs, no emphasis; and a link whose target carries content stays one link to our path.
    #[test]
    fn participants_text_stays_text_in_markdown_and_html() {
        let evil =
            "<img src=x onerror=alert(1)> [클릭](javascript:alert(1)) **굵게** | 칸 # 제목\n- 목록";
        let blocks = vec![
            Block::Heading(2, evil.into()),
            Block::Para(vec![Inline::Text(evil.into())]),
            Block::List(vec![vec![Inline::Link(
                evil.into(),
                "/sessions/S1/annotations/x) [a](javascript:alert(2)?at=1".into(),
            )]]),
            Block::Table {
                id: "t".into(),
                head: vec!["주석".into()],
                rows: vec![vec![vec![Inline::Text(evil.into())]]],
            },
        ];
        let md = markdown(&blocks);
        let options = pulldown_cmark::Options::ENABLE_TABLES;
        let mut rendered = String::new();
        pulldown_cmark::html::push_html(
            &mut rendered,
            pulldown_cmark::Parser::new_ext(&md, options),
        );
        assert!(!rendered.contains("<img"), "{rendered}");
        assert!(!rendered.contains("<strong>"), "{rendered}");
        assert!(!rendered.contains("href=\"javascript"), "{rendered}");
        let links: Vec<&str> = rendered.split("<a href=\"").skip(1).collect();
        assert_eq!(links.len(), 1, "one link, ours: {rendered}");
        assert!(
            links[0].starts_with("/sessions/S1/annotations/x%29%20%5Ba%5D"),
            "{}",
            links[0]
        );
        assert!(
            rendered.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "the text is shown: {rendered}"
        );
        let page = html(&blocks, Lang::Ko);
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("href=\"javascript"), "{page}");
    }
}
