//! Workflow run events: a run's whole history, replayed to rebuild it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::WorkflowSpec;
use crate::domain::ErrorClass;

/// Why a step attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepError {
    pub step: String,
    pub attempt: u32,
    pub class: ErrorClass,
    pub message: String,
}

/// A run event, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunEvent {
    /// The definition is pinned here: later edits of the file never reach this run.
    RunStarted {
        workflow: String,
        file: String,
        definition_sha256: String,
        definition: String,
        spec: Box<WorkflowSpec>,
        input: serde_json::Value,
        at: DateTime<Utc>,
    },
    /// A step (or a step's compensation) is next, not before `not_before`.
    StepScheduled {
        seq: u64,
        step: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compensation: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<DateTime<Utc>>,
    },
    /// A step's condition was false.
    StepSkipped {
        step: String,
    },
    /// A replica leased the step and is running its activity.
    StepStarted {
        seq: u64,
        step: String,
        attempt: u32,
        owner: String,
        lease_until: DateTime<Utc>,
        idempotency_key: String,
        at: DateTime<Utc>,
    },
    /// A wait began; its deadline is a durable timer.
    WaitStarted {
        seq: u64,
        step: String,
        deadline: DateTime<Utc>,
        #[serde(default)]
        baseline: serde_json::Value,
        at: DateTime<Utc>,
    },
    StepCompleted {
        seq: u64,
        step: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compensation: bool,
        #[serde(default)]
        output: serde_json::Value,
        at: DateTime<Utc>,
    },
    StepFailed {
        seq: u64,
        error: StepError,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compensation: bool,
        /// When the next attempt is due; none when the step failed for good.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// A wait's deadline passed.
    TimerFired {
        seq: u64,
        step: String,
        at: DateTime<Utc>,
    },
    /// Compensations will run for these steps, in this order.
    CompensationStarted {
        steps: Vec<String>,
    },
    RunPaused {
        reason: String,
        at: DateTime<Utc>,
    },
    RunResumed {
        by: String,
        at: DateTime<Utc>,
    },
    RunCompleted {
        #[serde(default)]
        outputs: serde_json::Value,
        at: DateTime<Utc>,
    },
    RunFailed {
        reason: String,
        at: DateTime<Utc>,
    },
    RunCompensated {
        reason: String,
        at: DateTime<Utc>,
    },
    RunAborted {
        by: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl RunEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::StepScheduled { .. } => "step_scheduled",
            RunEvent::StepSkipped { .. } => "step_skipped",
            RunEvent::StepStarted { .. } => "step_started",
            RunEvent::WaitStarted { .. } => "wait_started",
            RunEvent::StepCompleted { .. } => "step_completed",
            RunEvent::StepFailed { .. } => "step_failed",
            RunEvent::TimerFired { .. } => "timer_fired",
            RunEvent::CompensationStarted { .. } => "compensation_started",
            RunEvent::RunPaused { .. } => "run_paused",
            RunEvent::RunResumed { .. } => "run_resumed",
            RunEvent::RunCompleted { .. } => "run_completed",
            RunEvent::RunFailed { .. } => "run_failed",
            RunEvent::RunCompensated { .. } => "run_compensated",
            RunEvent::RunAborted { .. } => "run_aborted",
        }
    }
}
