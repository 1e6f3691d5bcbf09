//! The workflow file format. These types are the reference: the JSON Schema
//! (`docs/schemas/workflow.schema.json`) is generated from them and
//! `docs/workflows.md` explains them. Unknown fields are refused, so a typo
//! fails at load instead of being silently ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::duration::Dur;
use crate::domain::error_class::ErrorClass;

/// A workflow definition: steps run in order, with branches, retries, waits and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Workflow")]
pub struct WorkflowSpec {
    /// The workflow's name, e.g. `deploy`. Shown in run listings.
    pub name: String,
    /// Free text for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Settings every step inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The steps, run top to bottom unless a step's `next` or `on_failure: {goto}` jumps.
    pub steps: Vec<Step>,
    /// Values the finished run reports, each a path into the run's context (e.g. `$.steps.plan.output.plan_digest`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// Settings every step inherits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How long one attempt of an activity may take before it fails with class `timeout`.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// How long a `wait` step waits when it sets no `within`.
    #[serde(default = "default_wait")]
    pub wait_within: Dur,
    /// Retry policy of steps that set none.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// What happens when a step fails for good, for steps that set nothing.
    #[serde(default)]
    pub on_failure: OnFailure,
}

fn default_timeout() -> Dur {
    Dur::from_secs(30)
}
fn default_wait() -> Dur {
    Dur::from_secs(600)
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            wait_within: default_wait(),
            retry: RetryPolicy::default(),
            on_failure: OnFailure::default(),
        }
    }
}

/// One step: either an `activity` or a `wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the file (`[a-z0-9_-]`). Part of the step's idempotency key `run_id/step_id`.
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A condition (see "Expressions"); the step is skipped when it is false.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The activity to run, e.g. `start`. Exactly one of `activity` and `wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// Wait for a condition or a timer instead of running an activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
    /// The activity's input. String values starting with `$` are paths into the run's
    /// context (`$.input.job`); write `$$` for a literal `$`. Other values are literals.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub input: BTreeMap<String, serde_json::Value>,
    /// Overrides `defaults.retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Overrides `defaults.timeout` for this activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// Overrides `defaults.on_failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Undoes this step when a later step fails with `on_failure: compensate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate: Option<Compensation>,
    /// The step to run after this one succeeds (or `end`); the next in the file if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// How often and when a failed activity is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 means no retry.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay between attempts.
    #[serde(default)]
    pub backoff: Backoff,
    /// Error classes worth retrying; any other class fails the step at once.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<ErrorClass>,
}

fn default_attempts() -> u32 {
    3
}
fn default_retry_on() -> Vec<ErrorClass> {
    vec![
        ErrorClass::Unavailable,
        ErrorClass::Timeout,
        ErrorClass::Conflict,
    ]
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            backoff: Backoff::default(),
            retry_on: default_retry_on(),
        }
    }
}

/// Exponential backoff: `initial`, then × `multiplier` per attempt, at most
/// `max`; each delay is cut by up to a fifth as jitter, seeded from the step
/// and attempt so a replayed run computes the same time
/// ([`crate::domain::BackoffPolicy`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    #[serde(default = "default_initial")]
    pub initial: Dur,
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    #[serde(default = "default_max")]
    pub max: Dur,
}

fn default_initial() -> Dur {
    Dur::from_secs(1)
}
fn default_multiplier() -> f64 {
    2.0
}
fn default_max() -> Dur {
    Dur::from_secs(60)
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: default_initial(),
            multiplier: default_multiplier(),
            max: default_max(),
        }
    }
}

/// What a step's failure does to the run, once retries are spent:
/// `pause`, `fail`, `compensate`, or `{goto: <step id>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "must be pause, fail, compensate or {goto: <step id>}"
)]
pub enum OnFailure {
    /// `pause` (stop and wait for `weir workflow resume` or `abort`), `fail` (end the run as
    /// failed) or `compensate` (run the `compensate` activities of the completed steps, newest
    /// first, then end as compensated).
    Action(FailureAction),
    /// Continue at another step; `$.error` describes the failure.
    Goto {
        /// The step to continue at, or `end`.
        goto: String,
    },
}

/// The failure actions that take no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    Pause,
    Fail,
    Compensate,
}

impl Default for OnFailure {
    fn default() -> Self {
        OnFailure::Action(FailureAction::Pause)
    }
}

/// An activity that undoes a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compensation {
    pub activity: String,
    /// Same rules as a step's `input`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub input: BTreeMap<String, serde_json::Value>,
}

/// Waits until every condition given holds, or fails with class `timeout` after `within`.
/// The deployment conditions look at the run's job (`$.input.job`) and generation (`$.input.generation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// A plain timer: succeed after this long. Excludes every other condition.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub timer: Option<Dur>,
    /// Every task of the deployment reports running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub running: bool,
    /// This many checkpoints completed since the wait began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<u32>,
    /// No task restarted for this long since the wait began; a restart fails the wait with class `unhealthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_for: Option<Dur>,
    /// A job event of this type (e.g. `compile_succeeded`) recorded after the run's trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Fields the event's payload must have, same rules as `input`.
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub matches: BTreeMap<String, serde_json::Value>,
    /// Job event types that fail the wait at once with class `rejected` (e.g. `compile_failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_on: Vec<String>,
    /// Give up after this long; `defaults.wait_within` if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Dur>,
    /// How often the conditions are checked.
    #[serde(default = "default_poll")]
    pub poll: Dur,
}

fn default_poll() -> Dur {
    Dur::from_millis(500)
}

impl WorkflowSpec {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn retry_of<'a>(&'a self, step: &'a Step) -> &'a RetryPolicy {
        step.retry.as_ref().unwrap_or(&self.defaults.retry)
    }
    pub fn timeout_of(&self, step: &Step) -> Dur {
        step.timeout.unwrap_or(self.defaults.timeout)
    }
    pub fn on_failure_of<'a>(&'a self, step: &'a Step) -> &'a OnFailure {
        step.on_failure
            .as_ref()
            .unwrap_or(&self.defaults.on_failure)
    }
    pub fn within_of(&self, wait: &WaitSpec) -> Dur {
        wait.within.unwrap_or(self.defaults.wait_within)
    }
}
