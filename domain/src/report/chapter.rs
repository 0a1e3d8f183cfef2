//! A session's chapter: what it found, and its questions with their answers.

use std::collections::{BTreeMap, BTreeSet};

use crate::bundle::{
    Annotation, AnnotationKind, Finding, FindingType, Session, Target, TriageStatus,
};
use serde_json::Value;

use super::{cut, txt, Block, Builder, Cell, Inline, PRINTED_CHARS};

impl<'a> Builder<'a> {
    /// Findings of this field by type (4–7), then the deferred annotations.
    pub(super) fn session_findings(
        &self,
        s: &Session,
        findings: &[&Finding],
        out: &mut Vec<Block>,
    ) {
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

    pub(super) fn session_chapter(&self, s: &Session, findings: &[&Finding], out: &mut Vec<Block>) {
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
    pub(super) fn questions_and_answers(&self, s: &Session, out: &mut Vec<Block>) {
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
}
