//! How many bytes Automerge storage chunks take once inflated, found before Automerge
//! inflates them.
//!
//! A saved document's columns and a compressed change are DEFLATE streams: a few hundred
//! kilobytes on the wire can inflate to gigabytes, and `Automerge::load` (or
//! `Change::from_bytes`) inflates them whole before any bound of ours could look. So the
//! engine measures each chunk of a peer's message first, with a streaming decoder that keeps
//! nothing and stops as soon as the total passes the caller's cap. Framing (the automerge
//! binary format): magic (4), checksum (4), type (1), uLEB128 length, body. A document body
//! is actors, heads, the change and operation column metadata, then the column data; a
//! bundle's is dependencies, actors, change columns (metadata, data), operation columns
//! (metadata, data). A column spec's bit 3 marks a DEFLATE-compressed column.

use std::io::Read;

/// Automerge storage chunks start with these bytes.
pub const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

const DEFLATE_BIT: u64 = 0b1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The chunks would take more than the cap once inflated.
    #[error("these changes would take more than {cap} bytes once inflated")]
    OverCap { cap: u64 },
    #[error("not an automerge chunk: {0}")]
    Malformed(&'static str),
}

/// The bytes `entry` (storage chunks back to back, as a sync message's `changes` entry holds
/// them) takes once every compressed part is inflated; `Err(OverCap)` as soon as that passes
/// `cap`, having inflated at most `cap` bytes (into a fixed buffer) to find out.
pub fn inflated_len(entry: &[u8], cap: u64) -> Result<u64, InflateError> {
    let mut total = 0u64;
    let mut rest = entry;
    while !rest.is_empty() {
        let (chunk_type, body, tail) = split_chunk(rest)?;
        let header = (rest.len() - tail.len() - body.len()) as u64;
        let budget = cap.saturating_sub(total);
        let n = match chunk_type {
            1 => Ok(body.len() as u64),
            2 => deflated(body, budget),
            0 => document(body, budget),
            // Measured for what stores them (snapshots are documents, never bundles); the
            // engine does not take bundles from peers at all.
            3 => bundle(body, budget),
            _ => Err(InflateError::Malformed("unknown chunk type")),
        }
        .map_err(|e| match e {
            InflateError::OverCap { .. } => InflateError::OverCap { cap },
            other => other,
        })?;
        total = total.saturating_add(header).saturating_add(n);
        if total > cap {
            return Err(InflateError::OverCap { cap });
        }
        rest = tail;
    }
    Ok(total)
}

/// One chunk's type and body, and what follows it.
fn split_chunk(b: &[u8]) -> Result<(u8, &[u8], &[u8]), InflateError> {
    if b.len() < 9 || b[..4] != CHUNK_MAGIC {
        return Err(InflateError::Malformed("no chunk header"));
    }
    let mut r = Reader(&b[9..]);
    let len = r.uleb()?;
    let body = r.take(len)?;
    Ok((b[8], body, r.0))
}

/// A DEFLATE stream's inflated length, reading no further than `cap` bytes past the end.
fn deflated(data: &[u8], cap: u64) -> Result<u64, InflateError> {
    let mut decoder = flate2::bufread::DeflateDecoder::new(data).take(cap.saturating_add(1));
    let mut buf = [0u8; 16 * 1024];
    let mut n = 0u64;
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => return Err(InflateError::Malformed("bad DEFLATE data")),
        }
    }
    if n > cap {
        return Err(InflateError::OverCap { cap });
    }
    Ok(n)
}

/// A document chunk's body, inflated.
fn document(body: &[u8], cap: u64) -> Result<u64, InflateError> {
    let mut r = Reader(body);
    r.actors()?;
    r.hashes()?;
    let changes = r.columns()?;
    let ops = r.columns()?;
    let prefix = (body.len() - r.0.len()) as u64;
    let mut total = prefix;
    for cols in [&changes, &ops] {
        total = total.saturating_add(r.column_data(cols, cap.saturating_sub(total))?);
    }
    // What follows (head indexes) is stored as it is.
    total = total.saturating_add(r.0.len() as u64);
    over(total, cap)
}

/// A bundle chunk's body, inflated.
fn bundle(body: &[u8], cap: u64) -> Result<u64, InflateError> {
    let mut r = Reader(body);
    r.hashes()?;
    r.actors()?;
    let changes = r.columns()?;
    let mut total = (body.len() - r.0.len()) as u64;
    total = total.saturating_add(r.column_data(&changes, cap.saturating_sub(total))?);
    let before = r.0.len();
    let ops = r.columns()?;
    total = total.saturating_add((before - r.0.len()) as u64);
    total = total.saturating_add(r.column_data(&ops, cap.saturating_sub(total))?);
    total = total.saturating_add(r.0.len() as u64);
    over(total, cap)
}

fn over(total: u64, cap: u64) -> Result<u64, InflateError> {
    if total > cap {
        Err(InflateError::OverCap { cap })
    } else {
        Ok(total)
    }
}

/// A cursor over a chunk's body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn uleb(&mut self) -> Result<u64, InflateError> {
        let mut value: u64 = 0;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            value |= bits
                .checked_shl(7 * i as u32)
                .ok_or(InflateError::Malformed("bad length"))?;
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(InflateError::Malformed("bad length"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], InflateError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or(InflateError::Malformed("a part longer than its chunk"))?;
        let (part, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(part)
    }

    /// Length-prefixed actor ids, each length-prefixed.
    fn actors(&mut self) -> Result<(), InflateError> {
        let n = self.uleb()?;
        for _ in 0..n {
            let len = self.uleb()?;
            self.take(len)?;
        }
        Ok(())
    }

    /// Length-prefixed change hashes (32 bytes each).
    fn hashes(&mut self) -> Result<(), InflateError> {
        let n = self.uleb()?;
        self.take(
            n.checked_mul(32)
                .ok_or(InflateError::Malformed("bad count"))?,
        )?;
        Ok(())
    }

    /// Column metadata: (spec, stored length) for each column.
    fn columns(&mut self) -> Result<Vec<(u64, u64)>, InflateError> {
        let n = self.uleb()?;
        // Each column takes at least two bytes of metadata: a count larger than what is left
        // is malformed (and must not size a vector).
        if n > self.0.len() as u64 {
            return Err(InflateError::Malformed("more columns than bytes"));
        }
        (0..n).map(|_| Ok((self.uleb()?, self.uleb()?))).collect()
    }

    /// The columns' data, inflated where compressed.
    fn column_data(&mut self, columns: &[(u64, u64)], cap: u64) -> Result<u64, InflateError> {
        let mut total = 0u64;
        for (spec, len) in columns {
            let data = self.take(*len)?;
            let n = if spec & DEFLATE_BIT != 0 {
                deflated(data, cap.saturating_sub(total))?
            } else {
                data.len() as u64
            };
            total = total.saturating_add(n);
            if total > cap {
                return Err(InflateError::OverCap { cap });
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn doc_with_text(chars: usize) -> AutoCommit {
        let mut d = AutoCommit::new();
        let t = d.put_object(ROOT, "body", ObjType::Text).expect("text");
        d.splice_text(&t, 0, 0, &"가".repeat(chars))
            .expect("splice");
        d.put(ROOT, "long", "나".repeat(chars)).expect("put");
        d.commit();
        d
    }

    #[test]
    fn a_saved_document_measures_what_automerge_inflates() {
        let mut d = doc_with_text(50_000);
        let saved = d.save();
        let n = inflated_len(&saved, u64::MAX).expect("measured");
        // Columns compress: the stored form is much smaller than what it inflates to.
        assert!(n > saved.len() as u64 * 2, "{n} vs {}", saved.len());
        // The string alone is 150,000 bytes once inflated.
        assert!(n >= 150_000, "{n}");
        assert_eq!(
            inflated_len(&saved, 100_000),
            Err(InflateError::OverCap { cap: 100_000 })
        );
        // A change chunk, uncompressed and compressed.
        let mut c = d.get_changes(&[]).into_iter().next().expect("a change");
        let raw = c.raw_bytes().to_vec();
        assert_eq!(inflated_len(&raw, u64::MAX), Ok(raw.len() as u64));
        let compressed = c.bytes().to_vec();
        assert!(compressed.len() < raw.len());
        let m = inflated_len(&compressed, u64::MAX).expect("compressed change");
        assert!(m + 64 >= raw.len() as u64, "{m} vs {}", raw.len());
        assert!(inflated_len(&compressed, 1000).is_err());
    }

    #[test]
    fn a_bomb_is_stopped_at_the_cap_and_garbage_is_malformed() {
        // 64 MiB of zeros deflate to a few dozen kilobytes.
        let zeros = vec![0u8; 64 << 20];
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &zeros).expect("deflate");
        let bomb = e.finish().expect("deflate");
        assert!(bomb.len() < 200_000);
        let mut chunk = CHUNK_MAGIC.to_vec();
        chunk.extend([0, 0, 0, 0, 2]);
        let mut len = bomb.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                chunk.push(b);
                break;
            }
            chunk.push(b | 0x80);
        }
        chunk.extend(&bomb);
        assert_eq!(
            inflated_len(&chunk, 4 << 20),
            Err(InflateError::OverCap { cap: 4 << 20 })
        );
        for junk in [
            &b"not a chunk at all"[..],
            &CHUNK_MAGIC[..],
            &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 0xff],
        ] {
            assert!(matches!(
                inflated_len(junk, 1 << 20),
                Err(InflateError::Malformed(_))
            ));
        }
    }
}
