//! Event-log records: what the server appends for every accepted change.
//!
//! Records are versioned CBOR maps with short text keys. A reader skips keys it does not know,
//! so later versions can add fields (participant, role…) without a migration; a record whose
//! `v` is newer than [`RECORD_VERSION`] is refused rather than misread.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::ids::{ConnId, DocumentId, PeerId};

/// The record format this build writes.
pub const RECORD_VERSION: u64 = 1;

/// A change accepted from a peer, before the log has numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub document_id: DocumentId,
    /// Server receive time, UTC milliseconds.
    pub received_at_ms: u64,
    pub conn: ConnId,
    pub peer: PeerId,
    /// The Automerge actor id that made the change.
    pub actor: Vec<u8>,
    pub hash: [u8; 32],
    /// The change as Automerge encodes it; `Change::from_bytes` reads it back.
    pub bytes: Vec<u8>,
}

/// A change as the log holds it: numbered globally and within its document, gap-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub global_seq: u64,
    pub doc_seq: u64,
    pub change: NewChange,
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

impl ChangeRecord {
    pub fn encode(&self) -> Vec<u8> {
        let c = &self.change;
        let mut e = Encoder::new(Vec::with_capacity(c.bytes.len() + 160));
        let r: Result<(), minicbor::encode::Error<std::convert::Infallible>> = (|| {
            e.map(11)?;
            e.str("v")?.u64(RECORD_VERSION)?;
            e.str("k")?.str("change")?;
            e.str("g")?.u64(self.global_seq)?;
            e.str("s")?.u64(self.doc_seq)?;
            e.str("doc")?.bytes(c.document_id.as_bytes())?;
            e.str("t")?.u64(c.received_at_ms)?;
            e.str("conn")?.u64(c.conn.0)?;
            e.str("peer")?.str(c.peer.as_str())?;
            e.str("actor")?.bytes(&c.actor)?;
            e.str("hash")?.bytes(&c.hash)?;
            e.str("bytes")?.bytes(&c.bytes)?;
            Ok(())
        })();
        // Writing into a Vec cannot fail.
        debug_assert!(r.is_ok(), "encoding into a Vec failed: {r:?}");
        e.into_writer()
    }

    pub fn decode(input: &[u8]) -> Result<Self, RecordError> {
        let mut d = Decoder::new(input);
        let n = d
            .map()?
            .ok_or_else(|| RecordError::Malformed("indefinite map".into()))?;
        let (mut v, mut k) = (None, None);
        let (mut g, mut s, mut doc, mut t, mut conn, mut peer) =
            (None, None, None, None, None, None);
        let (mut actor, mut hash, mut bytes) = (None, None, None);
        for _ in 0..n {
            match d.str()? {
                "v" => v = Some(d.u64()?),
                "k" => k = Some(d.str()?.to_string()),
                "g" => g = Some(d.u64()?),
                "s" => s = Some(d.u64()?),
                "doc" => {
                    doc = Some(
                        DocumentId::from_slice(d.bytes()?)
                            .map_err(|e| RecordError::Malformed(e.to_string()))?,
                    )
                }
                "t" => t = Some(d.u64()?),
                "conn" => conn = Some(ConnId(d.u64()?)),
                "peer" => {
                    peer = Some(
                        PeerId::new(d.str()?).map_err(|e| RecordError::Malformed(e.to_string()))?,
                    )
                }
                "actor" => actor = Some(d.bytes()?.to_vec()),
                "hash" => {
                    let h = d.bytes()?;
                    hash = Some(
                        <[u8; 32]>::try_from(h)
                            .map_err(|_| RecordError::Malformed("hash is not 32 bytes".into()))?,
                    );
                }
                "bytes" => bytes = Some(d.bytes()?.to_vec()),
                _ => {
                    if d.datatype()? == Type::Break {
                        return Err(RecordError::Malformed("unexpected break".into()));
                    }
                    d.skip()?
                }
            }
        }
        let v = v.ok_or(RecordError::Missing("v"))?;
        if v > RECORD_VERSION {
            return Err(RecordError::TooNew(v));
        }
        let k = k.ok_or(RecordError::Missing("k"))?;
        if k != "change" {
            return Err(RecordError::UnknownKind(k));
        }
        Ok(Self {
            global_seq: g.ok_or(RecordError::Missing("g"))?,
            doc_seq: s.ok_or(RecordError::Missing("s"))?,
            change: NewChange {
                document_id: doc.ok_or(RecordError::Missing("doc"))?,
                received_at_ms: t.ok_or(RecordError::Missing("t"))?,
                conn: conn.ok_or(RecordError::Missing("conn"))?,
                peer: peer.ok_or(RecordError::Missing("peer"))?,
                actor: actor.ok_or(RecordError::Missing("actor"))?,
                hash: hash.ok_or(RecordError::Missing("hash"))?,
                bytes: bytes.ok_or(RecordError::Missing("bytes"))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_records_round_trip_and_refuse_the_future() {
        let r = ChangeRecord {
            global_seq: 7,
            doc_seq: 3,
            change: NewChange {
                document_id: DocumentId::random(),
                received_at_ms: 1_790_000_000_123,
                conn: ConnId(12),
                peer: PeerId::new("peer-x").expect("peer"),
                actor: vec![1, 2, 3],
                hash: [9; 32],
                bytes: vec![0x85, 0x6f, 0x4a, 0x83],
            },
        };
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
    }
}
