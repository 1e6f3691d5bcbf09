//! The checked rule: what the engine glue builds the NFA from.
//!
//! Every invariant [`Rule::check`](super::Rule::check) enforces holds here,
//! so the glue can trust it without re-validating.

use serde_json::{Map, Value};

use super::types::{Contiguity, WithinType};
use crate::expr::Expr;
use crate::Matched;

/// A validated rule with compiled expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRule {
    /// The rule's name.
    pub name: String,
    /// The time window a match must complete within, if any.
    pub within: Option<Within>,
    /// The after-match skip strategy, its step resolved.
    pub skip: CheckedSkip,
    /// The cap on partial matches kept per key (at least 1), if any.
    pub max_partial_matches_per_key: Option<u64>,
    /// The steps in match order; at least one, the first not negated.
    pub steps: Vec<CheckedStep>,
    /// The output fields, sorted by name, each an expression over the
    /// completed match only (no current event). Empty: no `emit` section.
    pub emit: Vec<(String, Expr)>,
}

/// The rule's time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within {
    /// The window length in milliseconds, at least 1.
    pub ms: u64,
    /// What the window measures.
    pub kind: WithinType,
}

/// The after-match skip strategy; the `To*` variants name a step that exists
/// and is not negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedSkip {
    NoSkip,
    SkipToNext,
    SkipPastLastEvent,
    /// Discard partial matches that started before the first event of
    /// `steps[step]`.
    SkipToFirst {
        step: usize,
        name: String,
    },
    /// Discard partial matches that started before the last event of
    /// `steps[step]`.
    SkipToLast {
        step: usize,
        name: String,
    },
}

/// One validated step.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedStep {
    /// The step's name, unique in the rule.
    pub name: String,
    /// The condition an event must meet (`where`); it may aggregate over
    /// earlier non-negated steps and, if the step loops, over itself.
    pub condition: Expr,
    /// At least this many events (1 unless a quantifier says more; an
    /// optional step may still take none). 1 for a negated step.
    pub min: u32,
    /// At most this many events; `None` = unbounded. `Some(1)` for a
    /// negated step. Never below `min`.
    pub max: Option<u32>,
    /// The step may take no event. Never set on a negated step.
    pub optional: bool,
    /// Take as many events as possible. Only on a looping, non-last,
    /// non-negated step whose loop contiguity is not `Any`.
    pub greedy: bool,
    /// How the step follows the previous one. `Relaxed` when unset, and
    /// meaningless for the first step. Never `Any` on a negated step.
    pub contiguity: Contiguity,
    /// How a looping step's events follow each other; `Relaxed` when unset
    /// (and on steps that do not loop).
    pub loop_contiguity: Contiguity,
    /// Ends the loop of an unbounded step; only on those.
    pub until: Option<Expr>,
    /// The step must not happen: `Strict` contiguity is Flink's `notNext`,
    /// `Relaxed` its `notFollowedBy`. Never the first step.
    pub negated: bool,
}

impl CheckedStep {
    /// Whether the step can take more than one event.
    pub fn is_looping(&self) -> bool {
        self.max != Some(1)
    }
}

impl CheckedRule {
    /// The index of the step named `name`.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// The `emit` output of a completed match: a JSON object with one field
    /// per `emit` entry (`null` where a value is missing, e.g. `first(s).x`
    /// of an optional step that took no event). An empty object when the
    /// rule has no `emit`.
    pub fn emit_value(&self, matched: &dyn Matched<Value>) -> Value {
        // Emit expressions were checked to read no current event.
        self.emit_value_in(&Value::Null, matched)
    }

    /// [`CheckedRule::emit_value`] over any event representation; `none`
    /// stands for the current event, which emit expressions never read.
    pub(crate) fn emit_value_in<E: crate::expr::EventFields + ?Sized>(
        &self,
        none: &E,
        matched: &dyn Matched<E>,
    ) -> Value {
        let fields: Map<String, Value> = self
            .emit
            .iter()
            .map(|(k, e)| (k.clone(), e.eval_in(none, matched)))
            .collect();
        Value::Object(fields)
    }

    /// The fields of an event the rule reads: its conditions, `until`s and
    /// `emit`, so a runner reads only those of each event.
    pub fn fields(&self) -> crate::project::Fields {
        let mut fields = crate::project::Fields::default();
        for s in &self.steps {
            s.condition.add_fields(&mut fields);
            if let Some(u) = &s.until {
                u.add_fields(&mut fields);
            }
        }
        for (_, e) in &self.emit {
            e.add_fields(&mut fields);
        }
        fields
    }
}
