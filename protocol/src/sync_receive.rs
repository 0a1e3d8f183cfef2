//! Receiving a sync message without automerge's history walk.
//!
//! automerge 0.12's `receive_sync_message` ends every receive by walking all ancestors of the
//! sender's heads — the whole history — to drop from `sent_hashes` the changes the sender now
//! has (`filter_changes`). In a busy debate every participant's every message pays that walk,
//! and it grows with the document: at 40 edits a second on one document it was half of the
//! server's time, and the reason fan-out fell behind.
//!
//! The trim is housekeeping: `sent_hashes` only keeps a change from being sent twice, and a
//! change the peer already has (an ancestor of its heads) is never chosen for sending again
//! anyway — it is either behind the last shared heads or in the peer's Bloom filter, which has
//! no false negatives. So here the trim is exact where it is free — a peer whose heads are
//! ours has everything we sent; a hash among the peer's heads is had — and everything else is
//! left in place until more than [`UNTRIMMED_LIMIT`] hashes would remain, when automerge's own
//! receive (and its walk) runs. All other effects on the sync state are automerge's, field by
//! field; tests compare the messages both produce, byte for byte.
//!
//! [`receive`] is the client's (the CLI's sync client, the load generator); the server's
//! engine calls [`receive_applied`], as it applies changes itself before.
//!
//! The server also keeps each document's [`RecentChanges`]: the last few thousand changes in
//! the order they were added, with their dependencies. When the cheap trim would leave too
//! much, the trim walks back from the peer's heads through those — and only as far back as the
//! oldest hash it sent that peer, since a change's ancestors were all added before it — which
//! is exactly automerge's trim at the cost of the changes since, not of the whole history.
//! Without it, one document taking hundreds of edits a second from a few writers (whose
//! answers rarely name our exact heads) spent half the server's time in automerge's walk.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Automerge, AutomergeError, ChangeHash, ReadDoc};

/// Most hashes left untrimmed in `sent_hashes` before the full trim runs.
pub const UNTRIMMED_LIMIT: usize = 64;

/// How many of a document's latest changes [`RecentChanges`] keeps.
pub const RECENT_WINDOW: usize = 4096;

/// A document's latest changes, each with its place in the order they were added and its
/// dependencies (see the module's text).
#[derive(Debug, Default)]
pub struct RecentChanges {
    nodes: HashMap<ChangeHash, (u64, Vec<ChangeHash>)>,
    added: VecDeque<ChangeHash>,
    next: u64,
}

impl RecentChanges {
    /// Records a change just added to the document. Changes must be recorded in causal order
    /// (as `get_changes` lists them), so that every change comes after its dependencies.
    pub fn record(&mut self, hash: ChangeHash, deps: &[ChangeHash]) {
        if self.nodes.contains_key(&hash) {
            return;
        }
        self.nodes.insert(hash, (self.next, deps.to_vec()));
        self.next += 1;
        self.added.push_back(hash);
        while self.added.len() > RECENT_WINDOW {
            if let Some(old) = self.added.pop_front() {
                self.nodes.remove(&old);
            }
        }
    }

    /// Removes from `sent` every hash that is among `heads` or an ancestor of them, as
    /// automerge's trim does. Returns `false`, changing nothing, when a hash in `sent` is
    /// older than the window (then only automerge's walk can tell).
    pub fn remove_ancestors(&self, sent: &mut BTreeSet<ChangeHash>, heads: &[ChangeHash]) -> bool {
        let mut oldest = u64::MAX;
        for h in sent.iter() {
            match self.nodes.get(h) {
                Some((order, _)) => oldest = oldest.min(*order),
                None => return false,
            }
        }
        let mut stack: Vec<ChangeHash> = heads.to_vec();
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        while let Some(h) = stack.pop() {
            if sent.is_empty() {
                break;
            }
            // A change older than the window has only older ancestors, none of them sent; a
            // change we do not have is skipped, as automerge skips it.
            let Some((order, deps)) = self.nodes.get(&h) else {
                continue;
            };
            if *order < oldest || !seen.insert(h) {
                continue;
            }
            sent.remove(&h);
            stack.extend(deps.iter().copied());
        }
        true
    }
}

fn resets(msg: &sync::Message) -> bool {
    msg.flags
        .is_some_and(|f| f.contains(sync::MessageFlags::SYNC_RESET))
}

/// Whether the cheap trim keeps `sent_hashes` within bounds for this message.
fn cheap_trim_suffices(
    ours_after: &[ChangeHash],
    state: &sync::State,
    msg: &sync::Message,
) -> bool {
    if resets(msg) || msg.heads.is_empty() || state.sent_hashes.len() <= UNTRIMMED_LIMIT {
        return true;
    }
    let mut theirs = msg.heads.clone();
    theirs.sort();
    theirs == ours_after
        || state
            .sent_hashes
            .iter()
            .filter(|h| !msg.heads.contains(h))
            .count()
            <= UNTRIMMED_LIMIT
}

/// Applies `msg` to `doc` and `state` as `doc.sync().receive_sync_message(state, msg)` would,
/// trimming `sent_hashes` lazily (see the module's text).
pub fn receive(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    msg: sync::Message,
) -> Result<(), AutomergeError> {
    let before = doc.get_heads();
    // With changes, the heads after applying them are not known yet: only a small
    // `sent_hashes` (or a reset) is sure to stay within bounds.
    let cheap = if msg.changes.is_empty() {
        cheap_trim_suffices(&before, state, &msg)
    } else {
        resets(&msg) || state.sent_hashes.len() <= UNTRIMMED_LIMIT
    };
    if !cheap {
        return doc.sync().receive_sync_message(state, msg);
    }
    if !msg.changes.is_empty() && !state.read_only {
        let mut joined = Vec::with_capacity(msg.changes.iter().map(<[u8]>::len).sum());
        for chunk in msg.changes.iter() {
            joined.extend_from_slice(chunk);
        }
        doc.load_incremental(&joined)?;
        let after = doc.get_heads();
        state.shared_heads = advance_heads(&before, &after, &state.shared_heads);
    }
    update_state(doc.document(), &before, state, msg);
    Ok(())
}

/// The server's receive: `msg`'s changes were applied to `doc` already (and taken out of it),
/// and recorded in `recent`. Gives the message back when automerge's own receive must run.
pub fn receive_applied(
    doc: &Automerge,
    heads_now: &[ChangeHash],
    state: &mut sync::State,
    msg: sync::Message,
    recent: &RecentChanges,
) -> Result<(), Box<sync::Message>> {
    if !msg.changes.is_empty() {
        return Err(Box::new(msg));
    }
    if !cheap_trim_suffices(heads_now, state, &msg)
        && !recent.remove_ancestors(&mut state.sent_hashes, &msg.heads)
    {
        return Err(Box::new(msg));
    }
    update_state(doc, heads_now, state, msg);
    Ok(())
}

/// Everything `receive_sync_message_inner` does after applying the changes, with the cheap trim.
/// `before`: our heads before the message's changes were applied.
fn update_state(
    doc: &Automerge,
    before: &[ChangeHash],
    state: &mut sync::State,
    msg: sync::Message,
) {
    state.in_flight = false;
    let resets = resets(&msg);
    if let Some(flags) = msg.flags {
        let mut caps = vec![sync::Capability::MessageV2];
        if flags.contains(sync::MessageFlags::SUPPORTS_SYNC_RESET) {
            caps.push(sync::Capability::SyncReset);
        }
        state.their_capabilities = Some(caps);
        if resets {
            state.sent_hashes.clear();
        }
        state.peer_read_only = flags.contains(sync::MessageFlags::READ_ONLY);
    }
    let now = doc.get_heads();
    // The trim: exact when the peer has our heads (everything we sent is among their
    // ancestors), else what is among their heads.
    let mut theirs = msg.heads.clone();
    theirs.sort();
    if !theirs.is_empty() && theirs == now {
        state.sent_hashes.clear();
    } else {
        for h in &msg.heads {
            state.sent_hashes.remove(h);
        }
    }
    if msg.changes.is_empty() && msg.heads == before {
        state.last_sent_heads.clone_from(&msg.heads);
    }
    let now: HashSet<ChangeHash> = now.into_iter().collect();
    let known: Vec<ChangeHash> = msg
        .heads
        .iter()
        .filter(|h| now.contains(h) || doc.get_change_by_hash(h).is_some())
        .copied()
        .collect();
    if known.len() == msg.heads.len() {
        state.shared_heads.clone_from(&msg.heads);
        if msg.heads.is_empty() {
            state.last_sent_heads = Vec::new();
            state.sent_hashes = Default::default();
        }
    } else {
        let mut shared: Vec<ChangeHash> =
            state.shared_heads.iter().chain(&known).copied().collect();
        shared.sort();
        shared.dedup();
        state.shared_heads = shared;
    }
    state.their_have = Some(msg.have);
    state.their_heads = Some(msg.heads);
    state.their_need = Some(msg.need);
}

/// The shared heads after our heads moved from `old` to `new`: our new heads, and the shared
/// heads that are still heads (automerge's rule).
fn advance_heads(old: &[ChangeHash], new: &[ChangeHash], shared: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut out: Vec<ChangeHash> = new
        .iter()
        .filter(|h| !old.contains(h))
        .chain(shared.iter().filter(|h| new.contains(h)))
        .copied()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ActorId, ROOT};

    /// One hub and three spokes; `lazy` picks this module's receive, else automerge's.
    struct World {
        hub: AutoCommit,
        spokes: Vec<AutoCommit>,
        hub_states: Vec<sync::State>,
        spoke_states: Vec<sync::State>,
        lazy: bool,
    }

    impl World {
        fn new(lazy: bool) -> Self {
            let doc = |n: u8| AutoCommit::new().with_actor(ActorId::from(vec![n; 16]));
            World {
                hub: doc(9),
                spokes: (0..3).map(doc).collect(),
                hub_states: (0..3).map(|_| sync::State::new()).collect(),
                spoke_states: (0..3).map(|_| sync::State::new()).collect(),
                lazy,
            }
        }

        fn recv(lazy: bool, doc: &mut AutoCommit, state: &mut sync::State, m: sync::Message) {
            if lazy {
                receive(doc, state, m).expect("receive");
            } else {
                doc.sync()
                    .receive_sync_message(state, m)
                    .expect("automerge");
            }
        }

        /// One exchange round; returns every message sent, encoded. With `mid`, the hub
        /// edits while the spokes' answers are on their way (they cross).
        fn round(&mut self, mid: Option<i64>) -> Vec<Vec<u8>> {
            let mut sent = Vec::new();
            for i in 0..3 {
                if let Some(m) = self
                    .hub
                    .sync()
                    .generate_sync_message(&mut self.hub_states[i])
                {
                    sent.push(m.clone().encode());
                    Self::recv(self.lazy, &mut self.spokes[i], &mut self.spoke_states[i], m);
                }
            }
            let answers: Vec<_> = (0..3)
                .map(|i| {
                    self.spokes[i]
                        .sync()
                        .generate_sync_message(&mut self.spoke_states[i])
                })
                .collect();
            if let Some(n) = mid {
                edit(&mut self.hub, "mid", n);
            }
            for (i, m) in answers.into_iter().enumerate() {
                if let Some(m) = m {
                    sent.push(m.clone().encode());
                    Self::recv(self.lazy, &mut self.hub, &mut self.hub_states[i], m);
                }
            }
            sent
        }
    }

    fn edit(doc: &mut AutoCommit, key: &str, n: i64) {
        doc.put(ROOT, key, n).expect("put");
        doc.commit_with(CommitOptions::default().with_time(0));
    }

    /// The same edits, with concurrent writers and bursts larger than [`UNTRIMMED_LIMIT`],
    /// synced once with automerge's receive and once with this one: every message sent is
    /// the same, byte for byte, and the lazy trim was used.
    #[test]
    fn the_messages_are_those_of_automerge_byte_for_byte() {
        let mut plain = World::new(false);
        let mut lazy = World::new(true);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let (mut rounds, mut kept) = (0, 0);
        for step in 0..80i64 {
            for w in [&mut plain, &mut lazy] {
                let mut y = x;
                for i in 0..3 {
                    y ^= y << 13;
                    y ^= y >> 7;
                    y ^= y << 17;
                    if y % 3 != 0 {
                        edit(&mut w.spokes[i], &format!("s{i}"), step);
                    }
                }
                // Now and then a burst, bigger than the untrimmed bound.
                let burst = if step % 25 == 0 {
                    UNTRIMMED_LIMIT + 10
                } else {
                    1
                };
                for b in 0..burst {
                    edit(&mut w.hub, "hub", step * 1000 + b as i64);
                }
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Exchange only partly, so that messages cross and peers fall behind.
            for _ in 0..(1 + step % 3) {
                let mid = (step % 2 == 0).then_some(step);
                let (a, b) = (plain.round(mid), lazy.round(mid));
                assert_eq!(a, b, "messages differ at step {step}");
                rounds += 1;
                for (p, l) in plain.hub_states.iter().zip(&lazy.hub_states) {
                    assert!(l.sent_hashes.is_superset(&p.sent_hashes));
                    assert!(l.sent_hashes.len() <= p.sent_hashes.len() + UNTRIMMED_LIMIT);
                    if l.sent_hashes.len() > p.sent_hashes.len() {
                        kept += 1;
                    }
                }
            }
        }
        for _ in 0..40 {
            let (a, b) = (plain.round(None), lazy.round(None));
            assert_eq!(a, b);
            if a.is_empty() {
                break;
            }
        }
        for w in [&mut plain, &mut lazy] {
            let heads = w.hub.get_heads();
            for s in &mut w.spokes {
                assert_eq!(s.get_heads(), heads);
            }
        }
        assert_eq!(plain.hub.get_heads(), lazy.hub.get_heads());
        assert!(rounds > 100);
        // The lazy world really kept hashes that automerge had trimmed.
        assert!(kept > 10, "the lazy trim left hashes {kept} times");
    }

    /// Concurrent writers make a branching history; for many sets of sent hashes and of
    /// heads, the window's trim leaves exactly what automerge's receive leaves.
    #[test]
    fn the_window_trims_exactly_as_automerge_does() {
        let doc = |n: u8| AutoCommit::new().with_actor(ActorId::from(vec![n; 16]));
        let mut writers: Vec<AutoCommit> = (1..=4).map(doc).collect();
        let mut snapshots: Vec<Vec<ChangeHash>> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..150i64 {
            let w = (rand() % 4) as usize;
            edit(&mut writers[w], &format!("w{w}"), step);
            if rand() % 3 == 0 {
                let (a, b) = ((rand() % 4) as usize, (rand() % 4) as usize);
                if a != b {
                    let mut other = writers[b].clone();
                    writers[a].merge(&mut other).expect("merge");
                }
            }
            snapshots.push(writers[w].get_heads());
        }
        let mut hub = doc(9);
        for w in &mut writers {
            hub.merge(w).expect("merge");
        }
        let all = hub.get_changes(&[]);
        let mut recent = RecentChanges::default();
        for c in &all {
            recent.record(c.hash(), c.deps());
        }
        let hashes: Vec<ChangeHash> = all.iter().map(|c| c.hash()).collect();
        let mut trimmed = 0;
        for _ in 0..300 {
            let sent: BTreeSet<ChangeHash> = (0..(rand() % 40))
                .map(|_| hashes[(rand() as usize) % hashes.len()])
                .collect();
            let heads = snapshots[(rand() as usize) % snapshots.len()].clone();
            let mut state = sync::State::new();
            state.sent_hashes = sent.clone();
            let msg = sync::Message {
                heads: heads.clone(),
                need: Vec::new(),
                have: vec![sync::Have::default()],
                changes: sync::ChunkList::empty(),
                flags: None,
                version: sync::MessageVersion::V1,
            };
            hub.document()
                .clone()
                .receive_sync_message(&mut state, msg)
                .expect("automerge");
            let mut ours = sent.clone();
            assert!(recent.remove_ancestors(&mut ours, &heads));
            assert_eq!(ours, state.sent_hashes);
            trimmed += sent.len() - ours.len();
        }
        assert!(trimmed > 1000, "{trimmed} hashes trimmed");
        // A hash older than the window: the window cannot tell, and says so.
        let mut small = RecentChanges::default();
        for c in &all {
            small.record(c.hash(), c.deps());
        }
        for i in 0..RECENT_WINDOW as u64 {
            let mut filler = [0xaa; 32];
            filler[..8].copy_from_slice(&i.to_le_bytes());
            small.record(ChangeHash(filler), &[]);
        }
        let mut old: BTreeSet<ChangeHash> = [hashes[0]].into_iter().collect();
        assert!(!small.remove_ancestors(&mut old, &hub.get_heads()));
        assert_eq!(old.len(), 1);
    }

    #[test]
    fn a_reset_or_an_empty_peer_is_handled_like_automerge() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1).expect("put");
        doc.commit();
        for reset in [false, true] {
            let mut state = sync::State::new();
            state.shared_heads = doc.get_heads();
            state.last_sent_heads = doc.get_heads();
            if reset {
                // Something unacknowledged, which the reset clears.
                state.sent_hashes.extend(doc.get_heads());
            }
            let mut flags = sync::MessageFlags::new();
            flags.set(sync::MessageFlags::SUPPORTS_SYNC_RESET);
            if reset {
                flags.set(sync::MessageFlags::SYNC_RESET);
            }
            let empty = sync::Message {
                heads: Vec::new(),
                need: Vec::new(),
                have: vec![sync::Have::default()],
                changes: sync::ChunkList::empty(),
                flags: Some(flags),
                version: sync::MessageVersion::V1,
            };
            let mut slow_doc = doc.clone();
            let mut slow_state = state.clone();
            slow_doc
                .sync()
                .receive_sync_message(&mut slow_state, empty.clone())
                .expect("automerge");
            receive(&mut doc, &mut state, empty).expect("receive");
            assert_eq!(state.sent_hashes, slow_state.sent_hashes);
            assert_eq!(state.shared_heads, slow_state.shared_heads);
            assert_eq!(state.last_sent_heads, slow_state.last_sent_heads);
            assert_eq!(state.their_heads, slow_state.their_heads);
        }
    }
}
