//! Who each peer id belongs to, beyond its connection.
//!
//! A peer id is public (a client's messages carry it), and a client that reconnects after a
//! drop joins with the same one: the server closes its older socket and lets it in. So the id
//! must stay its participant's between the drop and the return — otherwise anyone who saw it
//! could join with it first and keep its owner out.

use std::collections::HashMap;

use toron_protocol::PeerId;

/// Peer ids and the participant each belongs to: bound at its first join, for
/// [`PEER_ID_LIFETIME`] after it was last used, at most [`PEER_IDS_PER_PARTICIPANT`] per
/// participant (their least recently used goes first), so the table is bounded by the people,
/// not by what one of them sends.
#[derive(Debug, Default)]
pub struct PeerOwners {
    by_peer: HashMap<PeerId, (Option<String>, std::time::Instant)>,
    by_participant: HashMap<Option<String>, usize>,
}

/// How long a peer id stays its participant's after its last connection closed. It covers a
/// debate and its evening: a phone that slept through the break comes back as itself.
pub const PEER_ID_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Peer ids one participant may hold (a browser makes one per page load).
pub const PEER_IDS_PER_PARTICIPANT: usize = 256;

impl PeerOwners {
    /// Binds `peer` to `participant` (or renews it), unless it is somebody else's.
    pub fn claim(&mut self, peer: &PeerId, participant: Option<&str>) -> bool {
        let now = std::time::Instant::now();
        if let Some((owner, last)) = self.by_peer.get_mut(peer) {
            if now.duration_since(*last) < PEER_ID_LIFETIME {
                if owner.as_deref() != participant {
                    return false;
                }
                *last = now;
                return true;
            }
            let owner = owner.clone();
            self.forget(peer, &owner);
        }
        let who = participant.map(str::to_string);
        let held = self.by_participant.get(&who).copied().unwrap_or(0);
        if held >= PEER_IDS_PER_PARTICIPANT {
            // Their least recently used id goes (expired ones of anybody's too).
            self.by_peer
                .retain(|_, (_, last)| now.duration_since(*last) < PEER_ID_LIFETIME);
            let mut counts: HashMap<Option<String>, usize> = HashMap::new();
            for (o, _) in self.by_peer.values() {
                *counts.entry(o.clone()).or_default() += 1;
            }
            self.by_participant = counts;
            if self.by_participant.get(&who).copied().unwrap_or(0) >= PEER_IDS_PER_PARTICIPANT {
                let oldest = self
                    .by_peer
                    .iter()
                    .filter(|(_, (o, _))| *o == who)
                    .min_by_key(|(_, (_, last))| *last)
                    .map(|(p, _)| p.clone());
                if let Some(p) = oldest {
                    self.forget(&p, &who);
                }
            }
        }
        self.by_peer.insert(peer.clone(), (who.clone(), now));
        *self.by_participant.entry(who).or_default() += 1;
        true
    }

    fn forget(&mut self, peer: &PeerId, owner: &Option<String>) {
        if self.by_peer.remove(peer).is_some() {
            if let Some(n) = self.by_participant.get_mut(owner) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_participant.remove(owner);
                }
            }
        }
    }

    /// The id was last used now (its connection closed).
    pub fn touch(&mut self, peer: &PeerId) {
        if let Some((_, last)) = self.by_peer.get_mut(peer) {
            *last = std::time::Instant::now();
        }
    }
}
