//! The final report (결과보고서), built from a bundle — what `export` gives for a
//! series or a session — and rendered as Markdown, HTML or CSV (the department tables), in
//! Korean or English. Everything is sorted by keys and nothing depends on the clock, so the
//! same inputs give byte-identical output.

use crate::consent::Consented;
use std::collections::BTreeMap;

mod appendix;
mod builder;
mod chapter;
mod chart;
mod cover;
mod department;
mod format;
mod html;
mod markdown;
mod outline;
mod scores;
mod summary;

pub use chart::{Chart, Series};
pub use cover::{date_words, number_words, Cover, CoverLine};
use department::department_head;
pub use department::{department_part, department_rows};
pub use format::{Format, UnknownFormat};
pub use html::{esc, html};
use markdown::href_safe;
pub use markdown::markdown;

use serde_json::Value;

use crate::bundle::{AnnotationKind, Bundle, Evaluation, Participant, Session};
use crate::scoring::{self, Exact, Rated};

pub use crate::vocab::Lang;
use crate::vocab::{ParticipantKind, Role};

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

/// A participant as they consented to be shown ([`crate::consent`]), in a role.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::TriageStatus;

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
