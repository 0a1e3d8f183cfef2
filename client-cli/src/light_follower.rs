//! A follower that keeps a document's change graph — hashes and dependencies — but not its
//! content: the load generator's cheap reader.
//!
//! Why it exists: a real Automerge peer applies every change it receives to its own document,
//! and on the 2-core benchmark machine fifty such peers following one busy document cost more
//! CPU than the server they measure (≈ 170 µs an apply once the document holds thousands of
//! changes). Then the benchmark measures the load generator. This follower does what the
//! server can observe of a peer and nothing more: it parses and checks every change it is
//! sent (`automerge::Change`, which verifies the chunk and its hash), takes a change into its
//! graph only once all the change's dependencies are there, and answers with the sync message
//! a real peer would send — the same heads, needs and `have`. The server cannot tell it from a
//! real peer; `tests` in this module compare the two message for message.
//!
//! Its one difference on the wire is deliberate: its `have` names its own heads with an empty
//! Bloom filter. A real peer names the heads it last shared with the server plus a filter of
//! what it has beyond them; both mean "send me what is not behind these heads". A follower
//! never authors changes, so everything behind its heads came from the server and the two
//! statements are the same set.

use std::collections::{BTreeSet, HashSet};

use automerge::sync::{self, BloomFilter, Have, MessageFlags, MessageVersion};
use automerge::{Automerge, Change, ChangeHash, LoadChangeError as LoadError};

/// What a follower refuses in a sync message.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("a change in a sync message does not parse: {0}")]
    Change(#[from] LoadError),
    #[error("a sync message's changes are cut short")]
    Truncated,
    #[error("a document in a sync message does not load: {0}")]
    Document(#[from] automerge::AutomergeError),
}

/// Splits a sync message's change bytes into Automerge chunks. A message may carry several
/// changes back to back in one entry (it is meant for `load_incremental`); each chunk is
/// `magic (4) | checksum (4) | type (1) | length (uLEB128) | contents`.
fn split_chunks(mut bytes: &[u8]) -> impl Iterator<Item = Result<&[u8], FollowError>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let whole = bytes;
        let mut rest = bytes.get(9..).unwrap_or_default();
        let end = leb128::read::unsigned(&mut rest)
            .ok()
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| (whole.len() - rest.len()).checked_add(len))
            .filter(|&end| end <= whole.len());
        match end {
            Some(end) => {
                bytes = &whole[end..];
                Some(Ok(&whole[..end]))
            }
            None => {
                bytes = &[];
                Some(Err(FollowError::Truncated))
            }
        }
    })
}

/// One document, followed by its change graph.
#[derive(Debug, Default)]
pub struct LightFollower {
    known: HashSet<ChangeHash>,
    heads: BTreeSet<ChangeHash>,
    /// Changes whose dependencies have not all arrived yet.
    waiting: Vec<Change>,
    /// The heads named in the last message this follower sent.
    last_sent: Option<Vec<ChangeHash>>,
}

impl LightFollower {
    /// Starts from a document this peer already has (for instance the one `find` fetched).
    pub fn from_document(doc: &Automerge) -> Self {
        let mut f = Self::default();
        for c in doc.get_changes(&[]) {
            f.known.insert(c.hash());
        }
        f.heads = doc.get_heads().into_iter().collect();
        f
    }

    /// The document's heads as this follower knows them, sorted as Automerge sorts them.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.heads.iter().copied().collect()
    }

    /// How many changes the follower has.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Takes in the changes of a sync message. Returns the hashes of the changes that joined
    /// the graph, in the order they joined (a change joins once all its dependencies are in).
    pub fn receive(&mut self, msg: &sync::Message) -> Result<Vec<ChangeHash>, FollowError> {
        let mut joined = Vec::new();
        for chunk in msg.changes.iter().flat_map(split_chunks) {
            let chunk = chunk?;
            match Change::try_from(chunk) {
                Ok(c) => self.offer(c, &mut joined),
                // A v2 message carries the whole document as one chunk.
                Err(LoadError::WrongChunkType) => {
                    let doc = Automerge::load(chunk)?;
                    for c in doc.get_changes(&[]) {
                        self.offer(c.clone(), &mut joined);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(joined)
    }

    fn offer(&mut self, change: Change, joined: &mut Vec<ChangeHash>) {
        if self.known.contains(&change.hash()) {
            return;
        }
        self.waiting.push(change);
        // Take in every waiting change whose dependencies are all in, until none is left.
        loop {
            let ready = self
                .waiting
                .iter()
                .position(|c| c.deps().iter().all(|d| self.known.contains(d)));
            let Some(i) = ready else { break };
            let c = self.waiting.swap_remove(i);
            let hash = c.hash();
            if self.known.insert(hash) {
                for d in c.deps() {
                    self.heads.remove(d);
                }
                self.heads.insert(hash);
                joined.push(hash);
            }
        }
    }

    /// The message a real peer answers with after receiving a message whose heads were
    /// `their_heads`, or `None` when it would stay silent: it speaks when its heads moved
    /// since it last spoke, or when the server's heads differ from its own.
    pub fn reply(&mut self, their_heads: &[ChangeHash]) -> Option<sync::Message> {
        let heads = self.heads();
        if self.last_sent.as_ref() == Some(&heads) && their_heads == heads.as_slice() {
            return None;
        }
        let mut need: Vec<ChangeHash> = their_heads
            .iter()
            .filter(|h| !self.known.contains(*h))
            .copied()
            .collect();
        need.sort();
        need.dedup();
        let mut flags = MessageFlags::new();
        flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
        self.last_sent = Some(heads.clone());
        Some(sync::Message {
            heads: heads.clone(),
            need,
            have: vec![Have {
                last_sync: heads,
                bloom: BloomFilter::default(),
            }],
            changes: sync::ChunkList::empty(),
            flags: Some(flags),
            version: MessageVersion::V1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    /// A writer, a real follower and a light follower: every message the writer sends goes to
    /// both followers, and both answers go back to the writer. The light follower's answers
    /// must carry the same heads and needs as the real one's, it must stay silent exactly when
    /// the real one does, and its heads must be the real document's.
    #[test]
    fn answers_as_a_real_peer_does() {
        let mut writer = AutoCommit::new();
        writer.put(ROOT, "bench", "toron").unwrap();
        let mut to_real = sync::State::new();
        let mut to_light = sync::State::new();
        let mut real = Automerge::new();
        let mut real_state = sync::State::new();
        let mut light = LightFollower::default();
        let mut replies = 0;
        for round in 0..60 {
            // Edits in bursts, some concurrent (two actors), some not.
            for k in 0..(round % 4) {
                writer.put(ROOT, format!("k{k}"), round as i64).unwrap();
                if k == 2 {
                    let mut other = writer.fork();
                    other.put(ROOT, "other", round as i64).unwrap();
                    writer.merge(&mut other).unwrap();
                }
            }
            for _ in 0..4 {
                let m_real = writer.sync().generate_sync_message(&mut to_real);
                let m_light = writer.sync().generate_sync_message(&mut to_light);
                assert_eq!(m_real.is_some(), m_light.is_some(), "round {round}");
                let (Some(m_real), Some(m_light)) = (m_real, m_light) else {
                    break;
                };
                let their_heads = m_light.heads.clone();
                real.receive_sync_message(&mut real_state, m_real).unwrap();
                light.receive(&m_light).unwrap();
                assert_eq!(light.heads(), real.get_heads());
                let a_real = real.generate_sync_message(&mut real_state);
                let a_light = light.reply(&their_heads);
                assert_eq!(a_real.is_some(), a_light.is_some(), "round {round}");
                let (Some(a_real), Some(a_light)) = (a_real, a_light) else {
                    continue;
                };
                replies += 1;
                assert_eq!(a_light.heads, a_real.heads);
                assert_eq!(a_light.need, a_real.need);
                writer
                    .sync()
                    .receive_sync_message(&mut to_real, a_real)
                    .unwrap();
                writer
                    .sync()
                    .receive_sync_message(&mut to_light, a_light)
                    .unwrap();
            }
            assert_eq!(light.heads(), writer.get_heads());
        }
        assert_eq!(light.len(), real.get_changes(&[]).len());
        assert!(replies >= 40, "{replies} replies");
    }

    #[test]
    fn holds_a_change_until_its_dependencies_arrive() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1).unwrap();
        doc.commit();
        doc.put(ROOT, "a", 2).unwrap();
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&[])
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let message = |chunks: Vec<Vec<u8>>| sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: chunks.into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let mut light = LightFollower::default();
        assert!(light
            .receive(&message(vec![changes[1].clone()]))
            .unwrap()
            .is_empty());
        assert!(light.heads().is_empty());
        let joined = light.receive(&message(vec![changes[0].clone()])).unwrap();
        assert_eq!(joined.len(), 2);
        assert_eq!(light.heads(), doc.get_heads());
        for bad in [b"not a change".to_vec(), changes[0][..20].to_vec()] {
            assert!(light.receive(&message(vec![bad])).is_err());
        }
        // Two changes back to back in one entry, as automerge sends them.
        let mut other = LightFollower::default();
        let joined = other.receive(&message(vec![changes.concat()])).unwrap();
        assert_eq!(joined.len(), 2);
    }
}
