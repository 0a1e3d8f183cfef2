//! Fault injection for tests: hold commits back before they are declared durable, or make
//! them fail as a full disk or a failed flush would. A store opened without a gate (every
//! real server) never consults one.

use std::sync::{Arc, Condvar, Mutex};

/// Lets a test hold appends back after they are written but before they are declared durable.
#[derive(Debug, Clone)]
#[cfg_attr(any(test, feature = "fault-injection"), derive(Default))]
pub struct DurabilityGate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Debug, Default)]
struct GateState {
    held: bool,
    /// Tests only: the next commits fail as a full disk would, before anything is written.
    failing: bool,
    /// Tests only: the next commits write their batch, then fail as a flush or fsync would.
    failing_flush: bool,
    /// A commit is written and waiting at the gate.
    waiting: bool,
}

#[cfg(any(test, feature = "fault-injection"))]
/// Holds the gate closed until dropped (or released), so that a failing test cannot leave
/// the log writer blocked forever.
#[derive(Debug)]
#[must_use = "the gate opens again when this is dropped"]
pub struct GateHold(DurabilityGate);

#[cfg(any(test, feature = "fault-injection"))]
impl GateHold {
    pub fn release(self) {}
}

#[cfg(any(test, feature = "fault-injection"))]
impl Drop for GateHold {
    fn drop(&mut self) {
        let (lock, cv) = &*(self.0).0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).held = false;
        cv.notify_all();
    }
}

impl DurabilityGate {
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn hold(&self) -> GateHold {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).held = true;
        GateHold(self.clone())
    }

    /// From now on every commit fails with "No space left on device" before it writes
    /// anything (a full disk or a broken store, injected).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn fail_writes(&self) {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing = true;
    }

    /// From now on every commit writes its batch into sled and then fails as a flush or
    /// fsync would ("Input/output error"): the records are in sled's memory, not durable.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn fail_flushes(&self) {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing_flush = true;
    }

    pub(super) fn failing(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing
    }

    pub(super) fn failing_flush(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).failing_flush
    }

    /// Whether a written commit is being held back right now.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn is_holding_a_commit(&self) -> bool {
        let (lock, _) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).waiting
    }

    pub(super) fn wait(&self) {
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        while state.held {
            state.waiting = true;
            state = cv.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.waiting = false;
    }
}
