//! The closed vocabularies of a debate, each written once: its values as they are stored (in
//! documents, bundles and the registry), and its words in Korean and English. The schema, the
//! bundle, the report and — through `web/src/vocab.json`, generated from [`json`] and checked by
//! a test — the web client all read them from here. A value is parsed once, where it enters
//! (a bundle, a document, a registry record); past that it is an enum.

use std::fmt;
use std::str::FromStr;

/// The language a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    /// As a request or a command line names it: `ko` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_text!(Lang);

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ko" => Ok(Lang::Ko),
            "en" => Ok(Lang::En),
            o => Err(format!("unknown language `{o}` (ko or en)")),
        }
    }
}

/// A value that is none of its vocabulary's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} `{value}` (one of {})", .allowed.join(", "))]
pub struct UnknownWord {
    /// The vocabulary, in words (`annotation kind`).
    pub vocabulary: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

/// Defines a vocabulary: an enum whose variants are stored as the given names (serde uses
/// them too), with `ALL`, `NAMES`, `as_str`, `parse`, `ko`, `en`, `word` and `Display`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $stored:literal, $ko:literal, $en:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $stored)] $variant,)+
        }

        impl $name {
            /// Every value, in the vocabulary's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value as stored, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($stored),+];
            /// What the vocabulary is, in words (error messages).
            pub const WHAT: &'static str = $what;

            /// The value as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $stored,)+
                }
            }

            /// The value stored as `s`, if it is one.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($stored => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// In Korean.
            pub fn ko(self) -> &'static str {
                match self {
                    $(Self::$variant => $ko,)+
                }
            }

            /// In English.
            pub fn en(self) -> &'static str {
                match self {
                    $(Self::$variant => $en,)+
                }
            }

            /// In `lang`.
            pub fn word(self, lang: Lang) -> &'static str {
                match lang {
                    Lang::Ko => self.ko(),
                    Lang::En => self.en(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// A value equals its stored word (`Phase::Live == "live"`).
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// `FromStr` with [`UnknownWord`] for vocabularies that take no other spelling.
macro_rules! from_str {
    ($($name:ident),+) => {$(
        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::parse(s).ok_or_else(|| UnknownWord {
                    vocabulary: Self::WHAT,
                    value: s.to_string(),
                    allowed: Self::NAMES,
                })
            }
        }
    )+};
}

vocabulary! {
    /// The annotation kinds (docs/bundle-format.md, "An annotation").
    AnnotationKind, "annotation kind" {
        Comment = "comment", "의견", "comment";
        Question = "question", "질의", "question";
        Answer = "answer", "답변", "answer";
        Reply = "reply", "댓글", "reply";
        Highlight = "highlight", "하이라이트", "highlight";
        Strength = "strength", "강점", "strength";
        Gap = "gap", "부족한 점", "gap";
        Lesson = "lesson", "배울 점", "lesson";
        Score = "score", "참고 점수", "reference score";
    }
}

vocabulary! {
    /// Triage statuses: what the chair decided about an annotation.
    TriageStatus, "triage status" {
        Open = "open", "미처리", "open";
        Answered = "answered", "답변됨", "answered";
        Accepted = "accepted", "반영", "accepted";
        Merged = "merged", "통합", "merged";
        Noted = "noted", "참고", "noted";
        Deferred = "deferred", "추후검토", "deferred";
        Withdrawn = "withdrawn", "철회", "withdrawn";
    }
}

vocabulary! {
    /// Where an evaluation form stands.
    EvaluationStatus, "evaluation status" {
        Draft = "draft", "작성 중", "draft";
        Submitted = "submitted", "제출됨", "submitted";
    }
}

vocabulary! {
    /// A department's answer to a finding addressed to it.
    Stance, "stance" {
        Accepted = "accepted", "수용", "accepted";
        PartiallyAccepted = "partially_accepted", "일부수용", "partially accepted";
        NotAccepted = "not_accepted", "불수용", "not accepted";
        LongTermReview = "long_term_review", "중장기 검토", "long-term review";
    }
}

vocabulary! {
    /// What a finding of the report is.
    FindingType, "finding type" {
        Gap = "gap", "부족", "gap";
        Lesson = "lesson", "배울 점", "lesson";
        Recommendation = "recommendation", "제언", "recommendation";
        OpenQuestion = "open_question", "추가 검토", "open question";
    }
}

vocabulary! {
    /// A finding's priority.
    Priority, "priority" {
        High = "high", "상", "high";
        Medium = "medium", "중", "medium";
        Low = "low", "하", "low";
    }
}

vocabulary! {
    /// Who a participant is, whatever role they hold in a session.
    ParticipantKind, "participant kind" {
        Official = "official", "공무원", "official";
        Expert = "expert", "전문가", "expert";
        Activist = "activist", "활동가", "activist";
        Resident = "resident", "주민", "resident";
    }
}

vocabulary! {
    /// How a participant's name may be shown ([`crate::consent`]).
    Attribution, "attribution" {
        NameAndAffiliation = "name_and_affiliation", "이름과 소속", "name and affiliation";
        AffiliationOnly = "affiliation_only", "소속만", "affiliation only";
        RoleOnly = "role_only", "역할만", "role only";
    }
}

vocabulary! {
    /// The sections a case is told in, in order.
    Section, "section" {
        Background = "background", "배경", "Background";
        Method = "method", "추진 방법", "Method";
        Results = "results", "성과", "Results";
        Challenges = "challenges", "과제", "Challenges";
    }
}

vocabulary! {
    /// A role, granted per series or per session (what each may do: [`crate::policy`]).
    Role, "role" {
        Organizer = "organizer", "운영", "organizer";
        Facilitator = "facilitator", "좌장", "chair";
        Scribe = "scribe", "기록", "scribe";
        Presenter = "presenter", "발표자", "presenter";
        Evaluator = "evaluator", "평가자", "evaluator";
        Activist = "activist", "활동가", "activist";
        Official = "official", "공무원", "official";
        DepartmentReviewer = "department_reviewer", "부서 검토자", "department reviewer";
        Observer = "observer", "방청", "observer";
        Importer = "importer", "가져오기", "import";
    }
}

vocabulary! {
    /// A session's lifecycle (what each phase allows: [`crate::policy`]).
    Phase, "phase" {
        Draft = "draft", "준비", "draft";
        Scheduled = "scheduled", "예정", "scheduled";
        Live = "live", "진행 중", "live";
        Closed = "closed", "종료", "closed";
        Reporting = "reporting", "보고서 작성", "reporting";
        Published = "published", "공개", "published";
    }
}

from_str!(
    AnnotationKind,
    TriageStatus,
    EvaluationStatus,
    Stance,
    FindingType,
    Priority,
    ParticipantKind,
    Attribution,
    Section
);

/// Every vocabulary with its words, as `web/src/vocab.json` holds it: `{ "AnnotationKind":
/// [["comment", "의견", "comment"], …], … }`.
pub fn json() -> serde_json::Value {
    fn one<T: Copy>(all: &[T], f: impl Fn(T) -> [&'static str; 3]) -> serde_json::Value {
        all.iter()
            .map(|v| f(*v).to_vec())
            .collect::<Vec<_>>()
            .into()
    }
    macro_rules! all {
        ($($name:ident),+) => {{
            let mut m = serde_json::Map::new();
            $(m.insert(stringify!($name).into(), one($name::ALL, |v| [v.as_str(), v.ko(), v.en()]));)+
            serde_json::Value::Object(m)
        }};
    }
    all!(
        AnnotationKind,
        TriageStatus,
        EvaluationStatus,
        Stance,
        FindingType,
        Priority,
        ParticipantKind,
        Attribution,
        Section,
        Role,
        Phase
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_itself_and_others_are_named_unknown() {
        for k in AnnotationKind::ALL {
            assert_eq!(k.as_str().parse::<AnnotationKind>(), Ok(*k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        for s in Stance::ALL {
            assert_eq!(Stance::parse(s.as_str()), Some(*s));
        }
        let e = "partly".parse::<Stance>().expect_err("not a stance");
        assert_eq!(
            e.to_string(),
            "unknown stance `partly` (one of accepted, partially_accepted, not_accepted, long_term_review)"
        );
        assert_eq!(Priority::High.word(Lang::Ko), "상");
        assert_eq!(Role::Facilitator.word(Lang::En), "chair");
    }

    #[test]
    fn the_json_lists_every_vocabulary_in_order() {
        let v = json();
        assert_eq!(
            v["Phase"][2],
            serde_json::json!(["live", "진행 중", "live"])
        );
        assert_eq!(
            v["AnnotationKind"].as_array().map(Vec::len),
            Some(AnnotationKind::ALL.len())
        );
    }
}
