//! A session as the report tells it: its indicators, outline, attendance, names, the
//! series' progress and the cover.

use serde_json::Value;

use crate::bundle::Session;
use crate::vocab::Phase;

use super::{date_words, number_words, role_words, txt, Block, Builder, Cell, Cover, Lang};

impl<'a> Builder<'a> {
    /// Case comparison: each case's indicators.
    pub(super) fn indicators(&self, s: &Session, out: &mut Vec<Block>) {
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
    pub(super) fn session_outline(&self, s: &Session) -> Vec<Cell> {
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
    pub(super) fn attendance_composition(&self, attendance: Option<&Value>) -> String {
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
    pub(super) fn round(&self, no: u32) -> String {
        match (no, self.lang) {
            (0, _) => String::new(),
            (_, Lang::Ko) => format!("제{no}차"),
            (_, Lang::En) => format!("{no}."),
        }
    }

    /// A session as a title names it: its round and field ("제2차 도서관"), else its title.
    pub(super) fn session_short_name(&self, s: &Session) -> String {
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
    pub(super) fn session_name(&self, s: &Session) -> String {
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
    pub(super) fn progress_of_series(&self, s: &Session) -> String {
        let registered: Vec<(u32, Option<Phase>)> = match self
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
                            .and_then(Phase::parse),
                    )
                })
                .collect(),
            None => self
                .b
                .sessions
                .iter()
                .map(|x| (x.no, Phase::parse(&x.phase)))
                .collect(),
        };
        let total = registered.len().max(1);
        let held = registered
            .iter()
            .filter(|(_, p)| matches!(p, Some(Phase::Closed | Phase::Reporting | Phase::Published)))
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
    pub(super) fn cases_in_order(&self, s: &'a Session) -> Vec<&'a crate::bundle::Case> {
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
    pub(super) fn cover(&self, title: &str) -> Cover {
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
}
