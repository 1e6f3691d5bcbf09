//! What processing produces: matches, timed-out partial matches, late records.

use std::sync::Arc;

use crate::nfa::graph::Action;
use crate::skip::EventKey;

/// A complete match: each step that took events, in pattern order, with its
/// events oldest first. Steps that took nothing (an optional step skipped)
/// are absent, as in Flink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match<E> {
    pub steps: Vec<(Arc<str>, Vec<E>)>,
    /// The event time of the match's first event (ms).
    pub first_time: i64,
    /// The event time of the match's last event (ms).
    pub last_time: i64,
}

impl<E> Match<E> {
    /// The events the named step took (empty if none).
    pub fn get(&self, step: &str) -> &[E] {
        self.steps
            .iter()
            .find(|(n, _)| &**n == step)
            .map_or(&[][..], |(_, v)| v.as_slice())
    }

    /// All events in match order.
    pub fn events(&self) -> impl Iterator<Item = &E> {
        self.steps.iter().flat_map(|(_, v)| v.iter())
    }
}

/// A partial match whose window closed before it completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedOut<E> {
    /// The events taken so far, as in a [`Match`].
    pub steps: Vec<(Arc<str>, Vec<E>)>,
    /// The event time of the partial match's first event (ms).
    pub first_time: i64,
    /// The event time of the last event it took (ms).
    pub last_time: i64,
    /// When the window closed (ms): the first event's time plus the window,
    /// or the previous event's time plus the step's previous-and-current window.
    pub timeout_at: i64,
}

/// A record that arrived at or behind the watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Late<E> {
    pub event: E,
    pub timestamp: i64,
}

/// Where processing writes its results; reuse one across calls so the hot
/// path allocates nothing (it also holds the engine's scratch space).
pub struct Outputs<E> {
    pub matches: Vec<Match<E>>,
    pub timeouts: Vec<TimedOut<E>>,
    pub late: Vec<Late<E>>,
    pub(crate) scratch: Scratch,
    pub(crate) spare: Spare<E>,
}

/// Lists of finished matches handed back ([`Outputs::recycle`]), for the
/// next ones: a match then allocates no list.
pub(crate) struct Spare<E> {
    pub steps: Vec<Vec<(Arc<str>, Vec<E>)>>,
    pub events: Vec<Vec<E>>,
}

impl<E> Default for Spare<E> {
    fn default() -> Self {
        Spare {
            steps: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// Lists kept for reuse, at most (a few matches' worth).
const SPARE: usize = 64;

impl<E> Default for Outputs<E> {
    fn default() -> Self {
        Outputs {
            matches: Vec::new(),
            timeouts: Vec::new(),
            late: Vec::new(),
            scratch: Scratch::default(),
            spare: Spare::default(),
        }
    }
}

impl<E> Outputs<E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the results, keeping their capacity.
    pub fn clear(&mut self) {
        self.matches.clear();
        self.timeouts.clear();
        self.late.clear();
    }

    /// Takes back the lists of a match or timed-out partial match that
    /// has been used, so the next one reuses them.
    pub fn recycle(&mut self, mut steps: Vec<(Arc<str>, Vec<E>)>) {
        let spare = &mut self.spare;
        for (_, mut events) in steps.drain(..) {
            if spare.events.len() < SPARE {
                events.clear();
                spare.events.push(events);
            }
        }
        if spare.steps.len() < SPARE {
            spare.steps.push(steps);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matches.is_empty() && self.timeouts.is_empty() && self.late.is_empty()
    }
}

/// An edge chosen for the current event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decided {
    pub action: Action,
    pub source: u32,
    pub target: u32,
    /// For a take: a final state reachable from the target by proceeding
    /// (the rest of the pattern is optional), or `NONE`.
    pub also_final: u32,
}

/// A partial match: where it is in the NFA and the last node of its chain
/// (Flink's `ComputationState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Partial {
    pub state: u32,
    pub last: u32,
    pub start: EventKey,
    pub prev_ts: i64,
}

/// Reused buffers; none of it outlives a call.
#[derive(Default)]
pub(crate) struct Scratch {
    pub next: Vec<Partial>,
    pub potential: Vec<Partial>,
    pub retained: Vec<Partial>,
    /// Last nodes of children that reached a stop state's branch, to release.
    pub discarded: Vec<u32>,
    pub decided: Vec<Decided>,
    pub stack: Vec<u32>,
    pub chain: Vec<(u16, u32)>,
    pub keys: Vec<(u16, EventKey)>,
    pub memo: Memo,
}

/// Condition results: a condition that reads the event alone is tested
/// at most once per event, any other at most once per partial match per
/// event. A result is current when written at or after the generation its
/// scope began (generations only grow: a `u64` does not wrap).
#[derive(Default)]
pub(crate) struct Memo {
    /// The generation the current event began at.
    pub event: u64,
    /// The generation the current partial match began at.
    pub partial: u64,
    /// Per slot: the generation it was written in, and its result.
    pub slots: Vec<(u64, bool)>,
}

impl Memo {
    /// A new event, with `slots` results to hold.
    pub fn next_event(&mut self, slots: usize) {
        if self.slots.len() < slots {
            self.slots.resize(slots, (0, false));
        }
        self.partial += 1;
        self.event = self.partial;
    }

    /// The next partial match of the same event.
    pub fn next_partial(&mut self) {
        self.partial += 1;
    }
}
