//! How many records the next batch may take. A checkpoint (and so a stop,
//! a rescale or an upgrade) is answered between batches, so a batch's
//! processing time is how long it waits: batches are sized to take about
//! [`TARGET`] from what the last one cost per record, up to `max_batch`.
//! Cheap records keep full batches; a UDF that spends a millisecond a
//! record gets batches of about a hundred.

use std::time::Duration;

/// Processing time a batch aims at.
pub const TARGET: Duration = Duration::from_millis(100);

/// The first batch's limit, before anything is known of the cost.
const FIRST: usize = 64;

/// The limit of the next batch, learnt from the last ones.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    limit: usize,
    max: usize,
}

impl BatchSizer {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            limit: FIRST.min(max),
            max,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A batch of `records` took `busy`: aim the next at [`TARGET`], moving
    /// at most a factor of two per batch so one odd batch (a slow sink
    /// write, a cold instance) does not swing it.
    pub fn observe(&mut self, records: usize, busy: Duration) {
        if records == 0 {
            return;
        }
        let per_record = busy.as_nanos() / records as u128;
        let ideal = usize::try_from(TARGET.as_nanos() / per_record.max(1)).unwrap_or(usize::MAX);
        let lo = (self.limit / 2).max(1);
        let hi = self.limit.saturating_mul(2);
        self.limit = ideal.clamp(lo, hi).clamp(1, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(s: &mut BatchSizer, per_record: Duration) {
        for _ in 0..20 {
            let n = s.limit();
            s.observe(n, per_record * n as u32);
        }
    }

    #[test]
    fn cheap_records_fill_whole_batches() {
        let mut s = BatchSizer::new(1024);
        assert_eq!(s.limit(), 64);
        settle(&mut s, Duration::from_micros(2));
        assert_eq!(s.limit(), 1024);
    }

    #[test]
    fn costly_records_get_batches_that_take_about_the_target() {
        let mut s = BatchSizer::new(1024);
        settle(&mut s, Duration::from_millis(1));
        assert_eq!(s.limit(), 100);
        // Ten times the cost: the limit follows, halving at most per batch.
        s.observe(100, Duration::from_millis(1000));
        assert_eq!(s.limit(), 50);
        settle(&mut s, Duration::from_millis(10));
        assert_eq!(s.limit(), 10);
        // Slower than the target for one record: one at a time.
        settle(&mut s, Duration::from_millis(500));
        assert_eq!(s.limit(), 1);
    }

    #[test]
    fn a_short_batch_teaches_the_cost_and_an_empty_one_nothing() {
        let mut s = BatchSizer::new(1024);
        s.observe(0, Duration::from_secs(5));
        assert_eq!(s.limit(), 64);
        s.observe(3, Duration::from_micros(3));
        assert_eq!(s.limit(), 128, "grows by at most a factor of two");
        assert_eq!(BatchSizer::new(8).limit(), 8);
        assert_eq!(BatchSizer::new(0).limit(), 1);
    }
}
