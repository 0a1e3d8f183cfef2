//! The automerge-repo v1 wire messages and their CBOR codec.
//!
//! One WebSocket binary frame carries exactly one CBOR map. The decoder accepts what JavaScript
//! (cbor-x) and samod really send: non-minimal map headers (`B9 00 04`), CBOR `undefined` for
//! absent values, float64 counters and timestamps, unknown keys. It never allocates more than
//! the frame holds: lengths declared in headers are only ever consumed item by item, so a map
//! that claims four billion entries fails at the end of the input, not in the allocator.
//!
//! The encoder emits only what both JavaScript 2.5.x and samod accept: definite-length maps,
//! text keys, plain byte strings, no 64-bit integers, no nulls, no tags, omitted optional keys.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::ids::{DocumentId, IdError, PeerId};

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// Deepest nesting the decoder walks through when it skips a value it does not need.
const MAX_DEPTH: usize = 16;

/// `peerMetadata` of `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    pub storage_id: Option<String>,
    pub is_ephemeral: bool,
}

/// One storage's heads in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteHeads {
    pub storage_id: String,
    pub heads: Vec<String>,
    pub timestamp: u64,
}

/// Whether a peer asked with `request` ("tell me if you don't have it") or `sync`: the two
/// messages that carry sync data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Request,
    Sync,
}

/// Every message of the protocol. `senderId`/`targetId` are kept as sent; the server binds
/// a connection's messages to the peer that joined on it and does not trust them.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Join {
        sender_id: PeerId,
        /// `None` when the key is absent (treated as `["1"]`, like the JS server).
        supported_protocol_versions: Option<Vec<String>>,
        peer_metadata: Option<PeerMetadata>,
    },
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        selected_protocol_version: String,
        peer_metadata: Option<PeerMetadata>,
    },
    /// "I have nothing, tell me `doc-unavailable` if you cannot help."
    Request {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    Sync {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    DocUnavailable {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
    },
    Ephemeral {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        count: u64,
        session_id: String,
        data: Vec<u8>,
    },
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        add: Option<Vec<String>>,
        remove: Option<Vec<String>>,
    },
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: Vec<RemoteHeads>,
    },
    Error {
        sender_id: Option<PeerId>,
        target_id: Option<PeerId>,
        message: String,
    },
    Leave {
        sender_id: PeerId,
    },
}

impl Message {
    /// A `request` or a `sync` carrying one automerge sync message.
    pub fn sync_of_kind(
        kind: SyncKind,
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    ) -> Self {
        match kind {
            SyncKind::Request => Self::Request {
                sender_id,
                target_id,
                document_id,
                data,
            },
            SyncKind::Sync => Self::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            },
        }
    }

    /// The `type` string of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Request { .. } => "request",
            Self::Sync { .. } => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Self::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Self::Error { .. } => "error",
            Self::Leave { .. } => "leave",
        }
    }
}

/// Why a frame is not a message we can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    #[error("a message is a CBOR map, this frame starts with {0}")]
    NotAMap(String),
    #[error("trailing bytes after the message")]
    TrailingBytes,
    #[error("the message has no `type`")]
    MissingType,
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("`{ty}` lacks `{key}`")]
    MissingKey { ty: String, key: &'static str },
    #[error("`{key}` has the wrong type: {found}")]
    WrongType { key: String, found: String },
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// The message is well formed but names a document id that is not valid base58check of
    /// 16 bytes; the server ignores it (as the JS client does) instead of closing. `raw` is
    /// clipped to 80 characters, so that it can be logged.
    #[error("invalid document id `{raw}` in `{ty}`: {reason}")]
    BadDocumentId {
        ty: String,
        raw: String,
        sender_id: Option<String>,
        reason: IdError,
    },
    #[error("invalid peer id: {0}")]
    BadPeerId(IdError),
    /// An ephemeral message's `sessionId` over [`MAX_SESSION_ID_LEN`] bytes: the server keeps
    /// one per sender and session to drop repeats, and relays it to every reader.
    #[error("`sessionId` is at most {MAX_SESSION_ID_LEN} bytes, this one has {0}")]
    SessionIdTooLong(usize),
}

/// Longest `sessionId` of an ephemeral message (automerge-repo sends a short random string).
pub const MAX_SESSION_ID_LEN: usize = 256;

/// An ephemeral message's `sessionId`, bounded in length.
fn session_id(s: &str) -> Result<String, DecodeError> {
    if s.len() > MAX_SESSION_ID_LEN {
        return Err(DecodeError::SessionIdTooLong(s.len()));
    }
    Ok(s.to_string())
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(e: minicbor::decode::Error) -> Self {
        Self::Cbor(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A document id as it appeared on the wire (samod may send bytes, everybody else text).
enum RawDocId<'b> {
    Text(&'b str),
    Bytes(&'b [u8]),
}

/// The fields of a message map, before we know which message it is.
#[derive(Default)]
struct Fields<'b> {
    ty: Option<&'b str>,
    sender_id: Option<&'b str>,
    target_id: Option<&'b str>,
    document_id: Option<RawDocId<'b>>,
    data: Option<&'b [u8]>,
    count: Option<u64>,
    session_id: Option<&'b str>,
    message: Option<&'b str>,
    selected_protocol_version: Option<&'b str>,
    supported_protocol_versions: Option<Vec<String>>,
    peer_metadata: Option<PeerMetadata>,
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
    new_heads: Option<Vec<RemoteHeads>>,
}

fn type_name(t: Type) -> String {
    format!("{t:?}")
}

fn wrong(key: &str, t: Type) -> DecodeError {
    DecodeError::WrongType {
        key: key.to_string(),
        found: type_name(t),
    }
}

/// `undefined` and `null` both mean "absent" for optional values.
fn is_absent(d: &Decoder<'_>) -> Result<bool, DecodeError> {
    Ok(matches!(d.datatype()?, Type::Undefined | Type::Null))
}

fn skip_absent(d: &mut Decoder<'_>) -> Result<(), DecodeError> {
    d.skip()?;
    Ok(())
}

fn text<'b>(d: &mut Decoder<'b>, key: &str) -> Result<&'b str, DecodeError> {
    match d.datatype()? {
        Type::String => Ok(d.str()?),
        t => Err(wrong(key, t)),
    }
}

fn bytes<'b>(d: &mut Decoder<'b>, key: &str) -> Result<&'b [u8], DecodeError> {
    match d.datatype()? {
        Type::Bytes => Ok(d.bytes()?),
        // Tag 64 (typed array of u8) around the bytes is harmless to accept.
        Type::Tag => {
            let tag = d.tag()?;
            if u64::from(tag) == 64 {
                bytes(d, key)
            } else {
                Err(wrong(key, Type::Tag))
            }
        }
        t => Err(wrong(key, t)),
    }
}

/// Unsigned integer or float64 (cbor-x encodes integers ≥ 2³² as doubles).
fn number(d: &mut Decoder<'_>, key: &str) -> Result<u64, DecodeError> {
    match d.datatype()? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Ok(d.u64()?),
        Type::F32 | Type::F64 => {
            let f = if d.datatype()? == Type::F64 {
                d.f64()?
            } else {
                f64::from(d.f32()?)
            };
            if f.is_finite() && f >= 0.0 {
                // Truncation is the intent: counters and millisecond timestamps.
                Ok(f as u64)
            } else {
                Err(DecodeError::WrongType {
                    key: key.to_string(),
                    found: format!("float {f}"),
                })
            }
        }
        t => Err(wrong(key, t)),
    }
}

fn text_array(d: &mut Decoder<'_>, key: &str) -> Result<Vec<String>, DecodeError> {
    match d.datatype()? {
        Type::Array | Type::ArrayIndef => {}
        t => return Err(wrong(key, t)),
    }
    let len = d.array()?;
    let mut out = Vec::new(); // grows with what is actually read, never with `len`
    each_item(d, len, |d| {
        out.push(text(d, key)?.to_string());
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` once per item of a container whose header declared `len` items (`None`:
/// indefinite, ended by a break). Items are read one by one, never preallocated.
fn each_item<'b>(
    d: &mut Decoder<'b>,
    len: Option<u64>,
    mut f: impl FnMut(&mut Decoder<'b>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut i = 0u64;
    loop {
        match len {
            Some(n) if i >= n => return Ok(()),
            None if d.datatype()? == Type::Break => {
                d.skip()?;
                return Ok(());
            }
            _ => {}
        }
        f(d)?;
        i += 1;
    }
}

/// Iterates over a map's entries, calling `f` with the decoder positioned at each key.
fn each_entry<'b>(
    d: &mut Decoder<'b>,
    f: impl FnMut(&mut Decoder<'b>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = d.map()?;
    each_item(d, len, f)
}

fn is_map(d: &Decoder<'_>) -> Result<bool, DecodeError> {
    Ok(matches!(d.datatype()?, Type::Map | Type::MapIndef))
}

/// Skips one value, refusing pathological nesting (minicbor's own skip is iterative, but we
/// keep a hard bound on how much structure a peer can make us walk).
fn skip_value(d: &mut Decoder<'_>, depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    match d.datatype()? {
        Type::Array | Type::ArrayIndef => {
            let len = d.array()?;
            each_item(d, len, |d| skip_value(d, depth + 1))
        }
        Type::Map | Type::MapIndef => each_entry(d, |d| {
            skip_value(d, depth + 1)?;
            skip_value(d, depth + 1)
        }),
        Type::Tag => {
            d.tag()?;
            skip_value(d, depth + 1)
        }
        _ => {
            d.skip()?;
            Ok(())
        }
    }
}

fn peer_metadata(d: &mut Decoder<'_>) -> Result<Option<PeerMetadata>, DecodeError> {
    if is_absent(d)? {
        skip_absent(d)?;
        return Ok(None);
    }
    if !is_map(d)? {
        return Err(wrong("peerMetadata", d.datatype()?));
    }
    let mut meta = PeerMetadata::default();
    each_entry(d, |d| {
        let key = text(d, "peerMetadata key")?;
        match key {
            "storageId" => {
                if is_absent(d)? {
                    skip_absent(d)?;
                } else {
                    meta.storage_id = Some(text(d, "storageId")?.to_string());
                }
            }
            "isEphemeral" => match d.datatype()? {
                Type::Bool => meta.is_ephemeral = d.bool()?,
                Type::Undefined | Type::Null => skip_absent(d)?,
                t => return Err(wrong("isEphemeral", t)),
            },
            _ => skip_value(d, 2)?,
        }
        Ok(())
    })?;
    Ok(Some(meta))
}

fn new_heads(d: &mut Decoder<'_>) -> Result<Vec<RemoteHeads>, DecodeError> {
    if !is_map(d)? {
        return Err(wrong("newHeads", d.datatype()?));
    }
    let mut out = Vec::new();
    each_entry(d, |d| {
        let storage_id = text(d, "newHeads key")?.to_string();
        if !is_map(d)? {
            return Err(wrong("newHeads value", d.datatype()?));
        }
        let mut heads = Vec::new();
        let mut timestamp = 0;
        each_entry(d, |d| {
            match text(d, "newHeads entry key")? {
                "heads" => heads = text_array(d, "heads")?,
                "timestamp" => timestamp = number(d, "timestamp")?,
                _ => skip_value(d, 3)?,
            }
            Ok(())
        })?;
        out.push(RemoteHeads {
            storage_id,
            heads,
            timestamp,
        });
        Ok(())
    })?;
    Ok(out)
}

fn optional_text_array(d: &mut Decoder<'_>, key: &str) -> Result<Option<Vec<String>>, DecodeError> {
    if is_absent(d)? {
        skip_absent(d)?;
        Ok(None)
    } else {
        Ok(Some(text_array(d, key)?))
    }
}

fn read_fields<'b>(d: &mut Decoder<'b>) -> Result<Fields<'b>, DecodeError> {
    if !is_map(d)? {
        return Err(DecodeError::NotAMap(type_name(d.datatype()?)));
    }
    let mut f = Fields::default();
    each_entry(d, |d| {
        let key = match d.datatype()? {
            Type::String => d.str()?,
            // Non-text keys never occur in this protocol; skip them with their values.
            _ => {
                skip_value(d, 1)?;
                return skip_value(d, 1);
            }
        };
        match key {
            "type" => f.ty = Some(text(d, key)?),
            "senderId" => f.sender_id = Some(text(d, key)?),
            "targetId" => f.target_id = Some(text(d, key)?),
            "documentId" => {
                f.document_id = Some(match d.datatype()? {
                    Type::String => RawDocId::Text(d.str()?),
                    Type::Bytes => RawDocId::Bytes(d.bytes()?),
                    t => return Err(wrong(key, t)),
                })
            }
            "data" => f.data = Some(bytes(d, key)?),
            "count" => f.count = Some(number(d, key)?),
            "sessionId" => f.session_id = Some(text(d, key)?),
            "message" => f.message = Some(text(d, key)?),
            "selectedProtocolVersion" => f.selected_protocol_version = Some(text(d, key)?),
            "supportedProtocolVersions" => {
                f.supported_protocol_versions = optional_text_array(d, key)?
            }
            // samod accepts `metadata` as an alias; the README once documented it.
            "peerMetadata" | "metadata" => f.peer_metadata = peer_metadata(d)?,
            "add" => f.add = optional_text_array(d, key)?,
            "remove" => f.remove = optional_text_array(d, key)?,
            "newHeads" => f.new_heads = Some(new_heads(d)?),
            _ => skip_value(d, 1)?,
        }
        Ok(())
    })?;
    Ok(f)
}

fn peer_id(s: Option<&str>, ty: &str, key: &'static str) -> Result<PeerId, DecodeError> {
    let s = s.ok_or_else(|| DecodeError::MissingKey {
        ty: ty.to_string(),
        key,
    })?;
    PeerId::from_wire(s).map_err(DecodeError::BadPeerId)
}

/// The target id is informational (the server knows who it is); accept a missing one.
fn target_id(s: Option<&str>) -> PeerId {
    s.and_then(|s| PeerId::from_wire(s).ok())
        .unwrap_or_else(|| PeerId(String::from("unknown")))
}

fn document_id(f: &Fields<'_>, ty: &str) -> Result<DocumentId, DecodeError> {
    let raw = f
        .document_id
        .as_ref()
        .ok_or_else(|| DecodeError::MissingKey {
            ty: ty.to_string(),
            key: "documentId",
        })?;
    let (parsed, raw_text) = match raw {
        RawDocId::Text(s) => (s.parse::<DocumentId>(), clip(s)),
        RawDocId::Bytes(b) => (
            DocumentId::from_slice(b),
            clip(
                &bs58::encode(&b[..b.len().min(64)])
                    .with_check()
                    .into_string(),
            ),
        ),
    };
    parsed.map_err(|reason| DecodeError::BadDocumentId {
        ty: ty.to_string(),
        raw: raw_text,
        sender_id: f.sender_id.map(clip),
        reason,
    })
}

/// What a peer sent, as it may appear in an error or a log line: at most 80 characters.
/// (A peer controls these strings; a megabyte of them must not reach every log line.)
fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn required<T>(v: Option<T>, ty: &str, key: &'static str) -> Result<T, DecodeError> {
    v.ok_or_else(|| DecodeError::MissingKey {
        ty: ty.to_string(),
        key,
    })
}

/// Decodes one frame into a message.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let mut d = Decoder::new(frame);
    let f = read_fields(&mut d)?;
    if d.position() != frame.len() {
        return Err(DecodeError::TrailingBytes);
    }
    let ty = f.ty.ok_or(DecodeError::MissingType)?;
    let msg = match ty {
        "join" => Message::Join {
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            supported_protocol_versions: f.supported_protocol_versions,
            peer_metadata: f.peer_metadata,
        },
        "peer" => Message::Peer {
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            target_id: target_id(f.target_id),
            selected_protocol_version: required(
                f.selected_protocol_version,
                ty,
                "selectedProtocolVersion",
            )?
            .to_string(),
            peer_metadata: f.peer_metadata,
        },
        "request" | "sync" => {
            let document_id = document_id(&f, ty)?;
            let sender_id = peer_id(f.sender_id, ty, "senderId")?;
            let target_id = target_id(f.target_id);
            let data = required(f.data, ty, "data")?.to_vec();
            let kind = if ty == "request" {
                SyncKind::Request
            } else {
                SyncKind::Sync
            };
            Message::sync_of_kind(kind, sender_id, target_id, document_id, data)
        }
        "doc-unavailable" => Message::DocUnavailable {
            document_id: document_id(&f, ty)?,
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            target_id: target_id(f.target_id),
        },
        "ephemeral" => Message::Ephemeral {
            document_id: document_id(&f, ty)?,
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            target_id: target_id(f.target_id),
            count: required(f.count, ty, "count")?,
            session_id: session_id(required(f.session_id, ty, "sessionId")?)?,
            data: required(f.data, ty, "data")?.to_vec(),
        },
        "remote-subscription-change" => Message::RemoteSubscriptionChange {
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            target_id: target_id(f.target_id),
            add: f.add,
            remove: f.remove,
        },
        "remote-heads-changed" => Message::RemoteHeadsChanged {
            document_id: document_id(&f, ty)?,
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
            target_id: target_id(f.target_id),
            new_heads: f.new_heads.unwrap_or_default(),
        },
        "error" => Message::Error {
            sender_id: f.sender_id.and_then(|s| PeerId::from_wire(s).ok()),
            target_id: f.target_id.and_then(|s| PeerId::from_wire(s).ok()),
            message: f.message.unwrap_or_default().to_string(),
        },
        "leave" => Message::Leave {
            sender_id: peer_id(f.sender_id, ty, "senderId")?,
        },
        other => return Err(DecodeError::UnknownType(clip(other))),
    };
    Ok(msg)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn kv_str(e: &mut Enc, k: &str, v: &str) -> EncResult {
    e.str(k)?.str(v)?;
    Ok(())
}

fn encode_metadata(e: &mut Enc, m: &PeerMetadata) -> EncResult {
    let n = if m.storage_id.is_some() { 2 } else { 1 };
    e.map(n)?;
    if let Some(s) = &m.storage_id {
        kv_str(e, "storageId", s)?;
    }
    e.str("isEphemeral")?.bool(m.is_ephemeral)?;
    Ok(())
}

/// Counters and timestamps: unsigned ints below 2³², float64 above (like cbor-x), never a
/// 64-bit integer, which JavaScript would turn into a BigInt.
fn encode_number(e: &mut Enc, n: u64) -> EncResult {
    if let Ok(small) = u32::try_from(n) {
        e.u32(small)?;
    } else {
        e.f64(n as f64)?;
    }
    Ok(())
}

fn encode_text_array(e: &mut Enc, items: &[String]) -> EncResult {
    e.array(items.len() as u64)?;
    for s in items {
        e.str(s)?;
    }
    Ok(())
}

/// `join` and `peer`, the handshake.
fn encode_handshake(e: &mut Enc, msg: &Message) -> EncResult {
    match msg {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            peer_metadata,
        } => {
            let n = 3 + u64::from(peer_metadata.is_some());
            e.map(n)?;
            kv_str(e, "type", "join")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            e.str("supportedProtocolVersions")?;
            let versions = supported_protocol_versions
                .clone()
                .unwrap_or_else(|| vec![PROTOCOL_VERSION.to_string()]);
            encode_text_array(e, &versions)?;
            if let Some(m) = peer_metadata {
                e.str("peerMetadata")?;
                encode_metadata(e, m)?;
            }
        }
        Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version,
            peer_metadata,
        } => {
            e.map(4 + u64::from(peer_metadata.is_some()))?;
            kv_str(e, "type", "peer")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            kv_str(e, "selectedProtocolVersion", selected_protocol_version)?;
            if let Some(m) = peer_metadata {
                e.str("peerMetadata")?;
                encode_metadata(e, m)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `remote-subscription-change` and `remote-heads-changed`.
fn encode_remote(e: &mut Enc, msg: &Message) -> EncResult {
    match msg {
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            e.map(3 + u64::from(add.is_some()) + u64::from(remove.is_some()))?;
            kv_str(e, "type", "remote-subscription-change")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            if let Some(a) = add {
                e.str("add")?;
                encode_text_array(e, a)?;
            }
            if let Some(r) = remove {
                e.str("remove")?;
                encode_text_array(e, r)?;
            }
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            e.map(5)?;
            kv_str(e, "type", "remote-heads-changed")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            kv_str(e, "documentId", &document_id.to_string())?;
            e.str("newHeads")?.map(new_heads.len() as u64)?;
            for h in new_heads {
                e.str(&h.storage_id)?.map(2)?;
                e.str("heads")?;
                encode_text_array(e, &h.heads)?;
                // JavaScript sends milliseconds as float64; so do we.
                e.str("timestamp")?.f64(h.timestamp as f64)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn encode_into(e: &mut Enc, msg: &Message) -> EncResult {
    match msg {
        Message::Join { .. } | Message::Peer { .. } => encode_handshake(e, msg)?,
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } => {
            e.map(5)?;
            kv_str(e, "type", msg.type_name())?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            kv_str(e, "documentId", &document_id.to_string())?;
            e.str("data")?.bytes(data)?;
        }
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id,
        } => {
            e.map(4)?;
            kv_str(e, "type", "doc-unavailable")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            kv_str(e, "documentId", &document_id.to_string())?;
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            document_id,
            count,
            session_id,
            data,
        } => {
            e.map(7)?;
            kv_str(e, "type", "ephemeral")?;
            kv_str(e, "senderId", sender_id.as_str())?;
            kv_str(e, "targetId", target_id.as_str())?;
            kv_str(e, "documentId", &document_id.to_string())?;
            e.str("count")?;
            encode_number(e, *count)?;
            kv_str(e, "sessionId", session_id)?;
            e.str("data")?.bytes(data)?;
        }
        Message::RemoteSubscriptionChange { .. } | Message::RemoteHeadsChanged { .. } => {
            encode_remote(e, msg)?
        }
        Message::Error {
            sender_id,
            target_id,
            message,
        } => {
            e.map(2 + u64::from(sender_id.is_some()) + u64::from(target_id.is_some()))?;
            kv_str(e, "type", "error")?;
            if let Some(s) = sender_id {
                kv_str(e, "senderId", s.as_str())?;
            }
            if let Some(t) = target_id {
                kv_str(e, "targetId", t.as_str())?;
            }
            kv_str(e, "message", message)?;
        }
        Message::Leave { sender_id } => {
            e.map(2)?;
            kv_str(e, "type", "leave")?;
            kv_str(e, "senderId", sender_id.as_str())?;
        }
    }
    Ok(())
}

/// Encodes a message as one frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut e = Encoder::new(Vec::with_capacity(64 + payload_len(msg)));
    // Writing into a Vec cannot fail, and we encode no custom types that could.
    let written = encode_into(&mut e, msg);
    debug_assert!(written.is_ok(), "encoding into a Vec failed: {written:?}");
    e.into_writer()
}

/// An ephemeral message as it is relayed to many subscribers: everything but `targetId`
/// encoded once, so that the data is held once however many subscribers it goes to. Each
/// subscriber's frame is [`EphemeralFrame::body`] followed by [`EphemeralFrame::target`]: a
/// CBOR map of seven entries whose last is `targetId` (a map's entries may come in any order;
/// the JavaScript client, samod and our decoder read it by key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EphemeralFrame {
    body: std::sync::Arc<[u8]>,
}

impl EphemeralFrame {
    pub fn new(
        sender_id: &PeerId,
        document_id: &DocumentId,
        count: u64,
        session_id: &str,
        data: &[u8],
    ) -> Self {
        let mut e = Encoder::new(Vec::with_capacity(96 + session_id.len() + data.len()));
        let written = (|| -> EncResult {
            e.map(7)?;
            kv_str(&mut e, "type", "ephemeral")?;
            kv_str(&mut e, "senderId", sender_id.as_str())?;
            kv_str(&mut e, "documentId", &document_id.to_string())?;
            e.str("count")?;
            encode_number(&mut e, count)?;
            kv_str(&mut e, "sessionId", session_id)?;
            e.str("data")?.bytes(data)?;
            Ok(())
        })();
        debug_assert!(written.is_ok(), "encoding into a Vec failed: {written:?}");
        Self {
            body: e.into_writer().into(),
        }
    }

    /// What every subscriber's frame begins with (shared).
    pub fn body(&self) -> &std::sync::Arc<[u8]> {
        &self.body
    }

    /// What ends the frame for `target`: its `targetId` entry.
    pub fn target(target: &PeerId) -> Vec<u8> {
        let mut e = Encoder::new(Vec::with_capacity(16 + target.as_str().len()));
        let written = kv_str(&mut e, "targetId", target.as_str());
        debug_assert!(written.is_ok(), "encoding into a Vec failed: {written:?}");
        e.into_writer()
    }

    /// The whole frame for `target` (the writer joins the two parts as it sends).
    pub fn frame_for(&self, target: &PeerId) -> Vec<u8> {
        let tail = Self::target(target);
        let mut f = Vec::with_capacity(self.body.len() + tail.len());
        f.extend_from_slice(&self.body);
        f.extend_from_slice(&tail);
        f
    }
}

fn payload_len(msg: &Message) -> usize {
    match msg {
        Message::Request { data, .. }
        | Message::Sync { data, .. }
        | Message::Ephemeral { data, .. } => data.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> PeerId {
        PeerId::new(s).expect("peer id")
    }

    fn doc() -> DocumentId {
        "4NMNnkMhL8jXrdJ9jamS58PAVdXu".parse().expect("doc id")
    }

    #[test]
    fn a_shared_ephemeral_frame_decodes_as_the_message_for_each_target() {
        let frame = EphemeralFrame::new(&pid("peer-A"), &doc(), 7, "s-1", &[1, 2, 3]);
        for target in ["peer-B", "peer-C"] {
            let m = decode(&frame.frame_for(&pid(target))).expect("decodes");
            assert_eq!(
                m,
                Message::Ephemeral {
                    sender_id: pid("peer-A"),
                    target_id: pid(target),
                    document_id: doc(),
                    count: 7,
                    session_id: "s-1".into(),
                    data: vec![1, 2, 3],
                }
            );
        }
    }

    fn all_messages() -> Vec<Message> {
        vec![
            Message::Join {
                sender_id: pid("peer-A"),
                supported_protocol_versions: Some(vec!["1".into()]),
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: true,
                }),
            },
            Message::Peer {
                sender_id: pid("server"),
                target_id: pid("peer-A"),
                selected_protocol_version: "1".into(),
                peer_metadata: Some(PeerMetadata {
                    storage_id: Some("22b40a84-420b-475d-b816-2cea4356e53d".into()),
                    is_ephemeral: false,
                }),
            },
            Message::Request {
                sender_id: pid("peer-A"),
                target_id: pid("server"),
                document_id: doc(),
                data: vec![0x42, 0, 0, 1, 0, 0, 0, 2, 2, 0x84],
            },
            Message::Sync {
                sender_id: pid("server"),
                target_id: pid("peer-A"),
                document_id: doc(),
                data: vec![1, 2, 3],
            },
            Message::DocUnavailable {
                sender_id: pid("server"),
                target_id: pid("peer-A"),
                document_id: doc(),
            },
            Message::Ephemeral {
                sender_id: pid("peer-A"),
                target_id: pid("peer-B"),
                document_id: doc(),
                count: 7,
                session_id: "pdsppbrewd".into(),
                data: vec![0xa1, 0x61, 0x61, 0x01],
            },
            Message::RemoteSubscriptionChange {
                sender_id: pid("peer-A"),
                target_id: pid("server"),
                add: Some(vec!["s1".into()]),
                remove: None,
            },
            Message::RemoteHeadsChanged {
                sender_id: pid("server"),
                target_id: pid("peer-A"),
                document_id: doc(),
                new_heads: vec![RemoteHeads {
                    storage_id: "s1".into(),
                    heads: vec!["16qJFWMMHFy3xDdLmvUeyc2S6FrWRhJP51HsvDYdz9d1FsYG".into()],
                    timestamp: 1_795_669_532_000,
                }],
            },
            Message::Error {
                sender_id: Some(pid("server")),
                target_id: None,
                message: "unsupported protocol version".into(),
            },
            Message::Leave {
                sender_id: pid("peer-A"),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in all_messages() {
            let bytes = encode(&m);
            assert_eq!(decode(&bytes), Ok(m.clone()), "{}", m.type_name());
        }
    }

    #[test]
    fn encoder_never_emits_64_bit_ints_nulls_or_tags() {
        for m in all_messages() {
            let bytes = encode(&m);
            let mut d = Decoder::new(&bytes);
            walk(&mut d, m.type_name());
            assert_eq!(d.position(), bytes.len());
        }
    }

    /// Walks one value and fails on anything JavaScript or samod would choke on.
    fn walk(d: &mut Decoder<'_>, ctx: &str) {
        match d.datatype().expect("type") {
            Type::U64 | Type::I64 | Type::Int => panic!("64-bit integer in {ctx}"),
            Type::Null | Type::Tag | Type::Undefined => panic!("null, undefined or tag in {ctx}"),
            Type::Map => {
                let n = d.map().expect("map").expect("definite");
                for _ in 0..n {
                    assert_eq!(
                        d.datatype().expect("key"),
                        Type::String,
                        "text keys in {ctx}"
                    );
                    walk(d, ctx);
                    walk(d, ctx);
                }
            }
            Type::Array => {
                let n = d.array().expect("array").expect("definite");
                for _ in 0..n {
                    walk(d, ctx);
                }
            }
            Type::MapIndef | Type::ArrayIndef | Type::BytesIndef | Type::StringIndef => {
                panic!("indefinite length in {ctx}")
            }
            _ => d.skip().expect("skip"),
        }
    }

    /// The `join` of a storage-less JS 2.5.6 client, byte for byte as observed on the wire:
    /// 2-byte map headers and `storageId: undefined`.
    #[test]
    fn decodes_a_recorded_js_join() {
        let mut f: Vec<u8> = vec![0xB9, 0x00, 0x04];
        let s = |f: &mut Vec<u8>, t: &str| {
            assert!(t.len() < 24);
            f.push(0x60 + t.len() as u8);
            f.extend_from_slice(t.as_bytes());
        };
        s(&mut f, "type");
        s(&mut f, "join");
        s(&mut f, "senderId");
        s(&mut f, "peer-A");
        s(&mut f, "peerMetadata");
        f.extend_from_slice(&[0xB9, 0x00, 0x02]);
        s(&mut f, "storageId");
        f.push(0xF7);
        s(&mut f, "isEphemeral");
        f.push(0xF5);
        f.extend_from_slice(&[0x78, 0x19]);
        f.extend_from_slice(b"supportedProtocolVersions");
        f.extend_from_slice(&[0x81, 0x61, b'1']);
        assert_eq!(
            decode(&f),
            Ok(Message::Join {
                sender_id: pid("peer-A"),
                supported_protocol_versions: Some(vec!["1".into()]),
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: true
                }),
            })
        );
    }

    /// `remote-heads-changed` from JS: float64 timestamp, 2-byte headers, and an unknown key.
    #[test]
    fn decodes_float_timestamps_and_skips_unknown_keys() {
        let mut e = Encoder::new(Vec::new());
        e.map(6).expect("enc");
        e.str("type")
            .and_then(|e| e.str("remote-heads-changed"))
            .expect("enc");
        e.str("targetId")
            .and_then(|e| e.str("peer-B"))
            .expect("enc");
        e.str("documentId")
            .and_then(|e| e.str("4NMNnkMhL8jXrdJ9jamS58PAVdXu"))
            .expect("enc");
        e.str("newHeads").and_then(|e| e.map(1)).expect("enc");
        e.str("storage-1").and_then(|e| e.map(2)).expect("enc");
        e.str("heads").and_then(|e| e.array(0)).expect("enc");
        e.str("timestamp")
            .and_then(|e| e.f64(1_795_669_532_000.0))
            .expect("enc");
        e.str("futureKey")
            .and_then(|e| e.map(1))
            .and_then(|e| e.str("x"))
            .and_then(|e| e.array(2))
            .and_then(|e| e.u8(1))
            .and_then(|e| e.undefined())
            .expect("enc");
        e.str("senderId")
            .and_then(|e| e.str("storage-server-probe"))
            .expect("enc");
        let m = decode(&e.into_writer()).expect("decodes");
        match m {
            Message::RemoteHeadsChanged { new_heads, .. } => {
                assert_eq!(new_heads[0].timestamp, 1_795_669_532_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_missing_versions_undefined_lists_and_float_counts() {
        let mut e = Encoder::new(Vec::new());
        e.map(2).expect("enc");
        e.str("type").and_then(|e| e.str("join")).expect("enc");
        e.str("senderId")
            .and_then(|e| e.str("old-client"))
            .expect("enc");
        assert!(matches!(
            decode(&e.into_writer()),
            Ok(Message::Join {
                supported_protocol_versions: None,
                peer_metadata: None,
                ..
            })
        ));

        let mut e = Encoder::new(Vec::new());
        e.map(5).expect("enc");
        e.str("type")
            .and_then(|e| e.str("remote-subscription-change"))
            .expect("enc");
        e.str("senderId").and_then(|e| e.str("a")).expect("enc");
        e.str("targetId").and_then(|e| e.str("b")).expect("enc");
        e.str("add")
            .and_then(|e| e.array(1))
            .and_then(|e| e.str("s"))
            .expect("enc");
        e.str("remove").and_then(|e| e.undefined()).expect("enc");
        assert!(matches!(
            decode(&e.into_writer()),
            Ok(Message::RemoteSubscriptionChange {
                add: Some(_),
                remove: None,
                ..
            })
        ));

        let mut e = Encoder::new(Vec::new());
        e.map(7).expect("enc");
        e.str("type").and_then(|e| e.str("ephemeral")).expect("enc");
        e.str("senderId").and_then(|e| e.str("a")).expect("enc");
        e.str("targetId").and_then(|e| e.str("b")).expect("enc");
        e.str("documentId")
            .and_then(|e| e.str("4NMNnkMhL8jXrdJ9jamS58PAVdXu"))
            .expect("enc");
        e.str("count")
            .and_then(|e| e.f64(5_000_000_000.0))
            .expect("enc");
        e.str("sessionId").and_then(|e| e.str("s")).expect("enc");
        e.str("data").and_then(|e| e.bytes(&[1])).expect("enc");
        assert!(matches!(
            decode(&e.into_writer()),
            Ok(Message::Ephemeral {
                count: 5_000_000_000,
                ..
            })
        ));
    }

    #[test]
    fn hostile_frames_fail_cleanly() {
        // Random bytes, empty input, CBOR null, a text string.
        for bad in [&[0xde, 0xad, 0xbe, 0xef][..], &[], &[0xF6], &[0x61, b'x']] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // A map declaring 4 billion entries, then nothing: fails without allocating.
        assert!(matches!(
            decode(&[0xBA, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::Cbor(_))
        ));
        // A byte string declaring 2^64-1 bytes.
        let mut f = vec![0xA1, 0x64];
        f.extend_from_slice(b"data");
        f.extend_from_slice(&[0x5B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(decode(&f).is_err());
        // An array of 4 billion in supportedProtocolVersions.
        let mut f = vec![0xA1];
        f.push(0x78);
        f.push(25);
        f.extend_from_slice(b"supportedProtocolVersions");
        f.extend_from_slice(&[0x9A, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(decode(&f).is_err());
        // Deep nesting under an unknown key.
        let mut f = vec![0xA1, 0x61, b'z'];
        f.extend(std::iter::repeat_n(0x81, 10_000));
        f.push(0x01);
        assert_eq!(decode(&f), Err(DecodeError::TooDeep));
        // Unknown type and missing type.
        let mut e = Encoder::new(Vec::new());
        e.map(1)
            .and_then(|e| e.str("type"))
            .and_then(|e| e.str("gossip"))
            .expect("enc");
        assert_eq!(
            decode(&e.into_writer()),
            Err(DecodeError::UnknownType("gossip".into()))
        );
        assert_eq!(decode(&[0xA0]), Err(DecodeError::MissingType));
        // Trailing garbage after a valid message.
        let mut f = encode(&Message::Leave {
            sender_id: pid("a"),
        });
        f.push(0x00);
        assert_eq!(decode(&f), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn a_bad_document_id_is_reported_with_its_raw_text() {
        let mut e = Encoder::new(Vec::new());
        e.map(5).expect("enc");
        e.str("type").and_then(|e| e.str("request")).expect("enc");
        e.str("senderId").and_then(|e| e.str("a")).expect("enc");
        e.str("targetId").and_then(|e| e.str("b")).expect("enc");
        e.str("documentId")
            .and_then(|e| e.str("not-an-id"))
            .expect("enc");
        e.str("data").and_then(|e| e.bytes(&[])).expect("enc");
        match decode(&e.into_writer()) {
            Err(DecodeError::BadDocumentId {
                ty, raw, sender_id, ..
            }) => {
                assert_eq!(
                    (ty.as_str(), raw.as_str(), sender_id.as_deref()),
                    ("request", "not-an-id", Some("a"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn document_ids_as_bytes_are_accepted() {
        let mut e = Encoder::new(Vec::new());
        e.map(4).expect("enc");
        e.str("type")
            .and_then(|e| e.str("doc-unavailable"))
            .expect("enc");
        e.str("senderId").and_then(|e| e.str("a")).expect("enc");
        e.str("targetId").and_then(|e| e.str("b")).expect("enc");
        e.str("documentId")
            .and_then(|e| e.bytes(doc().as_bytes()))
            .expect("enc");
        assert!(
            matches!(decode(&e.into_writer()), Ok(Message::DocUnavailable { document_id, .. }) if document_id == doc())
        );
    }
}
