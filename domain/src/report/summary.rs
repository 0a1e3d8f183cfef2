//! The report's opening chapters: the summary, the key points, the overview and the
//! department tables (what each department is asked to do).

use std::collections::{BTreeMap, BTreeSet};

use crate::bundle::{Annotation, AnnotationKind, Evaluation, Finding, FindingType, Session};
use serde_json::Value;

use super::{case_scores, cut, date_words, department_head, txt, Block, Builder, Cell, Lang};

impl<'a> Builder<'a> {
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
    pub(super) fn summary(
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
    pub(super) fn key_points(&self, findings: &[&Finding], out: &mut Vec<Block>) {
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
    pub(super) fn in_words(
        &self,
        s: &Session,
        findings: &[&Finding],
        submitted: &[&Evaluation],
    ) -> Vec<Cell> {
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
    pub(super) fn overview(&self, out: &mut Vec<Block>) {
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
    pub(super) fn by_department(&self, findings: &[&Finding], out: &mut Vec<Block>) {
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
}
