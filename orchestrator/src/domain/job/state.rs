//! The job aggregate's state, folded from its events. `apply` is total: it
//! never fails, because events are facts that were already decided.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::event::{DeployCause, JobEvent};
use super::incident::RuntimeSeen;
use std::collections::BTreeMap;

use crate::domain::alerts::{AlertRule, Severity};
use crate::domain::autotune::AutotunePolicy;

/// Where the job's runtime is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No such job.
    #[default]
    Absent,
    /// Created, never deployed.
    Idle,
    Deploying,
    Running,
    Stopping,
    Stopped,
    Failed,
    Deleted,
}

impl Phase {
    /// The phase as it is written in events, the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Absent => "absent",
            Phase::Idle => "idle",
            Phase::Deploying => "deploying",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
            Phase::Deleted => "deleted",
        }
    }
}

/// A version's compile status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CompileStatus {
    #[default]
    NotCompiled,
    Compiling,
    Compiled {
        plan_digest: String,
        state_fingerprint: String,
    },
    Failed {
        reason: String,
    },
}

/// One immutable version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VersionInfo {
    pub version: u32,
    pub spec: serde_json::Value,
    pub submitted_at: DateTime<Utc>,
    pub compile: CompileStatus,
}

/// The deployment in force (or last in force).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deployment {
    pub version: u32,
    pub parallelism: u32,
    pub generation: u64,
    pub cause: DeployCause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// A job's state: runtime phase, release state and deployment kept apart.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct JobState {
    pub phase: Phase,
    pub versions: Vec<VersionInfo>,
    /// The newest generation handed out; reports from older ones are refused.
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// The deployment as last recorded from the data plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeSeen>,
    /// `job.set_autotune`'s mode, over the specs' `autotune.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autotune_mode: Option<crate::domain::autotune::Mode>,
    /// Each alert rule that ever fired, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, AlertStatus>,
}

/// Where one alert rule stands, as its `alert_fired` / `alert_resolved`
/// events left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertStatus {
    pub firing: bool,
    pub severity: Severity,
    /// When it last fired (the condition held since then) or resolved.
    pub since: DateTime<Utc>,
    pub message: String,
    /// How often it fired.
    pub fired: u32,
}

impl JobState {
    /// The `autotune:` policy of version `version`, with the job's
    /// `job.set_autotune` mode over it; `None` if there is no such version
    /// or its stored spec no longer reads (treated as untuned, not guessed).
    pub fn autotune_policy(&self, version: u32) -> Option<AutotunePolicy> {
        let spec = &self.version(version)?.spec;
        let mut policy: AutotunePolicy = match spec.get("autotune") {
            None | Some(serde_json::Value::Null) => AutotunePolicy::default(),
            Some(p) => serde_json::from_value(p.clone()).ok()?,
        };
        if let Some(mode) = self.autotune_mode {
            policy.mode = mode;
        }
        Some(policy)
    }

    /// The policy of the version the job runs, if it is running.
    pub fn running_autotune_policy(&self) -> Option<AutotunePolicy> {
        if self.phase != Phase::Running {
            return None;
        }
        self.autotune_policy(self.deployment.as_ref()?.version)
    }

    /// The `alerts:` rules of the deployed version (none if nothing is
    /// deployed or its stored spec no longer reads).
    pub fn deployed_alert_rules(&self) -> Vec<AlertRule> {
        self.deployment
            .as_ref()
            .and_then(|d| self.version(d.version))
            .and_then(|v| v.spec.get("alerts").cloned())
            .and_then(|a| serde_json::from_value(a).ok())
            .unwrap_or_default()
    }

    /// The names of the alerts that fire.
    pub fn firing_alerts(&self) -> std::collections::BTreeSet<String> {
        self.alerts
            .iter()
            .filter(|(_, s)| s.firing)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn latest_version(&self) -> Option<u32> {
        self.versions.last().map(|v| v.version)
    }

    pub fn version(&self, n: u32) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.version == n)
    }

    fn version_mut(&mut self, n: u32) -> Option<&mut VersionInfo> {
        self.versions.iter_mut().find(|v| v.version == n)
    }

    /// An alert fired (counted) or resolved.
    fn alert_changed(&mut self, c: &super::event::AlertChange, firing: bool) {
        let fired = self.alerts.get(&c.rule).map_or(0, |s| s.fired);
        self.alerts.insert(
            c.rule.clone(),
            AlertStatus {
                firing,
                severity: c.severity,
                since: if firing {
                    c.since.unwrap_or(c.at)
                } else {
                    c.at
                },
                message: c.message.clone(),
                fired: if firing {
                    fired.saturating_add(1)
                } else {
                    fired
                },
            },
        );
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, event: &JobEvent) {
        match event {
            JobEvent::JobCreated { version, spec, at } => {
                *self = JobState {
                    phase: Phase::Idle,
                    // A recreated job keeps counting generations so stale workers stay fenced.
                    generation: self.generation,
                    ..JobState::default()
                };
                self.versions.push(VersionInfo {
                    version: *version,
                    spec: spec.clone(),
                    submitted_at: *at,
                    compile: CompileStatus::NotCompiled,
                });
            }
            JobEvent::VersionSubmitted { version, spec, at } => self.versions.push(VersionInfo {
                version: *version,
                spec: spec.clone(),
                submitted_at: *at,
                compile: CompileStatus::NotCompiled,
            }),
            JobEvent::CompileRequested { version, .. } => {
                if let Some(v) = self.version_mut(*version) {
                    v.compile = CompileStatus::Compiling;
                }
            }
            JobEvent::CompileSucceeded {
                version,
                plan_digest,
                state_fingerprint,
            } => {
                if let Some(v) = self.version_mut(*version) {
                    v.compile = CompileStatus::Compiled {
                        plan_digest: plan_digest.clone(),
                        state_fingerprint: state_fingerprint.clone(),
                    };
                }
            }
            JobEvent::CompileFailed { version, reason } => {
                if let Some(v) = self.version_mut(*version) {
                    v.compile = CompileStatus::Failed {
                        reason: reason.clone(),
                    };
                }
            }
            JobEvent::DeployRequested {
                cause,
                version,
                parallelism,
                generation,
                checkpoint,
                ..
            } => {
                self.phase = Phase::Deploying;
                self.generation = *generation;
                self.last_failure = None;
                self.deployment = Some(Deployment {
                    version: *version,
                    parallelism: *parallelism,
                    generation: *generation,
                    cause: *cause,
                    checkpoint: checkpoint.clone(),
                });
            }
            JobEvent::Running { .. } => self.phase = Phase::Running,
            JobEvent::MarkedStable { version, .. } => self.last_stable_version = Some(*version),
            JobEvent::StopRequested { .. } => self.phase = Phase::Stopping,
            JobEvent::Stopped { .. } => self.phase = Phase::Stopped,
            JobEvent::Failed { reason, .. } => {
                self.phase = Phase::Failed;
                self.last_failure = Some(reason.clone());
            }
            JobEvent::Deleted => self.phase = Phase::Deleted,
            JobEvent::RuntimeObserved {
                generation,
                incident,
                ..
            } => RuntimeSeen::apply(&mut self.runtime, *generation, incident),
            // A record for the history; the job's state does not change.
            JobEvent::AutotuneDecided { .. } => {}
            JobEvent::AutotuneModeSet { mode } => self.autotune_mode = Some(*mode),
            JobEvent::AlertFired(c) => self.alert_changed(c, true),
            JobEvent::AlertResolved(c) => self.alert_changed(c, false),
        }
    }
}
