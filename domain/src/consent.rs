//! How a participant may be shown: the one rule that the report, the web
//! client's people lists and presence all follow. Each participant chose it; nothing shows more.

use crate::bundle::Attribution;

/// What of a participant may be shown beside their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consented<'a> {
    /// Their name and their organisation.
    NameAndAffiliation { name: &'a str, affiliation: &'a str },
    /// Their name (they gave no organisation).
    Name(&'a str),
    /// Their organisation only.
    Affiliation(&'a str),
    /// Nothing but their role.
    RoleOnly,
}

/// What `attribution` lets be shown of someone called `name` of `affiliation`. An empty
/// affiliation is never shown; "affiliation only" without one falls back to the role.
pub fn consented<'a>(
    attribution: Attribution,
    name: &'a str,
    affiliation: &'a str,
) -> Consented<'a> {
    match attribution {
        Attribution::NameAndAffiliation if affiliation.is_empty() => Consented::Name(name),
        Attribution::NameAndAffiliation => Consented::NameAndAffiliation { name, affiliation },
        Attribution::AffiliationOnly if !affiliation.is_empty() => {
            Consented::Affiliation(affiliation)
        }
        _ => Consented::RoleOnly,
    }
}

/// An attribution as stored (`name_and_affiliation`, …); anything else shows the role only.
pub fn parse_attribution(s: &str) -> Attribution {
    match s {
        "name_and_affiliation" => Attribution::NameAndAffiliation,
        "affiliation_only" => Attribution::AffiliationOnly,
        _ => Attribution::RoleOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_shows_more_than_was_consented() {
        use Attribution::*;
        assert_eq!(
            consented(NameAndAffiliation, "김민지", "주민자치회"),
            Consented::NameAndAffiliation {
                name: "김민지",
                affiliation: "주민자치회"
            }
        );
        assert_eq!(
            consented(NameAndAffiliation, "김민지", ""),
            Consented::Name("김민지")
        );
        assert_eq!(
            consented(AffiliationOnly, "김민지", "주민자치회"),
            Consented::Affiliation("주민자치회")
        );
        assert_eq!(
            consented(AffiliationOnly, "김민지", ""),
            Consented::RoleOnly
        );
        assert_eq!(
            consented(RoleOnly, "김민지", "주민자치회"),
            Consented::RoleOnly
        );
        assert_eq!(parse_attribution("affiliation_only"), AffiliationOnly);
        assert_eq!(
            parse_attribution("name_and_affiliation"),
            NameAndAffiliation
        );
        assert_eq!(
            parse_attribution("everything"),
            RoleOnly,
            "an unknown word shows the role only"
        );
    }
}
