//! The size of worker pool the jobs want: every running job's tasks at the
//! parallelism the tuner chose for it (its current one when untuned),
//! divided by the tasks one worker is sized for (`--tasks-per-worker`).
//! Published as gauges so an external autoscaler (KEDA, a Kubernetes HPA)
//! can size the pool of `weir worker`s; Weir itself never starts workers.

use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::autotune::store::Recorded;
use crate::domain::job::{JobSpec, JobState, Phase};
use crate::store::StoreError;
use crate::telemetry::names;

/// One deployed job's wanted tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Tasks per stage the job should run at.
    pub parallelism: u32,
    /// Stages of its topology (one plus one per repartitioning `key_by`).
    pub stages: u32,
}

/// The most tasks per stage `job` may have when its tenant may run
/// `max_tasks` tasks in all: what the tenant's other jobs leave, over the
/// job's stages (at least 1: a running job is never tuned to nothing).
pub fn tenant_limit(deployed: &[Deployed], job: &str, stages: u32, max_tasks: u32) -> u32 {
    let others: u64 = deployed
        .iter()
        .filter(|d| d.job != job)
        .map(Deployed::tasks)
        .sum();
    let left = u64::from(max_tasks).saturating_sub(others);
    u32::try_from(left / u64::from(stages.max(1)))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Workers needed for `wanted` at `per_worker` tasks each (at least one
/// while anything runs).
pub fn workers_needed(wanted: &[Wanted], per_worker: u32) -> u64 {
    tasks(wanted).div_ceil(u64::from(per_worker.max(1)))
}

/// Every task `wanted` asks for.
fn tasks(wanted: &[Wanted]) -> u64 {
    wanted
        .iter()
        .map(|w| u64::from(w.parallelism) * u64::from(w.stages))
        .sum()
}

/// A running or deploying job's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub tenant: String,
    pub job: String,
    /// Tasks per stage it runs at.
    pub parallelism: u32,
    /// What it should run at: the tuner's last choice, else `parallelism`.
    pub wanted: Wanted,
}

impl Deployed {
    pub fn tasks(&self) -> u64 {
        u64::from(self.parallelism) * u64::from(self.wanted.stages)
    }
}

/// Every deployed job's wanted tasks (of every tenant).
pub async fn wanted(pool: &PgPool) -> Result<Vec<Wanted>, StoreError> {
    Ok(deployed(pool, None)
        .await?
        .into_iter()
        .map(|d| d.wanted)
        .collect())
}

/// The running and deploying jobs (of `tenant`, or of all), read from the
/// job snapshots and the tuner's last decisions.
pub async fn deployed(pool: &PgPool, tenant: Option<&str>) -> Result<Vec<Deployed>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.tenant, s.stream_id, s.snapshot, a.decision
           FROM streams s
           LEFT JOIN autotune_state a
             ON a.tenant = s.tenant AND 'job.' || a.job = s.stream_id
          WHERE s.kind = 'job' AND s.snapshot->>'phase' IN ('running', 'deploying')
            AND ($1::text IS NULL OR s.tenant = $1)",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .map_err(StoreError::Unavailable)?;
    let mut out = Vec::new();
    for r in rows {
        let tenant: String = r.try_get("tenant").map_err(StoreError::Unavailable)?;
        let stream: String = r.try_get("stream_id").map_err(StoreError::Unavailable)?;
        let snapshot: Option<Value> = r.try_get("snapshot").map_err(StoreError::Unavailable)?;
        let decision: Option<Value> = r.try_get("decision").map_err(StoreError::Unavailable)?;
        let Some(state) = snapshot.and_then(|s| serde_json::from_value::<JobState>(s).ok()) else {
            continue;
        };
        let Some(d) = state.deployment.as_ref() else {
            continue;
        };
        let Some(spec) = state
            .version(d.version)
            .and_then(|v| JobSpec::from_value(v.spec.clone()).ok())
        else {
            continue;
        };
        let tuned = state
            .running_autotune_policy()
            .is_some_and(|p| p.mode != crate::domain::autotune::Mode::Off);
        let chosen = decision
            .filter(|_| tuned && state.phase == Phase::Running)
            .and_then(|v| serde_json::from_value::<Recorded>(v).ok())
            .and_then(|r| r.wanted_parallelism());
        let job = stream.strip_prefix("job.").unwrap_or(&stream).to_owned();
        let stages = crate::runtime::topology::stages(&tenant, &job, &spec).len();
        out.push(Deployed {
            parallelism: d.parallelism,
            wanted: Wanted {
                parallelism: chosen.unwrap_or(d.parallelism),
                stages: u32::try_from(stages).unwrap_or(u32::MAX),
            },
            tenant,
            job,
        });
    }
    Ok(out)
}

/// Sets the pool gauges from `wanted`.
pub fn publish(wanted: &[Wanted], per_worker: u32) {
    metrics::gauge!(names::AUTOTUNE_WANTED_TASKS).set(tasks(wanted) as f64);
    metrics::gauge!(names::AUTOTUNE_WORKERS_NEEDED).set(workers_needed(wanted, per_worker) as f64);
}

/// Refreshes the pool gauges every `every` until `shutdown`.
pub async fn run(
    pool: PgPool,
    per_worker: u32,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => match wanted(&pool).await {
                Ok(w) => publish(&w, per_worker),
                Err(e) => tracing::warn!(error = %e, "cannot size the worker pool; next tick retries"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_whole_and_cover_every_task() {
        let w = |parallelism, stages| Wanted {
            parallelism,
            stages,
        };
        assert_eq!(workers_needed(&[], 8), 0);
        assert_eq!(workers_needed(&[w(1, 1)], 8), 1);
        assert_eq!(workers_needed(&[w(4, 2), w(1, 1)], 8), 2);
        assert_eq!(workers_needed(&[w(4, 2)], 8), 1);
        assert_eq!(workers_needed(&[w(3, 1)], 0), 3, "0 per worker counts as 1");
    }

    #[test]
    fn a_job_gets_what_its_tenant_s_other_jobs_leave() {
        let d = |job: &str, parallelism, stages| Deployed {
            tenant: "acme".into(),
            job: job.into(),
            parallelism,
            wanted: Wanted {
                parallelism,
                stages,
            },
        };
        let jobs = [d("a", 4, 2), d("b", 2, 1), d("me", 3, 2)];
        // 16 - (8 + 2) = 6 tasks left, over 2 stages.
        assert_eq!(tenant_limit(&jobs, "me", 2, 16), 3);
        assert_eq!(tenant_limit(&jobs, "me", 1, 16), 6);
        // Nothing left: still 1.
        assert_eq!(tenant_limit(&jobs, "me", 2, 8), 1);
        assert_eq!(tenant_limit(&[], "me", 2, 64), 32);
    }
}
