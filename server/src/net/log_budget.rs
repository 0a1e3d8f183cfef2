//! A bound on the log lines that peers can cause.
//!
//! A refused join, a protocol error, a write that timed out: each is worth a line, and each
//! costs whoever causes it no more than a connection. Logged without a bound, a participant
//! opening connections in a loop would write the disk full (a red-team finding). So these
//! lines are written at most [`PER_SECOND`] a second; the others are counted, and the next
//! line written says how many were left out. `/metrics` counts every one of them anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Lines about peers written per second at most.
pub const PER_SECOND: u64 = 10;

#[derive(Debug)]
pub struct LogBudget {
    started: Instant,
    /// (second since `started`, lines written in it).
    window: Mutex<(u64, u64)>,
    left_out: AtomicU64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            window: Mutex::new((0, 0)),
            left_out: AtomicU64::new(0),
        }
    }
}

impl LogBudget {
    /// Whether a line about a peer may be written now. When lines were left out since the
    /// last one written, says so first.
    pub fn allow(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.0 != now {
            *w = (now, 0);
        }
        if w.1 >= PER_SECOND {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        w.1 += 1;
        drop(w);
        let left_out = self.left_out.swap(0, Ordering::Relaxed);
        if left_out > 0 {
            tracing::info!(
                left_out,
                "lines about peers left out of the log (at most {PER_SECOND} a second; /metrics counts them all)"
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_in_one_second() {
        let b = LogBudget::default();
        let allowed = (0..1000).filter(|_| b.allow()).count() as u64;
        // The loop may straddle a second: at most two windows' worth.
        assert!(
            (PER_SECOND..=2 * PER_SECOND).contains(&allowed),
            "{allowed}"
        );
        assert!(b.left_out.load(Ordering::Relaxed) > 0 || allowed == 2 * PER_SECOND);
    }
}
