//! A token bucket for "changes per second per token": the bound on how fast one participant
//! may write (issue 8). Pure: the caller passes the time.
//!
//! The bucket holds up to `burst` changes and refills at `per_sec`. A message of `n` changes
//! is let through when the bucket holds `n` — or, for a message larger than the whole burst
//! (a bulk import), when the bucket is full — and then takes `n`, possibly going below zero:
//! such a message is never refused forever, and the writer waits the debt off before the
//! next. A refused message takes nothing.

/// One participant's allowance.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    balance: f64,
    at_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(per_sec: u32, burst: u32, now_ms: u64) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst,
            balance: burst,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.balance = (self.balance + elapsed * self.per_sec).min(self.burst);
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Takes `n` changes if the allowance has them (see the module docs); otherwise takes
    /// nothing and says after how many milliseconds it would.
    pub fn take(&mut self, n: usize, now_ms: u64) -> Result<(), u64> {
        self.refill(now_ms);
        let need = (n as f64).min(self.burst);
        if self.balance + 1e-9 >= need {
            self.balance -= n as f64;
            Ok(())
        } else {
            Err(((need - self.balance) / self.per_sec * 1000.0).ceil() as u64)
        }
    }

    /// Whether the bucket is full at `now_ms` (then it can be forgotten: a new one is equal).
    pub fn is_full(&self, now_ms: u64) -> bool {
        let mut b = self.clone();
        b.refill(now_ms);
        b.balance >= b.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut b = TokenBucket::new(10, 50, 0);
        assert_eq!(b.take(50, 0), Ok(()));
        assert_eq!(b.take(1, 0), Err(100));
        // 100 ms later one change is allowed again, not two.
        assert_eq!(b.take(1, 100), Ok(()));
        assert!(b.take(1, 100).is_err());
        // Over ten seconds, at most burst + 10 × rate get through.
        let mut passed = 0;
        let mut b = TokenBucket::new(10, 50, 0);
        for t in 0..=10_000u64 {
            if b.take(1, t).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 50 + 100);
    }

    #[test]
    fn a_message_larger_than_the_burst_passes_when_full_and_the_debt_is_waited_off() {
        let mut b = TokenBucket::new(100, 200, 0);
        assert_eq!(b.take(1000, 0), Ok(()));
        // 800 changes of debt at 100/s, plus one: 8.01 s.
        assert_eq!(b.take(1, 0), Err(8010));
        assert!(b.take(1, 8000).is_err());
        assert_eq!(b.take(1, 8010), Ok(()));
        // Refused messages take nothing.
        let mut b = TokenBucket::new(1, 5, 0);
        assert!(b.take(5, 0).is_ok());
        for _ in 0..10 {
            assert!(b.take(1, 500).is_err());
        }
        assert_eq!(b.take(1, 1000), Ok(()));
        assert!(!b.is_full(1000));
        assert!(b.is_full(6000));
    }
}
