//! Anchoring an annotation to text (docs/bundle-format.md, "An annotation"): a W3C-style quote (`exact`, `prefix`,
//! `suffix`) and position (`start`, `end`, end exclusive), both in **Unicode code points**, and
//! in the live system an Automerge cursor pair.
//!
//! Resolution, most robust first: the cursors (if they still point at a range whose text is
//! the quote), then the position (if the text there is still the quote), then a search for the
//! quote that uses prefix and suffix to choose between repeats; otherwise the anchor is
//! *orphaned* — reported, never dropped.

use automerge::{ChangeHash, Cursor, ObjId, ReadDoc};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// `exact` with some context either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub exact: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

/// Code point offsets, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub start: usize,
    pub end: usize,
}

/// How an anchor was found, or that it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Cursor(Position),
    Position(Position),
    Quote(Position),
    Orphaned,
}

impl Resolution {
    pub fn range(&self) -> Option<Position> {
        match self {
            Resolution::Cursor(p) | Resolution::Position(p) | Resolution::Quote(p) => Some(*p),
            Resolution::Orphaned => None,
        }
    }
}

/// Text as stored: NFC (decomposed jamo from some tools would never match a quote otherwise).
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Every string of a document read as JSON, in NFC: what a client typed decomposed (some
/// keyboards and tools send jamo) reads, exports and prints as the syllables it is. Keys too.
pub fn nfc_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if !unicode_normalization::is_nfc(s) => *s = nfc(s),
        Value::Array(a) => a.iter_mut().for_each(nfc_json),
        Value::Object(m) => {
            if m.keys().any(|k| !unicode_normalization::is_nfc(k)) {
                let old = std::mem::take(m);
                m.extend(old.into_iter().map(|(k, v)| (nfc(&k), v)));
            }
            m.values_mut().for_each(nfc_json);
        }
        _ => {}
    }
}

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn slice(text: &[char], p: Position) -> Option<String> {
    (p.start <= p.end && p.end <= text.len()).then(|| text[p.start..p.end].iter().collect())
}

/// Finds `quote` in `text` without cursors: at `hint` if the text there is the quote, else the
/// occurrence whose surroundings best match prefix and suffix (ties: nearest to `hint`).
pub fn locate(text: &str, quote: &Quote, hint: Option<Position>) -> Resolution {
    let text = chars(&nfc(text));
    let exact = chars(&nfc(&quote.exact));
    if exact.is_empty() {
        return Resolution::Orphaned;
    }
    if let Some(h) = hint {
        if slice(&text, h).is_some_and(|s| chars(&s) == exact) {
            return Resolution::Position(h);
        }
    }
    let prefix = chars(&nfc(&quote.prefix));
    let suffix = chars(&nfc(&quote.suffix));
    let mut best: Option<(usize, usize, usize)> = None; // (score, distance, start)
    if text.len() < exact.len() {
        return Resolution::Orphaned;
    }
    for start in 0..=text.len() - exact.len() {
        if text[start..start + exact.len()] != exact[..] {
            continue;
        }
        // How many characters of the prefix (from its end) and suffix (from its start) match.
        let pre = prefix
            .iter()
            .rev()
            .zip(text[..start].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let end = start + exact.len();
        let suf = suffix
            .iter()
            .zip(text[end..].iter())
            .take_while(|(a, b)| a == b)
            .count();
        let score = pre + suf;
        let distance = hint.map(|h| h.start.abs_diff(start)).unwrap_or(0);
        let better = match best {
            None => true,
            Some((s, d, _)) => score > s || (score == s && distance < d),
        };
        if better {
            best = Some((score, distance, start));
        }
    }
    match best {
        Some((_, _, start)) => Resolution::Quote(Position {
            start,
            end: start + exact.len(),
        }),
        None => Resolution::Orphaned,
    }
}

/// Resolves an anchor in a live document: cursors first (at `heads` if given, for replay),
/// then [`locate`] on the text.
pub fn resolve(
    doc: &impl ReadDoc,
    text_obj: &ObjId,
    cursors: Option<(&Cursor, &Cursor)>,
    quote: &Quote,
    position: Option<Position>,
    heads: Option<&[ChangeHash]>,
) -> Resolution {
    let text = match heads {
        Some(h) => doc.text_at(text_obj, h),
        None => doc.text(text_obj),
    }
    .unwrap_or_default();
    if let Some((s, e)) = cursors {
        let pos = |c: &Cursor| doc.get_cursor_position(text_obj, c, heads);
        if let (Ok(start), Ok(end)) = (pos(s), pos(e)) {
            let p = Position { start, end };
            let exact = chars(&nfc(&quote.exact));
            if slice(&chars(&text), p).is_some_and(|s| chars(&s) == exact) {
                return Resolution::Cursor(p);
            }
        }
    }
    locate(&text, quote, position)
}

/// Builds the quote of `text[p]` with up to `context` code points either side.
pub fn quote_of(text: &str, p: Position, context: usize) -> Option<Quote> {
    let t = chars(text);
    let exact = slice(&t, p)?;
    Some(Quote {
        exact,
        prefix: t[p.start.saturating_sub(context)..p.start].iter().collect(),
        suffix: t[p.end..(p.end + context).min(t.len())].iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_typed_decomposed_reads_composed() {
        let decomposed: String = "질의 응답".nfd().collect();
        assert_ne!(decomposed, "질의 응답");
        let mut v = serde_json::json!({ decomposed.clone(): [decomposed.clone(), 3], "n": { "x": decomposed } });
        nfc_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({ "질의 응답": ["질의 응답", 3], "n": { "x": "질의 응답" } })
        );
    }
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn q(exact: &str, prefix: &str, suffix: &str) -> Quote {
        Quote {
            exact: exact.into(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn positions_count_code_points_after_an_emoji() {
        let text = "좋아요 😀 돌봄 공백이 크다";
        // 😀 is one code point (two UTF-16 units, four UTF-8 bytes).
        let r = locate(
            text,
            &q("돌봄 공백", "😀 ", "이"),
            Some(Position { start: 6, end: 11 }),
        );
        assert_eq!(r, Resolution::Position(Position { start: 6, end: 11 }));
        // A wrong hint (UTF-16 counting would say 7) still finds it by quote.
        let r = locate(
            text,
            &q("돌봄 공백", "😀 ", "이"),
            Some(Position { start: 7, end: 12 }),
        );
        assert_eq!(r, Resolution::Quote(Position { start: 6, end: 11 }));
    }

    #[test]
    fn prefix_and_suffix_choose_between_repeats() {
        let text = "예산 부족. 인력 부족. 예산 부족이 반복된다.";
        let second = locate(text, &q("예산 부족", "인력 부족. ", "이 반복"), None);
        assert_eq!(second, Resolution::Quote(Position { start: 14, end: 19 }));
        let first = locate(text, &q("예산 부족", "", ". 인력"), None);
        assert_eq!(first, Resolution::Quote(Position { start: 0, end: 5 }));
        assert_eq!(
            locate(text, &q("없는 말", "", ""), None),
            Resolution::Orphaned
        );
    }

    #[test]
    fn decomposed_jamo_are_normalised_before_matching() {
        let composed = "동 복지협의체를 구성하였다";
        let decomposed: String = composed.nfd().collect();
        assert_ne!(decomposed, composed);
        assert!(decomposed.chars().count() > composed.chars().count());
        let r = locate(
            &decomposed,
            &q(&"복지협의체".nfd().collect::<String>(), "", ""),
            None,
        );
        assert_eq!(r, Resolution::Quote(Position { start: 2, end: 7 }));
        assert_eq!(nfc(&decomposed), composed);
    }

    #[test]
    fn cursors_follow_edits_and_fall_back_to_the_quote() {
        let mut d = AutoCommit::new();
        let t = d.put_object(ROOT, "text", ObjType::Text).expect("text");
        d.splice_text(&t, 0, 0, "성과 지표가 순위 중심이다")
            .expect("splice");
        let quote = q("순위 중심", "지표가 ", "이다");
        let start = d.get_cursor(&t, 7, None).expect("cursor");
        let end = d.get_cursor(&t, 12, None).expect("cursor");
        let before = d.get_heads();
        // Text inserted before and inside the range moves the cursors with it.
        d.splice_text(&t, 0, 0, "여전히 ").expect("before");
        let r = resolve(&d, &t, Some((&start, &end)), &quote, None, None);
        assert_eq!(r, Resolution::Cursor(Position { start: 11, end: 16 }));
        d.splice_text(&t, 13, 0, "·").expect("inside");
        let r = resolve(&d, &t, Some((&start, &end)), &quote, None, None);
        assert_eq!(r, Resolution::Orphaned, "the quote no longer occurs");
        // At the heads of its creation it resolves where it was made.
        let r = resolve(&d, &t, Some((&start, &end)), &quote, None, Some(&before));
        assert_eq!(r, Resolution::Cursor(Position { start: 7, end: 12 }));
        assert_eq!(
            quote_of("가나다라마", Position { start: 2, end: 3 }, 1),
            Some(q("다", "나", "라"))
        );
    }
}
