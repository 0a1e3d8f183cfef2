//! The report's cover (표지) and the way a Korean office writes dates and numbers.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Weekday};

use super::{txt, Cell, Lang};

/// What the cover of a 결과보고서 shows: the title, the date, the writing department and its
/// contact, and the approval box (결재란) the office signs.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    pub title: String,
    /// The date of the report: the last session's, as the office writes it.
    pub date: Option<String>,
    pub department: Option<String>,
    pub contact: Option<String>,
    /// The approval box's columns (담당, 팀장, 과장).
    pub approvals: Vec<String>,
    pub lang: Lang,
}

/// One line of the cover, and whether it is the title.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverLine {
    pub title: bool,
    pub text: String,
}

impl Cover {
    /// The cover's lines, title first.
    pub fn lines(&self) -> Vec<CoverLine> {
        let mut out = vec![CoverLine {
            title: true,
            text: self.title.clone(),
        }];
        out.extend(
            [&self.date, &self.department, &self.contact]
                .into_iter()
                .flatten()
                .map(|t| CoverLine {
                    title: false,
                    text: t.clone(),
                }),
        );
        out
    }

    /// The heading of the table of contents, in the cover's language.
    pub fn contents_title(&self) -> &'static str {
        match self.lang {
            Lang::Ko => "목차",
            Lang::En => "Contents",
        }
    }

    /// The approval box as a table: the posts, then an empty row to sign in.
    pub fn approval_table(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        (
            self.approvals.clone(),
            vec![self.approvals.iter().map(|_| txt("")).collect()],
        )
    }
}

fn weekday_ko(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "월",
        Weekday::Tue => "화",
        Weekday::Wed => "수",
        Weekday::Thu => "목",
        Weekday::Fri => "금",
        Weekday::Sat => "토",
        Weekday::Sun => "일",
    }
}

/// A date (`2012-11-07`) or a moment (`2012-11-07T16:20:00+09:00`) as a Korean office writes
/// it — `2012. 11. 7.(수)`, with `16:20` after a moment — or in English `2012-11-07 (Wed)
/// 16:20`. A moment is told in the session's zone (`zone`): one written in UTC (`…Z`, as
/// JavaScript's `toISOString` gives it) at 10:42 is 19:42 in Seoul. Anything else is given
/// back as it is: the report never hides what it cannot read.
pub fn date_words(lang: Lang, zone: FixedOffset, s: &str) -> String {
    let (date, time) = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&zone);
        (t.date_naive(), Some(t.format("%H:%M").to_string()))
    } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        (d, None)
    } else {
        return s.to_string();
    };
    let day = match lang {
        Lang::Ko => format!(
            "{}. {}. {}.({})",
            date.year(),
            date.month(),
            date.day(),
            weekday_ko(date.weekday())
        ),
        Lang::En => format!("{} ({})", date.format("%Y-%m-%d"), date.format("%a")),
    };
    match time {
        Some(t) => format!("{day} {t}"),
        None => day,
    }
}

/// A number as written in a report: thousands separated by commas (`8,400`), a decimal part
/// kept as given. Text that is not a plain number is given back as it is.
pub fn number_words(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return s.to_string();
    }
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_an_office_writes_them() {
        let kst = super::super::KST;
        assert_eq!(date_words(Lang::Ko, kst, "2012-11-07"), "2012. 11. 7.(수)");
        assert_eq!(
            date_words(Lang::Ko, kst, "2012-11-07T16:20:00+09:00"),
            "2012. 11. 7.(수) 16:20"
        );
        assert_eq!(
            date_words(Lang::En, kst, "2012-11-14T16:30:00+09:00"),
            "2012-11-14 (Wed) 16:30"
        );
        assert_eq!(date_words(Lang::Ko, kst, "다음 주"), "다음 주");
    }

    #[test]
    fn a_moment_written_in_utc_is_told_in_the_sessions_zone() {
        let kst = super::super::KST;
        // 10:42 UTC is 19:42 in Seoul; 16:30 UTC is the next morning there.
        assert_eq!(
            date_words(Lang::Ko, kst, "2026-12-07T10:42:00.000Z"),
            "2026. 12. 7.(월) 19:42"
        );
        assert_eq!(
            date_words(Lang::Ko, kst, "2026-12-07T16:30:00Z"),
            "2026. 12. 8.(화) 01:30"
        );
    }

    #[test]
    fn numbers_with_thousands_separators() {
        assert_eq!(number_words("8400"), "8,400");
        assert_eq!(number_words("1234567.25"), "1,234,567.25");
        assert_eq!(number_words("-1200"), "-1,200");
        assert_eq!(number_words("35"), "35");
        assert_eq!(number_words("약 300"), "약 300");
        assert_eq!(number_words("1."), "1.");
    }
}
