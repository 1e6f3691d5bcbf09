//! A key's records waiting for the watermark, in (time, arrival) order.
//!
//! Usually one record waits (the watermark passes it a record or so
//! later): it is held inside the key's state, so queueing it and taking it
//! back touch no separate heap block, the cache miss a `VecDeque` cost on
//! every record. Further ones go to a deque behind it.

use std::collections::VecDeque;

#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct Waiting<E> {
    /// The earliest record; `None` only when nothing waits.
    first: Option<(i64, E)>,
    rest: VecDeque<(i64, E)>,
}

impl<E> Default for Waiting<E> {
    fn default() -> Self {
        Waiting {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<E> Waiting<E> {
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The time of the earliest record.
    pub fn front_time(&self) -> Option<i64> {
        self.first.as_ref().map(|(ts, _)| *ts)
    }

    /// Adds a record after every one with the same or an earlier time.
    pub fn insert(&mut self, ts: i64, event: E) {
        let Some((first_ts, _)) = &self.first else {
            self.first = Some((ts, event));
            return;
        };
        if ts < *first_ts {
            if let Some(old) = self.first.replace((ts, event)) {
                self.rest.push_front(old);
            }
        } else if self.rest.back().is_none_or(|(last, _)| *last <= ts) {
            // In-order records (the usual case) just append.
            self.rest.push_back((ts, event));
        } else {
            let at = self.rest.partition_point(|(t, _)| *t <= ts);
            self.rest.insert(at, (ts, event));
        }
    }

    /// Takes the earliest record if its time is at or before `time`.
    pub fn pop_through(&mut self, time: i64) -> Option<(i64, E)> {
        if self.front_time()? > time {
            return None;
        }
        let next = self.rest.pop_front();
        std::mem::replace(&mut self.first, next)
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &(i64, E)> {
        self.first.iter().chain(self.rest.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::Waiting;

    #[test]
    fn records_come_out_by_time_then_arrival() {
        let mut w = Waiting::default();
        for (ts, e) in [(5, 'a'), (3, 'b'), (5, 'c'), (4, 'd'), (9, 'e'), (3, 'f')] {
            w.insert(ts, e);
        }
        assert_eq!(w.len(), 6);
        let order: Vec<_> = w.iter().copied().collect();
        assert_eq!(
            order,
            [(3, 'b'), (3, 'f'), (4, 'd'), (5, 'a'), (5, 'c'), (9, 'e')]
        );
        let mut got = Vec::new();
        while let Some(r) = w.pop_through(5) {
            got.push(r.1);
        }
        assert_eq!(got, ['b', 'f', 'd', 'a', 'c']);
        assert_eq!(w.front_time(), Some(9));
        assert_eq!(w.pop_through(9), Some((9, 'e')));
        assert!(w.is_empty() && w.pop_through(i64::MAX).is_none());
    }
}
