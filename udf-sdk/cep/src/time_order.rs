//! Event time: buffer a key's records until the watermark passes them, then
//! feed them in timestamp order (ties in arrival order).

use crate::counters::Counters;
use crate::nfa::Nfa;
use crate::output::{Late, Match, Outputs, TimedOut};
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
    /// Outputs of records processed ahead of the watermark (see
    /// [`EventTimeState::process_ahead`]), given out when it passes them.
    pub(crate) held: Option<Box<Held<E>>>,
    /// The time of a record processed ahead whose place among the keys
    /// woken is not settled yet (see `keyed`), else `i64::MIN`.
    pub(crate) ahead: i64,
}

/// A key's outputs waiting for the watermark to reach `due`, in the order
/// processing made them.
#[derive(Clone, Debug)]
pub(crate) struct Held<E> {
    pub due: i64,
    pub matches: Vec<Match<E>>,
    pub timeouts: Vec<TimedOut<E>>,
}

impl<E> Default for EventTimeState<E> {
    fn default() -> Self {
        EventTimeState {
            key: KeyState::default(),
            pending: Waiting::default(),
            watermark: i64::MIN,
            held: None,
            ahead: i64::MIN,
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
        let held = self.held.as_ref().map(|h| h.due);
        // Not an iterator over the three: this runs once or twice a record.
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        min(min(record, timeout), held)
    }

    /// Whether the key holds nothing but counters (its state may be dropped).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.held.is_none() && self.key.is_idle()
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

    /// Processes a record now rather than when the watermark passes it,
    /// for a caller that knows nothing can come before it: the watermark
    /// is about to be `ts - 1` (so any later record is at `ts` or after,
    /// ties in arrival order), nothing waits, and nothing is due at or
    /// before `ts - 1`. Its outputs are held and given out by
    /// [`advance_watermark`](Self::advance_watermark) past `ts`, exactly
    /// where processing it then would have made them; meanwhile the key's
    /// state is hot in cache now, and queueing the record and waking the
    /// key for it cost nothing.
    pub fn process_ahead(&mut self, nfa: &Nfa<E>, event: E, ts: i64, out: &mut Outputs<E>) {
        let (m, t) = (out.matches.len(), out.timeouts.len());
        self.key.process(nfa, event, ts, out);
        self.ahead = ts;
        if out.matches.len() == m && out.timeouts.len() == t {
            return;
        }
        let held = self.held.get_or_insert_with(|| {
            Box::new(Held {
                due: ts,
                matches: Vec::new(),
                timeouts: Vec::new(),
            })
        });
        held.matches.extend(out.matches.drain(m..));
        held.timeouts.extend(out.timeouts.drain(t..));
    }

    /// Moves the watermark to `watermark`: gives out the held outputs it
    /// passed, feeds the records it passed, in order, then advances time
    /// so windows that closed time out.
    pub fn advance_watermark(&mut self, nfa: &Nfa<E>, watermark: i64, out: &mut Outputs<E>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        if self.held.as_ref().is_some_and(|h| h.due <= watermark) {
            if let Some(h) = self.held.take() {
                let Held {
                    matches, timeouts, ..
                } = *h;
                out.matches.extend(matches);
                out.timeouts.extend(timeouts);
            }
        }
        while let Some((ts, event)) = self.pending.pop_through(watermark) {
            self.key.process(nfa, event, ts, out);
        }
        self.key.advance_time(nfa, watermark, out);
    }
}
