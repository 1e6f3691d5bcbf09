//! Exponential backoff with jitter: the one retry delay used by every loop
//! that waits out a failure (intake, relay, deployments, sinks, restarts,
//! workflow steps).
//!
//! Pure: the jitter comes from a seeded generator, so a seed replays the same
//! delays. Callers that want independent replicas to spread out seed it from
//! [`BackoffPolicy::start`] with a random seed; workflow steps seed it from
//! the run and step so a replayed run computes the same timer.

use std::time::Duration;

/// How delays grow: `initial`, then × `multiplier` per failed attempt, capped
/// at `max`; each delay is then cut by a random share of up to `jitter`
/// (0 = none, 1 = anywhere between 0 and the delay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: f64,
}

/// Jitter spreads retries of replicas that failed together; a fifth of the
/// delay is enough to de-synchronise them without making waits much shorter.
const DEFAULT_JITTER: f64 = 0.2;

impl BackoffPolicy {
    /// Doubling from `initial` up to `max`, with the default jitter.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            multiplier: 2.0,
            jitter: DEFAULT_JITTER,
        }
    }

    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    pub const fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay after failed attempt `attempt` (1-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let factor = self.multiplier.max(1.0).powi(exp);
        let ms = (self.initial.as_millis() as f64 * factor).min(self.max.as_millis() as f64);
        Duration::from_millis(ms.max(0.0) as u64)
    }

    /// The delay after failed attempt `attempt`, with jitter drawn from
    /// `unit` (a number in `[0, 1)`).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        let cut = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }

    /// A fresh backoff whose jitter comes from `seed`.
    pub fn start(self, seed: u64) -> Backoff {
        Backoff {
            policy: self,
            failures: 0,
            rng: seed | 1,
        }
    }
}

/// The state of one retry loop: how many failures in a row, and the jitter
/// generator.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// Records a failure; returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let unit = self.next_unit();
        self.policy.delay(self.failures, unit)
    }

    /// A success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// xorshift64*: plenty for jitter, and keeps this module free of I/O.
    fn next_unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap_without_jitter() {
        let p = BackoffPolicy::new(MS(100), MS(1000)).with_jitter(0.0);
        let mut b = p.start(7);
        let got: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000].map(MS));
        b.reset();
        assert_eq!(b.next_delay(), MS(100));
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_share() {
        let p = BackoffPolicy::new(MS(1000), MS(1000)).with_jitter(0.2);
        let mut b = p.start(42);
        let delays: Vec<_> = (0..1000).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= MS(800) && *d <= MS(1000)));
        // Spread, not a constant: replicas that failed together drift apart.
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
    }

    #[test]
    fn the_same_seed_replays_the_same_delays() {
        let p = BackoffPolicy::new(MS(10), MS(10_000));
        let a: Vec<_> = {
            let mut b = p.start(99);
            (0..20).map(|_| b.next_delay()).collect()
        };
        let mut b = p.start(99);
        assert_eq!(a, (0..20).map(|_| b.next_delay()).collect::<Vec<_>>());
    }

    #[test]
    fn absurd_attempts_and_multipliers_saturate_at_the_cap() {
        let p = BackoffPolicy::new(MS(1), MS(5000)).with_multiplier(1e300);
        assert_eq!(p.base_delay(u32::MAX), MS(5000));
        let p = BackoffPolicy::new(MS(50), MS(5000)).with_multiplier(0.1);
        assert_eq!(
            p.base_delay(10),
            MS(50),
            "a multiplier below 1 never shrinks delays"
        );
    }
}
