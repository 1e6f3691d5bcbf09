//! Running the NFA over one key's events: Flink's `NFA.process`,
//! `advanceTime` and after-match pruning.

use super::graph::{Action, Cond, Kind};
use super::Nfa;
use crate::buffer::ChainView;
use crate::output::{Decided, Match, Memo, Outputs, Partial, Scratch, TimedOut};
use crate::skip::EventKey;
use crate::slab::NONE;
use crate::state::KeyState;

/// What conditions are evaluated against: one event, one partial match.
struct Ctx<'a, E> {
    nfa: &'a Nfa<E>,
    event: &'a E,
    view: ChainView<'a, E>,
}

/// The usual conditions of an edge (none, a step's own, or its negation
/// on a relaxed step's ignore edge) tested here, the rest by
/// [`eval_any`]: a call per edge tested was a fifth of the cost of a test
/// under WASM.
#[inline(always)]
fn eval<E>(cond: &Cond, ctx: &Ctx<'_, E>, memo: &mut Memo) -> bool {
    match cond {
        Cond::True => true,
        Cond::Where(s) => step_where(*s, ctx, memo),
        Cond::Not(c) => match **c {
            Cond::Where(s) => !step_where(s, ctx, memo),
            _ => !eval_any(c, ctx, memo),
        },
        _ => eval_any(cond, ctx, memo),
    }
}

/// Step `s`'s own condition.
#[inline(always)]
fn step_where<E>(s: u16, ctx: &Ctx<'_, E>, memo: &mut Memo) -> bool {
    cached(ctx.nfa, memo, 2 * s as usize, || {
        ctx.nfa.conds[s as usize].test(ctx.event, &ctx.view)
    })
}

fn eval_any<E>(cond: &Cond, ctx: &Ctx<'_, E>, memo: &mut Memo) -> bool {
    match cond {
        Cond::True => true,
        Cond::Where(s) => step_where(*s, ctx, memo),
        Cond::Until(s) => cached(ctx.nfa, memo, 2 * *s as usize + 1, || {
            ctx.nfa.untils[*s as usize]
                .as_ref()
                .is_some_and(|u| u.test(ctx.event, &ctx.view))
        }),
        Cond::Not(c) => !eval_any(c, ctx, memo),
        Cond::And(a, b) => eval_any(a, ctx, memo) && eval_any(b, ctx, memo),
    }
}

#[inline]
fn cached<E>(nfa: &Nfa<E>, memo: &mut Memo, slot: usize, f: impl FnOnce() -> bool) -> bool {
    let since = match nfa.per_event.get(slot) {
        Some(true) => memo.event,
        _ => memo.partial,
    };
    match memo.slots.get(slot) {
        Some(&(g, v)) if g >= since => v,
        _ => {
            let v = f();
            if let Some(s) = memo.slots.get_mut(slot) {
                *s = (memo.partial, v);
            }
            v
        }
    }
}

/// The take and ignore edges the event enables from `state`, following
/// proceed edges depth first in Flink's order.
fn decide<E>(ctx: &Ctx<'_, E>, state: u32, sc: &mut Scratch) {
    let states = &ctx.nfa.graph.states;
    sc.decided.clear();
    sc.stack.clear();
    decide_edges(ctx, state, sc);
    while let Some(s) = sc.stack.pop() {
        decide_edges(ctx, s, sc);
    }
    // A take into a state that does not proceed (most) finds no final
    // state by proceeding: no walk for it.
    for i in 0..sc.decided.len() {
        let d = sc.decided[i];
        if d.action == Action::Take && states.get(d.target as usize).is_some_and(|t| t.proceeds) {
            sc.decided[i].also_final = final_after_proceed(ctx, d.target, sc);
        }
    }
}

/// The take and ignore edges the event enables among `state`'s own, in
/// order; proceed edges are pushed on the stack.
#[inline(always)]
fn decide_edges<E>(ctx: &Ctx<'_, E>, s: u32, sc: &mut Scratch) {
    let Some(state) = ctx.nfa.graph.states.get(s as usize) else {
        return;
    };
    for e in &state.edges {
        if eval(&e.cond, ctx, &mut sc.memo) {
            match e.action {
                Action::Proceed => sc.stack.push(e.target),
                action => sc.decided.push(Decided {
                    action,
                    source: s,
                    target: e.target,
                    also_final: NONE,
                }),
            }
        }
    }
}

/// A final state reachable from `state` by proceed edges the event enables.
fn final_after_proceed<E>(ctx: &Ctx<'_, E>, state: u32, sc: &mut Scratch) -> u32 {
    let states = &ctx.nfa.graph.states;
    sc.stack.clear();
    sc.stack.push(state);
    while let Some(s) = sc.stack.pop() {
        for e in &states[s as usize].edges {
            if e.action == Action::Proceed && eval(&e.cond, ctx, &mut sc.memo) {
                if states[e.target as usize].kind == Kind::Final {
                    return e.target;
                }
                sc.stack.push(e.target);
            }
        }
    }
    NONE
}

impl<E> Nfa<E> {
    /// Whether `event` can start a partial match (or a match) at a key
    /// holding nothing: whether the start state takes it. When not,
    /// processing it on an empty state changes nothing at all (no
    /// partial match, no output, no count), so a caller may skip that.
    pub(crate) fn may_start(&self, event: &E, sc: &mut Scratch) -> bool {
        let buffer = crate::buffer::SharedBuffer::default();
        let ctx = Ctx {
            nfa: self,
            event,
            view: ChainView {
                buffer: &buffer,
                names: &self.names,
                last: NONE,
            },
        };
        sc.memo.next_event(2 * self.conds.len());
        sc.memo.next_partial();
        // What `decide` walks, stopping at the first take: no list of
        // decisions is built for the most frequent question per record.
        let states = &self.graph.states;
        sc.stack.clear();
        let mut s = self.graph.start;
        loop {
            for e in states.get(s as usize).map_or(&[][..], |st| &st.edges[..]) {
                match e.action {
                    Action::Take if eval(&e.cond, &ctx, &mut sc.memo) => return true,
                    Action::Proceed if eval(&e.cond, &ctx, &mut sc.memo) => sc.stack.push(e.target),
                    _ => {}
                }
            }
            match sc.stack.pop() {
                Some(next) => s = next,
                None => return false,
            }
        }
    }
}

impl<E: Clone> KeyState<E> {
    /// Processes one event at `timestamp` (ms): first times out what the
    /// time closes, then extends, forks, completes and starts partial
    /// matches. Events must come in timestamp order (see
    /// [`crate::EventTimeState`] for out-of-order input).
    pub fn process(&mut self, nfa: &Nfa<E>, event: E, timestamp: i64, out: &mut Outputs<E>) {
        self.advance_time(nfa, timestamp, out);
        self.step(nfa, event, timestamp, out);
    }

    fn step(&mut self, nfa: &Nfa<E>, event: E, ts: i64, out: &mut Outputs<E>) {
        let key = EventKey {
            ts,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let sc = &mut out.scratch;
        sc.memo.next_event(2 * nfa.conds.len());
        let mut pending = Some(event);
        let mut slot = NONE;
        let mut next = std::mem::take(&mut sc.next);
        let mut potential = std::mem::take(&mut sc.potential);
        next.clear();
        potential.clear();
        let start = Partial {
            state: nfa.graph.start,
            last: NONE,
            start: key,
            prev_ts: ts,
        };
        // Existing partial matches first, the start state last (Flink's
        // order: the start state has no start event and sorts last).
        let count = self.partials.len();
        for i in 0..=count {
            let is_start = i == count;
            let p = if is_start { start } else { self.partials[i] };
            {
                let event = match (&pending, self.buffer.event(slot)) {
                    (Some(e), _) => e,
                    (None, Some(s)) => &s.event,
                    (None, None) => break,
                };
                let ctx = Ctx {
                    nfa,
                    event,
                    view: ChainView {
                        buffer: &self.buffer,
                        names: &nfa.names,
                        last: p.last,
                    },
                };
                sc.memo.next_partial();
                decide(&ctx, p.state, sc);
            }
            sc.retained.clear();
            let potential_before = potential.len();
            let mut discard = false;
            for d in 0..sc.decided.len() {
                let dec = sc.decided[d];
                let kind = nfa.graph.states[dec.target as usize].kind;
                match dec.action {
                    Action::Ignore => {
                        // The start state never skips: a new one comes with each event.
                        if is_start {
                            continue;
                        }
                        let np = Partial {
                            state: dec.target,
                            ..p
                        };
                        classify(np, kind, &mut potential, &mut sc.retained, &mut discard);
                    }
                    Action::Take => {
                        if kind == Kind::Stop {
                            discard = true;
                            continue;
                        }
                        if slot == NONE {
                            if let Some(e) = pending.take() {
                                slot = self.buffer.add_event(e, key);
                            }
                        }
                        let step = nfa.graph.states[dec.source as usize].step;
                        let node = self.buffer.add_node(slot, step, p.last);
                        let np = Partial {
                            state: dec.target,
                            last: node,
                            start: if is_start { key } else { p.start },
                            prev_ts: ts,
                        };
                        classify(np, kind, &mut potential, &mut sc.retained, &mut discard);
                        if dec.also_final != NONE {
                            let fp = Partial {
                                state: dec.also_final,
                                ..np
                            };
                            classify(
                                fp,
                                Kind::Final,
                                &mut potential,
                                &mut sc.retained,
                                &mut discard,
                            );
                        }
                    }
                    Action::Proceed => {}
                }
            }
            // Each kept partial match holds its last node. The parent's own
            // hold passes to the first child that shares its node, so a
            // partial match that only skips the event touches no refcount.
            let mut inherited = is_start;
            for c in potential[potential_before..]
                .iter()
                .chain(sc.retained.iter())
            {
                if !inherited && c.last == p.last {
                    inherited = true;
                } else {
                    self.buffer.retain(c.last);
                }
            }
            if !inherited {
                self.buffer.release(p.last);
            }
            if discard {
                // A stop state was reached: the branch's other children die
                // with it (Flink's `shouldDiscardPath`), and so do the nodes
                // they took, released once the event is done with (until
                // then they hold it for the partial matches still to see it).
                sc.discarded.extend(sc.retained.drain(..).map(|c| c.last));
            } else {
                next.append(&mut sc.retained);
            }
        }
        self.partials.set(&next);
        next.clear();
        sc.next = next;
        for node in sc.discarded.drain(..) {
            self.buffer.release(node);
        }
        if slot != NONE {
            self.buffer.drop_if_unused(slot);
        }
        let wait = nfa.skip.is_skip();
        // With nothing complete nor waiting, `emit` does nothing (most
        // events): the test is made here, not in a call.
        if !potential.is_empty() || !self.completed.is_empty() {
            self.emit(nfa, &mut potential, wait, out);
        }
        if !wait && !self.completed.is_empty() {
            // Matches a window completed (trailing notFollowedBy) wait behind
            // earlier partial matches even without a skip strategy; this
            // event may have ended those.
            self.emit(nfa, &mut potential, true, out);
        }
        out.scratch.potential = potential;
        self.enforce_cap(nfa);
        self.deadline = nfa.deadline(&self.partials);
    }

    /// Moves time to `time` (ms): partial matches whose window has closed
    /// time out (a trailing `notFollowedBy` completes instead).
    #[inline(always)]
    pub fn advance_time(&mut self, nfa: &Nfa<E>, time: i64, out: &mut Outputs<E>) {
        // Nothing closes before the earliest deadline: most calls stop here
        // without touching the partial matches, tested inline (under WASM
        // the call cost more than the test).
        if time >= self.deadline {
            self.time_out(nfa, time, out);
        }
    }

    /// [`advance_time`](Self::advance_time) once a deadline has passed.
    #[inline(never)]
    fn time_out(&mut self, nfa: &Nfa<E>, time: i64, out: &mut Outputs<E>) {
        let mut kept = std::mem::take(&mut out.scratch.next);
        let mut potential = std::mem::take(&mut out.scratch.potential);
        kept.clear();
        potential.clear();
        for i in 0..self.partials.len() {
            let p = self.partials[i];
            let st = &nfa.graph.states[p.state as usize];
            let prev_window = nfa.prev_windows.get(st.step as usize).copied().flatten();
            let by_prev = prev_window.filter(|&w| time.saturating_sub(p.prev_ts) >= w);
            let by_first = nfa.window.filter(|&w| time.saturating_sub(p.start.ts) >= w);
            if by_prev.is_none() && by_first.is_none() {
                kept.push(p);
                continue;
            }
            if st.kind == Kind::Pending {
                potential.push(p);
                continue;
            }
            self.counters.timeouts += 1;
            if nfa.emit_timeouts {
                let timeout_at = match (by_prev, by_first) {
                    (Some(w), _) => p.prev_ts.saturating_add(w),
                    (None, Some(w)) => p.start.ts.saturating_add(w),
                    (None, None) => time,
                };
                let steps = self.buffer.materialize(
                    p.last,
                    &nfa.names,
                    &mut out.scratch.chain,
                    &mut out.spare,
                );
                out.timeouts.push(TimedOut {
                    steps,
                    first_time: p.start.ts,
                    last_time: p.prev_ts,
                    timeout_at,
                });
            }
            self.buffer.release(p.last);
        }
        self.partials.set(&kept);
        kept.clear();
        out.scratch.next = kept;
        self.emit(nfa, &mut potential, true, out);
        out.scratch.potential = potential;
        self.deadline = nfa.deadline(&self.partials);
    }

    /// Emits complete matches. With `wait`, a match waits in `completed`
    /// until no partial match started before it, then prunes per the skip
    /// strategy (Flink's `processMatchesAccordingToSkipStrategy`).
    fn emit(
        &mut self,
        nfa: &Nfa<E>,
        potential: &mut Vec<Partial>,
        wait: bool,
        out: &mut Outputs<E>,
    ) {
        if !wait {
            potential.sort_by_key(|p| p.start);
            for p in potential.drain(..) {
                self.emit_one(nfa, p, out);
            }
            return;
        }
        if potential.is_empty() && self.completed.is_empty() {
            return;
        }
        self.completed.append(potential);
        self.completed.sort_by_key(|p| p.start);
        while let Some(&first) = self.completed.first() {
            let earliest_partial = self.partials.iter().map(|p| p.start).min();
            if earliest_partial.is_some_and(|e| first.start > e) {
                break;
            }
            self.completed.remove(0);
            self.chain_keys(first.last, &mut out.scratch);
            if let Some(pruning) = nfa.skip.pruning_id(&out.scratch.keys) {
                let skip = nfa.skip;
                let buffer = &mut self.buffer;
                let mut keep = |p: &Partial| {
                    let pruned = skip.should_prune(p.start, pruning);
                    if pruned {
                        buffer.release(p.last);
                    }
                    !pruned
                };
                self.partials.retain(&mut keep);
                self.completed.retain(keep);
            }
            self.emit_one(nfa, first, out);
        }
    }

    fn emit_one(&mut self, nfa: &Nfa<E>, p: Partial, out: &mut Outputs<E>) {
        let steps =
            self.buffer
                .materialize(p.last, &nfa.names, &mut out.scratch.chain, &mut out.spare);
        out.matches.push(Match {
            steps,
            first_time: p.start.ts,
            last_time: p.prev_ts,
        });
        self.counters.matches += 1;
        self.buffer.release(p.last);
    }

    /// The match's events in order as `(step, event key)`, into `sc.keys`.
    fn chain_keys(&self, last: u32, sc: &mut Scratch) {
        self.buffer.chain_into(last, &mut sc.chain);
        sc.keys.clear();
        for &(step, slot) in &sc.chain {
            if let Some(e) = self.buffer.event(slot) {
                sc.keys.push((step, e.key));
            }
        }
    }

    /// Drops the oldest partial matches while over the cap.
    fn enforce_cap(&mut self, nfa: &Nfa<E>) {
        let excess = self.partials.len().saturating_sub(nfa.max_partials);
        if excess == 0 {
            return;
        }
        if !self.partials.is_sorted_by_key(|p| p.start) {
            self.partials.sort_by_key(|p| p.start);
        }
        for p in &self.partials[..excess] {
            self.buffer.release(p.last);
        }
        self.partials.remove_front(excess);
        self.counters.dropped += excess as u64;
    }
}

/// Sorts a new partial match: complete, dead (a stop state), or alive.
fn classify(
    p: Partial,
    kind: Kind,
    potential: &mut Vec<Partial>,
    retained: &mut Vec<Partial>,
    discard: &mut bool,
) {
    match kind {
        Kind::Final => potential.push(p),
        // A take into a stop state is handled by the caller; an ignore into
        // one cannot be compiled.
        Kind::Stop => *discard = true,
        Kind::Normal | Kind::Pending => retained.push(p),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::condition::{Condition, Simple};
    use crate::{Outputs, Pattern};

    /// Counts its tests; `reads_matched` as told.
    struct Counted {
        calls: Arc<AtomicUsize>,
        reads_matched: bool,
    }

    impl Condition<char> for Counted {
        fn test(&self, event: &char, _: &dyn crate::Matched<char>) -> bool {
            self.calls.fetch_add(1, Ordering::Relaxed);
            *event == 'b'
        }
        fn reads_matched(&self) -> bool {
            self.reads_matched
        }
    }

    /// Tests of `b`'s condition while three `a`s wait and a `b` comes.
    fn tests_of_b(reads_matched: bool) -> usize {
        let calls = Arc::new(AtomicUsize::new(0));
        let nfa = Pattern::begin("a")
            .where_cond(Box::new(Simple(|e: &char| *e == 'a')))
            .followed_by("b")
            .where_cond(Box::new(Counted {
                calls: Arc::clone(&calls),
                reads_matched,
            }))
            .compile()
            .unwrap();
        let mut key = nfa.new_state();
        let mut out = Outputs::new();
        for (ts, e) in [(1, 'a'), (2, 'a'), (3, 'a')] {
            key.process(&nfa, e, ts, &mut out);
        }
        calls.store(0, Ordering::Relaxed);
        key.process(&nfa, 'b', 4, &mut out);
        assert_eq!(out.matches.len(), 3);
        calls.load(Ordering::Relaxed)
    }

    #[test]
    fn a_condition_of_the_event_alone_is_tested_once_per_event() {
        assert_eq!(tests_of_b(false), 1);
        assert_eq!(tests_of_b(true), 3, "once per partial match");
    }
}
