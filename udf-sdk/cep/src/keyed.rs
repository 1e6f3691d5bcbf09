//! Many keys under one watermark: routes records to their key's
//! [`EventTimeState`] and, on a watermark, wakes only the keys with
//! something due (a timer queue, as Flink's operator registers event-time
//! timers), dropping keys left with nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use crate::counters::Counters;
use crate::nfa::Nfa;
use crate::output::{Late, Outputs};
use crate::time_order::EventTimeState;

struct Slot<E> {
    state: EventTimeState<E>,
    /// The timer registered for this key (older queue entries are stale).
    timer: Option<i64>,
}

/// Event-time matching for every key of a stream.
pub struct KeyedEventTime<K, E> {
    keys: HashMap<K, Slot<E>>,
    timers: BinaryHeap<Reverse<(i64, K)>>,
    watermark: i64,
    /// Counts of keys dropped once idle.
    retired: Counters,
}

impl<K, E> Default for KeyedEventTime<K, E> {
    fn default() -> Self {
        KeyedEventTime {
            keys: HashMap::new(),
            timers: BinaryHeap::new(),
            watermark: i64::MIN,
            retired: Counters::default(),
        }
    }
}

impl<K: Hash + Eq + Ord + Clone, E: Clone> KeyedEventTime<K, E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a record for `key`; one at or behind the watermark goes to
    /// `out.late`.
    pub fn push(&mut self, key: K, event: E, timestamp: i64, out: &mut Outputs<E>) {
        if timestamp <= self.watermark {
            self.retired.late += 1;
            out.late.push(Late { event, timestamp });
            return;
        }
        let watermark = self.watermark;
        let slot = self.keys.entry(key.clone()).or_insert_with(|| Slot {
            state: EventTimeState::starting_at(watermark),
            timer: None,
        });
        slot.state.push(event, timestamp, out);
        register(&mut self.timers, key, slot);
    }

    /// Moves the watermark: keys with a record or a window due are advanced
    /// (in timer order); the others are not touched.
    pub fn advance_watermark(&mut self, nfa: &Nfa<E>, watermark: i64, out: &mut Outputs<E>) {
        self.advance_watermark_with(nfa, watermark, out, |_, _| {});
    }

    /// [`advance_watermark`](Self::advance_watermark), calling `each` with
    /// every key advanced, right after it, so a caller can take that key's
    /// outputs out of `out` and know whose they are.
    pub fn advance_watermark_with(
        &mut self,
        nfa: &Nfa<E>,
        watermark: i64,
        out: &mut Outputs<E>,
        mut each: impl FnMut(&K, &mut Outputs<E>),
    ) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > watermark {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            let Some(slot) = self.keys.get_mut(&key) else {
                continue;
            };
            if slot.timer != Some(at) {
                continue;
            }
            slot.timer = None;
            slot.state.advance_watermark(nfa, watermark, out);
            each(&key, out);
            if slot.state.pending.is_empty() && slot.state.key.is_idle() {
                self.retired += slot.state.counters();
                self.keys.remove(&key);
            } else {
                register(&mut self.timers, key, slot);
            }
        }
    }

    /// The watermark (`i64::MIN` before any).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Counts over all keys, dropped ones and late records included.
    pub fn counters(&self) -> Counters {
        let mut total = self.retired;
        for slot in self.keys.values() {
            total += slot.state.counters();
        }
        total
    }

    /// Keys holding state.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Partial matches alive over all keys.
    pub fn partial_matches(&self) -> usize {
        self.keys.values().map(|s| s.state.partial_matches()).sum()
    }

    /// Events held over all keys.
    pub fn buffered_events(&self) -> usize {
        self.keys.values().map(|s| s.state.buffered_events()).sum()
    }

    /// Each key's state, for checkpointing key by key.
    pub fn states(&self) -> impl Iterator<Item = (&K, &EventTimeState<E>)> {
        self.keys.iter().map(|(k, s)| (k, &s.state))
    }

    /// Puts back a restored stream's watermark (never moving it back): keys
    /// with nothing pending are not checkpointed, so theirs alone would not
    /// carry it.
    pub fn restore_watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Puts back a key's restored state (and its timer).
    pub fn restore(&mut self, key: K, state: EventTimeState<E>) {
        if state.watermark > self.watermark {
            self.watermark = state.watermark;
        }
        let slot = self
            .keys
            .entry(key.clone())
            .or_insert(Slot { state, timer: None });
        register(&mut self.timers, key, slot);
    }
}

/// Queues the key's next timer if it is earlier than the one queued.
fn register<K: Ord, E>(timers: &mut BinaryHeap<Reverse<(i64, K)>>, key: K, slot: &mut Slot<E>) {
    if let Some(t) = slot.state.next_timer() {
        if slot.timer.is_none_or(|queued| t < queued) {
            slot.timer = Some(t);
            timers.push(Reverse((t, key)));
        }
    }
}
