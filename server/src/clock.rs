//! The server's wall clock. Every time the log records (receive times, metadata actions,
//! presence) is read from here, so that a test can drive a whole session under a clock it
//! controls and then check the history against the times it chose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The system clock, or a manual one shared by everybody who holds a clone.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// Real time (the default).
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `start_ms` (UTC milliseconds) until it is moved.
    pub fn manual(start_ms: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(start_ms))))
    }

    /// UTC milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance_ms(&self, ms: u64) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock.
    pub fn set_ms(&self, ms: u64) {
        if let Some(t) = &self.0 {
            t.store(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_is_shared_by_clones() {
        let c = Clock::manual(1_000);
        let seen_elsewhere = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance_ms(250);
        assert_eq!(seen_elsewhere.now_ms(), 1_250);
        c.set_ms(5);
        assert_eq!(seen_elsewhere.now_ms(), 5);
        let real = Clock::system();
        real.advance_ms(1_000_000);
        let now = real.now_ms();
        assert!(now > 1_700_000_000_000 && now < 4_000_000_000_000, "{now}");
    }
}
