//! The compiled pattern: an NFA plus the steps' conditions and windows.

pub(crate) mod compile;
pub(crate) mod graph;
pub(crate) mod run;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::condition::Condition;
use crate::pattern::Pattern;
use crate::skip::SkipPlan;
use crate::state::KeyState;
use crate::validate::{validate, PatternError};
use compile::StepSpec;
use graph::Graph;

/// Default cap on a key's partial matches.
pub const DEFAULT_MAX_PARTIAL_MATCHES: usize = 10_000;

/// A compiled pattern. Immutable and shared by all keys; each key keeps its
/// own [`KeyState`].
pub struct Nfa<E> {
    pub(crate) graph: Graph,
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) conds: Vec<Box<dyn Condition<E>>>,
    pub(crate) untils: Vec<Option<Box<dyn Condition<E>>>>,
    /// Per memo slot (`2 * step` its condition, `+ 1` its until): whether
    /// it reads the event alone, so one answer serves every partial match.
    pub(crate) per_event: Vec<bool>,
    /// Per step: its previous-and-current window (ms).
    pub(crate) prev_windows: Vec<Option<i64>>,
    /// The first-and-last window (ms).
    pub(crate) window: Option<i64>,
    pub(crate) skip: SkipPlan,
    pub(crate) max_partials: usize,
    pub(crate) emit_timeouts: bool,
    /// Identifies the graph, so a checkpoint is restored only into the
    /// pattern that wrote it.
    pub(crate) fingerprint: u64,
    /// Whether any window is set.
    pub(crate) windowed: bool,
    /// Whether any step has a previous-and-current window.
    pub(crate) prev_windowed: bool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<E> Nfa<E> {
    /// Validates and compiles `pattern`.
    pub fn compile(pattern: Pattern<E>) -> Result<Self, PatternError> {
        validate(&pattern)?;
        let window = pattern.within.map(millis);
        let specs: Vec<StepSpec> = pattern
            .steps
            .iter()
            .map(|s| StepSpec {
                negated: s.negated,
                contiguity: s.contiguity,
                quantifier: s.quantifier,
                has_until: s.until.is_some(),
            })
            .collect();
        let any_window =
            window.is_some() || pattern.steps.iter().any(|s| s.within_previous.is_some());
        let graph = compile::compile(&specs, any_window);
        let names: Vec<Arc<str>> = pattern
            .steps
            .iter()
            .map(|s| Arc::from(s.name.as_str()))
            .collect();
        let skip = SkipPlan::resolve(&pattern.skip, |n| {
            names.iter().position(|m| &**m == n).map(|i| i as u16)
        });
        let prev_windows: Vec<Option<i64>> = pattern
            .steps
            .iter()
            .map(|s| s.within_previous.map(millis))
            .collect();
        let mut h = Fnv::default();
        graph.hash(&mut h);
        names.hash(&mut h);
        prev_windows.hash(&mut h);
        window.hash(&mut h);
        format!("{skip:?}").hash(&mut h);
        let fingerprint = h.finish();
        let mut conds = Vec::with_capacity(pattern.steps.len());
        let mut untils = Vec::with_capacity(pattern.steps.len());
        for s in pattern.steps {
            conds.push(s.condition);
            untils.push(s.until);
        }
        let per_event = conds
            .iter()
            .zip(&untils)
            .flat_map(|(c, u)| {
                let until = u.as_ref().is_some_and(|u| !u.reads_matched());
                [!c.reads_matched(), until]
            })
            .collect();
        let prev_windowed = prev_windows.iter().any(Option::is_some);
        Ok(Nfa {
            graph,
            names,
            conds,
            untils,
            per_event,
            prev_windows,
            window,
            skip,
            max_partials: DEFAULT_MAX_PARTIAL_MATCHES,
            emit_timeouts: true,
            fingerprint,
            windowed: any_window,
            prev_windowed,
        })
    }

    /// Caps a key's partial matches (at least 1); past it the oldest is
    /// dropped and counted in [`crate::Counters::dropped`].
    pub fn with_max_partial_matches(mut self, max: usize) -> Self {
        self.max_partials = max.max(1);
        self
    }

    /// Whether timed-out partial matches are materialized into
    /// [`crate::Outputs::timeouts`] (default yes; they are counted either way).
    pub fn with_timeout_output(mut self, emit: bool) -> Self {
        self.emit_timeouts = emit;
        self
    }

    /// The step names, in pattern order.
    pub fn step_names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// A digest of the NFA's shape (states, step names, windows, skip), not
    /// of its conditions: checkpoints record it, and a state restores only
    /// into an NFA with the same fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The cap on a key's partial matches.
    pub fn max_partial_matches(&self) -> usize {
        self.max_partials
    }

    /// The number of NFA states (for diagnostics).
    pub fn state_count(&self) -> usize {
        self.graph.states.len()
    }

    /// A fresh key state for this NFA.
    pub fn new_state(&self) -> KeyState<E> {
        KeyState::new()
    }

    /// The earliest time at which one of `partials` times out (`i64::MAX`
    /// if none can).
    pub(crate) fn deadline(&self, partials: &[crate::output::Partial]) -> i64 {
        if !self.windowed {
            return i64::MAX;
        }
        if let (Some(w), false) = (self.window, self.prev_windowed) {
            // One window from each start: the earliest start's ends first.
            let first = partials.iter().map(|p| p.start.ts).min();
            return first.map_or(i64::MAX, |t| t.saturating_add(w));
        }
        let mut d = i64::MAX;
        for p in partials {
            if let Some(w) = self.window {
                d = d.min(p.start.ts.saturating_add(w));
            }
            let step = self.graph.states[p.state as usize].step as usize;
            if let Some(Some(w)) = self.prev_windows.get(step) {
                d = d.min(p.prev_ts.saturating_add(*w));
            }
        }
        d
    }
}

/// FNV-1a: a hash that is the same on every platform and Rust release, for
/// the checkpoint fingerprint.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
