//! The log's keys (see the layout in the module above) and values split into pieces that
//! stay under sled's blob threshold.

use toron_protocol::DocumentId;

use super::{StoreError, PIECE};

/// On a replica: the position in the replicated log of the last entry applied.
pub(super) const KEY_REPLICA_POSITION: &[u8] = b"Z";

pub(super) fn key_r(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(b'R');
    k.extend_from_slice(name.as_bytes());
    k
}

/// Registry key of an actor binding.
pub fn actor_key(actor: &[u8]) -> String {
    let hex: String = actor.iter().map(|b| format!("{b:02x}")).collect();
    format!("actor/{hex}")
}

pub(super) fn key_l(g: u64) -> [u8; 9] {
    let mut k = [b'L'; 9];
    k[1..].copy_from_slice(&g.to_be_bytes());
    k
}

pub(super) fn key_d(doc: &DocumentId, s: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(b'D');
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(&s.to_be_bytes());
    k
}

pub(super) fn key_h(doc: &DocumentId, hash: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(49);
    k.push(b'H');
    k.extend_from_slice(doc.as_bytes());
    k.extend_from_slice(hash);
    k
}

pub(super) fn key_piece(prefix: &[u8], idx: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&idx.to_be_bytes());
    k
}

pub(super) fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Values are `0 ‖ bytes` when inline, `1 ‖ pieces (4) ‖ total length (8)` when split.
pub(super) fn put_value(batch: &mut sled::Batch, key: &[u8], piece_prefix: &[u8], bytes: &[u8]) {
    if bytes.len() < PIECE {
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.push(0);
        v.extend_from_slice(bytes);
        batch.insert(key, v);
        return;
    }
    let mut n = 0u32;
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        n = i as u32 + 1;
        batch.insert(key_piece(piece_prefix, i as u32), piece);
    }
    let mut v = vec![1];
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    batch.insert(key, v);
}

pub(super) fn corrupt(key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("{key:02x?}"),
        reason: reason.to_string(),
    }
}

pub(super) fn get_value(
    tree: &sled::Tree,
    key: &[u8],
    piece_prefix: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(v) = tree.get(key)? else {
        return Ok(None);
    };
    match v.first() {
        Some(0) => Ok(Some(v[1..].to_vec())),
        Some(1) if v.len() == 13 => {
            let n = u32::from_be_bytes([v[1], v[2], v[3], v[4]]);
            let total = be_u64(&v[5..13]).ok_or_else(|| corrupt(key, "length"))?;
            let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0).min(1 << 30));
            for i in 0..n {
                let piece = tree
                    .get(key_piece(piece_prefix, i))?
                    .ok_or_else(|| corrupt(key, "missing piece"))?;
                out.extend_from_slice(&piece);
            }
            if out.len() as u64 != total {
                return Err(corrupt(key, "pieces do not add up"));
            }
            Ok(Some(out))
        }
        _ => Err(corrupt(key, "unknown value header")),
    }
}

pub(super) fn piece_prefix_l(g: u64) -> [u8; 9] {
    let mut k = key_l(g);
    k[0] = b'P';
    k
}

/// Whether `key` is one of the log's kinds of entries (see the module docs); a backup holds
/// nothing else.
pub fn is_log_key(key: &[u8]) -> bool {
    matches!(key.first(), Some(b'L' | b'P' | b'D' | b'H' | b'R'))
}
