//! Identifiers of the automerge-repo protocol: document ids, `automerge:` URLs and peer ids.
//!
//! A [`DocumentId`] is 16 bytes; on the wire and in URLs it is their base58check encoding
//! (Bitcoin alphabet, 4-byte double-SHA-256 checksum, no version byte). We require exactly 16
//! bytes, as samod does, but not the UUID version bits: foreign id factories need not set them.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not base58check: {0}")]
    Base58(String),
    #[error("a document id has 16 bytes, this one has {0}")]
    Length(usize),
    #[error("an automerge URL starts with `automerge:`")]
    Scheme,
    #[error("an automerge URL has at most one `#`")]
    TooManyHashes,
    #[error("a head in an automerge URL is the base58check of 32 bytes")]
    Head,
    #[error("a peer id is a non-empty string")]
    EmptyPeerId,
    #[error("a peer id is at most {max} bytes, this one has {0}", max = PeerId::MAX_WIRE_LEN)]
    PeerIdTooLong(usize),
    #[error("a peer id has no control characters")]
    PeerIdControl,
}

/// The 16 bytes that name an Automerge document.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A fresh random (UUID v4) document id, as JavaScript's `repo.create()` makes them.
    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Accepts a 16-byte slice (samod also sends ids as byte strings).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| IdError::Length(bytes.len()))?;
        Ok(Self(arr))
    }

    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl {
            document_id: *self,
            heads: None,
        }
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.0).with_check().into_string())
    }
}

/// Stored and shown as its text (base58check), as automerge-repo names it.
impl serde::Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let bytes = decode_check(s)?;
        Self::from_slice(&bytes)
    }
}

fn decode_check(s: &str) -> Result<Vec<u8>, IdError> {
    // A base58 string of n characters decodes to at most n bytes: refuse absurd lengths early.
    if s.len() > 128 {
        return Err(IdError::Base58("too long".into()));
    }
    bs58::decode(s)
        .with_check(None)
        .into_vec()
        .map_err(|e| IdError::Base58(e.to_string()))
}

/// `automerge:<DocumentId>[#head|head…]` — how people and programs hand a document around.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AutomergeUrl {
    pub document_id: DocumentId,
    /// Pinned heads (32-byte change hashes), if the URL names a version.
    pub heads: Option<Vec<[u8; 32]>>,
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "automerge:{}", self.document_id)?;
        if let Some(heads) = &self.heads {
            f.write_str("#")?;
            for (i, h) in heads.iter().enumerate() {
                if i > 0 {
                    f.write_str("|")?;
                }
                f.write_str(&bs58::encode(h).with_check().into_string())?;
            }
        }
        Ok(())
    }
}

impl FromStr for AutomergeUrl {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let rest = s.strip_prefix("automerge:").ok_or(IdError::Scheme)?;
        let mut parts = rest.split('#');
        let id_part = parts.next().unwrap_or_default();
        let heads_part = parts.next();
        if parts.next().is_some() {
            return Err(IdError::TooManyHashes);
        }
        // 2.6 clients and samod allow a path after the id; we only need the id.
        let id_part = id_part.split('/').next().unwrap_or_default();
        let document_id = id_part.parse()?;
        let heads = match heads_part {
            None => None,
            Some("") => Some(Vec::new()),
            Some(hs) => Some(
                hs.split('|')
                    .map(|h| {
                        let bytes = decode_check(h).map_err(|_| IdError::Head)?;
                        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| IdError::Head)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self { document_id, heads })
    }
}

/// A peer's self-chosen name. Not authenticated: the server binds every message of a
/// connection to the id that connection joined with.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) String);

impl PeerId {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(IdError::EmptyPeerId);
        }
        Ok(Self(s))
    }

    /// The longest peer id a peer may send. The official clients' ids are UUIDs or short
    /// random strings; a peer id is echoed in every reply and in logs, so it is bounded.
    pub const MAX_WIRE_LEN: usize = 256;

    /// A peer id as it arrives on the wire: besides being non-empty, bounded in length and
    /// free of control characters (it ends up in logs and in replies to the peer). Records
    /// keep reading with [`PeerId::new`], so that nothing already logged becomes unreadable.
    pub fn from_wire(s: &str) -> Result<Self, IdError> {
        if s.len() > Self::MAX_WIRE_LEN {
            return Err(IdError::PeerIdTooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(IdError::PeerIdControl);
        }
        Self::new(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Debug` as the type's name around its `Display` form (`DocumentId(2Vx…)`): the ids show in
/// logs as people paste them.
macro_rules! debug_as_display {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($t))
            }
        }
    )*};
}
debug_as_display!(DocumentId, AutomergeUrl, PeerId);

/// The server's name for one accepted WebSocket. Sync states belong to a connection, never to
/// a peer id: a peer that reconnects starts afresh (reusing a state across sockets loops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn document_id_vectors_from_the_js_library() {
        for (payload, text) in [
            (
                "000102030405060708090a0b0c0d0e0f",
                "1Bhh3pU9gLXZiNDL6PEa1Gs9fh",
            ),
            (
                "6ba7b8109dad41d180b400c04fd430c8",
                "2VzPLXwa4R41PB944FYJS46nvFdj",
            ),
            (
                "f1c29c8474c84adeb800be47627d33bf",
                "4NMNnkMhL8jXrdJ9jamS58PAVdXu",
            ),
        ] {
            let id = DocumentId::from_bytes(hex(payload));
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<DocumentId>(), Ok(id));
        }
    }

    #[test]
    fn a_wrong_checksum_or_length_is_refused() {
        assert!(matches!(
            "4NMNnkMhL8jXrdJ9jamS58PAVdXv".parse::<DocumentId>(),
            Err(IdError::Base58(_))
        ));
        // base58check of 4 bytes: valid checksum, wrong length.
        let short = bs58::encode([1u8, 2, 3, 4]).with_check().into_string();
        assert_eq!(short.parse::<DocumentId>(), Err(IdError::Length(4)));
        assert!("".parse::<DocumentId>().is_err());
        assert!("0OIl".parse::<DocumentId>().is_err());
    }

    #[test]
    fn urls_with_and_without_heads() {
        let url: AutomergeUrl = "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"
            .parse()
            .expect("url");
        assert_eq!(url.heads, None);
        assert_eq!(url.to_string(), "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu");

        let with_head = "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu#16qJFWMMHFy3xDdLmvUeyc2S6FrWRhJP51HsvDYdz9d1FsYG";
        let url: AutomergeUrl = with_head.parse().expect("url with head");
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            url.heads.as_deref(),
            Some(&[<[u8; 32]>::try_from(expected.as_slice()).expect("32")][..])
        );
        assert_eq!(url.to_string(), with_head);

        assert_eq!("http://x".parse::<AutomergeUrl>(), Err(IdError::Scheme));
        assert_eq!(
            "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu#a#b".parse::<AutomergeUrl>(),
            Err(IdError::TooManyHashes)
        );
        assert_eq!(
            "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu#zzz".parse::<AutomergeUrl>(),
            Err(IdError::Head)
        );
    }

    #[test]
    fn random_ids_round_trip() {
        for _ in 0..100 {
            let id = DocumentId::random();
            assert_eq!(id.to_string().parse::<DocumentId>(), Ok(id));
        }
    }
}
