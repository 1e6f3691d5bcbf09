//! [`ClusterRuntime`]: the control plane's [`DeploymentControl`] over the
//! workers, and [`failover`], which moves placements off dead workers.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::liveness::Liveness;
use super::placement::{self, Placed, WorkerLoad};
use super::store::{Desired, Placement, PlacementStore};
use super::wire::{KeyBody, StartBody, StopBody};
use super::{call, ClusterConfig};
use crate::runtime::checkpoint::store::CheckpointStore;
use crate::runtime::control::{
    CheckpointInfo, DeploymentControl, DeploymentKey, DeploymentRequest, DeploymentStatus,
    RuntimeError,
};

/// A placement that should be running, as [`ClusterRuntime::observe`] found it.
#[derive(Debug)]
pub struct Observed {
    pub placement: Placement,
    pub status: Result<DeploymentStatus, RuntimeError>,
    pub worker_alive: bool,
}

/// Places deployments on live workers and routes requests to them.
pub struct ClusterRuntime {
    cfg: ClusterConfig,
    nats: async_nats::Client,
    placements: PlacementStore,
    checkpoints: CheckpointStore,
    liveness: Liveness,
}

impl ClusterRuntime {
    /// `pool` must hold migrations 0002 and 0004.
    pub fn new(
        cfg: ClusterConfig,
        nats: async_nats::Client,
        pool: sqlx::PgPool,
        liveness: Liveness,
    ) -> Self {
        Self {
            cfg,
            nats,
            placements: PlacementStore::new(pool.clone()),
            checkpoints: CheckpointStore::new(pool),
            liveness,
        }
    }

    /// Live workers with their placed load.
    async fn loads(&self) -> Result<Vec<WorkerLoad>, RuntimeError> {
        let live = self.liveness.live().await?;
        let placed = self.placements.placed_counts().await?;
        Ok(live
            .into_iter()
            .map(|hb| WorkerLoad {
                placed: placed.get(&hb.worker).copied().unwrap_or(0),
                id: hb.worker,
                capacity: hb.capacity,
            })
            .collect())
    }

    /// The placement of a deployment that should be running.
    async fn placed(&self, key: &DeploymentKey) -> Result<Placement, RuntimeError> {
        match self.placements.get(key).await? {
            Some(p) if p.desired == Desired::Running => Ok(p),
            _ => Err(RuntimeError::NotDeployed(key.clone())),
        }
    }

    /// Every placement that should be running, with its worker's status
    /// (or why it could not be had) and whether the worker is alive: what
    /// the orchestrator's reconciler compares with the jobs' phases.
    pub async fn observe(&self) -> Result<Vec<Observed>, RuntimeError> {
        let live: std::collections::HashSet<String> = self
            .liveness
            .live()
            .await?
            .into_iter()
            .map(|hb| hb.worker)
            .collect();
        let mut out = Vec::new();
        for p in self.placements.running().await? {
            let alive = live.contains(&p.worker);
            let status = if alive {
                call(
                    &self.nats,
                    self.cfg.subject(&p.worker, "status"),
                    &KeyBody {
                        key: p.key().clone(),
                    },
                    self.cfg.request_timeout,
                )
                .await
            } else {
                Err(RuntimeError::Unavailable {
                    what: "worker",
                    reason: format!("`{}` has no heartbeat", p.worker),
                })
            };
            out.push(Observed {
                placement: p,
                status,
                worker_alive: alive,
            });
        }
        Ok(out)
    }

    /// How often workers heartbeat; the pace of reconciling too.
    pub fn heartbeat_every(&self) -> std::time::Duration {
        self.cfg.heartbeat_every()
    }

    /// Asks `p`'s worker to resume it (after a move).
    async fn resume(&self, p: &Placement) -> Result<(), RuntimeError> {
        call(
            &self.nats,
            self.cfg.subject(&p.worker, "start"),
            &StartBody {
                request: p.request.clone(),
                epoch: p.epoch,
                resume: true,
            },
            self.cfg.start_timeout,
        )
        .await
    }

    /// One failover pass: every running placement whose worker has no
    /// heartbeat goes to a live worker (epoch + 1, conditional on the epoch
    /// read, so concurrent replicas cannot both move it), which resumes it
    /// from its latest checkpoint. Returns the moves made.
    pub async fn failover_once(&self) -> Result<Vec<Placement>, RuntimeError> {
        let loads = self.loads().await?;
        let running = self.placements.running().await?;
        let placed: Vec<Placed> = running
            .iter()
            .map(|p| Placed {
                key: p.key().clone(),
                worker: p.worker.clone(),
                epoch: p.epoch,
            })
            .collect();
        let mut moved = Vec::new();
        for m in placement::failover(&placed, &loads) {
            if let Some(p) = self.placements.move_to(&m).await? {
                tracing::warn!(
                    tenant = %m.key.tenant, job = %m.key.job, from = %m.from, to = %m.to,
                    epoch = p.epoch, "worker is gone; deployment moved"
                );
                moved.push(p);
            }
        }
        Ok(moved)
    }
}

/// Runs [`ClusterRuntime::failover_once`] every heartbeat interval until
/// `shutdown`. Every orchestrator replica may run it: moves are conditional
/// updates, so no leader is needed.
pub async fn failover(runtime: Arc<ClusterRuntime>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(runtime.cfg.heartbeat_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match runtime.failover_once().await {
            Ok(moved) => {
                for p in moved {
                    // The new worker's own reconcile pass would start it too;
                    // asking now saves an interval.
                    let rt = runtime.clone();
                    tokio::spawn(async move {
                        if let Err(e) = rt.resume(&p).await {
                            tracing::warn!(job = %p.key().job, worker = %p.worker, error = %e, "resume after failover failed; the worker retries");
                        }
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "failover pass failed"),
        }
    }
}

impl DeploymentControl for ClusterRuntime {
    async fn start(&self, req: DeploymentRequest) -> Result<(), RuntimeError> {
        let loads = self.loads().await?;
        let placed = self
            .placements
            .place(&req, |current| {
                placement::choose_worker(current.map(|c| c.worker.as_str()), &loads).ok_or_else(
                    || RuntimeError::Unavailable {
                        what: "workers",
                        reason: format!(
                            "no live worker with room ({} alive; see `weir worker`)",
                            loads.len()
                        ),
                    },
                )
            })
            .await?;
        tracing::info!(
            tenant = %req.key.tenant, job = %req.key.job, generation = req.generation,
            worker = %placed.worker, epoch = placed.epoch, "deployment placed"
        );
        let res: Result<(), RuntimeError> = call(
            &self.nats,
            self.cfg.subject(&placed.worker, "start"),
            &StartBody {
                request: req.clone(),
                epoch: placed.epoch,
                resume: false,
            },
            self.cfg.start_timeout,
        )
        .await;
        if let Err(e) = &res {
            if !e.is_retryable() {
                // It cannot run as asked: do not let reconcile passes retry it.
                self.placements
                    .set_stopped(&req.key, req.generation, Some(placed.epoch))
                    .await?;
            }
        }
        res
    }

    async fn stop(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let Some(p) = self.placements.get(key).await? else {
            return Err(RuntimeError::NotDeployed(key.clone()));
        };
        if p.generation > generation {
            return Err(RuntimeError::StaleGeneration {
                requested: generation,
                current: p.generation,
            });
        }
        // Desired first: whatever happens next, nothing restarts it.
        self.placements.set_stopped(key, generation, None).await?;
        let res = call(
            &self.nats,
            self.cfg.subject(&p.worker, "stop"),
            &StopBody {
                key: key.clone(),
                generation,
                final_checkpoint,
            },
            self.cfg.start_timeout,
        )
        .await;
        match res {
            Err(RuntimeError::Unavailable { .. })
                if self.liveness.get(&p.worker).await?.is_none() =>
            {
                // Its worker is gone: nothing runs it. Fence it in case it
                // is only cut off, so it cannot checkpoint again.
                self.placements.bump_epoch(key, p.epoch).await?;
                Err(RuntimeError::NotDeployed(key.clone()))
            }
            other => other,
        }
    }

    async fn checkpoint(&self, key: &DeploymentKey) -> Result<CheckpointInfo, RuntimeError> {
        let p = self.placed(key).await?;
        call(
            &self.nats,
            self.cfg.subject(&p.worker, "checkpoint"),
            &KeyBody { key: key.clone() },
            self.cfg.request_timeout,
        )
        .await
    }

    async fn status(&self, key: &DeploymentKey) -> Result<DeploymentStatus, RuntimeError> {
        let p = self.placed(key).await?;
        call(
            &self.nats,
            self.cfg.subject(&p.worker, "status"),
            &KeyBody { key: key.clone() },
            self.cfg.request_timeout,
        )
        .await
    }

    async fn checkpoints(&self, key: &DeploymentKey) -> Result<Vec<CheckpointInfo>, RuntimeError> {
        self.checkpoints.list(key).await
    }
}
