//! The engine's driver: finds due runs, proposes progress to the run state
//! machine as commands, and performs the effects (activities, waits) only
//! after the command that allows them has committed.
//!
//! Exclusivity comes from the run stream itself: a step starts only when a
//! `workflow.claim_step` is accepted, and the state machine accepts one claim
//! per step while its lease lasts (concurrent claims are serialised by the
//! stream's version). Reports (`complete_step`, `fail_step`, `fire_timer`)
//! have ids derived from the step's schedule number, so two replicas
//! reporting the same thing record it once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::activities::{Activities, ActivityCtx, ActivityError};
use super::clock::Clock;
use super::group::GroupCommit;
use super::index::RunIndex;
use super::load::{Catalog, Definition};
use super::triggers::{trigger_for, Trigger};
use super::waits::{self, Probe};
use crate::autotune::schedule;
use crate::domain::envelope::ParsedCommand;
use crate::domain::workflow::command::{
    ClaimNext, ClaimStep, CompleteStep, FailStep, StartRun, StepRef, WorkflowCommand,
};
use crate::domain::workflow::decide::idempotency_key;
use crate::domain::workflow::state::{Next, StepPhase};
use crate::domain::workflow::validate::resolve;
use crate::domain::workflow::RunState;
use crate::domain::ErrorClass;
use crate::domain::{Aggregate, Command, Outcome, StreamId, Tenant};
use crate::lifecycle::{CommandHandler, Incoming};
use crate::runtime::control::DeploymentControl;
use crate::store::{self, EventStore, ReadFilter, StoreError};
use crate::telemetry::names;

/// Namespace of the deterministic ids of engine commands.
const ENGINE_NAMESPACE: Uuid = Uuid::from_u128(0x5e1f_0a0c_77d4_4c4e_9a7e_3c1b_2f00_0003);
/// The cursor of the trigger follower, shared by all replicas.
pub const TRIGGER_CURSOR: &str = "workflow-triggers";

/// Where a test asks the engine to die (`WEIR_FAULT=workflow_crash:<step>:<point>`,
/// read only in builds with the `test-util` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPoint {
    pub step: String,
    /// `claimed` (lease taken, nothing done), `performed` (effect done, not reported) or `reported`.
    pub point: String,
}

impl CrashPoint {
    #[cfg(feature = "test-util")]
    pub fn from_env() -> Option<Self> {
        let v = std::env::var("WEIR_FAULT").ok()?;
        let rest = v.strip_prefix("workflow_crash:")?;
        let (step, point) = rest.rsplit_once(':')?;
        Some(Self {
            step: step.to_owned(),
            point: point.to_owned(),
        })
    }

    /// Without `test-util` the shipped binary never crashes on purpose.
    #[cfg(not(feature = "test-util"))]
    pub fn from_env() -> Option<Self> {
        None
    }
}

/// What one pass at a step achieved.
enum Ran {
    /// Another replica has the step, or it cannot be taken now.
    Busy,
    Done,
    /// Done, and the report also took the next step for this replica.
    HoldsNext,
}

/// How often tuned jobs get a decision, unless configured.
pub const DEFAULT_AUTOTUNE_EVERY: Duration = Duration::from_secs(30);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This replica's id. Keep it stable across restarts (and unique among
    /// replicas) so a restarted replica resumes its own leased steps at once.
    pub owner: String,
    /// How often due runs and new triggers are looked for.
    pub poll: Duration,
    /// Runs driven at once by this replica.
    pub max_runs: usize,
    /// Added to a step's timeout to get its lease.
    pub lease_grace: Duration,
    pub crash: Option<CrashPoint>,
    /// How often tuned jobs get an autotune run; never if `None`.
    pub autotune_every: Option<Duration>,
}

impl EngineConfig {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            poll: Duration::from_millis(100),
            max_runs: 256,
            lease_grace: Duration::from_secs(10),
            crash: CrashPoint::from_env(),
            autotune_every: Some(DEFAULT_AUTOTUNE_EVERY),
        }
    }
}

/// Errors that end one pass over a run; the run is picked up again later.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0} has no state")]
    Missing(String),
    #[error("commit failed: {0}")]
    Commit(String),
}

/// The workflow engine of one replica.
pub struct Engine<S, C> {
    handler: CommandHandler<S>,
    group: GroupCommit<S>,
    activities: Arc<Activities<S, C>>,
    catalog: Catalog,
    clock: Arc<dyn Clock>,
    cfg: EngineConfig,
    in_flight: Mutex<HashSet<(String, String)>>,
    /// Woken when a step sent a job command, which may have started a run.
    wake: tokio::sync::Notify,
    /// The last tick autotune runs were started for.
    autotune_tick: Mutex<Option<i64>>,
}

impl<S: EventStore + RunIndex, C: DeploymentControl> Engine<S, C> {
    pub fn new(activities: Activities<S, C>, catalog: Catalog, cfg: EngineConfig) -> Self {
        Self {
            handler: activities.handler.clone(),
            group: GroupCommit::new(activities.handler.clone(), activities.clock.clone()),
            clock: activities.clock.clone(),
            activities: Arc::new(activities),
            catalog,
            cfg,
            in_flight: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
            autotune_tick: Mutex::new(None),
        }
    }

    pub fn owner(&self) -> &str {
        &self.cfg.owner
    }

    /// Runs until `shutdown`: follows triggers and drives due runs.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(owner = %self.cfg.owner, "workflow engine started");
        let mut tasks = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            if let Err(e) = self.follow_triggers().await {
                tracing::warn!(error = %e, "workflow triggers: retrying");
            }
            if let Err(e) = self.schedule_autotune().await {
                tracing::warn!(error = %e, "autotune schedule: retrying");
            }
            match self
                .handler
                .store()
                .due_runs(self.clock.now(), &self.cfg.owner, self.cfg.max_runs as i64)
                .await
            {
                Ok(runs) => {
                    for r in runs {
                        if tasks.len() >= self.cfg.max_runs {
                            break;
                        }
                        let key = (r.tenant.clone(), r.run_id.clone());
                        if !self.lock_in_flight().insert(key.clone()) {
                            continue;
                        }
                        let me = self.clone();
                        let stop = shutdown.clone();
                        tasks.spawn(async move {
                            tokio::select! {
                                res = me.drive(&key.0, &key.1).instrument(tracing::info_span!("run", run_id = %key.1, tenant = %key.0)) => if let Err(e) = res {
                                    tracing::warn!(run = %key.1, error = %e, "run pass failed; will retry");
                                },
                                _ = stop.cancelled() => {}
                            }
                            me.lock_in_flight().remove(&key);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list due runs; retrying"),
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = self.wake.notified() => {}
            }
        }
        tasks.shutdown().await;
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the runs that new job events ask for. Safe to run on every
    /// replica at once: run and command ids come from the event's position.
    pub async fn follow_triggers(&self) -> Result<usize, StoreError> {
        let store = self.handler.store();
        let cursor = store.cursor(TRIGGER_CURSOR).await?;
        let events = store.read_all(ReadFilter::default(), cursor, 500).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(0);
        };
        let mut batch = Vec::new();
        for e in &events {
            let Some(t) = trigger_for(e) else { continue };
            let def = match self.catalog.get(&t.file) {
                Ok(d) => d,
                Err(err) => {
                    tracing::error!(job = %t.job, workflow = %t.file, error = %err, "cannot start workflow");
                    metrics::counter!(names::WORKFLOW_START_FAILURES).increment(1);
                    // Visible, not silent: the job fails with the loader's message.
                    if let Some(cmd) = failure_for(&t, &err.to_string()) {
                        if let Ok(tenant) = Tenant::new(&t.tenant) {
                            let command = Command::Job(cmd);
                            if let Ok(stream) = command.stream(&t.job) {
                                batch.push(Incoming::Parsed(ParsedCommand {
                                    id: Uuid::new_v5(
                                        &ENGINE_NAMESPACE,
                                        format!("unstartable/{}", t.run_id).as_bytes(),
                                    ),
                                    tenant,
                                    target: t.job.clone(),
                                    stream,
                                    expected_version: None,
                                    actor: format!("workflow-engine:{}", self.cfg.owner),
                                    issued_at: self.clock.now(),
                                    command,
                                }));
                            }
                        }
                    }
                    continue;
                }
            };
            batch.extend(self.start_command(t, def));
        }
        let started = self.start_runs(&batch).await?;
        store.set_cursor(TRIGGER_CURSOR, last).await?;
        Ok(started)
    }

    /// The command that starts `t`'s run of `def` (its id comes from the run id).
    fn start_command(&self, t: Trigger, def: Definition) -> Option<Incoming> {
        let tenant = Tenant::new(&t.tenant).ok()?;
        let run_id = t.run_id.hyphenated().to_string();
        Some(Incoming::Parsed(ParsedCommand {
            id: Uuid::new_v5(&ENGINE_NAMESPACE, format!("start/{run_id}").as_bytes()),
            tenant,
            stream: StreamId::new("run", &run_id),
            target: run_id,
            expected_version: None,
            actor: format!("workflow-engine:{}", self.cfg.owner),
            issued_at: self.clock.now(),
            command: Command::Workflow(WorkflowCommand::Start(StartRun {
                file: def.file,
                definition: def.text,
                input: t.input,
            })),
        }))
    }

    /// Starts runs; one that another replica started first is not an error.
    async fn start_runs(&self, batch: &[Incoming]) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let outcomes = self.handler.handle(batch, self.clock.now()).await?;
        let mut started = 0;
        for o in &outcomes {
            match &o.rejection {
                None => started += 1,
                Some(r) if r.code == crate::domain::RejectionCode::AlreadyExists => {}
                Some(r) => tracing::error!(rejection = %r, "workflow run refused to start"),
            }
        }
        metrics::counter!(names::WORKFLOW_RUNS_STARTED).increment(started as u64);
        Ok(started)
    }

    /// At each new tick, starts an autotune run for every tuned running job.
    /// Every replica does this; run ids derive from job and tick, so each
    /// run starts once.
    pub async fn schedule_autotune(&self) -> Result<usize, StoreError> {
        let Some(every) = self.cfg.autotune_every else {
            return Ok(0);
        };
        let now = self.clock.now();
        let n = schedule::tick(now, every);
        {
            let mut last = self.autotune_tick.lock().unwrap_or_else(|p| p.into_inner());
            if *last == Some(n) {
                return Ok(0);
            }
            *last = Some(n);
        }
        let def = match self.catalog.get(schedule::WORKFLOW) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(workflow = schedule::WORKFLOW, error = %e, "cannot start autotune runs");
                metrics::counter!(names::WORKFLOW_START_FAILURES).increment(1);
                return Ok(0);
            }
        };
        let jobs = match self.activities.tuner.tunable_jobs().await {
            Ok(j) => j,
            Err(e) => {
                // Try this tick again on the next pass.
                *self.autotune_tick.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return Err(e);
            }
        };
        let batch: Vec<Incoming> = jobs
            .iter()
            .filter_map(|j| self.start_command(schedule::trigger(j, n), def.clone()))
            .collect();
        self.start_runs(&batch).await
    }

    async fn load(&self, tenant: &str, run_id: &str) -> Result<RunState, DriveError> {
        let stream = StreamId::new(RunState::STREAM_KIND, run_id);
        let loaded =
            store::load::<RunState, _>(self.handler.store().as_ref(), tenant, &stream).await?;
        if loaded.state.status == crate::domain::workflow::RunStatus::Absent {
            return Err(DriveError::Missing(run_id.to_owned()));
        }
        Ok(loaded.state)
    }

    async fn submit(
        &self,
        tenant: &str,
        run_id: &str,
        id: Uuid,
        cmd: WorkflowCommand,
    ) -> Result<Outcome, DriveError> {
        let tenant_name = Tenant::new(tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.clock.now();
        let parsed = ParsedCommand {
            id,
            tenant: tenant_name,
            target: run_id.to_owned(),
            stream: StreamId::new("run", run_id),
            expected_version: None,
            actor: format!("workflow-engine:{}", self.cfg.owner),
            issued_at: now,
            command: Command::Workflow(cmd),
        };
        self.group
            .submit(Incoming::Parsed(parsed))
            .await
            .map_err(DriveError::Commit)
    }

    fn report_id(run_id: &str, seq: u64, what: &str) -> Uuid {
        Uuid::new_v5(
            &ENGINE_NAMESPACE,
            format!("{run_id}/{seq}/{what}").as_bytes(),
        )
    }

    fn crash_if(&self, step: &str, point: &str) {
        if let Some(c) = &self.cfg.crash {
            if c.step == step && c.point == point {
                tracing::error!(step, point, "fault injection: aborting the process");
                std::process::abort();
            }
        }
    }

    /// Advances one run as far as it can go now.
    pub async fn drive(&self, tenant: &str, run_id: &str) -> Result<(), DriveError> {
        // The schedule number of a step this replica took together with the previous report.
        let mut held: Option<u64> = None;
        loop {
            let state = self.load(tenant, run_id).await?;
            let now = self.clock.now();
            match state.next(now, &self.cfg.owner) {
                Next::Nothing | Next::At(_) => return Ok(()),
                Next::Claim { seq, step } => {
                    let pre_claimed = held.take() == Some(seq)
                        && state.current.as_ref().is_some_and(|c| {
                            matches!(&c.phase, StepPhase::Running { owner, .. } if owner == &self.cfg.owner)
                        });
                    match self
                        .claim_and_run(tenant, run_id, &state, seq, &step, pre_claimed)
                        .await?
                    {
                        Ran::Busy => return Ok(()),
                        Ran::Done => {}
                        Ran::HoldsNext => held = Some(seq + 1),
                    }
                }
                Next::FireTimer { seq, step } => {
                    self.submit(
                        tenant,
                        run_id,
                        Self::report_id(run_id, seq, "timer"),
                        WorkflowCommand::FireTimer(StepRef { seq, step }),
                    )
                    .await?;
                }
                Next::Poll { seq, step } => {
                    if !self.poll_wait(tenant, run_id, &state, seq, &step).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Claims the current step and, for an activity, runs it and reports.
    /// Returns false when another replica has it.
    async fn claim_and_run(
        &self,
        tenant: &str,
        run_id: &str,
        state: &RunState,
        seq: u64,
        step_id: &str,
        pre_claimed: bool,
    ) -> Result<Ran, DriveError> {
        let Some((cur, step)) = state.current_step() else {
            return Ok(Ran::Busy);
        };
        let spec = state
            .spec()
            .cloned()
            .ok_or_else(|| DriveError::Missing(run_id.to_owned()))?;
        let ctx_value = state.context(run_id);
        let timeout = spec.timeout_of(step).get();
        if !pre_claimed {
            let baseline = match (&step.wait, cur.compensation) {
                (Some(w), false) => {
                    match waits::baseline(&self.activities, tenant, &state.input, w).await {
                        Ok(b) => Some(b),
                        Err(e) => {
                            tracing::warn!(run_id, step = step_id, error = %e, "cannot read the wait's baseline; retrying");
                            return Ok(Ran::Busy);
                        }
                    }
                }
                _ => None,
            };
            let claim = ClaimStep {
                seq,
                step: step_id.to_owned(),
                owner: self.cfg.owner.clone(),
                lease_ms: (timeout + self.cfg.lease_grace).as_millis() as u64,
                baseline,
            };
            let outcome = self
                .submit(
                    tenant,
                    run_id,
                    Uuid::now_v7(),
                    WorkflowCommand::ClaimStep(claim),
                )
                .await?;
            if !outcome.is_accepted() {
                tracing::debug!(run_id, step = step_id, rejection = ?outcome.rejection, "claim refused");
                return Ok(Ran::Busy);
            }
        }
        self.crash_if(step_id, "claimed");
        if step.wait.is_some() && !cur.compensation {
            return Ok(Ran::Done);
        }
        let (activity, mapping) = match (&step.activity, &step.compensate, cur.compensation) {
            (_, Some(c), true) => (c.activity.clone(), &c.input),
            (Some(a), _, false) => (a.clone(), &step.input),
            _ => return Ok(Ran::Busy),
        };
        let actx = ActivityCtx {
            tenant: tenant.to_owned(),
            run_id: run_id.to_owned(),
            step: step_id.to_owned(),
            key: idempotency_key(run_id, step_id, cur.compensation),
            attempt: cur.attempt,
        };
        let input = resolve(mapping, &ctx_value);
        let started = Instant::now();
        let result =
            match tokio::time::timeout(timeout, self.activities.run(&activity, &actx, input)).await
            {
                Ok(r) => r,
                Err(_) => Err(ActivityError::new(
                    ErrorClass::Timeout,
                    format!(
                        "activity `{activity}` did not finish within {}",
                        crate::domain::duration::Dur::from_millis(timeout.as_millis() as u64)
                    ),
                )),
            };
        let status = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(names::WORKFLOW_STEPS, "activity" => activity.clone(), "status" => status).increment(1);
        metrics::histogram!(names::WORKFLOW_STEP_SECONDS, "activity" => activity.clone())
            .record(started.elapsed().as_secs_f64());
        self.crash_if(step_id, "performed");
        let cmd = match result {
            Ok(output) => WorkflowCommand::CompleteStep(CompleteStep {
                seq,
                step: step_id.to_owned(),
                output,
                claim_next: Some(ClaimNext {
                    owner: self.cfg.owner.clone(),
                    grace_ms: self.cfg.lease_grace.as_millis() as u64,
                }),
            }),
            Err(e) => {
                tracing::info!(run_id, step = step_id, attempt = cur.attempt, error = %e, "step attempt failed");
                WorkflowCommand::FailStep(FailStep {
                    seq,
                    step: step_id.to_owned(),
                    class: e.class,
                    message: e.message,
                })
            }
        };
        let what = if matches!(cmd, WorkflowCommand::CompleteStep(_)) {
            "complete"
        } else {
            "fail"
        };
        let outcome = self
            .submit(tenant, run_id, Self::report_id(run_id, seq, what), cmd)
            .await?;
        self.crash_if(step_id, "reported");
        if activity == "job_command" {
            self.wake.notify_one();
        }
        let holds_next = outcome.is_accepted()
            && outcome
                .events
                .iter()
                .any(|e| e.event_type == "step_started");
        Ok(if holds_next {
            Ran::HoldsNext
        } else {
            Ran::Done
        })
    }

    /// Checks the current wait until it is satisfied, fails, times out or is
    /// taken over; returns false when it should be looked at again later.
    async fn poll_wait(
        &self,
        tenant: &str,
        run_id: &str,
        state: &RunState,
        seq: u64,
        step_id: &str,
    ) -> Result<bool, DriveError> {
        let Some((cur, step)) = state.current_step() else {
            return Ok(false);
        };
        let (
            Some(w),
            StepPhase::Waiting {
                started_at,
                deadline,
                baseline,
            },
        ) = (&step.wait, &cur.phase)
        else {
            return Ok(false);
        };
        let ctx_value = state.context(run_id);
        let is_timer = w.timer.is_some();
        loop {
            let now = self.clock.now();
            if now >= *deadline && !is_timer {
                return Ok(true);
            }
            let probe = match waits::probe(
                &self.activities,
                tenant,
                &ctx_value,
                w,
                baseline,
                *started_at,
                now,
            )
            .await
            {
                Ok(p) => p,
                Err(e) if e.class == ErrorClass::Unavailable => {
                    tracing::debug!(run_id, step = step_id, error = %e, "wait check failed; trying again");
                    Probe::Pending
                }
                Err(e) => Probe::Failed(e),
            };
            let cmd = match probe {
                Probe::Pending => {
                    let left = (*deadline - now).to_std().unwrap_or_default();
                    tokio::time::sleep(w.poll.get().min(left.max(Duration::from_millis(10)))).await;
                    // Someone else may have finished the wait meanwhile.
                    let fresh = self.load(tenant, run_id).await?;
                    if fresh.current.as_ref().map(|c| c.seq) != Some(seq) {
                        return Ok(true);
                    }
                    continue;
                }
                Probe::Satisfied(output) => (
                    "complete",
                    WorkflowCommand::CompleteStep(CompleteStep {
                        seq,
                        step: step_id.to_owned(),
                        output,
                        claim_next: None,
                    }),
                ),
                Probe::Failed(e) => (
                    "fail",
                    WorkflowCommand::FailStep(FailStep {
                        seq,
                        step: step_id.to_owned(),
                        class: e.class,
                        message: e.message,
                    }),
                ),
            };
            self.submit(tenant, run_id, Self::report_id(run_id, seq, cmd.0), cmd.1)
                .await?;
            self.crash_if(step_id, "reported");
            return Ok(true);
        }
    }
}

/// The job command that reports a workflow that could not even start.
fn failure_for(t: &super::triggers::Trigger, why: &str) -> Option<crate::domain::job::JobCommand> {
    use crate::domain::job::command::{CompileFailed, MarkFailed};
    use crate::domain::job::JobCommand;
    let reason = format!("workflow {} cannot start: {why}", t.file);
    match t.input.get("event").and_then(|e| e.as_str()) {
        Some("compile_requested") => Some(JobCommand::CompileFailed(CompileFailed {
            version: t.input.get("version")?.as_u64()? as u32,
            reason,
        })),
        Some("deploy_requested") | Some("stop_requested") => {
            Some(JobCommand::MarkFailed(MarkFailed {
                generation: t.input.get("generation")?.as_u64()?,
                reason,
            }))
        }
        _ => None,
    }
}

/// A replica id for when none is configured: unique per process.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "weir".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_millis() % 100_000
    )
}
