//! Placements in PostgreSQL (migration 0004). Every change is one statement
//! or one transaction conditioned on what the caller read (worker, epoch,
//! generation), so orchestrator replicas and workers acting at the same time
//! cannot both win.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::placement::Move;
use crate::runtime::control::{DeploymentKey, DeploymentRequest, RuntimeError};

/// What should happen to a placed deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
}

impl Desired {
    fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }
}

/// One row of `runtime_placements`.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub worker: String,
    pub request: DeploymentRequest,
    pub generation: u64,
    pub epoch: u64,
    pub desired: Desired,
    pub updated_at: DateTime<Utc>,
}

impl Placement {
    pub fn key(&self) -> &DeploymentKey {
        &self.request.key
    }
}

/// Reads and writes placements.
#[derive(Debug, Clone)]
pub struct PlacementStore {
    pool: PgPool,
}

fn db(e: sqlx::Error) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "placement store",
        reason: e.to_string(),
    }
}

fn corrupt(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Internal(format!("placement store: {e}"))
}

const COLUMNS: &str = "worker, request, generation, epoch, desired, updated_at";

fn from_row(r: &sqlx::postgres::PgRow) -> Result<Placement, RuntimeError> {
    let request: DeploymentRequest =
        serde_json::from_value(r.try_get("request").map_err(corrupt)?).map_err(corrupt)?;
    let desired = match r.try_get::<String, _>("desired").map_err(corrupt)?.as_str() {
        "running" => Desired::Running,
        _ => Desired::Stopped,
    };
    Ok(Placement {
        worker: r.try_get("worker").map_err(corrupt)?,
        request,
        generation: r.try_get::<i64, _>("generation").map_err(corrupt)? as u64,
        epoch: r.try_get::<i64, _>("epoch").map_err(corrupt)? as u64,
        desired,
        updated_at: r.try_get("updated_at").map_err(corrupt)?,
    })
}

impl PlacementStore {
    /// Uses a pool whose `search_path` holds the migrated schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Places `req` for a start, in one transaction: refuses a generation
    /// older than the placed one, asks `choose` for the worker given the
    /// current row, and writes the row (epoch + 1 when the worker changes,
    /// fencing the previous one).
    pub async fn place(
        &self,
        req: &DeploymentRequest,
        choose: impl FnOnce(Option<&Placement>) -> Result<String, RuntimeError>,
    ) -> Result<Placement, RuntimeError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let current = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_placements WHERE tenant = $1 AND job = $2 FOR UPDATE"
        ))
        .bind(&req.key.tenant)
        .bind(&req.key.job)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .map(|r| from_row(&r))
        .transpose()?;
        if let Some(cur) = &current {
            if cur.generation > req.generation {
                return Err(RuntimeError::StaleGeneration {
                    requested: req.generation,
                    current: cur.generation,
                });
            }
        }
        let worker = choose(current.as_ref())?;
        let epoch = match &current {
            Some(c) if c.worker == worker => c.epoch,
            Some(c) => c.epoch + 1,
            None => 1,
        };
        let request = serde_json::to_value(req).map_err(corrupt)?;
        let row = sqlx::query(&format!(
            "INSERT INTO runtime_placements (tenant, job, worker, request, generation, epoch, desired)
             VALUES ($1, $2, $3, $4, $5, $6, 'running')
             ON CONFLICT (tenant, job) DO UPDATE
               SET worker = EXCLUDED.worker, request = EXCLUDED.request,
                   generation = EXCLUDED.generation, epoch = EXCLUDED.epoch,
                   desired = 'running', updated_at = now()
             RETURNING {COLUMNS}"
        ))
        .bind(&req.key.tenant)
        .bind(&req.key.job)
        .bind(&worker)
        .bind(&request)
        .bind(req.generation as i64)
        .bind(epoch as i64)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let placed = from_row(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(placed)
    }

    pub async fn get(&self, key: &DeploymentKey) -> Result<Option<Placement>, RuntimeError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_placements WHERE tenant = $1 AND job = $2"
        ))
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| from_row(&r))
        .transpose()
    }

    /// Marks the placement stopped if its generation is at most `generation`
    /// (and, when given, its epoch is `epoch`). Returns whether a row changed.
    pub async fn set_stopped(
        &self,
        key: &DeploymentKey,
        generation: u64,
        epoch: Option<u64>,
    ) -> Result<bool, RuntimeError> {
        let done = sqlx::query(
            "UPDATE runtime_placements SET desired = $5, updated_at = now()
             WHERE tenant = $1 AND job = $2 AND generation <= $3
               AND ($4::bigint IS NULL OR epoch = $4)",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(generation as i64)
        .bind(epoch.map(|e| e as i64))
        .bind(Desired::Stopped.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Bumps the epoch if it is still `epoch`, fencing whoever holds it.
    pub async fn bump_epoch(&self, key: &DeploymentKey, epoch: u64) -> Result<bool, RuntimeError> {
        let done = sqlx::query(
            "UPDATE runtime_placements SET epoch = epoch + 1, updated_at = now()
             WHERE tenant = $1 AND job = $2 AND epoch = $3",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(epoch as i64)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Every placement that should be running.
    pub async fn running(&self) -> Result<Vec<Placement>, RuntimeError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_placements WHERE desired = 'running'"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    /// Running placements per worker.
    pub async fn placed_counts(&self) -> Result<HashMap<String, u32>, RuntimeError> {
        let rows = sqlx::query(
            "SELECT worker, count(*) AS n FROM runtime_placements
             WHERE desired = 'running' GROUP BY worker",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("worker").map_err(corrupt)?,
                    r.try_get::<i64, _>("n").map_err(corrupt)? as u32,
                ))
            })
            .collect()
    }

    /// Every placement on `worker`, whatever is desired.
    pub async fn on_worker(&self, worker: &str) -> Result<Vec<Placement>, RuntimeError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_placements WHERE worker = $1"
        ))
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    /// A (re)started worker claims its running placements: each epoch goes
    /// up, fencing any earlier incarnation of the same id that still runs.
    pub async fn claim(&self, worker: &str) -> Result<Vec<Placement>, RuntimeError> {
        let rows = sqlx::query(&format!(
            "UPDATE runtime_placements SET epoch = epoch + 1, updated_at = now()
             WHERE worker = $1 AND desired = 'running' RETURNING {COLUMNS}"
        ))
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    /// Carries out a failover move if nobody changed the row since it was
    /// read; returns the moved placement (with its new epoch).
    pub async fn move_to(&self, m: &Move) -> Result<Option<Placement>, RuntimeError> {
        sqlx::query(&format!(
            "UPDATE runtime_placements SET worker = $3, epoch = epoch + 1, updated_at = now()
             WHERE tenant = $1 AND job = $2 AND worker = $4 AND epoch = $5 AND desired = 'running'
             RETURNING {COLUMNS}"
        ))
        .bind(&m.key.tenant)
        .bind(&m.key.job)
        .bind(&m.to)
        .bind(&m.from)
        .bind(m.epoch as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| from_row(&r))
        .transpose()
    }
}
