//! Event-time watermarks per partition: the largest event time seen minus
//! the allowed out-of-orderness. A task's watermark is the minimum over its
//! partitions, since any of them may still deliver older events.

use std::collections::BTreeMap;

/// Watermark tracking for the partitions of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermarks {
    out_of_orderness_ms: i64,
    max_event_time: BTreeMap<i32, i64>,
}

impl Watermarks {
    pub fn new(out_of_orderness_ms: u64) -> Self {
        Self {
            out_of_orderness_ms: i64::try_from(out_of_orderness_ms).unwrap_or(i64::MAX),
            max_event_time: BTreeMap::new(),
        }
    }

    /// Restores a partition's watermark from a checkpoint.
    pub fn restore(&mut self, partition: i32, watermark: Option<i64>) {
        if let Some(w) = watermark {
            self.max_event_time
                .insert(partition, w.saturating_add(self.out_of_orderness_ms));
        }
    }

    /// Records an event time; returns whether the event is late (behind the
    /// partition's watermark before this event).
    pub fn observe(&mut self, partition: i32, event_time_ms: i64) -> bool {
        let late = self.partition(partition).is_some_and(|w| event_time_ms < w);
        let max = self.max_event_time.entry(partition).or_insert(i64::MIN);
        *max = (*max).max(event_time_ms);
        late
    }

    /// The partition's watermark, once it has seen an event.
    pub fn partition(&self, partition: i32) -> Option<i64> {
        self.max_event_time
            .get(&partition)
            .map(|m| m.saturating_sub(self.out_of_orderness_ms))
    }

    /// The minimum over `partitions`; `None` until every one has seen an event.
    pub fn combined(&self, partitions: impl IntoIterator<Item = i32>) -> Option<i64> {
        partitions
            .into_iter()
            .map(|p| self.partition(p))
            .try_fold(i64::MAX, |acc, w| w.map(|w| acc.min(w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_trails_the_max_by_the_bound_and_flags_late_events() {
        let mut w = Watermarks::new(100);
        assert!(!w.observe(0, 1_000));
        assert_eq!(w.partition(0), Some(900));
        assert!(!w.observe(0, 950), "within the bound");
        assert_eq!(w.partition(0), Some(900), "never goes back");
        assert!(w.observe(0, 899), "behind the watermark");
        assert_eq!(w.combined([0, 1]), None, "partition 1 has not spoken");
        w.observe(1, 500);
        assert_eq!(w.combined([0, 1]), Some(400));
    }

    #[test]
    fn restored_watermarks_continue() {
        let mut w = Watermarks::new(50);
        w.restore(3, Some(1_000));
        assert_eq!(w.partition(3), Some(1_000));
        assert!(w.observe(3, 999));
    }
}
