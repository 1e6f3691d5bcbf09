//! What a key's state has done, for metrics.

/// Cumulative counts for one key (or summed over keys with `+=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Matches emitted.
    pub matches: u64,
    /// Partial matches that timed out (emitted or not).
    pub timeouts: u64,
    /// Records at or behind the watermark, reported as late.
    pub late: u64,
    /// Partial matches dropped because the key was over its cap.
    pub dropped: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.matches += o.matches;
        self.timeouts += o.timeouts;
        self.late += o.late;
        self.dropped += o.dropped;
    }
}
