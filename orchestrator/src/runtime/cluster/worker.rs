//! [`Worker`]: an [`EmbeddedRuntime`] that joins the cluster under an id.
//!
//! It heartbeats, answers control requests, and reconciles: every interval
//! it compares the placements naming it with what it runs, starts what is
//! missing (from the latest checkpoint of that generation) and stops what
//! was moved away. A restarted worker first claims its placements (epoch + 1),
//! which fences any earlier incarnation, then the first pass restarts them.
//! If it cannot heartbeat for a whole TTL it stops its deployments itself:
//! by then the control plane may have given them to another worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::liveness::Liveness;
use super::placement::{reconcile_local, Assigned, Local};
use super::store::{Desired, PlacementStore};
use super::wire::{Heartbeat, Held, KeyBody, Reply, StartBody, StopBody};
use super::ClusterConfig;
use crate::runtime::control::{
    CheckpointInfo, DeploymentControl, DeploymentKey, DeploymentRequest, RestoreFrom, RuntimeError,
};
use crate::runtime::EmbeddedRuntime;

/// How long a placement may say `stopped` while this worker still runs it
/// before the worker stops it on its own (the control plane's stop request
/// normally arrives first, with its final checkpoint).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// How often a worker measures its broker's round trip.
const BROKER_PROBE_EVERY: Duration = Duration::from_secs(30);

/// How long a stop without a final checkpoint may take at shutdown.
const STOP_WITHOUT_CHECKPOINT: Duration = Duration::from_secs(5);

/// A worker: one runtime, its id, its placements.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    capacity: u32,
    cfg: ClusterConfig,
    runtime: EmbeddedRuntime,
    placements: PlacementStore,
    liveness: Liveness,
    nats: async_nats::Client,
    /// What runs here, by key (read by heartbeats without waiting for `ops`).
    held: Mutex<HashMap<DeploymentKey, Held>>,
    /// Serialises starts, stops and reconcile passes.
    ops: tokio::sync::Mutex<()>,
}

impl Worker {
    /// `pool` must hold migrations 0002 and 0004 (the runtime's own pool is fine).
    pub fn new(
        id: String,
        capacity: u32,
        cfg: ClusterConfig,
        runtime: EmbeddedRuntime,
        pool: sqlx::PgPool,
        liveness: Liveness,
        nats: async_nats::Client,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                capacity,
                cfg,
                runtime,
                placements: PlacementStore::new(pool),
                liveness,
                nats,
                held: Mutex::new(HashMap::new()),
                ops: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn runtime(&self) -> &EmbeddedRuntime {
        &self.inner.runtime
    }

    /// Joins: the first heartbeat, then claims this id's running placements.
    /// Call before [`Worker::run`]; a control plane in the same process then
    /// sees this worker alive before it looks for dead ones.
    pub async fn join(&self) -> Result<(), RuntimeError> {
        self.beat().await?;
        let claimed = self.inner.placements.claim(&self.inner.id).await?;
        tracing::info!(worker = %self.inner.id, placements = claimed.len(), "worker joined");
        Ok(())
    }

    /// Serves control requests, heartbeats and reconciles until `shutdown`;
    /// then takes a final checkpoint of each deployment, stops it and leaves.
    pub async fn run(self, shutdown: CancellationToken) {
        let subject = format!("{}.worker.{}.*", self.inner.cfg.prefix, self.inner.id);
        let mut requests = match self.inner.nats.subscribe(subject.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, %subject, "worker cannot subscribe; not serving");
                return;
            }
        };
        let mut tick = tokio::time::interval(self.inner.cfg.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_beat = Instant::now();
        let mut pass: Option<tokio::task::JoinHandle<()>> = None;
        let mut probe = tokio::time::interval(BROKER_PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probing: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = probe.tick() => {
                    if probing.as_ref().is_none_or(|p| p.is_finished()) {
                        let w = self.clone();
                        probing = Some(tokio::spawn(async move {
                            if let Err(e) = w.inner.runtime.probe_broker().await {
                                tracing::warn!(worker = %w.inner.id, error = %e, "broker probe failed");
                            }
                        }));
                    }
                }
                msg = requests.next() => {
                    let Some(msg) = msg else { break };
                    let w = self.clone();
                    tokio::spawn(async move { w.answer(msg).await });
                }
                _ = tick.tick() => {
                    match self.beat().await {
                        Ok(()) => last_beat = Instant::now(),
                        Err(e) => tracing::warn!(worker = %self.inner.id, error = %e, "heartbeat failed"),
                    }
                    if last_beat.elapsed() > self.inner.cfg.ttl {
                        self.self_fence().await;
                    } else if pass.as_ref().is_none_or(|p| p.is_finished()) {
                        // Reconcile off the select loop: a start may take seconds.
                        let w = self.clone();
                        pass = Some(tokio::spawn(async move { w.reconcile().await }));
                    }
                }
            }
        }
        drop(requests);
        if let Some(p) = pass {
            let _ = p.await;
        }
        self.leave().await;
    }

    async fn beat(&self) -> Result<(), RuntimeError> {
        let deployments = self
            .inner
            .held
            .lock()
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default();
        self.inner
            .liveness
            .beat(&Heartbeat {
                worker: self.inner.id.clone(),
                capacity: self.inner.capacity,
                deployments,
            })
            .await
    }

    fn held(&self, key: &DeploymentKey) -> Option<Held> {
        self.inner
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(key).cloned())
    }

    fn all_held(&self) -> Vec<Held> {
        self.inner
            .held
            .lock()
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default()
    }

    fn forget(&self, key: &DeploymentKey) {
        if let Ok(mut h) = self.inner.held.lock() {
            h.remove(key);
        }
        self.inner.runtime.checkpoint_store().release(key);
    }

    /// Starts `req` under placement `epoch`. Idempotent for the same
    /// generation and epoch; a new epoch of the same generation (the job came
    /// back to this worker, or this worker restarted) restarts it.
    pub async fn start(
        &self,
        mut req: DeploymentRequest,
        epoch: u64,
        resume: bool,
    ) -> Result<(), RuntimeError> {
        let _op = self.inner.ops.lock().await;
        let key = req.key.clone();
        if let Some(h) = self.held(&key) {
            if h.generation == req.generation && h.epoch == epoch {
                return Ok(());
            }
            if h.generation == req.generation {
                match self.inner.runtime.stop(&key, h.generation, false).await {
                    Ok(_) | Err(RuntimeError::NotDeployed(_)) => {}
                    Err(e) => return Err(e),
                }
                self.forget(&key);
            }
        }
        if resume {
            let latest = self.inner.runtime.checkpoint_store().latest(&key).await?;
            if latest.is_some_and(|c| c.generation >= req.generation) {
                req.restore = RestoreFrom::Latest;
            }
        }
        let generation = req.generation;
        tracing::info!(worker = %self.inner.id, tenant = %key.tenant, job = %key.job, generation, epoch, resume, restore = ?req.restore, "starting deployment");
        self.inner
            .runtime
            .checkpoint_store()
            .hold(&key, &self.inner.id, epoch);
        self.inner.runtime.start(req).await?;
        if let Ok(mut h) = self.inner.held.lock() {
            h.insert(
                key.clone(),
                Held {
                    key,
                    generation,
                    epoch,
                },
            );
        }
        Ok(())
    }

    /// Stops a deployment running here.
    pub async fn stop(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let _op = self.inner.ops.lock().await;
        self.stop_locked(key, generation, final_checkpoint).await
    }

    async fn stop_locked(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let res = self
            .inner
            .runtime
            .stop(key, generation, final_checkpoint)
            .await;
        if matches!(res, Ok(_) | Err(RuntimeError::NotDeployed(_))) {
            self.forget(key);
        }
        res
    }

    /// One pass: start placements naming this worker that do not run here,
    /// stop what runs here but was moved away (or stopped long ago).
    pub async fn reconcile(&self) {
        let placed = match self.inner.placements.on_worker(&self.inner.id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(worker = %self.inner.id, error = %e, "cannot read placements");
                return;
            }
        };
        let assigned: Vec<Assigned> = placed
            .iter()
            .map(|p| Assigned {
                key: p.key().clone(),
                generation: p.generation,
                epoch: p.epoch,
                running: p.desired == Desired::Running,
                age: (chrono::Utc::now() - p.updated_at)
                    .to_std()
                    .unwrap_or_default(),
            })
            .collect();
        let held = self.all_held();
        let local: Vec<Local> = held
            .iter()
            .map(|h| Local {
                key: h.key.clone(),
                generation: h.generation,
                epoch: h.epoch,
            })
            .collect();
        let plan = reconcile_local(&assigned, &local, STOP_GRACE);
        for (key, final_checkpoint) in plan.stop {
            let Some(h) = held.iter().find(|h| h.key == key) else {
                continue;
            };
            tracing::info!(worker = %self.inner.id, job = %key.job, final_checkpoint, "placement gone from this worker; stopping");
            let _op = self.inner.ops.lock().await;
            if let Err(e) = self.stop_locked(&key, h.generation, final_checkpoint).await {
                tracing::warn!(job = %key.job, error = %e, "stop failed");
            }
        }
        for key in plan.start {
            let Some(p) = placed.iter().find(|p| *p.key() == key) else {
                continue;
            };
            match self.start(p.request.clone(), p.epoch, true).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    tracing::warn!(job = %key.job, error = %e, "resuming the placement failed; retrying")
                }
                Err(e) => {
                    tracing::error!(job = %key.job, error = %e, "placement cannot start here; marking it stopped");
                    let _ = self
                        .inner
                        .placements
                        .set_stopped(&key, p.generation, Some(p.epoch))
                        .await;
                }
            }
        }
    }

    /// Could not heartbeat for a TTL: others may think this worker dead and
    /// run its jobs, so stop them here (no final checkpoint: it may be fenced).
    async fn self_fence(&self) {
        let held = self.all_held();
        if held.is_empty() {
            return;
        }
        tracing::error!(worker = %self.inner.id, deployments = held.len(), "no heartbeat for a TTL; stopping local deployments");
        let _op = self.inner.ops.lock().await;
        for h in held {
            let _ = self.stop_locked(&h.key, h.generation, false).await;
        }
    }

    /// Graceful exit: final checkpoints, stops, then the heartbeat goes, so
    /// the control plane moves the placements at once.
    async fn leave(&self) {
        let _op = self.inner.ops.lock().await;
        // Final checkpoints get the shutdown grace in all; past it (a broker
        // that does not answer) the jobs stop without one and resume from
        // their previous checkpoint, so a SIGTERM is never ignored.
        let deadline = Instant::now() + self.inner.cfg.shutdown_grace;
        for h in self.all_held() {
            let left = deadline.saturating_duration_since(Instant::now());
            let stopped =
                tokio::time::timeout(left, self.stop_locked(&h.key, h.generation, true)).await;
            let why = match stopped {
                Ok(Ok(ck)) => {
                    tracing::info!(job = %h.key.job, checkpoint = ?ck.map(|c| c.id), "stopped for shutdown");
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!(
                    "not done within the shutdown grace of {}s",
                    self.inner.cfg.shutdown_grace.as_secs()
                ),
            };
            tracing::warn!(job = %h.key.job, reason = %why, "final checkpoint failed; stopping without it");
            let _ = tokio::time::timeout(
                STOP_WITHOUT_CHECKPOINT,
                self.stop_locked(&h.key, h.generation, false),
            )
            .await;
        }
        if let Err(e) = self.inner.liveness.leave(&self.inner.id).await {
            tracing::warn!(error = %e, "could not remove the heartbeat; it expires with the TTL");
        }
        tracing::info!(worker = %self.inner.id, "worker left");
    }

    /// Answers one control request.
    async fn answer(&self, msg: async_nats::Message) {
        let Some(reply_to) = msg.reply.clone() else {
            return;
        };
        let op = msg
            .subject
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let body = match op.as_str() {
            "start" => match serde_json::from_slice::<StartBody>(&msg.payload) {
                Ok(b) => encode(Reply::from_result(
                    self.start(b.request, b.epoch, b.resume).await,
                )),
                Err(e) => bad(e),
            },
            "stop" => match serde_json::from_slice::<StopBody>(&msg.payload) {
                Ok(b) => encode(Reply::from_result(
                    self.stop(&b.key, b.generation, b.final_checkpoint).await,
                )),
                Err(e) => bad(e),
            },
            "checkpoint" => match serde_json::from_slice::<KeyBody>(&msg.payload) {
                Ok(b) => encode(Reply::from_result(
                    self.inner.runtime.checkpoint(&b.key).await,
                )),
                Err(e) => bad(e),
            },
            "status" => match serde_json::from_slice::<KeyBody>(&msg.payload) {
                Ok(b) => encode(Reply::from_result(self.inner.runtime.status(&b.key).await)),
                Err(e) => bad(e),
            },
            other => encode(Reply::<()>::from_result(Err(RuntimeError::Invalid(
                format!("unknown worker operation `{other}`"),
            )))),
        };
        if let Err(e) = self.inner.nats.publish(reply_to, body.into()).await {
            tracing::warn!(error = %e, %op, "could not reply");
        }
    }
}

fn encode<T: serde::Serialize>(r: Reply<T>) -> Vec<u8> {
    // Serialising these types cannot fail; an empty body reads as a bad reply.
    serde_json::to_vec(&r).unwrap_or_default()
}

fn bad(e: serde_json::Error) -> Vec<u8> {
    encode(Reply::<()>::from_result(Err(RuntimeError::Invalid(
        format!("bad request body: {e}"),
    ))))
}
