//! The rule file as users write it (YAML, read by the orchestrator).
//!
//! Only serde derives here: the orchestrator owns the YAML parser and line
//! numbers; [`Rule::check`](super::Rule::check) does the validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A declarative complex-event-processing rule: a sequence of steps, each an
/// expression over one event, matched per key with Flink CEP semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Rule {
    /// The rule's name, reported with every match.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// The time a whole match may span, in milliseconds (more than 0).
    /// Absent: no limit, and partial matches live until they complete or
    /// fail.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<u64>,
    /// What `within_ms` measures. Default `first_and_last`. Needs `within_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_type: Option<WithinType>,
    /// Which other matches survive a match (the after-match skip strategy).
    /// Default `{ strategy: no_skip }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Skip>,
    /// At most this many partial matches are kept per key (more than 0);
    /// absent: no cap.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_partial_matches_per_key: Option<u64>,
    /// The steps, in the order a match takes them. At least one.
    pub steps: Vec<Step>,
    /// The output of a match: output field name to an expression over the
    /// matched steps (aggregates such as `first(step).field`, `count(step)`;
    /// there is no current event). Absent: the engine's default output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub emit: BTreeMap<String, String>,
}

/// One step of a rule: a condition on one event, and how many events and
/// how they may follow each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Step {
    /// The step's name, unique in the rule. Any non-empty string; to be used
    /// in expressions (`count(name)`) it must be an identifier (letters,
    /// digits and `_`, not starting with a digit).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// The condition an event must meet to be taken by this step, e.g.
    /// `status == "failed" && amount > 2 * avg(fail.amount)`. It may
    /// aggregate over earlier steps, and a looping step over its own events
    /// so far.
    #[serde(rename = "where")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub condition: String,
    /// How many events the step takes. Absent: exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantifier: Option<Quantifier>,
    /// How a looping step's events may follow each other: `strict` (no
    /// other event in between), `relaxed` (skip non-matching events, the
    /// default) or `any` (also skip matching ones, yielding every
    /// combination). Only for a looping step (quantifier max absent or > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_contiguity: Option<Contiguity>,
    /// How the step's first event follows the previous step's last:
    /// `strict` (next event), `relaxed` (default: skip non-matching events)
    /// or `any` (also skip matching ones). Not for the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contiguity: Option<Contiguity>,
    /// The step may take no event at all.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// A looping step takes as many events as it can, rather than letting
    /// the next step start as early as possible. Not for the last step.
    #[serde(default, skip_serializing_if = "is_false")]
    pub greedy: bool,
    /// For a looping step with no max: an event meeting this condition ends
    /// the loop (and is not taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The step must *not* happen: with `strict` contiguity the next event
    /// must not meet the condition (Flink's `notNext`), with `relaxed` no
    /// event before the following step may (`notFollowedBy`). Takes no
    /// events, so it has no quantifier and cannot be optional.
    #[serde(default, skip_serializing_if = "is_false")]
    pub negated: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How many events a step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Quantifier {
    /// At least this many (1 or more; use `optional` for zero).
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub min: u32,
    /// At most this many (at least `min`). Absent: unbounded.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// How events of a match may be spread over the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Contiguity {
    /// Right after: no other event in between.
    Strict,
    /// Later: events that do not match are skipped.
    Relaxed,
    /// Later, also skipping events that would match: every combination.
    Any,
}

/// What the rule's time window measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum WithinType {
    /// From the match's first event to its last.
    #[default]
    FirstAndLast,
    /// Between each event and the one before it.
    PreviousAndCurrent,
}

/// The after-match skip strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Skip {
    /// Which partial matches a completed match discards.
    pub strategy: SkipStrategy,
    /// The step `skip_to_first` / `skip_to_last` skip to; only for those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// Which partial matches a completed match discards (Flink's
/// `AfterMatchSkipStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SkipStrategy {
    /// None: every match is reported.
    NoSkip,
    /// Those that started with the same event.
    SkipToNext,
    /// Those that started before the match's last event.
    SkipPastLastEvent,
    /// Those that started before the first event of `step`.
    SkipToFirst,
    /// Those that started before the last event of `step`.
    SkipToLast,
}

impl SkipStrategy {
    /// The name as written in a rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipStrategy::NoSkip => "no_skip",
            SkipStrategy::SkipToNext => "skip_to_next",
            SkipStrategy::SkipPastLastEvent => "skip_past_last_event",
            SkipStrategy::SkipToFirst => "skip_to_first",
            SkipStrategy::SkipToLast => "skip_to_last",
        }
    }
}
