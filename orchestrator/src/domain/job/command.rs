//! Job commands: what users (and the platform's own workflows) ask a job to do.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::incident::RuntimeIncident;

/// A job command, tagged by `kind` with its `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", deny_unknown_fields)]
pub enum JobCommand {
    /// Create a job with its first version.
    #[serde(rename = "job.create")]
    Create(CreateJob),
    /// Add a new immutable version.
    #[serde(rename = "job.submit_version")]
    SubmitVersion(SubmitVersion),
    /// Ask for a version to be compiled into a plan.
    #[serde(rename = "job.compile")]
    Compile(VersionRef),
    /// A compile finished (sent by the compile workflow).
    #[serde(rename = "job.compile_succeeded")]
    CompileSucceeded(CompileSucceeded),
    /// A compile failed (sent by the compile workflow).
    #[serde(rename = "job.compile_failed")]
    CompileFailed(CompileFailed),
    /// Deploy a version (the latest if omitted).
    #[serde(rename = "job.deploy")]
    Deploy(Deploy),
    /// The deployment is running (sent by the runtime).
    #[serde(rename = "job.mark_running")]
    MarkRunning(Generation),
    /// The running version is stable and becomes the rollback target.
    #[serde(rename = "job.mark_stable")]
    MarkStable(Generation),
    /// Stop the running deployment, taking a final checkpoint.
    #[serde(rename = "job.stop")]
    Stop(Empty),
    /// The deployment has stopped (sent by the runtime).
    #[serde(rename = "job.mark_stopped")]
    MarkStopped(Generation),
    /// The deployment failed (sent by the runtime).
    #[serde(rename = "job.mark_failed")]
    MarkFailed(MarkFailed),
    /// Redeploy the last stable version.
    #[serde(rename = "job.rollback")]
    Rollback(Empty),
    /// Restart from a checkpoint (the latest if omitted).
    #[serde(rename = "job.restore")]
    Restore(Restore),
    /// Change parallelism; state moves with its partitions.
    #[serde(rename = "job.rescale")]
    Rescale(Rescale),
    /// Delete a job that is not running.
    #[serde(rename = "job.delete")]
    Delete(Empty),
    /// Something the data plane did on its own (sent by the orchestrator's
    /// reconciler): a crash, a resume, a stray deployment stopped.
    #[serde(rename = "job.record_runtime")]
    RecordRuntime(RecordRuntime),
    /// A decision of the resource auto-tuner, with its explanation (sent by
    /// the autotune workflow).
    #[serde(rename = "job.record_autotune")]
    RecordAutotune(RecordAutotune),
    /// Override the `autotune.mode` of the job's versions (`off`,
    /// `recommend`, `apply`) without a new version; the rest of the policy
    /// stays the spec's.
    #[serde(rename = "job.set_autotune")]
    SetAutotune(SetAutotune),
    /// An alert rule started or stopped firing (sent by the alert
    /// evaluator of `weir serve`).
    #[serde(rename = "job.record_alert")]
    RecordAlert(Box<RecordAlert>),
}

/// A payload with no fields. `{}` or omitted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// The first version's job spec (see the job spec schema).
    pub spec: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitVersion {
    pub spec: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRef {
    /// The version; the latest if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The workflow file that carries the command out (e.g. `canary` for
    /// `workflows/canary.yaml`); the default for the command if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompileSucceeded {
    pub version: u32,
    /// Digest of the compiled plan.
    pub plan_digest: String,
    /// Fingerprint of the plan's state schema; equal fingerprints mean state carries over.
    pub state_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompileFailed {
    pub version: u32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The version to deploy; the latest if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Parallelism override; the spec's if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Allow an upgrade that drops operator state.
    #[serde(default)]
    pub allow_state_loss: bool,
    /// The workflow file that carries the command out (e.g. `canary` for
    /// `workflows/canary.yaml`); the default for the command if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// The deployment generation this report is about; stale generations are refused.
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkFailed {
    pub generation: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRuntime {
    /// The deployment generation the incident is about; it may be older than
    /// the job's (a stray deployment of an earlier generation).
    pub generation: u64,
    pub incident: RuntimeIncident,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordAutotune {
    /// The deployment generation whose metrics the decision read.
    pub generation: u64,
    /// The decision and its explanation (see docs/autotune.md).
    pub decision: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordAlert {
    /// The rule's name in the deployed version's `alerts:`.
    pub rule: String,
    /// `true`: it starts firing; `false`: it resolves.
    pub firing: bool,
    pub severity: crate::domain::alerts::Severity,
    /// The condition's name (`lag_above`, …).
    pub condition: String,
    /// Since when the condition held (firing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// The figure the condition read, when it reads one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// What happened, in words.
    pub message: String,
    /// Where the change is told (the rule's `notify`).
    #[serde(
        default,
        skip_serializing_if = "crate::domain::alerts::Notify::is_empty"
    )]
    pub notify: crate::domain::alerts::Notify,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAutotune {
    pub mode: crate::domain::autotune::Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// Checkpoint id; the latest compatible one if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The workflow file that carries the command out (e.g. `canary` for
    /// `workflows/canary.yaml`); the default for the command if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rescale {
    pub parallelism: u32,
    /// Refuse (`conflict`) unless the job is still at this deployment
    /// generation: a decision made on one deployment's metrics must not
    /// resize a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The workflow file that carries the command out (e.g. `canary` for
    /// `workflows/canary.yaml`); the default for the command if omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

impl JobCommand {
    /// The wire name of this command's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            JobCommand::Create(_) => "job.create",
            JobCommand::SubmitVersion(_) => "job.submit_version",
            JobCommand::Compile(_) => "job.compile",
            JobCommand::CompileSucceeded(_) => "job.compile_succeeded",
            JobCommand::CompileFailed(_) => "job.compile_failed",
            JobCommand::Deploy(_) => "job.deploy",
            JobCommand::MarkRunning(_) => "job.mark_running",
            JobCommand::MarkStable(_) => "job.mark_stable",
            JobCommand::Stop(_) => "job.stop",
            JobCommand::MarkStopped(_) => "job.mark_stopped",
            JobCommand::MarkFailed(_) => "job.mark_failed",
            JobCommand::Rollback(_) => "job.rollback",
            JobCommand::Restore(_) => "job.restore",
            JobCommand::Rescale(_) => "job.rescale",
            JobCommand::Delete(_) => "job.delete",
            JobCommand::RecordRuntime(_) => "job.record_runtime",
            JobCommand::RecordAutotune(_) => "job.record_autotune",
            JobCommand::SetAutotune(_) => "job.set_autotune",
            JobCommand::RecordAlert(_) => "job.record_alert",
        }
    }

    /// Whether only Weir's own services send this kind (workflows, the
    /// runtime's reports, the reconciler, the tuner): a client that sent
    /// one could forge a compile result or a deployment's state.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            JobCommand::CompileSucceeded(_)
                | JobCommand::CompileFailed(_)
                | JobCommand::MarkRunning(_)
                | JobCommand::MarkStable(_)
                | JobCommand::MarkStopped(_)
                | JobCommand::MarkFailed(_)
                | JobCommand::RecordRuntime(_)
                | JobCommand::RecordAutotune(_)
                | JobCommand::RecordAlert(_)
        )
    }

    /// Every job command kind, in lifecycle order.
    pub const KINDS: [&'static str; 19] = [
        "job.create",
        "job.submit_version",
        "job.compile",
        "job.compile_succeeded",
        "job.compile_failed",
        "job.deploy",
        "job.mark_running",
        "job.mark_stable",
        "job.stop",
        "job.mark_stopped",
        "job.mark_failed",
        "job.rollback",
        "job.restore",
        "job.rescale",
        "job.delete",
        "job.record_runtime",
        "job.record_autotune",
        "job.set_autotune",
        "job.record_alert",
    ];
}
