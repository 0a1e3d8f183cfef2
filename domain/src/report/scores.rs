//! The scores: charts, the official scores, the reference scores of the hall and each
//! evaluator's table.

use std::collections::BTreeMap;

use crate::bundle::{Annotation, AnnotationKind, Evaluation, Session, Target};
use crate::scoring::{self, Rated};

use super::{
    case_scores, cut, median, txt, Block, Builder, CaseScores, Cell, Chart, Series, PRINTED_CHARS,
};

impl<'a> Builder<'a> {
    /// The weighted totals and the per-criterion means as bar charts, beside the table that
    /// holds the same numbers.
    pub(super) fn score_charts(
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
    pub(super) fn official_scores(&self, s: &Session, out: &mut Vec<Block>) {
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
    pub(super) fn reference_scores(&self, s: &Session, out: &mut Vec<Block>) {
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

    /// Each evaluator's submitted scores per case, their weighted total, and their 총평: the
    /// official table is their mean, and the reader sees who gave what.
    pub(super) fn evaluator_tables(&self, s: &Session, out: &mut Vec<Block>) {
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
