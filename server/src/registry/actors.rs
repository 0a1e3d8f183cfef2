//! Actor bindings: which participant an Automerge actor id belongs to. An id is held while a
//! batch that introduces it is checked, bound only once that batch is durable, and released
//! if the batch is not taken.

use super::*;

impl Registry {
    /// Whom `actor` belongs to in the log (reservations of batches not yet durable aside).
    pub fn actor_owner(&self, actor: &[u8]) -> Option<String> {
        self.read().actors.get(actor).cloned()
    }

    /// Whom `actor` belongs to, or is held for by a batch on its way to the log.
    pub(super) fn actor_claimed_by(&self, actor: &[u8]) -> Option<String> {
        self.actor_owner(actor).or_else(|| {
            self.reserved_actors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(actor)
                .cloned()
        })
    }

    /// Holds `actor` for `participant` until its batch is durable; `false` if it is bound or
    /// held already.
    pub(super) fn reserve_actor(&self, participant: &str, actor: &[u8]) -> bool {
        if self.read().actors.contains_key(actor) {
            return false;
        }
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if held.contains_key(actor) {
            return false;
        }
        held.insert(actor.to_vec(), participant.to_string());
        true
    }

    /// The batch that introduced `bindings` is durable: they are bindings now.
    pub fn confirm_actors(&self, bindings: &[(Vec<u8>, String)]) {
        if bindings.is_empty() {
            return;
        }
        let mut st = self.write();
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (actor, participant) in bindings {
            held.remove(actor);
            st.actors
                .entry(actor.clone())
                .or_insert_with(|| participant.clone());
        }
    }

    /// The batch that introduced `bindings` did not reach the log: the ids are free again.
    pub fn release_actors(&self, bindings: &[(Vec<u8>, String)]) {
        if bindings.is_empty() {
            return;
        }
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (actor, participant) in bindings {
            if held.get(actor) == Some(participant) {
                held.remove(actor);
            }
        }
    }
}
