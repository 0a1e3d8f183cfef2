//! Event-log records: what the server appends — accepted changes, refused changes, and
//! changes to the server's metadata (participants, roles, tokens, sessions, registry).
//!
//! Records are versioned CBOR maps with short text keys (`k` says the kind). A reader skips
//! keys it does not know, so fields can be added without a migration; a record whose `v` is
//! newer than [`RECORD_VERSION`] is refused rather than misread.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::ids::{ConnId, DocumentId, PeerId};

/// The record format this build writes.
pub const RECORD_VERSION: u64 = 1;

/// Who did something, as far as the server knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attribution {
    /// The participant's key (`None` in `--open` mode).
    pub participant: Option<String>,
    /// The role that allowed it.
    pub role: Option<String>,
}

/// A change accepted from a peer, before the log has numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub document_id: DocumentId,
    /// Server receive time, UTC milliseconds.
    pub received_at_ms: u64,
    pub conn: ConnId,
    pub peer: PeerId,
    pub by: Attribution,
    /// The Automerge actor id that made the change.
    pub actor: Vec<u8>,
    pub hash: [u8; 32],
    /// The change as Automerge encodes it; `Change::from_bytes` reads it back.
    pub bytes: Vec<u8>,
    /// The document's heads once this change is applied (the log is in causal order, so
    /// these are the heads of the log's prefix ending here). Lets any point of a document be
    /// read from a loaded copy without replaying the log. Empty in records written before
    /// this field existed; readers then derive the heads from the changes' dependencies.
    pub heads_after: Vec<[u8; 32]>,
}

/// A change as the log holds it: numbered globally and within its document, gap-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub global_seq: u64,
    pub doc_seq: u64,
    pub change: NewChange,
}

/// Changes the server refused: none of them was applied, stored or relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub at_ms: u64,
    pub document_id: DocumentId,
    pub conn: ConnId,
    pub peer: PeerId,
    pub by: Attribution,
    pub hashes: Vec<[u8; 32]>,
    pub reason: String,
}

/// A change to the server's metadata, described as JSON by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    pub at_ms: u64,
    /// The participant who made it (`"server"` for the bootstrap).
    pub by: String,
    pub action: String,
}

/// A participant began or ended taking part in a session: the first of their connections
/// touched one of its documents, or the last one that did closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub at_ms: u64,
    pub participant: String,
    pub role: Option<String>,
    pub session: String,
    pub joined: bool,
}

/// Anything the log holds, with its global sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Change(ChangeRecord),
    Rejection {
        global_seq: u64,
        rejection: Rejection,
    },
    Admin {
        global_seq: u64,
        action: AdminAction,
    },
    Presence {
        global_seq: u64,
        presence: Presence,
    },
}

impl Event {
    /// When the server logged it (UTC milliseconds).
    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Change(c) => c.change.received_at_ms,
            Event::Rejection { rejection, .. } => rejection.at_ms,
            Event::Admin { action, .. } => action.at_ms,
            Event::Presence { presence, .. } => presence.at_ms,
        }
    }

    pub fn global_seq(&self) -> u64 {
        match self {
            Event::Change(c) => c.global_seq,
            Event::Rejection { global_seq, .. }
            | Event::Admin { global_seq, .. }
            | Event::Presence { global_seq, .. } => *global_seq,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("record version {0} is newer than this build understands ({RECORD_VERSION})")]
    TooNew(u64),
    #[error("record lacks `{0}`")]
    Missing(&'static str),
    #[error("unknown record kind `{0}`")]
    UnknownKind(String),
}

impl From<minicbor::decode::Error> for RecordError {
    fn from(e: minicbor::decode::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn attribution(e: &mut Enc, by: &Attribution) -> EncResult {
    if let Some(p) = &by.participant {
        e.str("who")?.str(p)?;
    }
    if let Some(r) = &by.role {
        e.str("role")?.str(r)?;
    }
    Ok(())
}

fn attribution_len(by: &Attribution) -> u64 {
    u64::from(by.participant.is_some()) + u64::from(by.role.is_some())
}

fn finish(e: Enc, r: EncResult) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    debug_assert!(r.is_ok(), "encoding into a Vec failed: {r:?}");
    e.into_writer()
}

impl ChangeRecord {
    pub fn encode(&self) -> Vec<u8> {
        let c = &self.change;
        let mut e = Encoder::new(Vec::with_capacity(c.bytes.len() + 200));
        let r = (|| {
            let heads = u64::from(!c.heads_after.is_empty());
            e.map(11 + heads + attribution_len(&c.by))?;
            e.str("v")?.u64(RECORD_VERSION)?;
            e.str("k")?.str("change")?;
            e.str("g")?.u64(self.global_seq)?;
            e.str("s")?.u64(self.doc_seq)?;
            e.str("doc")?.bytes(c.document_id.as_bytes())?;
            e.str("t")?.u64(c.received_at_ms)?;
            e.str("conn")?.u64(c.conn.0)?;
            e.str("peer")?.str(c.peer.as_str())?;
            attribution(&mut e, &c.by)?;
            e.str("actor")?.bytes(&c.actor)?;
            e.str("hash")?.bytes(&c.hash)?;
            e.str("bytes")?.bytes(&c.bytes)?;
            if !c.heads_after.is_empty() {
                e.str("ha")?.array(c.heads_after.len() as u64)?;
                for h in &c.heads_after {
                    e.bytes(h)?;
                }
            }
            Ok(())
        })();
        finish(e, r)
    }

    /// Decodes a record that must be a change.
    pub fn decode(input: &[u8]) -> Result<Self, RecordError> {
        match Event::decode(input)? {
            Event::Change(c) => Ok(c),
            Event::Rejection { .. } => Err(RecordError::UnknownKind(
                "rejection where a change was expected".into(),
            )),
            Event::Admin { .. } | Event::Presence { .. } => Err(RecordError::UnknownKind(
                "metadata event where a change was expected".into(),
            )),
        }
    }
}

impl Rejection {
    pub fn encode(&self, global_seq: u64) -> Vec<u8> {
        let mut e = Encoder::new(Vec::with_capacity(200 + 34 * self.hashes.len()));
        let r = (|| {
            e.map(9 + attribution_len(&self.by))?;
            e.str("v")?.u64(RECORD_VERSION)?;
            e.str("k")?.str("rejection")?;
            e.str("g")?.u64(global_seq)?;
            e.str("doc")?.bytes(self.document_id.as_bytes())?;
            e.str("t")?.u64(self.at_ms)?;
            e.str("conn")?.u64(self.conn.0)?;
            e.str("peer")?.str(self.peer.as_str())?;
            attribution(&mut e, &self.by)?;
            e.str("hashes")?.array(self.hashes.len() as u64)?;
            for h in &self.hashes {
                e.bytes(h)?;
            }
            e.str("why")?.str(&self.reason)?;
            Ok(())
        })();
        finish(e, r)
    }
}

impl AdminAction {
    pub fn encode(&self, global_seq: u64) -> Vec<u8> {
        let mut e = Encoder::new(Vec::with_capacity(64 + self.action.len()));
        let r = (|| {
            e.map(6)?;
            e.str("v")?.u64(RECORD_VERSION)?;
            e.str("k")?.str("admin")?;
            e.str("g")?.u64(global_seq)?;
            e.str("t")?.u64(self.at_ms)?;
            e.str("who")?.str(&self.by)?;
            e.str("action")?.str(&self.action)?;
            Ok(())
        })();
        finish(e, r)
    }
}

impl Presence {
    pub fn encode(&self, global_seq: u64) -> Vec<u8> {
        let mut e = Encoder::new(Vec::with_capacity(96));
        let r = (|| {
            e.map(7 + u64::from(self.role.is_some()))?;
            e.str("v")?.u64(RECORD_VERSION)?;
            e.str("k")?.str("presence")?;
            e.str("g")?.u64(global_seq)?;
            e.str("t")?.u64(self.at_ms)?;
            e.str("who")?.str(&self.participant)?;
            if let Some(r) = &self.role {
                e.str("role")?.str(r)?;
            }
            e.str("session")?.str(&self.session)?;
            e.str("joined")?.bool(self.joined)?;
            Ok(())
        })();
        finish(e, r)
    }
}

#[derive(Default)]
struct Fields {
    v: Option<u64>,
    k: Option<String>,
    g: Option<u64>,
    s: Option<u64>,
    doc: Option<DocumentId>,
    t: Option<u64>,
    conn: Option<ConnId>,
    peer: Option<PeerId>,
    who: Option<String>,
    role: Option<String>,
    actor: Option<Vec<u8>>,
    hash: Option<[u8; 32]>,
    bytes: Option<Vec<u8>>,
    hashes: Option<Vec<[u8; 32]>>,
    why: Option<String>,
    action: Option<String>,
    heads: Option<Vec<[u8; 32]>>,
    session: Option<String>,
    joined: Option<bool>,
}

fn hash_array(d: &mut Decoder<'_>) -> Result<Vec<[u8; 32]>, RecordError> {
    let n = d
        .array()?
        .ok_or_else(|| RecordError::Malformed("indefinite array".into()))?;
    let mut hs = Vec::new();
    for _ in 0..n {
        hs.push(hash32(d.bytes()?)?);
    }
    Ok(hs)
}

fn hash32(b: &[u8]) -> Result<[u8; 32], RecordError> {
    <[u8; 32]>::try_from(b).map_err(|_| RecordError::Malformed("hash is not 32 bytes".into()))
}

impl Fields {
    /// Reads a record's map; unknown keys are skipped (a newer server's fields).
    fn read(d: &mut Decoder<'_>) -> Result<Self, RecordError> {
        let n = d
            .map()?
            .ok_or_else(|| RecordError::Malformed("indefinite map".into()))?;
        let mut f = Fields::default();
        for _ in 0..n {
            match d.str()? {
                "v" => f.v = Some(d.u64()?),
                "k" => f.k = Some(d.str()?.to_string()),
                "g" => f.g = Some(d.u64()?),
                "s" => f.s = Some(d.u64()?),
                "doc" => {
                    f.doc = Some(
                        DocumentId::from_slice(d.bytes()?)
                            .map_err(|e| RecordError::Malformed(e.to_string()))?,
                    )
                }
                "t" => f.t = Some(d.u64()?),
                "conn" => f.conn = Some(ConnId(d.u64()?)),
                "peer" => {
                    f.peer = Some(
                        PeerId::new(d.str()?).map_err(|e| RecordError::Malformed(e.to_string()))?,
                    )
                }
                "who" => f.who = Some(d.str()?.to_string()),
                "role" => f.role = Some(d.str()?.to_string()),
                "actor" => f.actor = Some(d.bytes()?.to_vec()),
                "hash" => f.hash = Some(hash32(d.bytes()?)?),
                "bytes" => f.bytes = Some(d.bytes()?.to_vec()),
                "hashes" => f.hashes = Some(hash_array(d)?),
                "ha" => f.heads = Some(hash_array(d)?),
                "session" => f.session = Some(d.str()?.to_string()),
                "joined" => f.joined = Some(d.bool()?),
                "why" => f.why = Some(d.str()?.to_string()),
                "action" => f.action = Some(d.str()?.to_string()),
                _ => {
                    if d.datatype()? == Type::Break {
                        return Err(RecordError::Malformed("unexpected break".into()));
                    }
                    d.skip()?
                }
            }
        }
        Ok(f)
    }
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Event::Change(c) => c.encode(),
            Event::Rejection {
                global_seq,
                rejection,
            } => rejection.encode(*global_seq),
            Event::Admin { global_seq, action } => action.encode(*global_seq),
            Event::Presence {
                global_seq,
                presence,
            } => presence.encode(*global_seq),
        }
    }

    pub fn decode(input: &[u8]) -> Result<Self, RecordError> {
        let f = Fields::read(&mut Decoder::new(input))?;
        let v = f.v.ok_or(RecordError::Missing("v"))?;
        if v > RECORD_VERSION {
            return Err(RecordError::TooNew(v));
        }
        let g = f.g.ok_or(RecordError::Missing("g"))?;
        let by = Attribution {
            participant: f.who.clone(),
            role: f.role.clone(),
        };
        let k = f.k.ok_or(RecordError::Missing("k"))?;
        Ok(match k.as_str() {
            "change" => Event::Change(ChangeRecord {
                global_seq: g,
                doc_seq: f.s.ok_or(RecordError::Missing("s"))?,
                change: NewChange {
                    document_id: f.doc.ok_or(RecordError::Missing("doc"))?,
                    received_at_ms: f.t.ok_or(RecordError::Missing("t"))?,
                    conn: f.conn.ok_or(RecordError::Missing("conn"))?,
                    peer: f.peer.ok_or(RecordError::Missing("peer"))?,
                    by,
                    actor: f.actor.ok_or(RecordError::Missing("actor"))?,
                    hash: f.hash.ok_or(RecordError::Missing("hash"))?,
                    bytes: f.bytes.ok_or(RecordError::Missing("bytes"))?,
                    heads_after: f.heads.unwrap_or_default(),
                },
            }),
            "rejection" => Event::Rejection {
                global_seq: g,
                rejection: Rejection {
                    at_ms: f.t.ok_or(RecordError::Missing("t"))?,
                    document_id: f.doc.ok_or(RecordError::Missing("doc"))?,
                    conn: f.conn.ok_or(RecordError::Missing("conn"))?,
                    peer: f.peer.ok_or(RecordError::Missing("peer"))?,
                    by,
                    hashes: f.hashes.unwrap_or_default(),
                    reason: f.why.unwrap_or_default(),
                },
            },
            "admin" => Event::Admin {
                global_seq: g,
                action: AdminAction {
                    at_ms: f.t.ok_or(RecordError::Missing("t"))?,
                    by: f.who.ok_or(RecordError::Missing("who"))?,
                    action: f.action.ok_or(RecordError::Missing("action"))?,
                },
            },
            "presence" => Event::Presence {
                global_seq: g,
                presence: Presence {
                    at_ms: f.t.ok_or(RecordError::Missing("t"))?,
                    participant: f.who.ok_or(RecordError::Missing("who"))?,
                    role: f.role,
                    session: f.session.ok_or(RecordError::Missing("session"))?,
                    joined: f.joined.ok_or(RecordError::Missing("joined"))?,
                },
            },
            other => return Err(RecordError::UnknownKind(other.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ChangeRecord {
        ChangeRecord {
            global_seq: 7,
            doc_seq: 3,
            change: NewChange {
                document_id: DocumentId::random(),
                received_at_ms: 1_790_000_000_123,
                conn: ConnId(12),
                peer: PeerId::new("peer-x").expect("peer"),
                by: Attribution {
                    participant: Some("P-kim".into()),
                    role: Some("activist".into()),
                },
                actor: vec![1, 2, 3],
                hash: [9; 32],
                bytes: vec![0x85, 0x6f, 0x4a, 0x83],
                heads_after: vec![[9; 32], [4; 32]],
            },
        }
    }

    #[test]
    fn change_records_round_trip_and_refuse_the_future() {
        let r = change();
        let bytes = r.encode();
        assert_eq!(ChangeRecord::decode(&bytes), Ok(r.clone()));

        // A version-2 record must not be silently misread.
        let mut future = bytes.clone();
        let pos = future
            .windows(2)
            .position(|w| w == [0x61, b'v'])
            .expect("v key");
        future[pos + 2] = 0x02;
        assert_eq!(ChangeRecord::decode(&future), Err(RecordError::TooNew(2)));
        assert!(ChangeRecord::decode(&bytes[..bytes.len() - 3]).is_err());
        // Open mode: no participant, no role.
        let mut open = change();
        open.change.by = Attribution::default();
        assert_eq!(ChangeRecord::decode(&open.encode()), Ok(open));
    }

    #[test]
    fn rejections_and_admin_actions_round_trip() {
        let rej = Event::Rejection {
            global_seq: 9,
            rejection: Rejection {
                at_ms: 5,
                document_id: DocumentId::random(),
                conn: ConnId(3),
                peer: PeerId::new("p").expect("peer"),
                by: Attribution {
                    participant: Some("P-act".into()),
                    role: None,
                },
                hashes: vec![[1; 32], [2; 32]],
                reason: "not a writer of eval:C-1:P-ev".into(),
            },
        };
        assert_eq!(Event::decode(&rej.encode()), Ok(rej.clone()));
        assert!(ChangeRecord::decode(&rej.encode()).is_err());
        let admin = Event::Admin {
            global_seq: 10,
            action: AdminAction {
                at_ms: 6,
                by: "admin".into(),
                action: r#"{"grant":{"participant":"P-act","role":"activist"}}"#.into(),
            },
        };
        assert_eq!(Event::decode(&admin.encode()), Ok(admin));
        let presence = Event::Presence {
            global_seq: 11,
            presence: Presence {
                at_ms: 7,
                participant: "P-act".into(),
                role: Some("activist".into()),
                session: "S05".into(),
                joined: false,
            },
        };
        assert_eq!(Event::decode(&presence.encode()), Ok(presence));
    }
}
