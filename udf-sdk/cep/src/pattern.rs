//! The pattern API: steps, quantifiers, contiguity, windows, skip strategy.
//!
//! Reads like Flink's `Pattern` builder, but every part is also a plain
//! value ([`Step`], [`Quantifier`]) so a rule loaded at run time can build a
//! pattern with [`Pattern::from_steps`] instead of chaining calls.

use std::time::Duration;

use crate::condition::{Always, And, Condition, Or, Simple};
use crate::nfa::Nfa;
use crate::skip::AfterMatchSkip;
use crate::validate::PatternError;

type BoxedCondition<E> = Box<dyn Condition<E>>;

/// How a step follows the previous one, or how a looping step's events
/// follow each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contiguity {
    /// `next` / `consecutive`: no event in between.
    Strict,
    /// `followedBy`: skip events until the first that matches.
    Relaxed,
    /// `followedByAny` / `allowCombinations`: any later matching event, each
    /// on its own branch.
    NonDeterministicRelaxed,
}

/// How many events a step takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// Exactly one event (a singleton step).
    One,
    /// `times(n)`.
    Exactly(u32),
    /// `times(min, max)`; `min == 0` means optional with `min` 1, as in Flink.
    Range { min: u32, max: u32 },
    /// `timesOrMore(n)`; `oneOrMore()` is `AtLeast(1)`.
    AtLeast(u32),
}

/// A step's quantifier and its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantifier {
    pub times: Times,
    /// `optional()`: the step may take no event.
    pub optional: bool,
    /// `greedy()`: a repeated step takes as many events as it can.
    pub greedy: bool,
    /// Contiguity between the events of a repeated step: `Relaxed` by
    /// default, `Strict` with `consecutive()`, `NonDeterministicRelaxed`
    /// with `allowCombinations()`.
    pub inner: Contiguity,
}

impl Quantifier {
    /// A singleton step.
    pub const fn one() -> Self {
        Quantifier {
            times: Times::One,
            optional: false,
            greedy: false,
            inner: Contiguity::Relaxed,
        }
    }

    /// A step with the given repetition and default options.
    pub const fn of(times: Times) -> Self {
        Quantifier {
            times,
            ..Quantifier::one()
        }
    }

    /// Whether the step repeats without an upper bound.
    pub fn is_looping(&self) -> bool {
        matches!(self.times, Times::AtLeast(_))
    }

    /// Whether the step may take more than one event.
    pub fn is_repeated(&self) -> bool {
        !matches!(self.times, Times::One)
    }
}

impl Default for Quantifier {
    fn default() -> Self {
        Quantifier::one()
    }
}

/// Which events a `within` window bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithinType {
    /// From the first event of a match to its last: the whole match.
    FirstAndLast,
    /// From one event of the match to the next (set on the step that takes
    /// the later one).
    PreviousAndCurrent,
}

/// One step of a pattern, as a plain value.
pub struct Step<E> {
    /// Unique within the pattern; names the step's events in a match.
    pub name: String,
    /// What an event must satisfy to be taken (or, when `negated`, to kill
    /// the match).
    pub condition: Box<dyn Condition<E>>,
    /// How this step follows the previous one (ignored for the first step).
    pub contiguity: Contiguity,
    /// `notNext` (with `Strict`) or `notFollowedBy` (with `Relaxed`).
    pub negated: bool,
    pub quantifier: Quantifier,
    /// `until`: stops a looping step at the first event that satisfies it.
    pub until: Option<Box<dyn Condition<E>>>,
    /// A `PreviousAndCurrent` window: at most this long between the previous
    /// event of the match and an event this step takes.
    pub within_previous: Option<Duration>,
}

impl<E: 'static> Step<E> {
    /// A singleton step with relaxed contiguity that accepts `condition`.
    pub fn new(name: impl Into<String>, condition: Box<dyn Condition<E>>) -> Self {
        Step {
            name: name.into(),
            condition,
            contiguity: Contiguity::Relaxed,
            negated: false,
            quantifier: Quantifier::one(),
            until: None,
            within_previous: None,
        }
    }

    fn named(name: &str, contiguity: Contiguity, negated: bool) -> Self {
        Step {
            contiguity,
            negated,
            ..Step::new(name, Box::new(Always))
        }
    }
}

/// A sequence of steps, a window and an after-match skip strategy.
///
/// Builder calls that Flink would reject on the spot (a second quantifier, a
/// quantifier on a negated step...) are recorded and reported by
/// [`Pattern::compile`], so chains stay infallible.
pub struct Pattern<E> {
    pub(crate) steps: Vec<Step<E>>,
    pub(crate) within: Option<Duration>,
    pub(crate) skip: AfterMatchSkip,
    pub(crate) errors: Vec<PatternError>,
    /// Whether the last step's quantifier was set by a builder call.
    quantified: bool,
    /// Whether the last step has a condition yet (else it accepts all, and
    /// the first `where_` or `or_where` replaces that).
    conditioned: bool,
}

impl<E: 'static> Pattern<E> {
    /// Starts a pattern with its first step, which accepts every event until
    /// given a condition.
    pub fn begin(name: &str) -> Self {
        let mut p = Self::from_steps(vec![Step::named(name, Contiguity::Strict, false)]);
        p.conditioned = false;
        p
    }

    /// Starts a pattern with the given skip strategy.
    pub fn begin_with_skip(name: &str, skip: AfterMatchSkip) -> Self {
        Self::begin(name).skip(skip)
    }

    /// A pattern made of ready steps, for patterns built at run time.
    pub fn from_steps(steps: Vec<Step<E>>) -> Self {
        Pattern {
            steps,
            within: None,
            skip: AfterMatchSkip::NoSkip,
            errors: Vec::new(),
            quantified: false,
            conditioned: true,
        }
    }

    /// Appends a ready step.
    pub fn push(mut self, step: Step<E>) -> Self {
        self.steps.push(step);
        self.quantified = false;
        self.conditioned = true;
        self
    }

    /// Sets the after-match skip strategy.
    pub fn skip(mut self, skip: AfterMatchSkip) -> Self {
        self.skip = skip;
        self
    }

    /// The steps so far.
    pub fn steps(&self) -> &[Step<E>] {
        &self.steps
    }

    /// The `FirstAndLast` window, if any.
    pub fn window(&self) -> Option<Duration> {
        self.within
    }

    /// The after-match skip strategy.
    pub fn skip_strategy(&self) -> &AfterMatchSkip {
        &self.skip
    }

    /// The same pattern over another event type, each condition wrapped
    /// by `wrap` (a rule runner's events carry the JSON its conditions read).
    pub(crate) fn map_conditions<T: 'static>(
        self,
        mut wrap: impl FnMut(Box<dyn Condition<E>>) -> Box<dyn Condition<T>>,
    ) -> Pattern<T> {
        let steps = self
            .steps
            .into_iter()
            .map(|s| Step {
                name: s.name,
                condition: wrap(s.condition),
                contiguity: s.contiguity,
                negated: s.negated,
                quantifier: s.quantifier,
                until: s.until.map(&mut wrap),
                within_previous: s.within_previous,
            })
            .collect();
        Pattern {
            steps,
            within: self.within,
            skip: self.skip,
            errors: self.errors,
            quantified: self.quantified,
            conditioned: self.conditioned,
        }
    }

    /// Compiles the pattern into an NFA, or says why it is malformed.
    pub fn compile(self) -> Result<Nfa<E>, PatternError> {
        Nfa::compile(self)
    }

    fn last(&mut self) -> Option<&mut Step<E>> {
        self.steps.last_mut()
    }

    fn record(&mut self, error: PatternError) {
        self.errors.push(error);
    }

    fn then(mut self, name: &str, contiguity: Contiguity, negated: bool) -> Self {
        // Flink refuses a negation right after an optional step.
        if negated && self.last().is_some_and(|s| s.quantifier.optional) {
            let name = name.to_string();
            self.record(PatternError::NegationAfterOptional(name));
        }
        let mut p = self.push(Step::named(name, contiguity, negated));
        p.conditioned = false;
        p
    }

    /// The next step must take the very next event (strict contiguity).
    pub fn next(self, name: &str) -> Self {
        self.then(name, Contiguity::Strict, false)
    }

    /// The next step takes the first matching event after (relaxed).
    pub fn followed_by(self, name: &str) -> Self {
        self.then(name, Contiguity::Relaxed, false)
    }

    /// The next step takes any later matching event (non-deterministic relaxed).
    pub fn followed_by_any(self, name: &str) -> Self {
        self.then(name, Contiguity::NonDeterministicRelaxed, false)
    }

    /// The very next event must not satisfy the step's condition.
    pub fn not_next(self, name: &str) -> Self {
        self.then(name, Contiguity::Strict, true)
    }

    /// No event between the previous and the following step may satisfy the
    /// step's condition.
    pub fn not_followed_by(self, name: &str) -> Self {
        self.then(name, Contiguity::Relaxed, true)
    }

    /// Adds a condition to the current step (ANDed with any before).
    pub fn where_<F>(self, f: F) -> Self
    where
        F: Fn(&E, &dyn crate::Matched<E>) -> bool + Send + Sync + 'static,
    {
        self.where_cond(Box::new(f))
    }

    /// Adds a condition on the event alone (Flink's `SimpleCondition`),
    /// ANDed with any before: the engine tests it once per event, not
    /// once per partial match the event could extend.
    pub fn where_event<F>(self, f: F) -> Self
    where
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.where_cond(Box::new(Simple(f)))
    }

    /// Adds an alternative condition on the event alone to the current
    /// step (see [`Pattern::where_event`]).
    pub fn or_where_event<F>(self, f: F) -> Self
    where
        F: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.or_where_cond(Box::new(Simple(f)))
    }

    /// Adds a boxed condition to the current step (ANDed with any before).
    pub fn where_cond(self, cond: Box<dyn Condition<E>>) -> Self {
        self.combine(cond, |old, new| Box::new(And(old, new)))
    }

    fn combine(
        mut self,
        cond: Box<dyn Condition<E>>,
        join: fn(BoxedCondition<E>, BoxedCondition<E>) -> BoxedCondition<E>,
    ) -> Self {
        let conditioned = self.conditioned;
        if let Some(step) = self.last() {
            step.condition = if conditioned {
                let old = std::mem::replace(&mut step.condition, Box::new(Always));
                join(old, cond)
            } else {
                cond
            };
        }
        self.conditioned = true;
        self
    }

    /// Adds an alternative condition to the current step.
    pub fn or_where<F>(self, f: F) -> Self
    where
        F: Fn(&E, &dyn crate::Matched<E>) -> bool + Send + Sync + 'static,
    {
        self.or_where_cond(Box::new(f))
    }

    /// Adds a boxed alternative condition to the current step.
    pub fn or_where_cond(self, cond: Box<dyn Condition<E>>) -> Self {
        self.combine(cond, |old, new| Box::new(Or(old, new)))
    }

    fn quantify(mut self, times: Times) -> Self {
        let Some(step) = self.steps.last_mut() else {
            return self;
        };
        let name = step.name.clone();
        if step.negated {
            self.record(PatternError::QuantifierOnNegated(name));
        } else if self.quantified {
            self.record(PatternError::QuantifierAlreadyApplied(name));
        } else {
            step.quantifier.times = times;
            self.quantified = true;
        }
        self
    }

    /// The step takes exactly `n` events.
    pub fn times(self, n: u32) -> Self {
        if n == 0 {
            let name = self
                .steps
                .last()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            return self.with_error(PatternError::BadTimes(name));
        }
        self.quantify(Times::Exactly(n))
    }

    /// The step takes between `min` and `max` events.
    pub fn times_range(self, min: u32, max: u32) -> Self {
        self.quantify(Times::Range { min, max })
    }

    /// The step takes one or more events.
    pub fn one_or_more(self) -> Self {
        self.quantify(Times::AtLeast(1))
    }

    /// The step takes `n` or more events.
    pub fn times_or_more(self, n: u32) -> Self {
        self.quantify(Times::AtLeast(n))
    }

    fn with_error(mut self, error: PatternError) -> Self {
        self.record(error);
        self
    }

    fn option(mut self, apply: impl FnOnce(&mut Step<E>) -> Result<(), PatternError>) -> Self {
        if let Some(step) = self.steps.last_mut() {
            if let Err(e) = apply(step) {
                self.record(e);
            }
        }
        self
    }

    /// The step may take no event.
    pub fn optional(mut self) -> Self {
        let n = self.steps.len();
        if n >= 2 && self.steps[n - 2].quantifier.greedy {
            let name = self.steps[n - 1].name.clone();
            self.record(PatternError::OptionalAfterGreedy(name));
        }
        self.option(|s| {
            if s.negated {
                Err(PatternError::QuantifierOnNegated(s.name.clone()))
            } else if s.quantifier.optional {
                Err(PatternError::OptionAlreadyApplied(
                    s.name.clone(),
                    "optional",
                ))
            } else {
                s.quantifier.optional = true;
                Ok(())
            }
        })
    }

    /// A repeated step takes as many events as it can.
    pub fn greedy(self) -> Self {
        self.option(|s| {
            s.quantifier.greedy = true;
            Ok(())
        })
    }

    /// A repeated step takes its events with strict contiguity.
    pub fn consecutive(self) -> Self {
        self.option(|s| set_inner(s, Contiguity::Strict, "consecutive"))
    }

    /// A repeated step takes any later matching events (non-deterministic).
    pub fn allow_combinations(self) -> Self {
        self.option(|s| set_inner(s, Contiguity::NonDeterministicRelaxed, "allowCombinations"))
    }

    /// A looping step stops before the first event satisfying `f`.
    pub fn until<F>(self, f: F) -> Self
    where
        F: Fn(&E, &dyn crate::Matched<E>) -> bool + Send + Sync + 'static,
    {
        self.until_cond(Box::new(f))
    }

    /// A looping step stops before the first event satisfying `cond`.
    pub fn until_cond(self, cond: Box<dyn Condition<E>>) -> Self {
        self.option(move |s| {
            s.until = Some(match s.until.take() {
                Some(old) => Box::new(Or(old, cond)),
                None => cond,
            });
            Ok(())
        })
    }

    /// Bounds the match in time. `FirstAndLast` bounds the whole match (the
    /// smallest of several wins); `PreviousAndCurrent` bounds the gap before
    /// each event the current step takes.
    pub fn within(mut self, window: Duration, kind: WithinType) -> Self {
        match kind {
            WithinType::FirstAndLast => {
                self.within = Some(self.within.map_or(window, |w| w.min(window)));
            }
            WithinType::PreviousAndCurrent => {
                if let Some(step) = self.steps.last_mut() {
                    step.within_previous = Some(window);
                }
            }
        }
        self
    }
}

fn set_inner<E>(s: &mut Step<E>, c: Contiguity, what: &'static str) -> Result<(), PatternError> {
    if s.quantifier.inner != Contiguity::Relaxed {
        return Err(PatternError::OptionAlreadyApplied(s.name.clone(), what));
    }
    s.quantifier.inner = c;
    Ok(())
}
