//! When a crashed task restarts: exponential backoff with jitter, and a
//! restart budget over a sliding window after which the task is marked failed.

use std::collections::VecDeque;
use std::time::Duration;

use crate::domain::{Backoff, BackoffPolicy};

/// Restart settings of the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Restarts allowed within `window`.
    pub budget: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            budget: 10,
            window: Duration::from_secs(300),
        }
    }
}

impl RestartPolicy {
    /// The delays between restarts: doubling from `initial_backoff` up to
    /// `max_backoff`, jittered so the tasks of a deployment that crashed
    /// together (a broker outage) do not all come back at the same instant.
    pub fn backoff(&self) -> BackoffPolicy {
        BackoffPolicy::new(self.initial_backoff, self.max_backoff)
    }
}

/// Tracks one task's crashes.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    recent_ms: VecDeque<u64>,
    backoff: Backoff,
}

impl RestartTracker {
    /// `seed` draws the jitter: random in the runtime, fixed in tests.
    pub fn new(policy: RestartPolicy, seed: u64) -> Self {
        Self {
            backoff: policy.backoff().start(seed),
            policy,
            recent_ms: VecDeque::new(),
        }
    }

    /// Records a crash at `now_ms`: the backoff before the restart, or `None`
    /// when the budget is spent and the task must be marked failed.
    pub fn on_crash(&mut self, now_ms: u64) -> Option<Duration> {
        let window = self.policy.window.as_millis() as u64;
        while self
            .recent_ms
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > window)
        {
            self.recent_ms.pop_front();
        }
        if self.recent_ms.len() >= self.policy.budget as usize {
            return None;
        }
        self.recent_ms.push_back(now_ms);
        Some(self.backoff.next_delay())
    }

    /// A task that ran healthily (e.g. completed a checkpoint) resets the backoff.
    pub fn on_healthy(&mut self) {
        self.backoff.reset();
    }

    /// Restarts so far within the window.
    pub fn restarts(&self) -> u32 {
        self.recent_ms.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            initial_backoff: MS(100),
            max_backoff: MS(300),
            budget: 3,
            window: Duration::from_secs(60),
        }
    }

    /// Jitter only shortens a delay, by at most its share of it.
    fn assert_jittered(got: Option<Duration>, base: Duration) {
        let jitter = policy().backoff().jitter;
        let got = got.expect("a restart, not a spent budget");
        assert!(
            got <= base && got >= base.mul_f64(1.0 - jitter),
            "{got:?} is not within the jitter below {base:?}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_the_budget_runs_out() {
        for seed in 0..100 {
            let mut t = RestartTracker::new(policy(), seed);
            assert_jittered(t.on_crash(0), MS(100));
            assert_jittered(t.on_crash(1), MS(200));
            assert_jittered(t.on_crash(2), MS(300));
            assert_eq!(t.on_crash(3), None, "budget spent");
            assert_eq!(t.restarts(), 3);
            // Outside the window the budget is available again.
            t.on_healthy();
            assert_jittered(t.on_crash(70_000), MS(100));
            assert_eq!(t.restarts(), 1);
        }
    }

    #[test]
    fn without_a_healthy_run_the_backoff_keeps_growing_across_windows() {
        let mut t = RestartTracker::new(policy(), 7);
        for i in 0..3 {
            t.on_crash(i);
        }
        assert_jittered(t.on_crash(70_000), MS(300));
    }

    #[test]
    fn tasks_that_crash_together_restart_at_different_times() {
        let delays: std::collections::BTreeSet<_> = (0..20)
            .map(|seed| RestartTracker::new(policy(), seed).on_crash(0))
            .collect();
        assert!(delays.len() > 1, "{delays:?}");
    }
}
