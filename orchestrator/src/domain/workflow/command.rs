//! Workflow run commands. `workflow.resume` and `workflow.abort` come from
//! operators; the rest are how engine replicas record progress. Every one of
//! them goes through the same command handler as job commands, so a run's
//! history is as durable and deduplicated as a job's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::ErrorClass;

/// A workflow run command, tagged by `kind` with its `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", deny_unknown_fields)]
pub enum WorkflowCommand {
    /// Start a run of a definition (the text is pinned in the run).
    #[serde(rename = "workflow.start")]
    Start(StartRun),
    /// Take the current step: a lease for an activity, the timer for a wait.
    #[serde(rename = "workflow.claim_step")]
    ClaimStep(ClaimStep),
    /// The current step succeeded.
    #[serde(rename = "workflow.complete_step")]
    CompleteStep(CompleteStep),
    /// The current step's attempt failed.
    #[serde(rename = "workflow.fail_step")]
    FailStep(FailStep),
    /// The current wait's deadline passed.
    #[serde(rename = "workflow.fire_timer")]
    FireTimer(StepRef),
    /// Continue a paused run: the failed step runs again with a fresh retry budget.
    #[serde(rename = "workflow.resume")]
    Resume(Empty),
    /// End a running or paused run now.
    #[serde(rename = "workflow.abort")]
    Abort(Abort),
}

/// A payload with no fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The workflow's file name, e.g. `deploy.yaml`, for the record.
    pub file: String,
    /// The definition's full text. Its sha256 is pinned in the run.
    pub definition: String,
    /// The run's input, `$.input` in expressions.
    #[serde(default)]
    pub input: serde_json::Value,
}

/// Names the current step by its schedule number, so a late report about an
/// earlier attempt can never be mistaken for the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRef {
    pub seq: u64,
    pub step: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimStep {
    pub seq: u64,
    pub step: String,
    /// The replica taking the step.
    pub owner: String,
    /// How long the lease lasts, in milliseconds.
    pub lease_ms: u64,
    /// For waits: what the watched deployment looked like when the wait began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteStep {
    pub seq: u64,
    pub step: String,
    #[serde(default)]
    pub output: serde_json::Value,
    /// Also take the next step, if it is an activity due now: one commit
    /// instead of two per step for the replica that is already driving the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_next: Option<ClaimNext>,
}

/// Who takes the next step, and the lease margin beyond its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimNext {
    pub owner: String,
    pub grace_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailStep {
    pub seq: u64,
    pub step: String,
    pub class: ErrorClass,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WorkflowCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            WorkflowCommand::Start(_) => "workflow.start",
            WorkflowCommand::ClaimStep(_) => "workflow.claim_step",
            WorkflowCommand::CompleteStep(_) => "workflow.complete_step",
            WorkflowCommand::FailStep(_) => "workflow.fail_step",
            WorkflowCommand::FireTimer(_) => "workflow.fire_timer",
            WorkflowCommand::Resume(_) => "workflow.resume",
            WorkflowCommand::Abort(_) => "workflow.abort",
        }
    }

    pub const KINDS: [&'static str; 7] = [
        "workflow.start",
        "workflow.claim_step",
        "workflow.complete_step",
        "workflow.fail_step",
        "workflow.fire_timer",
        "workflow.resume",
        "workflow.abort",
    ];
}
