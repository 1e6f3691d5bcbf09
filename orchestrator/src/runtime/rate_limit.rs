//! A token bucket shared by all tasks of a job, enforcing the spec's
//! `rate_limit` (records emitted per second). Time is passed in, so the logic
//! is tested without sleeping.

use std::time::Duration;

/// Tokens refill continuously at `rate` per second, up to one second's worth.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, now_ms: u64) -> Self {
        let rate = f64::from(rate_per_sec.max(1));
        Self {
            rate,
            tokens: rate,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes `n` tokens. Returns how long the caller must wait before
    /// emitting; the tokens are taken either way (the debt delays later callers
    /// too), so a batch larger than the bucket is still admitted, just later.
    pub fn take(&mut self, n: u64, now_ms: u64) -> Duration {
        self.refill(now_ms);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_a_burst_of_one_second_then_paces() {
        let mut b = TokenBucket::new(100, 0);
        assert_eq!(b.take(100, 0), Duration::ZERO);
        assert_eq!(b.take(50, 0), Duration::from_millis(500));
        // After the wait, the debt is paid and the next take waits again.
        assert_eq!(b.take(10, 500), Duration::from_millis(100));
        assert_eq!(b.take(0, 2_000), Duration::ZERO);
    }

    #[test]
    fn over_a_long_run_the_rate_holds() {
        let mut b = TokenBucket::new(1_000, 0);
        let mut now = 0u64;
        for _ in 0..100 {
            now += b.take(100, now).as_millis() as u64;
        }
        // 10,000 records at 1,000/s with a 1,000 burst: about 9 s.
        assert!((8_900..=9_100).contains(&now), "{now}");
    }
}
