//! Timers of many keys, bucketed by time: a key's timer is its number (and
//! its key's sort prefix) in the bucket of the millisecond it is due.
//!
//! A binary heap of `(time, key)` paid a cache miss per level on every pop
//! (and a pointer chase per key comparison): with 100,000 keys, about 15% of
//! a record's cost. Timers here sit in a ring of one bucket per millisecond
//! over the next [`HORIZON`] ms (a window from now, the common case), found
//! by subtraction; later ones wait in an ordered map.

use std::collections::{BTreeMap, VecDeque};

/// A key's timer: its number, and a prefix of its key that orders like the
/// key (see [`crate::keyed::KeyedEventTime::with_sort_prefix`]), so keys
/// due at the same time sort without reading their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub prefix: u64,
    pub id: u32,
}

/// How far ahead of the ring's start (ms) timers go into the ring: a
/// minute's windows fit, and its empty buckets cost 1.5 MiB at most.
const HORIZON: i64 = 1 << 16;

pub(crate) struct Timers {
    /// Bucket `i` holds the timers due at `base + i`.
    near: VecDeque<Vec<Entry>>,
    base: i64,
    /// Timers outside the ring when registered (too far ahead, or before
    /// its start).
    far: BTreeMap<i64, Vec<Entry>>,
    /// Every time before this one has been handed out.
    floor: i64,
    /// Emptied buckets, reused so registering allocates nothing.
    spare: Vec<Vec<Entry>>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            near: VecDeque::new(),
            base: i64::MIN,
            far: BTreeMap::new(),
            floor: i64::MIN,
            spare: Vec::new(),
        }
    }
}

impl Timers {
    /// Registers `id` at `at`, or at the earliest time not handed out yet
    /// if `at` is before it (it is then due at the next watermark, as it
    /// would be anyway); returns the time registered. Stale entries are
    /// allowed: the caller checks each one it is handed against the time it
    /// last registered. (The keys clamp first, then `add_exact`.)
    #[cfg(test)]
    pub fn add(&mut self, at: i64, entry: Entry) -> i64 {
        let at = self.clamp(at);
        self.add_exact(at, entry);
        at
    }

    /// Registers `id` at `at`, which must not have been handed out yet:
    /// not before the time last handed out (a bucket being woken may
    /// queue a later one of the same watermark move).
    pub fn add_exact(&mut self, at: i64, entry: Entry) {
        if self.near.is_empty() {
            self.base = at;
        }
        let offset = at.saturating_sub(self.base);
        if !(0..HORIZON).contains(&offset) {
            let spare = &mut self.spare;
            self.far
                .entry(at)
                .or_insert_with(|| spare.pop().unwrap_or_default())
                .push(entry);
            return;
        }
        let i = offset as usize;
        while self.near.len() <= i {
            let empty = self.spare.pop().unwrap_or_default();
            self.near.push_back(empty);
        }
        self.near[i].push(entry);
    }

    /// The time a timer asked for at `at` is registered at: never before
    /// the earliest time not handed out yet.
    pub fn clamp(&self, at: i64) -> i64 {
        at.max(self.floor)
    }

    /// The earliest bucket due at `watermark`, taken out: its time and ids
    /// (hand the list back with [`Timers::recycle`]).
    pub fn pop_due(&mut self, watermark: i64) -> Option<(i64, Vec<Entry>)> {
        self.floor = self.floor.max(watermark.saturating_add(1));
        let far = self.far.first_key_value().map(|(at, _)| *at);
        // Empty buckets at the front are passed over.
        while self.near.front().is_some_and(Vec::is_empty)
            && self.base <= watermark
            && far.is_none_or(|f| self.base < f)
        {
            if let Some(empty) = self.near.pop_front() {
                self.spare.push(empty);
            }
            self.base += 1;
        }
        let near = (!self.near.is_empty()).then_some(self.base);
        match (near, far) {
            (Some(n), f) if n <= watermark && f.is_none_or(|f| n <= f) => {
                let mut ids = self.near.pop_front()?;
                self.base += 1;
                // A time registered outside the ring and in it later: one bucket.
                if f == Some(n) {
                    if let Some(more) = self.far.remove(&n) {
                        ids.extend_from_slice(&more);
                        self.recycle(more);
                    }
                }
                Some((n, ids))
            }
            (_, Some(f)) if f <= watermark => self.far.remove_entry(&f),
            _ => None,
        }
    }

    /// The entries queued at or before `at` (stale ones included), in no
    /// set order, changing nothing: what [`pop_due`](Self::pop_due) will
    /// hand out by a watermark of `at`.
    pub fn due_by(&self, at: i64) -> impl Iterator<Item = &Entry> {
        // Buckets from the ring's start through `at`: none when `at` is
        // before it, all when it is further than a `usize` counts (wasm32).
        let upto = at.saturating_sub(self.base).saturating_add(1);
        let near = match usize::try_from(upto) {
            Ok(n) => n.min(self.near.len()),
            Err(_) if upto > 0 => self.near.len(),
            Err(_) => 0,
        };
        self.near
            .range(..near)
            .flatten()
            .chain(self.far.range(..=at).flat_map(|(_, ids)| ids))
    }

    pub fn recycle(&mut self, mut ids: Vec<Entry>) {
        ids.clear();
        self.spare.push(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, Timers, HORIZON};

    fn e(id: u32) -> Entry {
        Entry { prefix: 0, id }
    }

    fn drain(t: &mut Timers, watermark: i64) -> Vec<(i64, Vec<u32>)> {
        let mut got = Vec::new();
        while let Some((at, b)) = t.pop_due(watermark) {
            got.push((at, b.iter().map(|e| e.id).collect()));
        }
        got
    }

    #[test]
    fn buckets_come_due_in_time_order() {
        let mut t = Timers::default();
        t.add(30, e(1));
        t.add(10, e(2));
        t.add(10, e(3));
        assert!(t.pop_due(9).is_none());
        let (at, ids) = t.pop_due(30).unwrap();
        assert_eq!((at, &ids[..]), (10, &[e(2), e(3)][..]));
        t.recycle(ids);
        assert_eq!(t.pop_due(30).map(|(at, _)| at), Some(30));
        assert!(t.pop_due(i64::MAX).is_none());
    }

    #[test]
    fn due_by_lists_what_pop_due_hands_out() {
        let queued = [(10, 1), (12, 2), (12, 3), (10 + HORIZON, 4), (40, 5)];
        let fill = || {
            let mut t = Timers::default();
            for (at, id) in queued {
                t.add(at, e(id));
            }
            t
        };
        assert_eq!(Timers::default().due_by(i64::MAX).count(), 0);
        let t = fill();
        for at in [i64::MIN, 9, 10, 11, 12, 39, 40, 10 + HORIZON, i64::MAX] {
            let mut listed: Vec<u32> = t.due_by(at).map(|e| e.id).collect();
            listed.sort_unstable();
            let mut popped: Vec<u32> = drain(&mut fill(), at)
                .into_iter()
                .flat_map(|(_, ids)| ids)
                .collect();
            popped.sort_unstable();
            assert_eq!(listed, popped, "at {at}");
        }
        // Listing changed nothing: all of it still comes out.
        let mut t = t;
        let all = drain(&mut t, i64::MAX).into_iter().flat_map(|(_, ids)| ids);
        assert_eq!(all.count(), queued.len());
    }

    #[test]
    fn far_timers_and_times_behind_interleave_in_order() {
        let mut t = Timers::default();
        assert_eq!(t.add(100, e(1)), 100);
        let far = 100 + HORIZON;
        assert_eq!(t.add(far, e(2)), far);
        assert_eq!(t.add(far + 1, e(3)), far + 1);
        assert_eq!(drain(&mut t, 200), vec![(100, vec![1])]);
        // Behind what was handed out: due at the next watermark.
        assert_eq!(t.add(50, e(4)), 201);
        // Now within the ring: the same time as one registered far ahead.
        assert_eq!(t.add(far, e(5)), far);
        let mut got = drain(&mut t, far + 1);
        got.iter_mut().for_each(|(_, ids)| ids.sort_unstable());
        assert_eq!(
            got,
            vec![(201, vec![4]), (far, vec![2, 5]), (far + 1, vec![3])]
        );
        assert!(t.pop_due(i64::MAX).is_none());
    }
}
