//! One running deployment: its tasks, their supervisors, and the checkpoint
//! coordinator.
//!
//! - **Supervisor** (one per task): runs the task; on a crash restarts it
//!   from the latest checkpoint with exponential backoff until the restart
//!   budget is spent, then marks it failed.
//! - **Coordinator**: a checkpoint asks every task for its snapshot at a
//!   batch boundary, writes them in one PostgreSQL transaction (fenced by
//!   generation), then tells the tasks it is durable.
//! - **Stages** ([`prepare`]): a job whose `key_by` feeds keyed state runs as
//!   stages joined by internal repartition topics; every stage has its own
//!   tasks, and the coordinator checkpoints all of them together.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use super::checkpoint::store::NewCheckpoint;
use super::checkpoint::Trigger;
use super::control::{CheckpointInfo, DeploymentKey, DeploymentStatus, RuntimeError, TaskState};
use super::kafka;
use super::metrics::{MetricsReport, TaskMetrics};
use super::operator::ModuleResolver;
use super::restart::{RestartPolicy, RestartTracker};
use super::task::{self, Control, TaskEnv, TaskError, TaskPlan};
use super::topology::{self, assign, Chain, TopicPartition};
use crate::domain::job::spec::JobSpec;
use crate::domain::BackoffPolicy;

/// A task's handle as the coordinator sees it.
struct TaskSlot {
    metrics: Arc<TaskMetrics>,
    /// The current incarnation's control channel (replaced on restart).
    ctl: Mutex<Option<mpsc::Sender<Control>>>,
    abort: Mutex<Option<AbortHandle>>,
}

/// A running deployment.
pub struct Deployment {
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub parallelism: u32,
    spec: Arc<JobSpec>,
    env: TaskEnv,
    slots: Vec<Arc<TaskSlot>>,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
    background: Mutex<Vec<JoinHandle<()>>>,
    checkpoint_lock: tokio::sync::Mutex<()>,
    stopping: Arc<AtomicBool>,
    /// Why the deployment was failed on purpose (its state over the
    /// tenant's quota): its tasks end `failed` with this reason.
    fatal: Arc<Mutex<Option<String>>>,
    state_limit: Option<u64>,
    completed: AtomicU64,
}

/// What [`Deployment::launch`] needs.
pub struct Launch {
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    /// The job's spec, as submitted.
    pub spec: Arc<JobSpec>,
    /// What the tasks run, stage by stage (see [`prepare`]).
    pub stages: Vec<LaunchStage>,
    pub restore: Option<String>,
    pub env: TaskEnv,
    pub restart: RestartPolicy,
    /// Most bytes of operator state a checkpoint may hold.
    pub state_limit: Option<u64>,
}

/// One stage of a deployment, ready to run: its spec (see
/// [`topology::stages`]), its resolved operator chain, and which partitions
/// each of its tasks owns.
#[derive(Clone)]
pub struct LaunchStage {
    pub spec: Arc<JobSpec>,
    pub chain: Chain,
    pub assignment: Vec<Vec<TopicPartition>>,
}

/// Plans a deployment: splits the job into stages, resolves each stage's
/// operators, creates the internal repartition topics that join them (as
/// many partitions as the job's sources have, kept if they exist already)
/// and assigns every stage's partitions to `parallelism` tasks.
pub async fn prepare(
    brokers: &str,
    key: &DeploymentKey,
    spec: &JobSpec,
    resolver: &dyn ModuleResolver,
    parallelism: u32,
) -> Result<Vec<LaunchStage>, RuntimeError> {
    let mut out: Vec<LaunchStage> = Vec::new();
    let mut source_partitions = 0;
    for stage in topology::stages(&key.tenant, &key.job, spec) {
        let chain = Chain::build_in(&key.tenant, &stage.spec, resolver).map_err(|e| {
            if e.retryable {
                RuntimeError::Unavailable {
                    what: "module registry",
                    reason: e.to_string(),
                }
            } else {
                RuntimeError::Invalid(e.to_string())
            }
        })?;
        if let Some(topic) = &stage.reads_repartition {
            ensure_topic(brokers, topic, source_partitions).await?;
        }
        let topics = stage.spec.sources.iter().map(|s| s.topic.clone()).collect();
        let partitions = partitions(brokers, topics).await?;
        if out.is_empty() {
            source_partitions = partitions.len() as i32;
        }
        out.push(LaunchStage {
            spec: Arc::new(stage.spec),
            chain,
            assignment: assign(&partitions, parallelism.max(1)),
        });
    }
    Ok(out)
}

fn kafka_unavailable(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "kafka",
        reason: e.to_string(),
    }
}

/// Partitions of all `topics` (blocking metadata calls, off the executor).
async fn partitions(
    brokers: &str,
    topics: Vec<String>,
) -> Result<Vec<TopicPartition>, RuntimeError> {
    let brokers = brokers.to_owned();
    tokio::task::spawn_blocking(move || {
        let client = kafka::admin_consumer(&brokers)?;
        let mut out = Vec::new();
        for t in topics {
            for p in kafka::partitions_of(&client, &t)? {
                out.push(TopicPartition {
                    topic: t.clone(),
                    partition: p,
                });
            }
        }
        Ok::<_, kafka::KafkaOpError>(out)
    })
    .await
    .map_err(|e| RuntimeError::Internal(e.to_string()))?
    .map_err(kafka_unavailable)
}

/// Creates `topic` with `partitions` partitions unless it exists, then waits
/// until its metadata shows it.
async fn ensure_topic(brokers: &str, topic: &str, count: i32) -> Result<(), RuntimeError> {
    let admin: AdminClient<DefaultClientContext> = kafka::base_config(brokers)
        .create()
        .map_err(kafka_unavailable)?;
    let new = NewTopic::new(topic, count.max(1), TopicReplication::Fixed(1));
    let created = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .map_err(kafka_unavailable)?;
    for r in created {
        match r {
            Ok(_) => tracing::info!(topic, partitions = count, "repartition topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => return Err(kafka_unavailable(format!("creating topic {t}: {e}"))),
        }
    }
    let started = Instant::now();
    loop {
        match partitions(brokers, vec![topic.to_owned()]).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl Deployment {
    /// Spawns the tasks (gated), takes the start checkpoint, which releases
    /// them, and returns the running deployment.
    pub async fn launch(l: Launch) -> Result<Arc<Self>, RuntimeError> {
        let stopping = Arc::new(AtomicBool::new(false));
        let fatal: Arc<Mutex<Option<String>>> = Arc::default();
        let mut slots = Vec::new();
        let mut supervisors = Vec::new();
        let last = l.stages.len().saturating_sub(1);
        let job_sources: Arc<[String]> = l
            .stages
            .first()
            .map(|s| s.spec.sources.iter().map(|s| s.topic.clone()).collect())
            .unwrap_or_default();
        // Tasks are numbered across stages: the first stage's, then the next's.
        let tasks = l.stages.iter().enumerate().flat_map(|(stage, s)| {
            s.assignment
                .iter()
                .map(move |partitions| (stage, s, partitions))
        });
        for (index, (stage, st, partitions)) in tasks.enumerate() {
            let metrics = Arc::new(TaskMetrics::new(
                &l.key,
                index as u32,
                stage as u32,
                partitions.clone(),
            ));
            let slot = Arc::new(TaskSlot {
                metrics,
                ctl: Mutex::new(None),
                abort: Mutex::new(None),
            });
            let plan = TaskPlan {
                key: l.key.clone(),
                version: l.version,
                generation: l.generation,
                index: index as u32,
                partitions: partitions.clone(),
                spec: st.spec.clone(),
                chain: st.chain.clone(),
                stage: stage as u32,
                job_sources: job_sources.clone(),
                restore: l.restore.clone(),
                gated: true,
            };
            let mut env = l.env.clone();
            if stage != last {
                // The job's rate limit applies to its outputs, i.e. the last stage.
                env.rate = None;
            }
            // The first incarnation's channel exists before launch returns.
            let (tx, rx) = mpsc::channel(8);
            if let Ok(mut c) = slot.ctl.lock() {
                *c = Some(tx);
            }
            supervisors.push(tokio::spawn(supervise(
                slot.clone(),
                plan,
                env,
                l.restart.clone(),
                Ending {
                    stopping: stopping.clone(),
                    fatal: fatal.clone(),
                },
                rx,
            )));
            slots.push(slot);
        }
        let d = Arc::new(Self {
            key: l.key,
            version: l.version,
            generation: l.generation,
            parallelism: l
                .stages
                .iter()
                .map(|s| s.assignment.len() as u32)
                .max()
                .unwrap_or(0),
            spec: l.spec,
            env: l.env,
            slots,
            supervisors: Mutex::new(supervisors),
            background: Mutex::new(Vec::new()),
            checkpoint_lock: tokio::sync::Mutex::new(()),
            stopping,
            fatal,
            state_limit: l.state_limit,
            completed: AtomicU64::new(0),
        });
        if let Err(e) = d.start_checkpoint().await {
            d.shutdown().await;
            return Err(e);
        }
        Ok(d)
    }

    /// The checkpoint every generation starts from. A task may restart
    /// while the deployment comes up (its consumer fails on a broker blip
    /// and the supervisor brings it back), so a retryable failure is tried
    /// again for a while before the start is refused.
    async fn start_checkpoint(&self) -> Result<CheckpointInfo, RuntimeError> {
        let give_up = Instant::now() + START_CHECKPOINT_PATIENCE;
        let mut backoff = START_CHECKPOINT_BACKOFF.start(fastrand::u64(..));
        loop {
            match self.checkpoint(Trigger::Start).await {
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    if Instant::now() + delay >= give_up {
                        return Err(e);
                    }
                    tracing::warn!(tenant = %self.key.tenant, job = %self.key.job, error = %e, "start checkpoint failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// Starts the periodic checkpoints and the NATS metrics publisher.
    pub fn spawn_background(
        self: &Arc<Self>,
        nats: Option<(async_nats::Client, String)>,
        metrics_interval: Duration,
    ) {
        let mut bg = Vec::new();
        let weak = Arc::downgrade(self);
        let every = self.spec.checkpoint.interval().get();
        bg.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(d) = weak.upgrade() else { return };
                match d.checkpoint(Trigger::Periodic).await {
                    Ok(_) => {}
                    Err(RuntimeError::StaleGeneration { current, .. }) => {
                        tracing::warn!(job = %d.key.job, generation = d.generation, current, "fenced by a newer generation; stopping");
                        d.shutdown().await;
                        return;
                    }
                    Err(e) => tracing::warn!(job = %d.key.job, error = %e, "periodic checkpoint failed"),
                }
            }
        }));
        if let Some((client, subject)) = nats {
            let weak = Arc::downgrade(self);
            bg.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(metrics_interval);
                loop {
                    tick.tick().await;
                    let Some(d) = weak.upgrade() else { return };
                    let report = d.report();
                    drop(d);
                    if let Ok(body) = serde_json::to_vec(&report) {
                        if let Err(e) = client.publish(subject.clone(), body.into()).await {
                            tracing::debug!(error = %e, "metrics publish failed");
                        }
                    }
                }
            }));
        }
        if let Ok(mut b) = self.background.lock() {
            b.extend(bg);
        }
    }

    /// Takes a consistent checkpoint of all tasks.
    pub async fn checkpoint(&self, trigger: Trigger) -> Result<CheckpointInfo, RuntimeError> {
        self.checkpoint_then(trigger, false).await
    }

    /// A checkpoint; with `hold`, every task reads nothing more after its
    /// part (a final checkpoint: the stop that follows loses no time to a
    /// batch whose outputs the next deployment would only skip).
    async fn checkpoint_then(
        &self,
        trigger: Trigger,
        hold: bool,
    ) -> Result<CheckpointInfo, RuntimeError> {
        let _one_at_a_time = self.checkpoint_lock.lock().await;
        let started = Instant::now();
        let mut replies = Vec::new();
        for slot in &self.slots {
            let tx = slot.ctl.lock().ok().and_then(|c| c.clone());
            let Some(tx) = tx else {
                // A failed task is not coming back: no point waiting.
                if let Some(TaskState::Failed(reason)) =
                    slot.metrics.state.lock().ok().map(|s| s.clone())
                {
                    return Err(RuntimeError::Invalid(format!(
                        "task {} failed: {reason}",
                        slot.metrics.task
                    )));
                }
                return Err(unavailable(format!(
                    "task {} is restarting",
                    slot.metrics.task
                )));
            };
            let (reply, rx) = oneshot::channel();
            let c = if hold {
                Control::CheckpointAndHold(reply)
            } else {
                Control::Checkpoint(reply)
            };
            tx.send(c)
                .await
                .map_err(|_| unavailable(format!("task {} is not running", slot.metrics.task)))?;
            replies.push((slot.metrics.task, rx));
        }
        let mut partitions = Vec::new();
        for (task, rx) in replies {
            let parts = tokio::time::timeout(Duration::from_secs(120), rx)
                .await
                .map_err(|_| {
                    unavailable(format!("task {task} did not answer the checkpoint in time"))
                })?
                .map_err(|_| unavailable(format!("task {task} stopped during the checkpoint")))?
                .map_err(|e| unavailable(format!("task {task}: {e}")))?;
            partitions.extend(parts);
        }
        let bytes: u64 = partitions.iter().map(|p| p.state.len() as u64).sum();
        if let Some(reason) = self
            .state_limit
            .and_then(|limit| over_state_limit(bytes, limit))
        {
            tracing::error!(job = %self.key.job, generation = self.generation, %reason, "deployment failed");
            self.fail(reason.clone()).await;
            return Err(RuntimeError::Invalid(reason));
        }
        let info = self
            .env
            .store
            .save(NewCheckpoint {
                key: &self.key,
                version: self.version,
                generation: self.generation,
                trigger,
                duration_ms: started.elapsed().as_millis() as u64,
                partitions: &partitions,
                retain: self.spec.checkpoint.retain,
            })
            .await?;
        self.completed.fetch_add(1, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        for slot in &self.slots {
            slot.metrics.checkpointed(&info.id, secs, info.state_bytes);
            let tx = slot.ctl.lock().ok().and_then(|c| c.clone());
            if let Some(tx) = tx {
                let _ = tx.send(Control::Committed(info.id.clone())).await;
            }
        }
        tracing::info!(
            job = %self.key.job, generation = self.generation, checkpoint = %info.id,
            trigger = trigger.as_str(), ms = started.elapsed().as_millis() as u64,
            state_bytes = info.state_bytes, "checkpoint completed"
        );
        Ok(info)
    }

    /// Stops every task (after an optional final checkpoint) and waits for them.
    pub async fn stop(
        &self,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let info = if final_checkpoint {
            match self.checkpoint_then(Trigger::Stop, true).await {
                Ok(info) => Some(info),
                Err(e) => {
                    // Not stopping after all: the tasks read on.
                    self.send_all(|| Control::Resume).await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        self.shutdown().await;
        Ok(info)
    }

    /// Stops every task for good, each ending `failed` with `reason`.
    /// Does not wait for them: it may run inside one of the deployment's
    /// own background tasks (a periodic checkpoint).
    async fn fail(&self, reason: String) {
        if let Ok(mut f) = self.fatal.lock() {
            *f = Some(reason);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.send_all(|| Control::Stop).await;
    }

    async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Ok(mut bg) = self.background.lock() {
            for h in bg.drain(..) {
                h.abort();
            }
        }
        self.send_all(|| Control::Stop).await;
        let handles: Vec<_> = self
            .supervisors
            .lock()
            .map(|mut s| s.drain(..).collect())
            .unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
    }

    /// Sends a control message to every running task.
    async fn send_all(&self, message: impl Fn() -> Control) {
        for slot in &self.slots {
            let tx = slot.ctl.lock().ok().and_then(|c| c.clone());
            if let Some(tx) = tx {
                let _ = tx.send(message()).await;
            }
        }
    }

    /// Simulates a crash of one task (for chaos tests): its current
    /// incarnation is aborted and the supervisor restarts it.
    pub fn kill_task(&self, task: u32) -> bool {
        let Some(slot) = self.slots.get(task as usize) else {
            return false;
        };
        let h = slot.abort.lock().ok().and_then(|a| a.clone());
        h.map(|h| h.abort()).is_some()
    }

    pub fn status(&self) -> DeploymentStatus {
        DeploymentStatus {
            key: self.key.clone(),
            version: self.version,
            generation: self.generation,
            parallelism: self.parallelism,
            guarantee: guarantee(&self.spec, self.env.transactional),
            tasks: self.slots.iter().map(|s| s.metrics.status()).collect(),
            completed_checkpoints: self.completed.load(Ordering::Relaxed),
        }
    }

    pub fn report(&self) -> MetricsReport {
        MetricsReport {
            tenant: self.key.tenant.clone(),
            job: self.key.job.clone(),
            version: self.version,
            generation: self.generation,
            parallelism: self.parallelism,
            at: chrono::Utc::now(),
            tasks: self.slots.iter().map(|s| s.metrics.report()).collect(),
        }
    }
}

/// How long a start waits for its tasks to answer the first checkpoint.
const START_CHECKPOINT_PATIENCE: Duration = Duration::from_secs(15);
/// Between tries of the start checkpoint.
const START_CHECKPOINT_BACKOFF: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(100), Duration::from_secs(2));

fn unavailable(reason: String) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "deployment",
        reason,
    }
}

/// The delivery guarantee per sink, stated.
pub fn guarantee(spec: &JobSpec, transactional: bool) -> String {
    super::sinks::SinkGuarantee::state_all(spec, transactional)
}

/// Why a task's supervisor stops restarting it, shared by the deployment.
struct Ending {
    stopping: Arc<AtomicBool>,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Ending {
    /// The state a task ends in once stopped: `failed` if the deployment was
    /// failed on purpose.
    fn state(&self) -> TaskState {
        match self.fatal.lock().ok().and_then(|f| f.clone()) {
            Some(reason) => TaskState::Failed(reason),
            None => TaskState::Stopped,
        }
    }
}

/// Why `bytes` of operator state are too many for `limit`, if they are.
fn over_state_limit(bytes: u64, limit: u64) -> Option<String> {
    (bytes > limit).then(|| {
        format!(
            "operator state of {bytes} bytes is over the tenant's max_state_bytes ({limit}); the deployment is stopped"
        )
    })
}

/// Runs one task, restarting it from the latest checkpoint after crashes.
async fn supervise(
    slot: Arc<TaskSlot>,
    mut plan: TaskPlan,
    env: TaskEnv,
    policy: RestartPolicy,
    ending: Ending,
    first_rx: mpsc::Receiver<Control>,
) {
    let mut tracker = RestartTracker::new(policy, fastrand::u64(..));
    let mut rx = Some(first_rx);
    loop {
        let rx = match rx.take() {
            Some(rx) => rx,
            None => {
                let (tx, rx) = mpsc::channel(8);
                if let Ok(mut c) = slot.ctl.lock() {
                    *c = Some(tx);
                }
                rx
            }
        };
        let (closed_tx, closed_rx) = oneshot::channel();
        let handle = tokio::spawn(task::run(
            plan.clone(),
            env.clone(),
            slot.metrics.clone(),
            rx,
            closed_tx,
        ));
        if let Ok(mut a) = slot.abort.lock() {
            *a = Some(handle.abort_handle());
        }
        let outcome = handle.await;
        if let Ok(mut c) = slot.ctl.lock() {
            *c = None;
        }
        // The old producer must be settled before a restore scans the sink.
        let _ = tokio::time::timeout(Duration::from_secs(150), closed_rx).await;
        let reason = match outcome {
            Ok(Ok(())) => {
                slot.metrics.set_state(ending.state());
                return;
            }
            Ok(Err(e @ TaskError::Refused(_))) => {
                let reason = e.to_string();
                tracing::error!(job = %plan.key.job, task = plan.index, %reason, "task failed; not restarted");
                slot.metrics.crashed(&reason);
                slot.metrics.set_state(TaskState::Failed(reason));
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) if e.is_cancelled() => "killed".to_owned(),
            Err(e) => format!("panicked: {e}"),
        };
        if ending.stopping.load(Ordering::SeqCst) {
            slot.metrics.set_state(ending.state());
            return;
        }
        slot.metrics.crashed(&reason);
        let Some(backoff) = tracker.on_crash(now_ms()) else {
            tracing::error!(job = %plan.key.job, task = plan.index, %reason, "restart budget spent; task failed");
            slot.metrics.set_state(TaskState::Failed(reason));
            return;
        };
        tracing::warn!(job = %plan.key.job, task = plan.index, %reason, backoff_ms = backoff.as_millis() as u64, "task crashed; restarting from the latest checkpoint");
        slot.metrics.set_state(TaskState::Restarting);
        slot.metrics.restarted();
        tokio::time::sleep(backoff).await;
        if ending.stopping.load(Ordering::SeqCst) {
            slot.metrics.set_state(ending.state());
            return;
        }
        match env.store.latest(&plan.key).await {
            Ok(Some(cp)) => {
                plan.restore = Some(cp.id);
                plan.gated = false;
            }
            // No checkpoint yet: wait to be released by the next one.
            Ok(None) => plan.gated = true,
            Err(e) => tracing::warn!(error = %e, "could not read the latest checkpoint; retrying"),
        }
    }
}
