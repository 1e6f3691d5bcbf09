//! The reconciler: keeps what runs in line with what the jobs' phases say,
//! and records what the data plane did on its own.
//!
//! Every heartbeat interval it observes each placement that should be
//! running (its worker's status, or that the worker is gone), loads the
//! job's state, and carries out [`reconcile`](crate::domain::job::reconcile::reconcile)'s
//! corrections: a stray deployment is stopped, a deployment that cannot run
//! fails its job through `job.mark_failed`, and crashes and resumes become
//! `runtime_observed` events through `job.record_runtime`.
//!
//! Every orchestrator replica may run it. Each command's id is derived from
//! what it reports (job, generation, epoch, task, restart count), so two
//! replicas reporting the same thing are answered with one stored outcome
//! and the event is written once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::envelope::ParsedCommand;
use crate::domain::job::command::{MarkFailed, RecordRuntime};
use crate::domain::job::incident::RuntimeIncident;
use crate::domain::job::reconcile::{reconcile, Correction, Observation, TaskSeen};
use crate::domain::job::{JobCommand, JobState};
use crate::domain::{Command, StreamId, Tenant};
use crate::lifecycle::{CommandHandler, Incoming};
use crate::runtime::cluster::control::Observed;
use crate::runtime::cluster::ClusterRuntime;
use crate::runtime::control::{DeploymentControl, DeploymentKey, RuntimeError, TaskState};
use crate::store::{self, EventStore};
use crate::workflow::clock::Clock;

/// Namespace of the deterministic ids of the reconciler's commands.
const NAMESPACE: Uuid = Uuid::from_u128(0x7ec0_4c11_e000_4a6b_8d2f_51a9_0c3e_0001);

/// `weir job history` shows this as the actor of the reconciler's commands.
const ACTOR: &str = "weir:reconciler";

/// Why one pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("event store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Observes and corrects; see the module docs.
pub struct Reconciler<S> {
    runtime: Arc<ClusterRuntime>,
    handler: CommandHandler<S>,
    clock: Arc<dyn Clock>,
    /// Since when each placement's worker has been seen dead.
    lost_since: HashMap<DeploymentKey, Instant>,
}

impl<S: EventStore> Reconciler<S> {
    pub fn new(
        runtime: Arc<ClusterRuntime>,
        handler: CommandHandler<S>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            runtime,
            handler,
            clock,
            lost_since: HashMap::new(),
        }
    }

    /// Runs a pass every heartbeat interval until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.runtime.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "reconcile pass failed; retrying next interval");
            }
        }
    }

    /// One pass over every placement that should be running. Returns the
    /// corrections it carried out.
    pub async fn pass(&mut self) -> Result<Vec<(DeploymentKey, Correction)>, ReconcileError> {
        let observed = self.runtime.observe().await?;
        let now = Instant::now();
        self.lost_since.retain(|k, _| {
            observed
                .iter()
                .any(|o| o.placement.key() == k && !o.worker_alive)
        });
        let mut done = Vec::new();
        for o in observed {
            let key = o.placement.key().clone();
            let lost_for =
                (!o.worker_alive).then(|| now - *self.lost_since.entry(key.clone()).or_insert(now));
            let obs = observation(&o, lost_for);
            let stream = StreamId::new("job", &key.job);
            let state: JobState = store::load(&**self.handler.store(), &key.tenant, &stream)
                .await?
                .state;
            let corrections = reconcile(&state, &obs);
            if !corrections.is_empty() {
                tracing::debug!(tenant = %key.tenant, job = %key.job, phase = ?state.phase, ?obs, ?corrections, "corrections");
            }
            for c in corrections {
                // Instrumented, not entered: the span must follow the future across awaits.
                let span = tracing::info_span!("reconcile", tenant = %key.tenant, job = %key.job, generation = obs.generation);
                let result = self
                    .carry_out(&key, &obs, &c)
                    .instrument(span.clone())
                    .await;
                match result {
                    Ok(()) => done.push((key.clone(), c)),
                    Err(e) => span.in_scope(|| {
                        tracing::warn!(error = %e, correction = ?c, "correction failed; retrying next interval")
                    }),
                }
            }
        }
        Ok(done)
    }

    async fn carry_out(
        &self,
        key: &DeploymentKey,
        obs: &Observation,
        c: &Correction,
    ) -> Result<(), ReconcileError> {
        match c {
            Correction::Record(incident) => {
                self.record(key, obs.generation, obs.epoch, incident.clone())
                    .await
            }
            Correction::StopStray { generation, phase } => {
                tracing::warn!(
                    ?phase,
                    "a deployment runs for a job that should not run; stopping it"
                );
                let checkpointed = match self.runtime.stop(key, *generation, true).await {
                    Ok(cp) => cp.is_some(),
                    // Unhealthy: stop it without its final checkpoint.
                    Err(RuntimeError::Unavailable { .. } | RuntimeError::Internal(_)) => {
                        match self.runtime.stop(key, *generation, false).await {
                            Ok(_) | Err(RuntimeError::NotDeployed(_)) => false,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    // Already gone, or replaced by a newer generation: nothing strays.
                    Err(RuntimeError::NotDeployed(_)) => false,
                    Err(RuntimeError::StaleGeneration { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let incident = RuntimeIncident::StrayStopped {
                    phase: *phase,
                    checkpointed,
                };
                self.record(key, *generation, obs.epoch, incident).await
            }
            Correction::MarkFailed { generation, reason } => {
                tracing::error!(%reason, "deployment cannot run; failing the job");
                let cmd = JobCommand::MarkFailed(MarkFailed {
                    generation: *generation,
                    reason: reason.clone(),
                });
                self.send(key, cmd, &format!("{generation}/failed")).await
            }
        }
    }

    async fn record(
        &self,
        key: &DeploymentKey,
        generation: u64,
        epoch: u64,
        incident: RuntimeIncident,
    ) -> Result<(), ReconcileError> {
        let what = match &incident {
            RuntimeIncident::Placed { .. } => "placed".to_owned(),
            RuntimeIncident::Resumed { .. } => "resumed".to_owned(),
            RuntimeIncident::TaskRestarted { task, restarts, .. } => {
                format!("task/{task}/{restarts}")
            }
            RuntimeIncident::StrayStopped { .. } => "stray".to_owned(),
        };
        let cmd = JobCommand::RecordRuntime(RecordRuntime {
            generation,
            incident,
        });
        self.send(key, cmd, &format!("{generation}/{epoch}/{what}"))
            .await
    }

    async fn send(
        &self,
        key: &DeploymentKey,
        cmd: JobCommand,
        identity: &str,
    ) -> Result<(), ReconcileError> {
        let Ok(tenant) = Tenant::new(&key.tenant) else {
            // Placements are written from validated requests; a bad name
            // here has no job stream to report to.
            return Ok(());
        };
        let id = Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{}/{identity}", key.tenant, key.job).as_bytes(),
        );
        let now = self.clock.now();
        let parsed = ParsedCommand {
            id,
            tenant,
            target: key.job.clone(),
            stream: StreamId::new("job", &key.job),
            expected_version: None,
            actor: ACTOR.to_owned(),
            issued_at: now,
            command: Command::Job(cmd),
        };
        let outcomes = self
            .handler
            .handle(&[Incoming::Parsed(parsed)], now)
            .await?;
        for o in outcomes {
            if let Some(r) = o.rejection {
                // The job moved on between the observation and the command
                // (a stale generation, a phase change): the next pass sees it.
                tracing::debug!(rejection = %r.message, "reconciler command rejected");
            }
        }
        Ok(())
    }
}

fn observation(o: &Observed, worker_lost_for: Option<Duration>) -> Observation {
    let tasks = o.status.as_ref().ok().map(|s| {
        s.tasks
            .iter()
            .map(|t| TaskSeen {
                task: t.task,
                restarts: t.restarts,
                last_error: t.last_error.clone(),
                failed: match &t.state {
                    TaskState::Failed(reason) => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect()
    });
    Observation {
        generation: o.placement.generation,
        worker: o.placement.worker.clone(),
        epoch: o.placement.epoch,
        tasks,
        worker_lost_for,
    }
}
