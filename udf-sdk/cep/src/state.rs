//! A key's matching state: its partial matches and their shared buffer.

use crate::buffer::SharedBuffer;
use crate::counters::Counters;
use crate::output::Partial;
use crate::small_list::SmallList;

/// Everything one key needs between events; plain data (no conditions), so
/// it checkpoints to bytes ([`crate::checkpoint`]). Feed it with
/// [`KeyState::process`] and [`KeyState::advance_time`].
#[derive(Clone, Debug)]
#[repr(C)]
pub struct KeyState<E> {
    /// The earliest time a partial match times out (derived, not stored in
    /// checkpoints), so `advance_time` before it does nothing; first, as a
    /// record queued for the key reads it (`repr(C)`).
    pub(crate) deadline: i64,
    pub(crate) buffer: SharedBuffer<E>,
    /// Partial matches in progress (the start state is implicit).
    pub(crate) partials: SmallList<Partial, 2>,
    /// Complete matches held back by a skip strategy until no partial match
    /// that started earlier is left.
    pub(crate) completed: Vec<Partial>,
    /// Arrival number of the next event (ties of timestamps keep this order).
    pub(crate) next_seq: u64,
    pub(crate) counters: Counters,
}

impl<E> Default for KeyState<E> {
    fn default() -> Self {
        KeyState {
            buffer: SharedBuffer::default(),
            partials: SmallList::default(),
            completed: Vec::new(),
            next_seq: 0,
            counters: Counters::default(),
            deadline: i64::MAX,
        }
    }
}

impl<E> KeyState<E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cumulative counts.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Partial matches alive (including complete matches held by a skip strategy).
    pub fn partial_matches(&self) -> usize {
        self.partials.len() + self.completed.len()
    }

    /// The earliest time at which a partial match times out (or a trailing
    /// `notFollowedBy` completes), or `None`.
    pub fn next_timeout(&self) -> Option<i64> {
        (self.deadline != i64::MAX).then_some(self.deadline)
    }

    /// Events held in the shared buffer.
    pub fn buffered_events(&self) -> usize {
        self.buffer.events.len()
    }

    /// Whether the key holds nothing but counters (its state may be dropped).
    pub fn is_idle(&self) -> bool {
        self.partials.is_empty() && self.completed.is_empty() && self.buffer.events.len() == 0
    }

    /// Approximate heap bytes held (excluding what events own themselves).
    pub fn heap_bytes(&self) -> usize {
        self.buffer.heap_bytes()
            + self.partials.heap_bytes()
            + self.completed.capacity() * std::mem::size_of::<Partial>()
    }
}
