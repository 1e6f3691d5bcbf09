//! Event time: buffer a key's records until the watermark passes them, then
//! feed them in timestamp order (ties in arrival order).

use crate::counters::Counters;
use crate::nfa::Nfa;
use crate::output::{Late, Outputs};
use crate::state::KeyState;
use crate::waiting::Waiting;

/// A key's state for event-time processing: the matching state plus the
/// records the watermark has not reached yet.
/// Fields in the order a record reads them (`repr(C)`, see `keyed`).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct EventTimeState<E> {
    pub(crate) watermark: i64,
    /// Sorted by (timestamp, arrival).
    pub(crate) pending: Waiting<E>,
    pub(crate) key: KeyState<E>,
}

impl<E> Default for EventTimeState<E> {
    fn default() -> Self {
        EventTimeState {
            key: KeyState::default(),
            pending: Waiting::default(),
            watermark: i64::MIN,
        }
    }
}

impl<E> EventTimeState<E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A state whose watermark is already `watermark` (a key first seen
    /// mid-stream).
    pub fn starting_at(watermark: i64) -> Self {
        EventTimeState {
            watermark,
            ..Self::default()
        }
    }

    /// The last watermark seen (`i64::MIN` before any).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The matching state.
    pub fn key_state(&self) -> &KeyState<E> {
        &self.key
    }

    /// Cumulative counts, late records included.
    pub fn counters(&self) -> Counters {
        self.key.counters
    }

    /// Partial matches alive.
    pub fn partial_matches(&self) -> usize {
        self.key.partial_matches()
    }

    /// The smallest watermark at which [`EventTimeState::advance_watermark`]
    /// would do anything (feed a waiting record or time out a partial
    /// match), or `None`: lets a caller with many keys keep a timer queue
    /// instead of advancing every key on every watermark.
    pub fn next_timer(&self) -> Option<i64> {
        let record = self.pending.front_time();
        let timeout = self.key.next_timeout();
        match (record, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Events held: in the shared buffer plus those waiting for the watermark.
    pub fn buffered_events(&self) -> usize {
        self.key.buffered_events() + self.pending.len()
    }
}

impl<E: Clone> EventTimeState<E> {
    /// Takes a record. One at or behind the watermark goes to `out.late`
    /// (never dropped silently); others wait for the watermark.
    pub fn push(&mut self, event: E, timestamp: i64, out: &mut Outputs<E>) {
        if timestamp <= self.watermark {
            self.key.counters.late += 1;
            out.late.push(Late { event, timestamp });
            return;
        }
        // After every record with the same or a smaller timestamp: arrival
        // order breaks ties.
        self.pending.insert(timestamp, event);
    }

    /// Moves the watermark to `watermark`: feeds the records it passed, in
    /// order, then advances time so windows that closed time out.
    pub fn advance_watermark(&mut self, nfa: &Nfa<E>, watermark: i64, out: &mut Outputs<E>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        while let Some((ts, event)) = self.pending.pop_through(watermark) {
            self.key.process(nfa, event, ts, out);
        }
        self.key.advance_time(nfa, watermark, out);
    }
}
