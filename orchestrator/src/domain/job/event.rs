//! Job events: the facts a job's state is folded from. Never edited, only appended.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::incident::RuntimeIncident;

/// What started a deployment. Kept apart from the runtime phase so that
/// "running" and "why we are deploying" never get conflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployCause {
    /// A first deployment, or a redeploy after a stop or failure.
    Deploy,
    /// A new version replacing a running one.
    Upgrade,
    /// Back to the last stable version.
    Rollback,
    /// Restart from a checkpoint.
    Restore,
    /// Same version at a new parallelism.
    Rescale,
}

/// A job event, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobEvent {
    JobCreated {
        version: u32,
        spec: serde_json::Value,
        at: DateTime<Utc>,
    },
    VersionSubmitted {
        version: u32,
        spec: serde_json::Value,
        at: DateTime<Utc>,
    },
    CompileRequested {
        version: u32,
        /// The workflow the command named, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow: Option<String>,
    },
    CompileSucceeded {
        version: u32,
        plan_digest: String,
        state_fingerprint: String,
    },
    CompileFailed {
        version: u32,
        reason: String,
    },
    /// A deployment (of any cause) was requested under a new generation.
    DeployRequested {
        cause: DeployCause,
        version: u32,
        parallelism: u32,
        generation: u64,
        /// The checkpoint to restore from, when one was named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkpoint: Option<String>,
        #[serde(default)]
        allow_state_loss: bool,
        /// The workflow the command named, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow: Option<String>,
    },
    Running {
        generation: u64,
    },
    MarkedStable {
        version: u32,
        generation: u64,
    },
    StopRequested {
        generation: u64,
    },
    Stopped {
        generation: u64,
    },
    Failed {
        generation: u64,
        reason: String,
    },
    Deleted,
    /// The data plane did something on its own; see [`RuntimeIncident`].
    RuntimeObserved {
        generation: u64,
        incident: RuntimeIncident,
        at: DateTime<Utc>,
    },
    /// The resource auto-tuner decided (a rescale, a recommendation, or a
    /// change of the rule that holds the job where it is), and why.
    AutotuneDecided {
        generation: u64,
        decision: serde_json::Value,
        at: DateTime<Utc>,
    },
    /// The tuner's mode was set for the job, over its specs' `autotune.mode`.
    AutotuneModeSet {
        mode: crate::domain::autotune::Mode,
    },
    /// An alert rule's condition held for its `for`: the alert fires.
    AlertFired(AlertChange),
    /// A firing alert's condition no longer holds (or its rule is gone).
    AlertResolved(AlertChange),
}

/// What `alert_fired` and `alert_resolved` carry (the notification's body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertChange {
    pub rule: String,
    pub severity: crate::domain::alerts::Severity,
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub message: String,
    #[serde(
        default,
        skip_serializing_if = "crate::domain::alerts::Notify::is_empty"
    )]
    pub notify: crate::domain::alerts::Notify,
    /// The deployment generation in force when it changed.
    pub generation: u64,
    pub at: DateTime<Utc>,
}

impl JobEvent {
    /// The event's type name as stored and published.
    pub fn type_name(&self) -> &'static str {
        match self {
            JobEvent::JobCreated { .. } => "job_created",
            JobEvent::VersionSubmitted { .. } => "version_submitted",
            JobEvent::CompileRequested { .. } => "compile_requested",
            JobEvent::CompileSucceeded { .. } => "compile_succeeded",
            JobEvent::CompileFailed { .. } => "compile_failed",
            JobEvent::DeployRequested { .. } => "deploy_requested",
            JobEvent::Running { .. } => "running",
            JobEvent::MarkedStable { .. } => "marked_stable",
            JobEvent::StopRequested { .. } => "stop_requested",
            JobEvent::Stopped { .. } => "stopped",
            JobEvent::Failed { .. } => "failed",
            JobEvent::Deleted => "deleted",
            JobEvent::RuntimeObserved { .. } => "runtime_observed",
            JobEvent::AutotuneDecided { .. } => "autotune_decided",
            JobEvent::AutotuneModeSet { .. } => "autotune_mode_set",
            JobEvent::AlertFired(_) => "alert_fired",
            JobEvent::AlertResolved(_) => "alert_resolved",
        }
    }
}
