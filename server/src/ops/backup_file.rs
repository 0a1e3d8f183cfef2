//! The backup file: a consistent copy of the event log in one file, written while the
//! server runs ([`write`]) and read back whole before anything is restored ([`Reader`]).
//!
//! # Why a file of log entries and not a copy of sled's directory
//!
//! sled locks its directory and has no snapshots, so a copy of its files made while the server
//! writes is not consistent. The log itself is easy to cut consistently: records never change
//! once written, so the log writer only has to say where the cut is (between two group
//! commits) and copy the registry, the one part that changes (see [`Store::cut`]). Snapshots
//! and the timeline are caches; a restore rebuilds them from the log and then verifies it.
//!
//! # Format (version 1)
//!
//! ```text
//! "TORON-BACKUP\n"
//! header length (u32 BE) ‖ header (JSON: format, created_ms, records, source_storage_id, …)
//! per entry:  'E' ‖ key length (u32 BE) ‖ key ‖ value length (u32 BE) ‖ value
//! trailer:    'Z' ‖ entry count (u64 BE) ‖ SHA-256 of every byte before it (32)
//! ```
//!
//! A file that is cut short, altered or has anything after its trailer is refused as a whole
//! before a restore writes anything.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{is_log_key, KeyValue, Store, StoreError};

pub const MAGIC: &[u8] = b"TORON-BACKUP\n";
const FORMAT: u32 = 1;
const MAX_HEADER: usize = 64 * 1024;
const MAX_KEY: usize = 4 * 1024;
/// Values are pieces of at most 32 KiB plus a small header; anything much larger is damage.
const MAX_VALUE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not a Toron backup: {0}")]
    Format(String),
    #[error("the backup is incomplete (it ends early); it cannot be restored")]
    Truncated,
    #[error("the backup is damaged: its checksum does not match; it cannot be restored")]
    Checksum,
}

/// What a backup file describes itself as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// When the cut was taken (Unix milliseconds).
    pub created_ms: u64,
    /// Records in the backup: global sequence numbers 1..=records.
    pub records: u64,
    /// The storage id of the server it came from (a restore gets a new one).
    pub source_storage_id: String,
    pub server_version: String,
}

/// What a backup holds, counted while it is written or read.
#[derive(Debug, Clone)]
pub struct Summary {
    pub header: Header,
    pub entries: u64,
    pub documents: u64,
    pub bytes: u64,
}

/// Counts documents: each has exactly one index entry with document sequence 1.
fn is_first_of_document(key: &[u8]) -> bool {
    key.len() == 25 && key[0] == b'D' && key[17..] == 1u64.to_be_bytes()
}

struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.bytes += b.len() as u64;
        self.inner.write_all(b)
    }
}

/// Writes a backup of `store` as it is now to `out`. Blocking: the cut waits for the log
/// writer, and the rest reads sled.
pub fn write(store: &Store, out: impl Write) -> Result<Summary, BackupError> {
    let cut = store.cut()?;
    let created_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let header = Header {
        format: FORMAT,
        created_ms,
        records: cut.upto.saturating_sub(1),
        source_storage_id: store.storage_id().to_string(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut w = Hashing {
        inner: BufWriter::with_capacity(256 * 1024, out),
        hash: Sha256::new(),
        bytes: 0,
    };
    w.put(MAGIC)?;
    let json = serde_json::to_vec(&header).map_err(|e| BackupError::Format(e.to_string()))?;
    w.put(&(json.len() as u32).to_be_bytes())?;
    w.put(&json)?;
    let (mut entries, mut documents) = (0u64, 0u64);
    let mut put_entry = |w: &mut Hashing<_>, k: &[u8], v: &[u8]| -> std::io::Result<()> {
        w.put(b"E")?;
        w.put(&(k.len() as u32).to_be_bytes())?;
        w.put(k)?;
        w.put(&(v.len() as u32).to_be_bytes())?;
        w.put(v)?;
        entries += 1;
        documents += u64::from(is_first_of_document(k));
        Ok(())
    };
    for kv in store.log_entries(&cut) {
        let (k, v) = kv?;
        put_entry(&mut w, &k, &v)?;
    }
    for (k, v) in &cut.registry {
        put_entry(&mut w, k, v)?;
    }
    w.put(b"Z")?;
    w.put(&entries.to_be_bytes())?;
    let digest = w.hash.clone().finalize();
    w.inner.write_all(&digest)?;
    w.inner.flush()?;
    Ok(Summary {
        header,
        entries,
        documents,
        bytes: w.bytes + digest.len() as u64,
    })
}

/// Reads a backup entry by entry, checking everything a restore relies on. The last item is
/// an error if the file is cut short, damaged or followed by anything.
pub struct Reader<R> {
    r: R,
    hash: Sha256,
    bytes: u64,
    entries: u64,
    documents: u64,
    header: Header,
    done: bool,
}

impl<R> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("header", &self.header)
            .field("entries", &self.entries)
            .finish()
    }
}

fn read_exact_or_truncated(r: &mut impl Read, buf: &mut [u8]) -> Result<(), BackupError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Truncated,
        _ => BackupError::Io(e),
    })
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, BackupError> {
        Self::new(BufReader::with_capacity(256 * 1024, File::open(path)?))
    }
}

impl<R: Read> Reader<R> {
    pub fn new(mut r: R) -> Result<Self, BackupError> {
        let mut magic = [0u8; MAGIC.len()];
        r.read_exact(&mut magic)
            .map_err(|_| BackupError::Format("the file is too short".into()))?;
        if magic != MAGIC {
            return Err(BackupError::Format(
                "it does not start with TORON-BACKUP".into(),
            ));
        }
        let mut hash = Sha256::new();
        hash.update(magic);
        let mut len = [0u8; 4];
        read_exact_or_truncated(&mut r, &mut len)?;
        hash.update(len);
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_HEADER {
            return Err(BackupError::Format(format!(
                "a header of {len} bytes is too large"
            )));
        }
        let mut json = vec![0u8; len];
        read_exact_or_truncated(&mut r, &mut json)?;
        hash.update(&json);
        let header: Header = serde_json::from_slice(&json)
            .map_err(|e| BackupError::Format(format!("its header is not readable: {e}")))?;
        if header.format != FORMAT {
            return Err(BackupError::Format(format!(
                "format {} is not one this server reads ({FORMAT})",
                header.format
            )));
        }
        Ok(Self {
            r,
            hash,
            bytes: (MAGIC.len() + 4 + len) as u64,
            entries: 0,
            documents: 0,
            header,
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0u8; n];
        read_exact_or_truncated(&mut self.r, &mut buf)?;
        self.hash.update(&buf);
        self.bytes += n as u64;
        Ok(buf)
    }

    fn take_len(&mut self, max: usize, what: &str) -> Result<usize, BackupError> {
        let b = self.take(4)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > max {
            return Err(BackupError::Format(format!(
                "entry {}: a {what} of {n} bytes is too large",
                self.entries + 1
            )));
        }
        Ok(n)
    }

    fn next_entry(&mut self) -> Result<Option<KeyValue>, BackupError> {
        match self.take(1)?[0] {
            b'E' => {
                let kn = self.take_len(MAX_KEY, "key")?;
                let k = self.take(kn)?;
                if !is_log_key(&k) {
                    return Err(BackupError::Format(format!(
                        "entry {} is not a log entry",
                        self.entries + 1
                    )));
                }
                let vn = self.take_len(MAX_VALUE, "value")?;
                let v = self.take(vn)?;
                self.entries += 1;
                self.documents += u64::from(is_first_of_document(&k));
                Ok(Some((k, v)))
            }
            b'Z' => {
                let n = self.take(8)?;
                let expected = self.hash.clone().finalize();
                let mut digest = [0u8; 32];
                read_exact_or_truncated(&mut self.r, &mut digest)?;
                self.bytes += 32;
                if digest[..] != expected[..] {
                    return Err(BackupError::Checksum);
                }
                let mut n8 = [0u8; 8];
                n8.copy_from_slice(&n);
                if u64::from_be_bytes(n8) != self.entries {
                    return Err(BackupError::Checksum);
                }
                let mut extra = [0u8; 1];
                if self.r.read(&mut extra)? != 0 {
                    return Err(BackupError::Format("there are bytes after its end".into()));
                }
                Ok(None)
            }
            other => Err(BackupError::Format(format!(
                "unexpected byte {other:#04x} after entry {}",
                self.entries
            ))),
        }
    }

    /// What was read; complete once the iterator has ended without an error.
    pub fn summary(&self) -> Summary {
        Summary {
            header: self.header.clone(),
            entries: self.entries,
            documents: self.documents,
            bytes: self.bytes,
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<KeyValue, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole backup file and checks it, writing nothing.
pub fn check(path: &Path) -> Result<Summary, BackupError> {
    let mut reader = Reader::open(path)?;
    for kv in reader.by_ref() {
        kv?;
    }
    Ok(reader.summary())
}
