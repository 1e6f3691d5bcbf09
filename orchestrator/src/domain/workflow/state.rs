//! A run's folded state, and what an engine replica should do next with it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::event::{RunEvent, StepError};
use super::spec::{Step, WorkflowSpec};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    #[default]
    Absent,
    /// Steps are being worked on (this includes compensating).
    Running,
    /// Waiting for an operator to resume or abort.
    Paused,
    Completed,
    Failed,
    /// A step failed and the completed steps were undone.
    Compensated,
    Aborted,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Compensated | RunStatus::Aborted
        )
    }
}

/// The current step's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum StepPhase {
    /// Scheduled; may start at `not_before` (now when absent).
    Ready {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<DateTime<Utc>>,
    },
    /// An activity is running under `owner`'s lease.
    Running {
        owner: String,
        lease_until: DateTime<Utc>,
        started_at: DateTime<Utc>,
    },
    /// A wait is in progress; it fails (or, for a plain timer, succeeds) at `deadline`.
    Waiting {
        started_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
        #[serde(default)]
        baseline: Value,
    },
}

/// The step being worked on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Current {
    /// Schedule number; commands about the step must quote it.
    pub seq: u64,
    pub step: String,
    pub attempt: u32,
    #[serde(default)]
    pub compensation: bool,
    #[serde(flatten)]
    pub phase: StepPhase,
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Completed,
    Skipped,
    Failed,
    Compensated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepRecord {
    pub status: StepStatus,
    /// Attempts started (leases taken), takeovers after a crash included.
    pub starts: u32,
    #[serde(default)]
    pub output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

/// A workflow run, folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunState {
    pub status: RunStatus,
    #[serde(default)]
    pub workflow: String,
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub definition_sha256: String,
    /// The pinned definition, parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<WorkflowSpec>,
    #[serde(default)]
    pub input: Value,
    /// The job this run works on, when its input names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
    /// Highest schedule number handed out.
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub steps: BTreeMap<String, StepRecord>,
    /// Completed steps in completion order (compensation runs them backwards).
    #[serde(default)]
    pub completed: Vec<String>,
    /// Steps whose compensation is still to run, next first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensating: Option<Vec<String>>,
    /// The latest step failure, `$.error` in expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    /// Why the run is paused or how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When a replica should next look at the run; absent when it needs no engine.
    /// Kept in the snapshot so the due-run index is one indexed query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The replica holding the current lease, so it can reclaim it after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
}

/// What a replica should do with a run now.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Terminal, paused or not started: nothing.
    Nothing,
    /// Take the current step (start its activity or its wait).
    Claim { seq: u64, step: String },
    /// Check the current wait's conditions.
    Poll { seq: u64, step: String },
    /// The current wait's deadline passed.
    FireTimer { seq: u64, step: String },
    /// Nothing until then (a retry backoff, or another replica's lease).
    At(DateTime<Utc>),
}

impl RunState {
    pub fn spec(&self) -> Option<&WorkflowSpec> {
        self.spec.as_ref()
    }

    /// The definition of the current step.
    pub fn current_step(&self) -> Option<(&Current, &Step)> {
        let c = self.current.as_ref()?;
        let s = self.spec()?.step(&c.step)?;
        Some((c, s))
    }

    /// The context expressions and input mappings read.
    pub fn context(&self, run_id: &str) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .steps
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    json!({"status": r.status, "output": r.output, "starts": r.starts}),
                )
            })
            .collect();
        json!({
            "input": self.input,
            "steps": steps,
            "error": self.error,
            "run": {"id": run_id, "workflow": self.workflow, "definition_sha256": self.definition_sha256},
        })
    }

    /// What replica `me` should do at `now`.
    pub fn next(&self, now: DateTime<Utc>, me: &str) -> Next {
        if self.status != RunStatus::Running {
            return Next::Nothing;
        }
        let Some(c) = &self.current else {
            return Next::Nothing;
        };
        let claim = Next::Claim {
            seq: c.seq,
            step: c.step.clone(),
        };
        match &c.phase {
            StepPhase::Ready {
                not_before: Some(t),
            } if *t > now => Next::At(*t),
            StepPhase::Ready { .. } => claim,
            // A replica that restarted under the same id knows its old lease is dead.
            StepPhase::Running {
                owner, lease_until, ..
            } if owner != me && *lease_until > now => Next::At(*lease_until),
            StepPhase::Running { .. } => claim,
            StepPhase::Waiting { deadline, .. } => {
                let is_timer = self
                    .current_step()
                    .and_then(|(_, s)| s.wait.as_ref())
                    .is_some_and(|w| w.timer.is_some());
                if *deadline <= now && !is_timer {
                    Next::FireTimer {
                        seq: c.seq,
                        step: c.step.clone(),
                    }
                } else {
                    Next::Poll {
                        seq: c.seq,
                        step: c.step.clone(),
                    }
                }
            }
        }
    }

    fn record(&mut self, step: &str) -> &mut StepRecord {
        self.steps.entry(step.to_owned()).or_insert(StepRecord {
            status: StepStatus::Skipped,
            starts: 0,
            output: Value::Null,
            error: None,
        })
    }

    fn end(&mut self, status: RunStatus, reason: Option<String>) {
        self.status = status;
        self.reason = reason;
        self.current = None;
        self.compensating = None;
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted {
                workflow,
                file,
                definition_sha256,
                spec,
                input,
                at,
                ..
            } => {
                *self = RunState {
                    status: RunStatus::Running,
                    workflow: workflow.clone(),
                    file: file.clone(),
                    definition_sha256: definition_sha256.clone(),
                    spec: Some((**spec).clone()),
                    input: input.clone(),
                    job: input.get("job").and_then(|j| j.as_str()).map(str::to_owned),
                    started_at: Some(*at),
                    updated_at: Some(*at),
                    ..RunState::default()
                };
            }
            RunEvent::StepScheduled {
                seq,
                step,
                attempt,
                compensation,
                not_before,
            } => {
                self.seq = *seq;
                self.current = Some(Current {
                    seq: *seq,
                    step: step.clone(),
                    attempt: *attempt,
                    compensation: *compensation,
                    phase: StepPhase::Ready {
                        not_before: *not_before,
                    },
                });
            }
            RunEvent::StepSkipped { step } => {
                self.record(step).status = StepStatus::Skipped;
            }
            RunEvent::StepStarted {
                step,
                owner,
                lease_until,
                at,
                ..
            } => {
                self.record(step).starts += 1;
                if let Some(c) = &mut self.current {
                    c.phase = StepPhase::Running {
                        owner: owner.clone(),
                        lease_until: *lease_until,
                        started_at: *at,
                    };
                }
                self.updated_at = Some(*at);
            }
            RunEvent::WaitStarted {
                step,
                deadline,
                baseline,
                at,
                ..
            } => {
                self.record(step).starts += 1;
                if let Some(c) = &mut self.current {
                    c.phase = StepPhase::Waiting {
                        started_at: *at,
                        deadline: *deadline,
                        baseline: baseline.clone(),
                    };
                }
                self.updated_at = Some(*at);
            }
            RunEvent::StepCompleted {
                step,
                compensation,
                output,
                at,
                ..
            } => {
                let r = self.record(step);
                if *compensation {
                    r.status = StepStatus::Compensated;
                    if let Some(list) = &mut self.compensating {
                        list.retain(|s| s != step);
                    }
                } else {
                    r.status = StepStatus::Completed;
                    r.output = output.clone();
                    r.error = None;
                    self.completed.push(step.clone());
                }
                self.current = None;
                self.updated_at = Some(*at);
            }
            RunEvent::StepFailed {
                error,
                retry_at,
                at,
                compensation,
                ..
            } => {
                if !compensation {
                    let r = self.record(&error.step);
                    r.error = Some(error.clone());
                    if retry_at.is_none() {
                        r.status = StepStatus::Failed;
                    }
                }
                self.error = Some(error.clone());
                self.updated_at = Some(*at);
            }
            RunEvent::TimerFired { at, .. } => self.updated_at = Some(*at),
            RunEvent::CompensationStarted { steps } => {
                self.compensating = Some(steps.clone());
                self.current = None;
            }
            RunEvent::RunPaused { reason, at } => {
                self.status = RunStatus::Paused;
                self.reason = Some(reason.clone());
                self.updated_at = Some(*at);
            }
            RunEvent::RunResumed { at, .. } => {
                self.status = RunStatus::Running;
                self.reason = None;
                self.updated_at = Some(*at);
            }
            RunEvent::RunCompleted { outputs, at } => {
                self.outputs = Some(outputs.clone());
                self.end(RunStatus::Completed, None);
                self.updated_at = Some(*at);
            }
            RunEvent::RunFailed { reason, at } => {
                self.end(RunStatus::Failed, Some(reason.clone()));
                self.updated_at = Some(*at);
            }
            RunEvent::RunCompensated { reason, at } => {
                self.end(RunStatus::Compensated, Some(reason.clone()));
                self.updated_at = Some(*at);
            }
            RunEvent::RunAborted { by, reason, at } => {
                self.end(
                    RunStatus::Aborted,
                    Some(format!("aborted by {by}: {reason}")),
                );
                self.updated_at = Some(*at);
            }
        }
        self.refresh_due();
    }

    fn refresh_due(&mut self) {
        self.lease_owner = None;
        self.due_at = None;
        if self.status != RunStatus::Running {
            return;
        }
        let Some(c) = &self.current else { return };
        self.due_at = Some(match &c.phase {
            StepPhase::Ready { not_before } => not_before.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            StepPhase::Running {
                owner, lease_until, ..
            } => {
                self.lease_owner = Some(owner.clone());
                *lease_until
            }
            // Waits are polled, so they are always due.
            StepPhase::Waiting { .. } => DateTime::<Utc>::UNIX_EPOCH,
        });
    }
}
