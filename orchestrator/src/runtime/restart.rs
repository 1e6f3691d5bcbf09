//! When a crashed task restarts: exponential backoff, and a restart budget
//! over a sliding window after which the task is marked failed.

use std::collections::VecDeque;
use std::time::Duration;

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

/// Tracks one task's crashes.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker {
    recent_ms: VecDeque<u64>,
    consecutive: u32,
}

impl RestartTracker {
    /// Records a crash at `now_ms`: the backoff before the restart, or `None`
    /// when the budget is spent and the task must be marked failed.
    pub fn on_crash(&mut self, policy: &RestartPolicy, now_ms: u64) -> Option<Duration> {
        let window = policy.window.as_millis() as u64;
        while self
            .recent_ms
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) > window)
        {
            self.recent_ms.pop_front();
        }
        if self.recent_ms.len() >= policy.budget as usize {
            return None;
        }
        self.recent_ms.push_back(now_ms);
        let backoff = policy
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(self.consecutive.min(16)))
            .min(policy.max_backoff);
        self.consecutive += 1;
        Some(backoff)
    }

    /// A task that ran healthily (e.g. completed a checkpoint) resets the backoff.
    pub fn on_healthy(&mut self) {
        self.consecutive = 0;
    }

    /// Restarts so far within the window.
    pub fn restarts(&self) -> u32 {
        self.recent_ms.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_the_budget_runs_out() {
        let p = RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            budget: 3,
            window: Duration::from_secs(60),
        };
        let mut t = RestartTracker::default();
        assert_eq!(t.on_crash(&p, 0), Some(Duration::from_millis(100)));
        assert_eq!(t.on_crash(&p, 1), Some(Duration::from_millis(200)));
        assert_eq!(t.on_crash(&p, 2), Some(Duration::from_millis(300)));
        assert_eq!(t.on_crash(&p, 3), None, "budget spent");
        // Outside the window the budget is available again.
        t.on_healthy();
        assert_eq!(t.on_crash(&p, 70_000), Some(Duration::from_millis(100)));
    }
}
