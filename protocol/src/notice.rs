//! What the server tells one client about its own changes, beside the sync protocol: a
//! refusal, as an `ephemeral` message's payload on the refused document.
//!
//! The protocol's `error` message is only logged by the official JavaScript client, so a web
//! client whose change was refused kept showing "saving…" and never said why. An ephemeral
//! message reaches the application instead (automerge-repo's `ephemeral-message` event on the
//! document's handle); clients that do not know it ignore it. The payload is a CBOR map, as
//! the JavaScript client decodes every ephemeral payload:
//! `{ "toron": "refused", "kind": K, "reason": "…" }`, `kind` one of [`RefusalKind`]'s names.

use minicbor::Encoder;

pub use crate::refusal::RefusalKind;

/// A notice's CBOR map of three entries, begun with `"toron": what`; the caller writes the
/// other two. (Writing to a `Vec` cannot fail, so the encoder's results are let go.)
fn notice(what: &str) -> Encoder<Vec<u8>> {
    let mut e = Encoder::new(Vec::new());
    let _ = e
        .map(3)
        .and_then(|e| e.str("toron"))
        .and_then(|e| e.str(what));
    e
}

/// The ephemeral payload that tells a client its change to this document was refused.
pub fn refusal(kind: RefusalKind, reason: &str) -> Vec<u8> {
    let mut e = notice("refused");
    let _ = e
        .str("kind")
        .and_then(|e| e.str(kind.as_str()))
        .and_then(|e| e.str("reason"))
        .and_then(|e| e.str(reason));
    e.into_writer()
}

/// Who is in a session now, pushed to everyone there when it changes (the hall's "here"
/// list, without polling): `{ "toron": "presence", "session": S, "here": [participant, …] }`.
/// Participant keys only: each client shows them as the people list it was given allows.
pub fn presence(session: &str, here: &[String]) -> Vec<u8> {
    let mut e = notice("presence");
    let _ = e
        .str("session")
        .and_then(|e| e.str(session))
        .and_then(|e| e.str("here"))
        .and_then(|e| e.array(here.len() as u64));
    for p in here {
        let _ = e.str(p);
    }
    e.into_writer()
}

/// Where a session stands, pushed to everyone there when its phase or agenda item changes:
/// `{ "toron": "session", "session": S, "phase": P, "item": K or null }`. Each page then asks
/// again what it may do (what the phase allows), without a reload.
pub fn session(session: &str, phase: &str, item: Option<&str>) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    let _ = e
        .map(4)
        .and_then(|e| e.str("toron"))
        .and_then(|e| e.str("session"))
        .and_then(|e| e.str("session"))
        .and_then(|e| e.str(session))
        .and_then(|e| e.str("phase"))
        .and_then(|e| e.str(phase))
        .and_then(|e| e.str("item"));
    let _ = match item {
        Some(i) => e.str(i),
        None => e.null(),
    };
    e.into_writer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_wording_has_its_kind() {
        for (reason, kind) in [
            ("you may read this document but not change it", RefusalKind::ReadOnly),
            ("an earlier change of this copy was refused, and these follow it; reload the document to go on", RefusalKind::Follows),
            ("rate limit: more than 20 changes per second", RefusalKind::Rate),
            ("the Automerge actor id ab12 belongs to another participant", RefusalKind::Actor),
            ("document size: these changes would make the document 9 bytes", RefusalKind::Size),
            ("too large a change: these changes hold 9 operations", RefusalKind::Size),
            ("`annotations/g/departments/*`: department `복지정책과` is not one of series S's departments", RefusalKind::Reference),
            ("`items/a/finding`: no finding `F-9` in the report of series S", RefusalKind::Reference),
            ("`annotations/a/kind` cannot be `poem` (one of comment, …)", RefusalKind::Value),
        ] {
            assert_eq!(RefusalKind::of(reason), kind, "{reason}");
        }
    }

    #[test]
    fn the_payload_is_a_cbor_map() {
        let bytes = refusal(
            RefusalKind::ReadOnly,
            "you may read this document but not change it",
        );
        let mut d = minicbor::Decoder::new(&bytes);
        assert_eq!(d.map().expect("map"), Some(3));
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(d.str().expect("text").to_string());
        }
        assert_eq!(
            got,
            [
                "toron",
                "refused",
                "kind",
                "read_only",
                "reason",
                "you may read this document but not change it"
            ]
        );
    }
}
