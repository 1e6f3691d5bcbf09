//! A simulated data plane, kept in PostgreSQL, behind [`DeploymentControl`].
//!
//! It runs no records. It keeps what a real runtime would report (deployments
//! under generations, task states, checkpoints completing on the spec's
//! interval) in tables, so it survives a `kill -9` of the process that drives
//! it, and it records every side effect once per (operation, generation) in
//! `sim_effects` and every call in `sim_calls`. Workflow tests and demos use
//! it; `sim_behaviour` rows make a version misbehave on purpose:
//!
//! - `crashloop`: tasks keep restarting;
//! - `never_running`: tasks never leave `starting`;
//! - `unavailable:N`: the first N starts of each generation fail as unavailable.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::runtime::control::{
    CheckpointInfo, DeploymentControl, DeploymentKey, DeploymentRequest, DeploymentStatus,
    RestoreFrom, RuntimeError, TaskState, TaskStatus,
};

/// How long simulated tasks take to start.
const STARTUP_MS: i64 = 150;

// One simple-protocol query runs as one transaction; the lock keeps two
// processes creating the tables at once from colliding.
const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(7265001);
CREATE TABLE IF NOT EXISTS sim_deployments (
    tenant text NOT NULL, job text NOT NULL, version int NOT NULL, generation bigint NOT NULL,
    parallelism int NOT NULL, running boolean NOT NULL, started_at timestamptz NOT NULL,
    interval_ms bigint NOT NULL, restored_from text, PRIMARY KEY (tenant, job));
CREATE TABLE IF NOT EXISTS sim_checkpoints (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, tenant text NOT NULL, job text NOT NULL,
    version int NOT NULL, generation bigint NOT NULL, created_at timestamptz NOT NULL, auto boolean NOT NULL);
CREATE TABLE IF NOT EXISTS sim_effects (
    tenant text NOT NULL, job text NOT NULL, op text NOT NULL, generation bigint NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}', at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, job, op, generation));
CREATE TABLE IF NOT EXISTS sim_calls (
    seq bigserial PRIMARY KEY, tenant text NOT NULL, job text NOT NULL, op text NOT NULL,
    generation bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS sim_behaviour (
    tenant text NOT NULL, job text NOT NULL, version int NOT NULL, behaviour text NOT NULL,
    PRIMARY KEY (tenant, job, version));
";

/// The simulated runtime. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SimControl {
    pool: PgPool,
}

fn db(e: sqlx::Error) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "simulated runtime database",
        reason: e.to_string(),
    }
}

impl SimControl {
    /// Uses `pool` (whose search path picks the schema) and creates the tables if needed.
    pub async fn new(pool: PgPool) -> Result<Self, RuntimeError> {
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(db)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Makes `version` of a job misbehave (see the module docs).
    pub async fn set_behaviour(
        &self,
        tenant: &str,
        job: &str,
        version: u32,
        behaviour: &str,
    ) -> Result<(), RuntimeError> {
        sqlx::query(
            "INSERT INTO sim_behaviour (tenant, job, version, behaviour) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, job, version) DO UPDATE SET behaviour = EXCLUDED.behaviour",
        )
        .bind(tenant)
        .bind(job)
        .bind(version as i32)
        .bind(behaviour)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn behaviour(
        &self,
        key: &DeploymentKey,
        version: i32,
    ) -> Result<Option<String>, RuntimeError> {
        sqlx::query_scalar(
            "SELECT behaviour FROM sim_behaviour WHERE tenant = $1 AND job = $2 AND version = $3",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn call(
        &self,
        key: &DeploymentKey,
        op: &str,
        generation: u64,
    ) -> Result<i64, RuntimeError> {
        sqlx::query("INSERT INTO sim_calls (tenant, job, op, generation) VALUES ($1, $2, $3, $4)")
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(op)
            .bind(generation as i64)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query_scalar("SELECT count(*) FROM sim_calls WHERE tenant = $1 AND job = $2 AND op = $3 AND generation = $4")
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(op)
            .bind(generation as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    /// Completes the checkpoints a running deployment would have taken by now.
    async fn tick(&self, key: &DeploymentKey) -> Result<(), RuntimeError> {
        let row = sqlx::query(
            "SELECT version, generation, running, started_at, interval_ms FROM sim_deployments WHERE tenant = $1 AND job = $2",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(()) };
        let running: bool = row.get("running");
        let version: i32 = row.get("version");
        if !running || self.behaviour(key, version).await?.is_some() {
            return Ok(());
        }
        let generation: i64 = row.get("generation");
        let started: DateTime<Utc> = row.get("started_at");
        let interval: i64 = row.get("interval_ms");
        let due = ((Utc::now() - started).num_milliseconds() - STARTUP_MS).max(0) / interval.max(1);
        for n in 1..=due.min(1000) {
            sqlx::query(
                "INSERT INTO sim_checkpoints (id, tenant, job, version, generation, created_at, auto)
                 VALUES ($1, $2, $3, $4, $5, $6, true) ON CONFLICT (id) DO NOTHING",
            )
            .bind(format!("{}-{}-g{generation}-{n}", key.tenant, key.job))
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(version)
            .bind(generation)
            .bind(started + chrono::Duration::milliseconds(STARTUP_MS + n * interval))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    async fn insert_checkpoint(
        &self,
        key: &DeploymentKey,
        id: &str,
        version: i32,
        generation: i64,
    ) -> Result<CheckpointInfo, RuntimeError> {
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO sim_checkpoints (id, tenant, job, version, generation, created_at, auto)
             VALUES ($1, $2, $3, $4, $5, $6, false) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(version)
        .bind(generation)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(CheckpointInfo {
            id: id.to_owned(),
            key: key.clone(),
            version: version as u32,
            generation: generation as u64,
            created_at: now,
            state_bytes: 0,
        })
    }
}

impl DeploymentControl for SimControl {
    async fn start(&self, req: DeploymentRequest) -> Result<(), RuntimeError> {
        let key = &req.key;
        let calls = self.call(key, "start", req.generation).await?;
        if let Some(b) = self.behaviour(key, req.version as i32).await? {
            if let Some(n) = b
                .strip_prefix("unavailable:")
                .and_then(|n| n.parse::<i64>().ok())
            {
                if calls <= n {
                    return Err(RuntimeError::Unavailable {
                        what: "simulated workers",
                        reason: format!(
                            "start attempt {calls} of generation {} refused on purpose",
                            req.generation
                        ),
                    });
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let current: Option<(i64, bool)> =
            sqlx::query_as("SELECT generation, running FROM sim_deployments WHERE tenant = $1 AND job = $2 FOR UPDATE")
                .bind(&key.tenant)
                .bind(&key.job)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        match current {
            Some((g, _)) if (g as u64) > req.generation => {
                return Err(RuntimeError::StaleGeneration {
                    requested: req.generation,
                    current: g as u64,
                })
            }
            // Idempotent per generation: starting what already started changes nothing.
            Some((g, _)) if g as u64 == req.generation => return Ok(()),
            _ => {}
        }
        let restored_from = match &req.restore {
            RestoreFrom::Nothing => None,
            RestoreFrom::Checkpoint(id) => {
                let found: Option<String> = sqlx::query_scalar("SELECT id FROM sim_checkpoints WHERE id = $1 AND tenant = $2 AND job = $3")
                    .bind(id)
                    .bind(&key.tenant)
                    .bind(&key.job)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                Some(found.ok_or_else(|| RuntimeError::CheckpointNotFound(id.clone()))?)
            }
            RestoreFrom::Latest => sqlx::query_scalar(
                "SELECT id FROM sim_checkpoints WHERE tenant = $1 AND job = $2 AND version = $3 ORDER BY seq DESC LIMIT 1",
            )
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(req.version as i32)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?,
        };
        sqlx::query(
            "INSERT INTO sim_deployments (tenant, job, version, generation, parallelism, running, started_at, interval_ms, restored_from)
             VALUES ($1, $2, $3, $4, $5, true, now(), $6, $7)
             ON CONFLICT (tenant, job) DO UPDATE SET version = EXCLUDED.version, generation = EXCLUDED.generation,
               parallelism = EXCLUDED.parallelism, running = true, started_at = now(), interval_ms = EXCLUDED.interval_ms,
               restored_from = EXCLUDED.restored_from",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(req.version as i32)
        .bind(req.generation as i64)
        .bind(req.parallelism as i32)
        .bind(req.spec.checkpoint.interval().as_millis().max(100) as i64)
        .bind(&restored_from)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO sim_effects (tenant, job, op, generation, detail) VALUES ($1, $2, 'start', $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(req.generation as i64)
        .bind(serde_json::json!({"version": req.version, "parallelism": req.parallelism, "restored_from": restored_from}))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn stop(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        self.call(key, "stop", generation).await?;
        let row: Option<(i32, i64, bool)> =
            sqlx::query_as("SELECT version, generation, running FROM sim_deployments WHERE tenant = $1 AND job = $2")
                .bind(&key.tenant)
                .bind(&key.job)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some((version, current, running)) = row else {
            return Err(RuntimeError::NotDeployed(key.clone()));
        };
        if current as u64 != generation {
            return Err(RuntimeError::NotDeployed(key.clone()));
        }
        let id = format!("{}-{}-g{generation}-final", key.tenant, key.job);
        if !running {
            // Stopped already (a repeated call): answer as the first call did.
            let had: Option<String> =
                sqlx::query_scalar("SELECT id FROM sim_checkpoints WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
            return Ok(had.map(|id| CheckpointInfo {
                id,
                key: key.clone(),
                version: version as u32,
                generation,
                created_at: Utc::now(),
                state_bytes: 0,
            }));
        }
        self.tick(key).await?;
        let checkpoint = if final_checkpoint {
            Some(self.insert_checkpoint(key, &id, version, current).await?)
        } else {
            None
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE sim_deployments SET running = false WHERE tenant = $1 AND job = $2 AND generation = $3")
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(current)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO sim_effects (tenant, job, op, generation, detail) VALUES ($1, $2, 'stop', $3, $4) ON CONFLICT DO NOTHING")
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(current)
            .bind(serde_json::json!({"checkpoint": checkpoint.as_ref().map(|c| &c.id)}))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(checkpoint)
    }

    async fn checkpoint(&self, key: &DeploymentKey) -> Result<CheckpointInfo, RuntimeError> {
        let row: Option<(i32, i64, bool)> =
            sqlx::query_as("SELECT version, generation, running FROM sim_deployments WHERE tenant = $1 AND job = $2")
                .bind(&key.tenant)
                .bind(&key.job)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        match row {
            Some((version, generation, true)) => {
                let n = self.call(key, "checkpoint", generation as u64).await?;
                let id = format!("{}-{}-g{generation}-m{n}", key.tenant, key.job);
                self.insert_checkpoint(key, &id, version, generation).await
            }
            _ => Err(RuntimeError::NotDeployed(key.clone())),
        }
    }

    async fn status(&self, key: &DeploymentKey) -> Result<DeploymentStatus, RuntimeError> {
        self.tick(key).await?;
        let row = sqlx::query(
            "SELECT version, generation, parallelism, running, started_at FROM sim_deployments WHERE tenant = $1 AND job = $2",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| RuntimeError::NotDeployed(key.clone()))?;
        let version: i32 = row.get("version");
        let generation: i64 = row.get("generation");
        let parallelism: i32 = row.get("parallelism");
        let running: bool = row.get("running");
        let started: DateTime<Utc> = row.get("started_at");
        let completed: i64 = sqlx::query_scalar("SELECT count(*) FROM sim_checkpoints WHERE tenant = $1 AND job = $2 AND generation = $3")
            .bind(&key.tenant)
            .bind(&key.job)
            .bind(generation)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let behaviour = self.behaviour(key, version).await?;
        let age = (Utc::now() - started).num_milliseconds();
        let (state, restarts) = match (running, behaviour.as_deref()) {
            (false, _) => (TaskState::Stopped, 0),
            (true, Some("crashloop")) if age >= STARTUP_MS => {
                (TaskState::Restarting, (age / STARTUP_MS) as u32)
            }
            (true, Some("never_running")) => (TaskState::Starting, 0),
            (true, _) if age < STARTUP_MS => (TaskState::Starting, 0),
            (true, _) => (TaskState::Running, 0),
        };
        Ok(DeploymentStatus {
            key: key.clone(),
            version: version as u32,
            generation: generation as u64,
            parallelism: parallelism as u32,
            guarantee: "none (simulated runtime: no records flow)".into(),
            tasks: (0..parallelism.max(0) as u32)
                .map(|t| TaskStatus {
                    task: t,
                    partitions: vec![t as i32],
                    state: state.clone(),
                    records_in: 0,
                    records_out: 0,
                    dead_lettered: 0,
                    lag: None,
                    restarts,
                    last_checkpoint: None,
                    last_error: None,
                    operators: Default::default(),
                })
                .collect(),
            completed_checkpoints: completed as u64,
        })
    }

    async fn checkpoints(&self, key: &DeploymentKey) -> Result<Vec<CheckpointInfo>, RuntimeError> {
        self.tick(key).await?;
        let rows = sqlx::query(
            "SELECT id, version, generation, created_at FROM sim_checkpoints WHERE tenant = $1 AND job = $2 ORDER BY seq DESC",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| CheckpointInfo {
                id: r.get("id"),
                key: key.clone(),
                version: r.get::<i32, _>("version") as u32,
                generation: r.get::<i64, _>("generation") as u64,
                created_at: r.get("created_at"),
                state_bytes: 0,
            })
            .collect())
    }
}
