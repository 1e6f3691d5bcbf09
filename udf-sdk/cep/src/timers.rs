//! Timers of many keys, bucketed by time: a key's timer is its number in
//! the bucket of the millisecond it is due.
//!
//! A binary heap of `(time, key)` pays a cache miss per level on every pop
//! (and a pointer chase per key comparison); with 100,000 keys that was
//! about 15% of a record's cost. Timers fall due in time order and are
//! mostly registered near the end (a window from now), so an ordered map of
//! buckets touches the same few nodes at both ends.

use std::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct Timers {
    buckets: BTreeMap<i64, Vec<u32>>,
    /// Emptied buckets, reused so registering allocates nothing.
    spare: Vec<Vec<u32>>,
}

impl Timers {
    /// Registers `id` at `at`. Stale entries are allowed: the caller checks
    /// each one it is handed against what it last registered.
    pub fn add(&mut self, at: i64, id: u32) {
        let spare = &mut self.spare;
        self.buckets
            .entry(at)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push(id);
    }

    /// The earliest bucket due at `watermark`, taken out: its time and ids
    /// (hand the list back with [`Timers::recycle`]).
    pub fn pop_due(&mut self, watermark: i64) -> Option<(i64, Vec<u32>)> {
        let entry = self.buckets.first_entry()?;
        if *entry.key() > watermark {
            return None;
        }
        Some(entry.remove_entry())
    }

    pub fn recycle(&mut self, mut ids: Vec<u32>) {
        ids.clear();
        self.spare.push(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::Timers;

    #[test]
    fn buckets_come_due_in_time_order() {
        let mut t = Timers::default();
        t.add(30, 1);
        t.add(10, 2);
        t.add(10, 3);
        assert!(t.pop_due(9).is_none());
        let (at, ids) = t.pop_due(30).unwrap();
        assert_eq!((at, &ids[..]), (10, &[2, 3][..]));
        t.recycle(ids);
        assert_eq!(t.pop_due(30).map(|(at, _)| at), Some(30));
        assert!(t.pop_due(i64::MAX).is_none());
    }
}
