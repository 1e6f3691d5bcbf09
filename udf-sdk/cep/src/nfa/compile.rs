//! Pattern to NFA, built back to front as Flink's `NFACompiler` does, so the
//! branching (and so the matches) are Flink's.

use std::collections::HashMap;

use super::graph::{Action, Cond, Graph, Kind, FINAL_STEP};
use crate::pattern::{Contiguity, Quantifier, Times};

/// What the compiler needs of a step (its conditions stay in the `Nfa`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepSpec {
    pub negated: bool,
    pub contiguity: Contiguity,
    pub quantifier: Quantifier,
    pub has_until: bool,
}

impl StepSpec {
    fn not_follow(&self) -> bool {
        self.negated && self.contiguity != Contiguity::Strict
    }

    fn not_next(&self) -> bool {
        self.negated && self.contiguity == Contiguity::Strict
    }

    /// Flink's `times(0, n)` is an optional `times(1, n)`.
    fn optional(&self) -> bool {
        self.quantifier.optional || matches!(self.quantifier.times, Times::Range { min: 0, .. })
    }

    /// `(from, to)` of a repeated step; `None` for a singleton.
    fn bounds(&self) -> Option<(u32, u32)> {
        match self.quantifier.times {
            Times::One => None,
            Times::Exactly(n) | Times::AtLeast(n) => Some((n, n)),
            Times::Range { min, max } => Some((min.max(1), max)),
        }
    }
}

struct Compiler<'a> {
    specs: &'a [StepSpec],
    g: Graph,
    stops: HashMap<u16, u32>,
    /// For greedy loops with `until`: the copy of the sink taken before the
    /// greedy guard was added, keyed by the original sink.
    originals: HashMap<u32, u32>,
}

/// Compiles validated steps into a graph. `end_window` says whether the
/// pattern has a window, which a trailing `notFollowedBy` needs.
pub(crate) fn compile(specs: &[StepSpec], end_window: bool) -> Graph {
    let mut c = Compiler {
        specs,
        g: Graph::default(),
        stops: HashMap::new(),
        originals: HashMap::new(),
    };
    let mut sink = c.g.add(FINAL_STEP, Kind::Final);
    let mut following: Option<usize> = None;
    for cur in (1..specs.len()).rev() {
        let spec = specs[cur];
        let s = cur as u16;
        if spec.not_follow() {
            // A notFollowedBy between steps becomes stop edges on the steps
            // after it; at the end it waits for the window to close.
            if end_window && c.g.kind(sink) == Kind::Final {
                let pending = c.g.add(s, Kind::Pending);
                let stop = c.stop_state(s);
                c.g.edge(pending, Action::Proceed, stop, Cond::Where(s));
                c.g.edge(pending, Action::Ignore, pending, Cond::not(Cond::Where(s)));
                sink = pending;
            }
        } else if spec.not_next() {
            let nn = c.g.add(s, Kind::Normal);
            let stop = c.stop_state(s);
            if c.g.kind(sink) == Kind::Final {
                // An ignore, not a proceed, so the final state is reached only
                // on the next event.
                c.g.edge(nn, Action::Ignore, sink, Cond::not(Cond::Where(s)));
            } else {
                c.g.edge(nn, Action::Proceed, sink, Cond::not(Cond::Where(s)));
            }
            c.g.edge(nn, Action::Proceed, stop, Cond::Where(s));
            sink = nn;
        } else {
            sink = c.convert(cur, sink, following);
        }
        following = Some(cur);
    }
    let start = c.convert(0, sink, following);
    c.g.start = start;
    c.g
}

impl Compiler<'_> {
    fn stop_state(&mut self, step: u16) -> u32 {
        if let Some(&s) = self.stops.get(&step) {
            return s;
        }
        let s = self.g.add(step, Kind::Stop);
        self.g.edge(s, Action::Take, s, Cond::Where(step));
        self.stops.insert(step, s);
        s
    }

    fn convert(&mut self, cur: usize, sink: u32, following: Option<usize>) -> u32 {
        let spec = self.specs[cur];
        let last = if spec.quantifier.is_looping() {
            let sink_copy = self.copy_without_transitive_nots(cur, sink);
            let looping = self.create_looping(cur, sink_copy, sink, following);
            let (from, to) = spec.bounds().unwrap_or((1, 1));
            self.create_times(cur, looping, sink, from, to, following)
        } else if let Some((from, to)) = spec.bounds() {
            self.create_times(cur, sink, sink, from, to, following)
        } else {
            let take = Cond::Where(cur as u16);
            let ignore = self.ignore_cond(cur);
            self.create_singleton(cur, sink, Some(sink), take, ignore, spec.optional())
        };
        self.add_stop_states(cur, last);
        last
    }

    /// Negated steps that still apply to `cur`: the notFollowedBy steps
    /// reachable backwards through optional steps.
    fn current_nots(&self, cur: usize) -> Vec<u16> {
        let mut nots = Vec::new();
        let mut p = cur;
        while p > 0 && (self.specs[p - 1].optional() || self.specs[p - 1].not_follow()) {
            p -= 1;
            if self.specs[p].not_follow() {
                nots.push(p as u16);
            }
        }
        nots
    }

    fn add_stop_states(&mut self, cur: usize, state: u32) {
        for not in self.current_nots(cur) {
            let stop = self.stop_state(not);
            self.g.edge(state, Action::Proceed, stop, Cond::Where(not));
        }
    }

    fn add_stop_to_looping(&mut self, state: u32, following: Option<usize>) {
        if let Some(f) = following.filter(|&f| self.specs[f].not_follow()) {
            let stop = self.stop_state(f as u16);
            self.g
                .edge(state, Action::Proceed, stop, Cond::Where(f as u16));
        }
    }

    fn ignore_cond(&self, cur: usize) -> Option<Cond> {
        let contiguity = if cur == 0 {
            Contiguity::Strict
        } else {
            self.specs[cur].contiguity
        };
        ignore_for(contiguity, cur as u16)
    }

    fn inner_ignore_cond(&self, cur: usize) -> Option<Cond> {
        ignore_for(self.specs[cur].quantifier.inner, cur as u16)
    }

    fn with_until(&self, cur: usize, cond: Option<Cond>, is_take: bool) -> Option<Cond> {
        let until = Cond::not(Cond::Until(cur as u16));
        match (self.specs[cur].has_until, cond) {
            (true, Some(c)) => Some(Cond::and(until, c)),
            (true, None) if is_take => Some(until),
            (_, c) => c,
        }
    }

    /// Taking an event into an optional step ends the notFollowedBy steps
    /// before it, so the taken path goes to a copy of the sink without their
    /// stop edges.
    fn copy_without_transitive_nots(&mut self, cur: usize, sink: u32) -> u32 {
        let nots = self.current_nots(cur);
        if nots.is_empty() || !self.specs[cur].optional() {
            return sink;
        }
        let st = &self.g.states[sink as usize];
        let (step, kind, edges) = (st.step, st.kind, st.edges.clone());
        let copy = self.g.add(step, kind);
        for e in edges {
            if e.action == Action::Proceed {
                let target = &self.g.states[e.target as usize];
                if target.kind == Kind::Stop {
                    if !nots.contains(&target.step) {
                        self.g.edge(copy, e.action, e.target, e.cond);
                    }
                } else {
                    let t = self.copy_without_transitive_nots(cur, e.target);
                    self.g.edge(copy, e.action, t, e.cond);
                }
            } else {
                let t = if e.target == sink { copy } else { e.target };
                self.g.edge(copy, e.action, t, e.cond);
            }
        }
        copy
    }

    fn copy(&mut self, state: u32) -> u32 {
        let st = &self.g.states[state as usize];
        let (step, kind, edges) = (st.step, st.kind, st.edges.clone());
        let copy = self.g.add(step, kind);
        for e in edges {
            let t = if e.target == state { copy } else { e.target };
            self.g.edge(copy, e.action, t, e.cond);
        }
        copy
    }

    /// `NOT until` for a step with an until condition, else `True`.
    fn not_until(&self, cur: usize) -> Cond {
        if self.specs[cur].has_until {
            Cond::not(Cond::Until(cur as u16))
        } else {
            Cond::True
        }
    }

    /// Greedy: the state after a greedy step must not take (or skip, or
    /// proceed on) an event the greedy step could take, so the loop keeps
    /// it. At the end of a pattern (the final state has no edges) greedy
    /// changes nothing, as in Flink.
    fn update_with_greedy(&mut self, state: u32, take: &Cond) {
        for e in &mut self.g.states[state as usize].edges {
            let cond = std::mem::replace(&mut e.cond, Cond::True);
            e.cond = Cond::and(cond, Cond::not(take.clone()));
        }
    }

    fn create_looping(
        &mut self,
        cur: usize,
        sink: u32,
        original_sink: u32,
        following: Option<usize>,
    ) -> u32 {
        let s = cur as u16;
        let spec = self.specs[cur];
        let ignore = self.with_until(cur, self.inner_ignore_cond(cur), false);
        let take = self
            .with_until(cur, Some(Cond::Where(s)), true)
            .unwrap_or(Cond::Where(s));
        let looping = self.g.add(s, Kind::Normal);
        if spec.quantifier.greedy {
            if spec.has_until {
                let sink_copy = self.copy(sink);
                self.g
                    .edge(looping, Action::Proceed, sink_copy, Cond::Until(s));
                self.originals.insert(original_sink, sink_copy);
            }
            let proceed = self.not_until(cur);
            self.g.edge(looping, Action::Proceed, sink, proceed);
            self.update_with_greedy(sink, &Cond::Where(s));
        } else {
            self.g.edge(looping, Action::Proceed, sink, Cond::True);
        }
        self.g.edge(looping, Action::Take, looping, take.clone());
        self.add_stop_to_looping(looping, following);
        if let Some(ignore) = ignore {
            let ig = self.g.add(s, Kind::Normal);
            self.g.edge(ig, Action::Take, looping, take);
            self.g.edge(ig, Action::Ignore, ig, ignore.clone());
            self.g.edge(looping, Action::Ignore, ig, ignore);
            self.add_stop_to_looping(ig, following);
        }
        looping
    }

    fn create_times(
        &mut self,
        cur: usize,
        sink: u32,
        proceed: u32,
        from: u32,
        to: u32,
        following: Option<usize>,
    ) -> u32 {
        let s = cur as u16;
        let spec = self.specs[cur];
        let inner_ignore = self.with_until(cur, self.inner_ignore_cond(cur), false);
        let take = self
            .with_until(cur, Some(Cond::Where(s)), true)
            .unwrap_or(Cond::Where(s));
        if spec.quantifier.greedy && from != to {
            if spec.has_until {
                let sink_copy = self.copy(sink);
                self.originals.insert(sink, sink_copy);
            }
            self.update_with_greedy(sink, &take);
        }
        let mut last = sink;
        for _ in from..to {
            last = self.create_singleton(
                cur,
                last,
                Some(proceed),
                take.clone(),
                inner_ignore.clone(),
                true,
            );
            self.add_stop_to_looping(last, following);
        }
        for _ in 1..from {
            last =
                self.create_singleton(cur, last, None, take.clone(), inner_ignore.clone(), false);
            self.add_stop_to_looping(last, following);
        }
        let ignore = self.ignore_cond(cur);
        self.create_singleton(cur, last, Some(proceed), take, ignore, spec.optional())
    }

    fn create_singleton(
        &mut self,
        cur: usize,
        sink: u32,
        proceed: Option<u32>,
        take: Cond,
        ignore: Option<Cond>,
        optional: bool,
    ) -> u32 {
        let s = cur as u16;
        let spec = self.specs[cur];
        let single = self.g.add(s, Kind::Normal);
        let target = self.copy_without_transitive_nots(cur, sink);
        self.g.edge(single, Action::Take, target, take.clone());
        if let Some(proceed) = proceed.filter(|_| optional) {
            if spec.quantifier.greedy {
                if spec.has_until {
                    if let Some(&orig) = self.originals.get(&proceed) {
                        self.g.edge(single, Action::Proceed, orig, Cond::Until(s));
                    }
                }
                let cond = self.not_until(cur);
                self.g.edge(single, Action::Proceed, proceed, cond);
            } else {
                self.g.edge(single, Action::Proceed, proceed, Cond::True);
            }
        }
        if let Some(ignore) = ignore {
            let ig = if optional {
                // A separate state, so that once an event was skipped the
                // optional step can no longer be skipped over.
                let ig = self.g.add(s, Kind::Normal);
                self.g.edge(ig, Action::Take, target, take);
                self.g.edge(ig, Action::Ignore, ig, ignore.clone());
                self.add_stop_states(cur, ig);
                ig
            } else {
                single
            };
            self.g.edge(single, Action::Ignore, ig, ignore);
        }
        single
    }
}

fn ignore_for(contiguity: Contiguity, step: u16) -> Option<Cond> {
    match contiguity {
        Contiguity::Strict => None,
        Contiguity::Relaxed => Some(Cond::not(Cond::Where(step))),
        Contiguity::NonDeterministicRelaxed => Some(Cond::True),
    }
}
