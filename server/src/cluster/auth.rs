//! Every message a node puts on NATS — a log entry, an ephemeral message, a presence list —
//! carries an HMAC-SHA256 of its subject, its node and its payload under the cluster's key
//! (`--cluster-key`, which every node holds and nothing else needs). A node applies and
//! relays only what verifies: whoever can publish on the NATS servers without the key (a
//! leaked NATS password, a misconfigured permission) cannot write one entry any node applies.
//! NATS users keep everyone else from reading (SECURITY.md, "The cluster").

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the HMAC (hex).
pub const MAC_HEADER: &str = "Toron-Mac";

/// The cluster's shared secret.
#[derive(Clone)]
pub struct ClusterKey(Arc<[u8]>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

impl ClusterKey {
    /// The key from its text (at least 32 characters: `openssl rand -hex 32` gives 64).
    pub fn new(secret: &str) -> Result<Self, String> {
        let s = secret.trim();
        if s.chars().count() < 32 {
            return Err(
                "the cluster key must be at least 32 characters (make one with `openssl rand -hex 32`; every node is given the same)"
                    .into(),
            );
        }
        Ok(Self(s.as_bytes().into()))
    }

    fn mac(&self, subject: &str, node: &str, payload: &[u8]) -> Hmac<Sha256> {
        // (`new_from_slice` takes a key of any length.)
        let mut m = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        m.update(subject.as_bytes());
        m.update(&[0]);
        m.update(node.as_bytes());
        m.update(&[0]);
        m.update(payload);
        m
    }

    /// The header value for a message.
    pub fn sign(&self, subject: &str, node: &str, payload: &[u8]) -> String {
        self.mac(subject, node, payload)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `mac` (the header's value) is this key's for the message; compared in constant
    /// time.
    pub fn verify(&self, subject: &str, node: &str, payload: &[u8], mac: Option<&str>) -> bool {
        let Some(bytes) = mac.and_then(crate::registry::unhex) else {
            return false;
        };
        self.mac(subject, node, payload)
            .verify_slice(&bytes)
            .is_ok()
    }
}

/// The headers of a message `node` publishes on `subject`: its node and its HMAC.
pub fn signed_headers(
    key: &ClusterKey,
    subject: &str,
    node: &str,
    payload: &[u8],
) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(super::NODE_HEADER, node);
    headers.insert(MAC_HEADER, key.sign(subject, node, payload).as_str());
    headers
}

/// The node that published `msg`, if its HMAC is the cluster key's; `None` for anything else
/// (unsigned, signed with another key, altered).
pub fn verified_origin(key: &ClusterKey, msg: &async_nats::Message) -> Option<String> {
    let headers = msg.headers.as_ref()?;
    let node = headers.get(super::NODE_HEADER)?.as_str();
    let mac = headers.get(MAC_HEADER).map(|v| v.as_str());
    key.verify(msg.subject.as_str(), node, &msg.payload, mac)
        .then(|| node.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_signs_and_nothing_else_verifies() {
        let key = ClusterKey::new(&"k".repeat(32)).expect("key");
        let other = ClusterKey::new(&"x".repeat(32)).expect("key");
        let mac = key.sign("toron.log.event", "n1", b"entry");
        assert!(key.verify("toron.log.event", "n1", b"entry", Some(&mac)));
        assert!(!other.verify("toron.log.event", "n1", b"entry", Some(&mac)));
        assert!(
            !key.verify("toron.log.event", "n2", b"entry", Some(&mac)),
            "the node is signed"
        );
        assert!(
            !key.verify("toron.log.doc.x", "n1", b"entry", Some(&mac)),
            "the subject is signed"
        );
        assert!(!key.verify("toron.log.event", "n1", b"entrY", Some(&mac)));
        assert!(!key.verify("toron.log.event", "n1", b"entry", None));
        assert!(!key.verify("toron.log.event", "n1", b"entry", Some("zz")));
        assert!(ClusterKey::new("short").is_err());
    }
}
