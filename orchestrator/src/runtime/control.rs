//! The seam between the control plane (workflows, lifecycle) and the data
//! plane: what an orchestrator can ask the stream runtime to do.
//!
//! Workflow activities depend only on this trait, so they can be tested
//! against any implementation and the runtime can run embedded or remote.

use std::future::Future;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::job::JobSpec;

/// Which deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentKey {
    pub tenant: String,
    pub job: String,
}

/// Where a new deployment's state and offsets come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", content = "checkpoint", rename_all = "snake_case")]
pub enum RestoreFrom {
    /// Start fresh at the sources' configured start positions.
    Nothing,
    /// The newest completed checkpoint of this job compatible with the version, if any.
    Latest,
    /// A named checkpoint.
    Checkpoint(String),
}

/// Start `spec` for `key` under `generation`; stale generations are fenced off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub parallelism: u32,
    pub spec: JobSpec,
    pub restore: RestoreFrom,
    /// Most bytes of operator state a checkpoint may hold (the tenant's
    /// `max_state_bytes`); a deployment over it fails. None: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_limit: Option<u64>,
}

/// A completed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckpointInfo {
    pub id: String,
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    /// Total bytes of operator state.
    pub state_bytes: u64,
}

/// What one task is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskStatus {
    pub task: u32,
    pub partitions: Vec<i32>,
    pub state: TaskState,
    pub records_in: u64,
    pub records_out: u64,
    pub dead_lettered: u64,
    /// Sum of per-partition lag, when known.
    pub lag: Option<i64>,
    pub restarts: u32,
    pub last_checkpoint: Option<String>,
    /// Why the task last crashed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Figures operators report about themselves, by operator id: a `cep`
    /// operator's `cep_matches`, `cep_timeouts`, `cep_late_records`,
    /// `cep_dropped_partial_matches`, `cep_partial_matches` and
    /// `cep_buffered_records`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub operators: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// A task's state; `failed` carries its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum TaskState {
    Starting,
    Running,
    Restarting,
    Stopped,
    Failed(String),
}

/// A deployment's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentStatus {
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub parallelism: u32,
    /// The delivery guarantee in force, stated, never implied
    /// (e.g. `exactly-once (deterministic replay)`).
    pub guarantee: String,
    pub tasks: Vec<TaskStatus>,
    pub completed_checkpoints: u64,
}

/// Why the runtime refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no deployment of {0:?}")]
    NotDeployed(DeploymentKey),
    #[error("generation {requested} is stale; current is {current}")]
    StaleGeneration { requested: u64, current: u64 },
    #[error("checkpoint `{0}` not found")]
    CheckpointNotFound(String),
    #[error("invalid deployment: {0}")]
    Invalid(String),
    #[error("{what} unavailable: {reason}")]
    Unavailable { what: &'static str, reason: String },
    #[error("runtime failure: {0}")]
    Internal(String),
}

impl RuntimeError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RuntimeError::Unavailable { .. })
    }
}

/// What the control plane can ask of the data plane.
pub trait DeploymentControl: Send + Sync + 'static {
    /// Starts (or replaces, fencing the older generation) a deployment. Idempotent per generation.
    fn start(
        &self,
        req: DeploymentRequest,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Stops a deployment, optionally after a final checkpoint, which it returns.
    fn stop(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> impl Future<Output = Result<Option<CheckpointInfo>, RuntimeError>> + Send;
    /// Takes a checkpoint now.
    fn checkpoint(
        &self,
        key: &DeploymentKey,
    ) -> impl Future<Output = Result<CheckpointInfo, RuntimeError>> + Send;
    /// Current status.
    fn status(
        &self,
        key: &DeploymentKey,
    ) -> impl Future<Output = Result<DeploymentStatus, RuntimeError>> + Send;
    /// Completed checkpoints, newest first.
    fn checkpoints(
        &self,
        key: &DeploymentKey,
    ) -> impl Future<Output = Result<Vec<CheckpointInfo>, RuntimeError>> + Send;
}
