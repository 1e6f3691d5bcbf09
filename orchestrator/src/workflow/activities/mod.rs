//! Activities: the side effects workflow steps perform. One file per family,
//! one dispatch table ([`Activities::run`]); each gets its step's
//! idempotency key (`run_id/step_id`) and must make its effect happen once
//! per key, however often it is called with it.
//!
//! | activity | does |
//! |---|---|
//! | `job_info` | reads the job: phase, versions, the deployment before the run's trigger |
//! | `job_command` | sends a job command (`job.mark_running`, `job.rollback`, …), deduplicated by key |
//! | `fetch_modules`, `check_wit`, `precompile`, `plan` | the compile pipeline |
//! | `start`, `stop`, `checkpoint`, `pick_checkpoint`, `state_compat` | the data plane, through [`DeploymentControl`] |
//! | `notify` | an HTTP webhook |
//! | `publish` | a NATS message (alert notifications) |
//! | `autotune_decide` | one decision of the resource auto-tuner, recorded on the job |

mod autotune;
mod compile;
mod deploy;
mod job;
mod notify;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::clock::Clock;
use crate::autotune::TunerStore;
use crate::domain::ErrorClass;
use crate::lifecycle::CommandHandler;
use crate::registry::{ModuleError, ModuleSource, RegistryError};
use crate::runtime::control::{DeploymentControl, RuntimeError};
use crate::store::{EventStore, StoreError};
pub use compile::{plan, PlanOperator};
pub use job::{job_state, job_state_at};
pub use notify::Notifier;

/// Every activity name, for validation.
pub const NAMES: &[&str] = &[
    "job_info",
    "job_command",
    "fetch_modules",
    "check_wit",
    "check_topics",
    "precompile",
    "plan",
    "start",
    "stop",
    "checkpoint",
    "pick_checkpoint",
    "state_compat",
    "notify",
    "publish",
    "autotune_decide",
];

/// Which step is calling, for idempotency and tracing.
#[derive(Debug, Clone)]
pub struct ActivityCtx {
    pub tenant: String,
    pub run_id: String,
    pub step: String,
    /// `run_id/step_id`: the same on every attempt and after a crash.
    pub key: String,
    pub attempt: u32,
}

/// A failed attempt, classed so the retry policy can decide without reading text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ActivityError {
    pub class: ErrorClass,
    pub message: String,
}

impl ActivityError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Invalid, message)
    }
}

impl From<StoreError> for ActivityError {
    fn from(e: StoreError) -> Self {
        Self::new(store_class(&e), e.to_string())
    }
}

fn store_class(e: &StoreError) -> ErrorClass {
    if e.is_conflict() {
        ErrorClass::Conflict
    } else if matches!(e, StoreError::Corrupt(_)) {
        ErrorClass::Internal
    } else {
        ErrorClass::Unavailable
    }
}

impl From<RuntimeError> for ActivityError {
    fn from(e: RuntimeError) -> Self {
        let class = match &e {
            RuntimeError::NotDeployed(_) | RuntimeError::CheckpointNotFound(_) => {
                ErrorClass::NotFound
            }
            RuntimeError::StaleGeneration { .. } => ErrorClass::Conflict,
            RuntimeError::Invalid(_) => ErrorClass::Invalid,
            RuntimeError::Unavailable { .. } => ErrorClass::Unavailable,
            RuntimeError::Internal(_) => ErrorClass::Internal,
        };
        Self::new(class, e.to_string())
    }
}

impl From<ModuleError> for ActivityError {
    fn from(e: ModuleError) -> Self {
        let class = match &e {
            ModuleError::Store(s) => store_class(s),
            ModuleError::InvalidName(_) | ModuleError::Rejected { .. } => ErrorClass::Invalid,
            ModuleError::NotUploaded { .. } => ErrorClass::NotFound,
            ModuleError::Bytes(RegistryError::NotFound { .. }) => ErrorClass::NotFound,
            ModuleError::Bytes(RegistryError::DigestMismatch { .. }) => ErrorClass::Invalid,
            ModuleError::Bytes(RegistryError::Bucket { .. } | RegistryError::Put { .. }) => {
                ErrorClass::Unavailable
            }
            ModuleError::Task(_) => ErrorClass::Internal,
        };
        Self::new(class, e.to_string())
    }
}

/// Decodes an activity's input, naming the field that is wrong.
pub(crate) fn input<T: DeserializeOwned>(v: Value) -> Result<T, ActivityError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ActivityError::invalid(format!("input.{path}: {}", e.into_inner()))
    })
}

/// What activities need from the rest of the orchestrator.
pub struct Activities<S, C> {
    pub handler: CommandHandler<S>,
    pub control: Arc<C>,
    pub modules: Arc<dyn ModuleSource>,
    pub http: reqwest::Client,
    /// Where tenant-chosen notification targets are reached.
    pub notifier: Notifier,
    pub clock: Arc<dyn Clock>,
    /// The auto-tuner's metrics window and memory.
    pub tuner: TunerStore,
    /// Whether tenants are enforced (`weir serve` without `--insecure-dev`):
    /// a job may use only its tenant's Kafka topics (`<tenant>.…` and
    /// granted ones), checked when a version compiles and when it starts,
    /// and a deployment's state is bounded by the tenant's quota.
    pub tenancy: bool,
    /// Where `${secret:NAME}` in a spec is looked up when a deployment starts.
    pub secrets: crate::secrets::SecretStore,
}

impl<S: EventStore, C: DeploymentControl> Activities<S, C> {
    pub fn store(&self) -> &S {
        self.handler.store().as_ref()
    }

    /// Runs activity `name`. Unknown names cannot reach here: files are validated against [`NAMES`].
    pub async fn run(
        &self,
        name: &str,
        ctx: &ActivityCtx,
        input: Value,
    ) -> Result<Value, ActivityError> {
        match name {
            "job_info" => job::info(self, ctx, input).await,
            "job_command" => job::command(self, ctx, input).await,
            "fetch_modules" => compile::fetch_modules(self, ctx, input).await,
            "check_wit" => compile::check_wit(self, ctx, input).await,
            "check_topics" => compile::check_topics(self, ctx, input).await,
            "precompile" => compile::precompile(self, ctx, input).await,
            "plan" => compile::plan_activity(self, ctx, input).await,
            "start" => deploy::start(self, ctx, input).await,
            "stop" => deploy::stop(self, ctx, input).await,
            "checkpoint" => deploy::checkpoint(self, ctx, input).await,
            "pick_checkpoint" => deploy::pick_checkpoint(self, ctx, input).await,
            "state_compat" => deploy::state_compat(self, ctx, input).await,
            "notify" => notify::notify(self, ctx, input).await,
            "publish" => notify::publish(self, ctx, input).await,
            "autotune_decide" => autotune::decide(self, ctx, input).await,
            other => Err(ActivityError::invalid(format!(
                "unknown activity `{other}`"
            ))),
        }
    }
}
