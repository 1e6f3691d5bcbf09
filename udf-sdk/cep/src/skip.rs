//! After-match skip strategies: which partial matches a found match prunes.

/// What to discard after a match is emitted (Flink's `AfterMatchSkipStrategy`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AfterMatchSkip {
    /// Keep every partial match: all matches are emitted.
    #[default]
    NoSkip,
    /// Discard partial matches that started with the match's first event or earlier.
    SkipToNext,
    /// Discard partial matches that started at or before the match's last event.
    SkipPastLastEvent,
    /// Discard partial matches that started before the first event of the named step.
    SkipToFirst(String),
    /// Discard partial matches that started before the last event of the named step.
    SkipToLast(String),
}

/// Where an event sits in a key's stream: by timestamp, then arrival.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EventKey {
    pub ts: i64,
    pub seq: u64,
}

/// A skip strategy with its step resolved to an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkipPlan {
    NoSkip,
    ToNext,
    PastLast,
    ToFirst(u16),
    ToLast(u16),
}

impl SkipPlan {
    pub fn resolve(skip: &AfterMatchSkip, index_of: impl Fn(&str) -> Option<u16>) -> Self {
        match skip {
            AfterMatchSkip::NoSkip => SkipPlan::NoSkip,
            AfterMatchSkip::SkipToNext => SkipPlan::ToNext,
            AfterMatchSkip::SkipPastLastEvent => SkipPlan::PastLast,
            // Validation has checked the name; an unknown one prunes nothing.
            AfterMatchSkip::SkipToFirst(n) => {
                index_of(n).map_or(SkipPlan::NoSkip, SkipPlan::ToFirst)
            }
            AfterMatchSkip::SkipToLast(n) => index_of(n).map_or(SkipPlan::NoSkip, SkipPlan::ToLast),
        }
    }

    /// Whether matches wait for earlier-starting partial matches (every
    /// strategy but `NoSkip`), so pruning sees them in start order.
    pub fn is_skip(self) -> bool {
        self != SkipPlan::NoSkip
    }

    /// The event that partial matches are pruned against, given a match's
    /// events in order as `(step, event)`.
    pub fn pruning_id(self, events: &[(u16, EventKey)]) -> Option<EventKey> {
        match self {
            SkipPlan::NoSkip => None,
            SkipPlan::ToNext => events.iter().map(|e| e.1).min(),
            SkipPlan::PastLast => events.iter().map(|e| e.1).max(),
            SkipPlan::ToFirst(s) => events.iter().find(|e| e.0 == s).map(|e| e.1),
            SkipPlan::ToLast(s) => events.iter().rev().find(|e| e.0 == s).map(|e| e.1),
        }
    }

    /// Whether a partial match that started with `start` is pruned.
    pub fn should_prune(self, start: EventKey, pruning: EventKey) -> bool {
        match self {
            SkipPlan::NoSkip => false,
            SkipPlan::ToNext | SkipPlan::PastLast => start <= pruning,
            SkipPlan::ToFirst(_) | SkipPlan::ToLast(_) => start < pruning,
        }
    }
}
