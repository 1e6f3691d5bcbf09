//! The glue from a [`CheckedRule`] to the engine: a [`Pattern`] over JSON
//! events, its [`Nfa`], and the JSON records a match or timeout becomes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::ir::{CheckedRule, CheckedSkip, CheckedStep, Within};
use super::problem::RuleProblem;
use super::types::{Contiguity as RuleContiguity, WithinType as RuleWithinType};
use crate::condition::Condition;
use crate::expr::{EventFields, Expr, Fast};
use crate::matched::Matched;
use crate::nfa::Nfa;
use crate::output::{Match, TimedOut};
use crate::pattern::{Contiguity, Pattern, Quantifier, Step, Times};
use crate::project::Fields;
use crate::skip::AfterMatchSkip;

/// A rule expression as a step condition.
struct ExprCondition {
    expr: Expr,
    /// Whether it aggregates or picks over matched steps.
    reads_matched: bool,
    /// The expression tested on the slots of events read for these
    /// fields, where it can be (see [`Fast`]).
    fast: Option<(Fast, Arc<Fields>)>,
}

impl ExprCondition {
    fn new(expr: Expr, fields: Option<&Arc<Fields>>) -> Self {
        let reads_matched = !expr.steps().is_empty();
        let fast = fields.and_then(|f| Some((expr.bind(f)?, Arc::clone(f))));
        ExprCondition {
            expr,
            reads_matched,
            fast,
        }
    }
}

impl<E: EventFields> Condition<E> for ExprCondition {
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool {
        if let Some((fast, fields)) = &self.fast {
            if let Some(slots) = event.slots_of(fields) {
                return fast.test(slots);
            }
        }
        self.expr.eval_bool_in(event, matched)
    }

    fn reads_matched(&self) -> bool {
        self.reads_matched
    }
}

fn contiguity(c: RuleContiguity) -> Contiguity {
    match c {
        RuleContiguity::Strict => Contiguity::Strict,
        RuleContiguity::Relaxed => Contiguity::Relaxed,
        RuleContiguity::Any => Contiguity::NonDeterministicRelaxed,
    }
}

fn times(step: &CheckedStep) -> Times {
    match step.max {
        Some(1) => Times::One,
        Some(max) if max == step.min => Times::Exactly(max),
        Some(max) => Times::Range { min: step.min, max },
        None => Times::AtLeast(step.min),
    }
}

fn step<E: EventFields + 'static>(
    s: &CheckedStep,
    within: Option<Within>,
    fields: Option<&Arc<Fields>>,
) -> Step<E> {
    let previous = within
        .filter(|w| w.kind == RuleWithinType::PreviousAndCurrent)
        .map(|w| Duration::from_millis(w.ms));
    Step {
        name: s.name.clone(),
        condition: Box::new(ExprCondition::new(s.condition.clone(), fields)),
        contiguity: contiguity(s.contiguity),
        negated: s.negated,
        quantifier: Quantifier {
            times: times(s),
            optional: s.optional,
            greedy: s.greedy,
            inner: contiguity(s.loop_contiguity),
        },
        until: s
            .until
            .clone()
            .map(|u| Box::new(ExprCondition::new(u, fields)) as Box<dyn Condition<E>>),
        within_previous: previous,
    }
}

impl CheckedRule {
    /// The rule as an engine pattern. A `previous_and_current` window bounds
    /// the gap before every event of the match, so it is set on every step.
    pub fn pattern(&self) -> Pattern<Value> {
        self.pattern_of(None)
    }

    /// [`CheckedRule::pattern`] over any event representation the
    /// expressions can read; with `fields` (this rule's
    /// [`fields`](CheckedRule::fields)), conditions test events read for
    /// them on their slots where they can.
    pub(crate) fn pattern_of<E: EventFields + 'static>(
        &self,
        fields: Option<&Arc<Fields>>,
    ) -> Pattern<E> {
        let steps = self
            .steps
            .iter()
            .map(|s| step(s, self.within, fields))
            .collect();
        let skip = match &self.skip {
            CheckedSkip::NoSkip => AfterMatchSkip::NoSkip,
            CheckedSkip::SkipToNext => AfterMatchSkip::SkipToNext,
            CheckedSkip::SkipPastLastEvent => AfterMatchSkip::SkipPastLastEvent,
            CheckedSkip::SkipToFirst { name, .. } => AfterMatchSkip::SkipToFirst(name.clone()),
            CheckedSkip::SkipToLast { name, .. } => AfterMatchSkip::SkipToLast(name.clone()),
        };
        let mut pattern = Pattern::from_steps(steps).skip(skip);
        if let Some(w) = self
            .within
            .filter(|w| w.kind == RuleWithinType::FirstAndLast)
        {
            pattern = pattern.within(
                Duration::from_millis(w.ms),
                crate::pattern::WithinType::FirstAndLast,
            );
        }
        pattern
    }

    /// The rule compiled to an NFA, with its partial-match cap applied.
    ///
    /// A checked rule compiles; should the engine still refuse it, the
    /// error comes back as a problem located at the rule's `steps`.
    pub fn compile(&self) -> Result<Nfa<Value>, RuleProblem> {
        let nfa = self
            .pattern()
            .compile()
            .map_err(|e| RuleProblem::new("steps", e.to_string()))?;
        Ok(match self.max_partial_matches_per_key {
            Some(cap) => nfa.with_max_partial_matches(usize::try_from(cap).unwrap_or(usize::MAX)),
            None => nfa,
        })
    }

    /// The output record of a match: `{rule, key, steps, first_event_time,
    /// last_event_time, emit?}`, the events exactly as they came in. `event_time`
    /// gives each event's time; `emit` appears when the rule has one.
    pub fn match_record(
        &self,
        key: &Value,
        m: &Match<Value>,
        event_time: impl Fn(&Value) -> Option<i64>,
    ) -> Value {
        let mut record = self.record_head(key, &m.steps);
        let (first, last) = span(m.events(), event_time);
        record.insert("first_event_time".into(), first);
        record.insert("last_event_time".into(), last);
        if !self.emit.is_empty() {
            record.insert("emit".into(), self.emit_value(&StepEvents(&m.steps)));
        }
        Value::Object(record)
    }

    /// The output record of a timed-out partial match: `{rule, key,
    /// timed_out: true, steps, first_event_time, last_event_time,
    /// timeout_at}`.
    pub fn timeout_record(
        &self,
        key: &Value,
        t: &TimedOut<Value>,
        event_time: impl Fn(&Value) -> Option<i64>,
    ) -> Value {
        let mut record = self.record_head(key, &t.steps);
        record.insert("timed_out".into(), Value::Bool(true));
        let (first, last) = span(t.steps.iter().flat_map(|(_, v)| v.iter()), event_time);
        record.insert("first_event_time".into(), first);
        record.insert("last_event_time".into(), last);
        record.insert("timeout_at".into(), Value::from(t.timeout_at));
        Value::Object(record)
    }

    /// The `emit` value of a finished match's steps, when the rule has one.
    pub fn emit_of(&self, steps: &[(std::sync::Arc<str>, Vec<Value>)]) -> Option<Value> {
        (!self.emit.is_empty()).then(|| self.emit_value(&StepEvents(steps)))
    }

    fn record_head(
        &self,
        key: &Value,
        steps: &[(std::sync::Arc<str>, Vec<Value>)],
    ) -> Map<String, Value> {
        let by_step: Map<String, Value> = steps
            .iter()
            .map(|(name, events)| (name.to_string(), Value::Array(events.clone())))
            .collect();
        let mut record = Map::new();
        record.insert("rule".into(), Value::String(self.name.clone()));
        record.insert("key".into(), key.clone());
        record.insert("steps".into(), Value::Object(by_step));
        record
    }
}

/// The earliest and latest event time among `events` (`null` if none known).
fn span<'a>(
    events: impl Iterator<Item = &'a Value>,
    event_time: impl Fn(&Value) -> Option<i64>,
) -> (Value, Value) {
    let times: Vec<i64> = events.filter_map(event_time).collect();
    let first = times.iter().min().map_or(Value::Null, |t| Value::from(*t));
    let last = times.iter().max().map_or(Value::Null, |t| Value::from(*t));
    (first, last)
}

/// A finished match's events, as the `emit` expressions read them.
struct StepEvents<'a>(&'a [(std::sync::Arc<str>, Vec<Value>)]);

impl Matched<Value> for StepEvents<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        for (name, events) in self.0 {
            if &**name == step {
                events.iter().for_each(&mut *f);
            }
        }
    }
}
