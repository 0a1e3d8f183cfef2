//! The report's appendices (붙임): the evaluation forms, the cases, the annotations and the
//! integrity notes.

use crate::bundle::{Annotation, Evaluation, Session, Target};

use super::{cut, date_words, txt, Block, Builder, Cell, Lang, PRINTED_CHARS};

impl<'a> Builder<'a> {
    /// Appendix: every root annotation with its status and replay link.
    /// 붙임: the submitted evaluation forms as their evaluators wrote them — each criterion's
    /// score and comment, then strengths, shortfalls, lessons and the overall view.
    pub(super) fn forms_appendix(&self, out: &mut Vec<Block>) {
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
    pub(super) fn cases_appendix(&self, out: &mut Vec<Block>) {
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
    pub(super) fn section_name(&self, key: &str) -> String {
        match key {
            "background" => self.t("추진배경", "Background"),
            "method" => self.t("추진방법·추진체계", "Methods and delivery"),
            "results" => self.t("성과·추진실적", "Results"),
            "challenges" => self.t("한계 및 향후계획", "Limits and next steps"),
            other => other.to_string(),
        }
    }

    pub(super) fn annotations_appendix(
        &self,
        anns: &[(&Session, &Annotation)],
        out: &mut Vec<Block>,
    ) {
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
    pub(super) fn integrity_appendix(&self, out: &mut Vec<Block>) {
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
}
