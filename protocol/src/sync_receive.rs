//! A client's receive of a sync message, without automerge's history walk when it has nothing
//! to trim.
//!
//! automerge 0.12's `receive_sync_message` ends every receive by walking all ancestors of the
//! sender's heads — the whole history — to drop from `sent_hashes` what the sender now has.
//! A client that has nothing unacknowledged (`sent_hashes` empty) pays that walk for nothing on
//! every message it gets; in a busy debate, that is every change of every other participant,
//! and the walk grows with the document. [`receive`] does what automerge's receive does, field
//! by field, and skips the walk exactly when it could not remove anything; otherwise it hands
//! the message to automerge. The CLI's sync client and the load generator use it; the server
//! has its own shortcut for acknowledgements in [`crate::engine`].

use std::collections::HashSet;

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, AutomergeError, ChangeHash};

/// Applies `msg` to `doc` and `state` as `doc.sync().receive_sync_message(state, msg)` would.
pub fn receive(
    doc: &mut AutoCommit,
    state: &mut sync::State,
    msg: sync::Message,
) -> Result<(), AutomergeError> {
    let resets = msg
        .flags
        .is_some_and(|f| f.contains(sync::MessageFlags::SYNC_RESET));
    if !state.sent_hashes.is_empty() && !resets {
        return doc.sync().receive_sync_message(state, msg);
    }
    state.in_flight = false;
    let before = doc.get_heads();
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
    let no_changes = msg.changes.is_empty();
    if !no_changes && !state.read_only {
        let mut joined = Vec::with_capacity(msg.changes.iter().map(<[u8]>::len).sum());
        for chunk in msg.changes.iter() {
            joined.extend_from_slice(chunk);
        }
        doc.load_incremental(&joined)?;
        let after = doc.get_heads();
        state.shared_heads = advance_heads(&before, &after, &state.shared_heads);
    }
    // Here automerge trims `sent_hashes`, which is empty.
    if no_changes && msg.heads == before {
        state.last_sent_heads.clone_from(&msg.heads);
    }
    let now: HashSet<ChangeHash> = doc.get_heads().into_iter().collect();
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
    Ok(())
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
    use automerge::transaction::Transactable;
    use automerge::ROOT;

    fn same(a: &sync::State, b: &sync::State) {
        assert_eq!(a.shared_heads, b.shared_heads);
        assert_eq!(a.last_sent_heads, b.last_sent_heads);
        assert_eq!(a.their_heads, b.their_heads);
        assert_eq!(a.their_need, b.their_need);
        assert_eq!(a.sent_hashes, b.sent_hashes);
        assert_eq!(a.in_flight, b.in_flight);
        assert_eq!(a.their_capabilities, b.their_capabilities);
        assert_eq!(a.peer_read_only, b.peer_read_only);
        assert_eq!(
            a.their_have.as_ref().map(|h| h.len()),
            b.their_have.as_ref().map(|h| h.len())
        );
    }

    /// Three peers edit concurrently through a hub; every receive of the spokes goes through
    /// [`receive`] and, on a copy, through automerge's own: documents and sync states must stay
    /// identical, and the walk must have been skipped often.
    #[test]
    fn receive_leaves_document_and_state_as_automerge_does() {
        let mut hub = AutoCommit::new();
        let mut spokes: Vec<AutoCommit> = (0..3).map(|_| AutoCommit::new()).collect();
        let mut hub_states: Vec<sync::State> = (0..3).map(|_| sync::State::new()).collect();
        let mut spoke_states: Vec<sync::State> = (0..3).map(|_| sync::State::new()).collect();
        let mut skipped = 0;
        // A fixed pseudo-random schedule of who edits when.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..60 {
            for (i, s) in spokes.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 3 == 0 {
                    s.put(ROOT, format!("s{i}"), round).expect("put");
                    s.commit();
                }
            }
            if round % 7 == 0 {
                hub.put(ROOT, "hub", round).expect("put");
                hub.commit();
            }
            for _ in 0..12 {
                let mut quiet = true;
                for i in 0..3 {
                    if let Some(m) = hub.sync().generate_sync_message(&mut hub_states[i]) {
                        quiet = false;
                        let mut slow_doc = spokes[i].clone();
                        let mut slow_state = spoke_states[i].clone();
                        if spoke_states[i].sent_hashes.is_empty() {
                            skipped += 1;
                        }
                        slow_doc
                            .sync()
                            .receive_sync_message(&mut slow_state, m.clone())
                            .expect("automerge");
                        receive(&mut spokes[i], &mut spoke_states[i], m).expect("receive");
                        same(&spoke_states[i], &slow_state);
                        assert_eq!(spokes[i].get_heads(), slow_doc.get_heads());
                    }
                    if let Some(m) = spokes[i].sync().generate_sync_message(&mut spoke_states[i]) {
                        quiet = false;
                        hub.sync()
                            .receive_sync_message(&mut hub_states[i], m)
                            .expect("hub");
                    }
                }
                if quiet {
                    break;
                }
            }
        }
        for s in &mut spokes {
            assert_eq!(s.get_heads(), hub.get_heads());
        }
        assert!(skipped >= 60, "the walk was skipped {skipped} times");
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
            same(&state, &slow_state);
        }
    }
}
