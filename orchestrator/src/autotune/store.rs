//! The tuner's tables (migration 0005): metrics reports by job and time, and
//! each job's [`Memory`] between decisions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::domain::autotune::{Decision, Mode, Sample, TunerState};
use crate::store::StoreError;

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A job's kept metrics reports at or after `since`, oldest first, as
/// published (the tuner and the alert rules read different figures).
pub async fn kept_reports(
    pool: &PgPool,
    tenant: &str,
    job: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Value>, StoreError> {
    let rows = sqlx::query(
        "SELECT sample FROM metric_samples WHERE tenant = $1 AND job = $2 AND at >= $3
         ORDER BY at",
    )
    .bind(tenant)
    .bind(job)
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    rows.iter()
        .map(|r| r.try_get::<Value, _>("sample").map_err(unavailable))
        .collect()
}

/// What the tuner keeps of a job between decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// Bumped by every save; a save names the one it read.
    pub seq: i64,
    pub state: TunerState,
    /// The workflow step (`run_id/step_id`) that made `decision`.
    pub decided_by: String,
    pub decision: Recorded,
    /// What the decision last written to the job's history said (rule and
    /// outcome): a decision that says the same is not written again.
    pub recorded_rule: Option<String>,
}

/// A decision as kept: what the step returns when it is asked again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub decision: Decision,
    /// The job generation the decision was made for.
    pub generation: u64,
    /// Whether it goes into the job's history (`autotune_decided`).
    pub record: bool,
}

impl Recorded {
    /// The parallelism the decision wants: where it rescales or recommends
    /// to, else the one it kept (when it read one).
    pub fn wanted_parallelism(&self) -> Option<u32> {
        match self.decision.outcome {
            crate::domain::autotune::Outcome::Rescale { to, .. }
            | crate::domain::autotune::Outcome::Recommend { to, .. } => Some(to),
            crate::domain::autotune::Outcome::NoChange => self.decision.parallelism,
        }
    }
}

/// A running job whose deployed version has an `autotune:` policy that is not `off`.
#[derive(Debug, Clone, PartialEq)]
pub struct TunableJob {
    pub tenant: String,
    pub job: String,
    pub mode: Mode,
}

/// The tuner's tables, in the event store's schema.
#[derive(Debug, Clone)]
pub struct TunerStore {
    pool: PgPool,
    /// The most tasks one tenant's jobs may run in all (`--tenant-max-tasks`).
    tenant_max_tasks: Option<u32>,
}

impl TunerStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            tenant_max_tasks: None,
        }
    }

    /// Decisions keep each tenant's jobs within `max` tasks in all.
    pub fn with_tenant_max_tasks(mut self, max: Option<u32>) -> Self {
        self.tenant_max_tasks = max;
        self
    }

    /// The most tasks per stage `job` of `tenant` (with `stages` stages)
    /// may be given, if tenants are limited: what the tenant's other
    /// running jobs leave of its limit, the lower of `--tenant-max-tasks`
    /// and the tenant's own quota (`quota_tasks`, when tenants are enforced).
    pub async fn tenant_limit(
        &self,
        tenant: &str,
        job: &str,
        stages: u32,
        quota_tasks: Option<u32>,
    ) -> Result<Option<u32>, StoreError> {
        let Some(max) = [self.tenant_max_tasks, quota_tasks]
            .into_iter()
            .flatten()
            .min()
        else {
            return Ok(None);
        };
        let deployed = super::capacity::deployed(&self.pool, Some(tenant)).await?;
        Ok(Some(super::capacity::tenant_limit(
            &deployed, job, stages, max,
        )))
    }

    /// Keeps one report as published (`body`; `sample` is what the tuner
    /// reads of it). A report seen twice (two replicas) is kept once.
    pub async fn record(
        &self,
        tenant: &str,
        job: &str,
        sample: &Sample,
        body: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO metric_samples (tenant, job, at, generation, sample)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(job)
        .bind(sample.at)
        .bind(sample.generation as i64)
        .bind(body)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// A job's reports at or after `since`, oldest first.
    pub async fn samples(
        &self,
        tenant: &str,
        job: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StoreError> {
        kept_reports(&self.pool, tenant, job, since)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| corrupt("stored metrics report", e)))
            .collect()
    }

    /// Forgets reports older than `before`; returns how many.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM metric_samples WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(r.rows_affected())
    }

    pub async fn load(&self, tenant: &str, job: &str) -> Result<Option<Memory>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, state, decided_by, decision, recorded_rule FROM autotune_state
             WHERE tenant = $1 AND job = $2",
        )
        .bind(tenant)
        .bind(job)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(r) = row else { return Ok(None) };
        let state: Value = r.try_get("state").map_err(unavailable)?;
        let decision: Value = r.try_get("decision").map_err(unavailable)?;
        Ok(Some(Memory {
            seq: r.try_get("seq").map_err(unavailable)?,
            state: serde_json::from_value(state).map_err(|e| corrupt("tuner state", e))?,
            decided_by: r.try_get("decided_by").map_err(unavailable)?,
            decision: serde_json::from_value(decision).map_err(|e| corrupt("tuner decision", e))?,
            recorded_rule: r.try_get("recorded_rule").map_err(unavailable)?,
        }))
    }

    /// Saves `memory` if the stored one is still the one read (`read`:
    /// its seq, or `None` if there was none). Returns whether it was saved.
    pub async fn save(
        &self,
        tenant: &str,
        job: &str,
        read: Option<i64>,
        memory: &Memory,
    ) -> Result<bool, StoreError> {
        let state = serde_json::to_value(&memory.state).map_err(|e| corrupt("tuner state", e))?;
        let decision =
            serde_json::to_value(&memory.decision).map_err(|e| corrupt("tuner decision", e))?;
        let q = match read {
            None => sqlx::query(
                "INSERT INTO autotune_state (tenant, job, seq, state, decided_by, decision, recorded_rule)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            ),
            Some(_) => sqlx::query(
                "UPDATE autotune_state SET seq = $3, state = $4, decided_by = $5, decision = $6,
                        recorded_rule = $7, updated_at = now()
                 WHERE tenant = $1 AND job = $2 AND seq = $8",
            ),
        };
        let r = q
            .bind(tenant)
            .bind(job)
            .bind(memory.seq)
            .bind(state)
            .bind(&memory.decided_by)
            .bind(decision)
            .bind(&memory.recorded_rule)
            .bind(read.unwrap_or(0))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets a job's memory (its policy was turned off, or it was deleted).
    pub async fn forget(&self, tenant: &str, job: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM autotune_state WHERE tenant = $1 AND job = $2")
            .bind(tenant)
            .bind(job)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Running jobs whose deployed version is tuned, across tenants, read
    /// from the job snapshots the event store keeps current.
    pub async fn tunable_jobs(&self) -> Result<Vec<TunableJob>, StoreError> {
        let jobs = crate::store::postgres::job_states(&self.pool, "snapshot->>'phase' = 'running'")
            .await?;
        Ok(jobs
            .into_iter()
            .filter_map(|(tenant, job, state)| {
                let policy = state.running_autotune_policy()?;
                (policy.mode != Mode::Off).then_some(TunableJob {
                    tenant,
                    job,
                    mode: policy.mode,
                })
            })
            .collect())
    }
}
