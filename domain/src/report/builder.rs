//! The builder's lookups: people, governments, departments, fields, criteria, refs and links
//! in the report's words.

use std::collections::BTreeSet;

use crate::bundle::{
    Annotation, AnnotationKind, Bundle, Finding, FindingType, Session, TriageStatus,
};
use crate::vocab::{Priority, Stance};
use serde_json::Value;

use super::{
    display_name, kind_word, short_refs, t, txt, zone_of, Block, Builder, Cell, Inline, Lang,
};

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
    pub(super) fn item_ref(&self, id: &str) -> String {
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
    pub(super) fn shown_ref(&self, a: &Annotation) -> String {
        let id = a.uuid();
        self.refs.get(&id).cloned().unwrap_or(id)
    }

    pub(super) fn t(&self, ko: &str, en: &str) -> String {
        t(self.lang, ko, en)
    }

    pub(super) fn person(&self, key: &str, role: &str) -> String {
        display_name(self.lang, self.people.get(key).copied(), role)
    }

    pub(super) fn name_of<'x>(&self, ko: &'x str, en: Option<&'x String>) -> &'x str {
        match (self.lang, en) {
            (Lang::En, Some(e)) => e,
            _ => ko,
        }
    }

    pub(super) fn gov(&self, key: &str) -> String {
        self.b
            .governments
            .iter()
            .find(|g| g.key == key)
            .map(|g| self.name_of(&g.name_ko, g.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    pub(super) fn dept(&self, key: &str) -> String {
        self.b
            .departments
            .iter()
            .find(|d| d.key == key)
            .map(|d| self.name_of(&d.name_ko, d.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    pub(super) fn field(&self, key: &str) -> String {
        self.b
            .fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| self.name_of(&f.name_ko, f.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    pub(super) fn criterion(&self, key: &str) -> String {
        self.b
            .evaluation_template
            .criteria
            .iter()
            .find(|c| c.key == key)
            .map(|c| self.name_of(&c.name_ko, c.name_en.as_ref()).to_string())
            .unwrap_or_else(|| key.to_string())
    }

    pub(super) fn annotations(&self) -> impl Iterator<Item = (&'a Session, &'a Annotation)> + '_ {
        self.sessions
            .iter()
            .flat_map(|s| s.annotations.iter().map(move |a| (*s, a)))
    }

    /// The replay link of an annotation: its session, id and the moment it was made.
    pub(super) fn link(&self, s: &Session, a: &Annotation) -> Inline {
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
    pub(super) fn findings(&self) -> Vec<&'a Finding> {
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
    pub(super) fn drawn_from(&self, s: &Session, f: &Finding) -> bool {
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
    pub(super) fn author_of(&self, a: &Annotation) -> String {
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
    pub(super) fn raised_by(&self, f: &Finding) -> (Vec<String>, usize) {
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

    pub(super) fn source_links(&self, f: &Finding) -> Cell {
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
    pub(super) fn evaluation_part(&self, path: &str) -> String {
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
    pub(super) fn pledge(&self, key: &str) -> String {
        self.b
            .pledges
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.title_ko.clone())
            .unwrap_or_else(|| key.to_string())
    }

    pub(super) fn finding_type(&self, k: FindingType) -> String {
        k.word(self.lang).to_string()
    }

    pub(super) fn priority(&self, p: Option<&str>) -> String {
        match p {
            Some(p) => {
                Priority::parse(p).map_or_else(|| p.to_string(), |p| p.word(self.lang).into())
            }
            None => "-".into(),
        }
    }

    /// An annotation's kind as the report's reader says it (the web client's words).
    pub(super) fn kind_word(&self, k: AnnotationKind) -> String {
        kind_word(self.lang, k)
    }

    /// An annotation's triage status in words; `None` is one nobody has decided on yet.
    pub(super) fn status_word(&self, s: Option<TriageStatus>) -> String {
        s.unwrap_or(TriageStatus::Open).word(self.lang).to_string()
    }

    pub(super) fn stance(&self, s: &str) -> String {
        Stance::parse(s).map_or_else(|| s.to_string(), |s| s.word(self.lang).into())
    }

    pub(super) fn finding_block(&self, f: &Finding, out: &mut Vec<Block>) {
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
    pub(super) fn responses_to(&self, f: &Finding) -> Vec<Cell> {
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

    pub(super) fn status_of(&self, s: &Session, a: &Annotation) -> Option<TriageStatus> {
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
}
