//! Checkpoint metadata and state in PostgreSQL (migration 0002), plus the
//! fences that keep stale deployments from writing: by generation (a newer
//! deployment of the job started) and, for a deployment run by a cluster
//! worker, by placement epoch (the job was given to another worker, or to a
//! newer incarnation of this one; migration 0004).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::{PartitionCheckpoint, SinkOffsets, Trigger};
use crate::runtime::control::{CheckpointInfo, DeploymentKey, RuntimeError};
use crate::runtime::topology::TopicPartition;

/// Reads and writes checkpoints of all jobs. Clones share their holds.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    pool: PgPool,
    /// Placements this process holds, per job: a checkpoint of such a job is
    /// written only while `runtime_placements` still names this worker and epoch.
    holds: Arc<Mutex<HashMap<DeploymentKey, Hold>>>,
}

/// A worker's hold on a job's placement (see [`CheckpointStore::hold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub worker: String,
    pub epoch: u64,
}

fn db(e: sqlx::Error) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "checkpoint store",
        reason: e.to_string(),
    }
}

fn corrupt(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Internal(format!("checkpoint store: {e}"))
}

/// What a new checkpoint records.
#[derive(Debug, Clone)]
pub struct NewCheckpoint<'a> {
    pub key: &'a DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub trigger: Trigger,
    pub duration_ms: u64,
    pub partitions: &'a [PartitionCheckpoint],
    pub retain: u32,
}

impl CheckpointStore {
    /// Uses a pool whose `search_path` holds the migrated schema.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            holds: Arc::default(),
        }
    }

    /// From now on, checkpoints of `key` are written only while its placement
    /// is `worker` at `epoch`; otherwise saving fails with
    /// [`RuntimeError::StaleGeneration`], which stops the deployment. Without
    /// a hold (a runtime used on its own, no placements) only the generation fences.
    pub fn hold(&self, key: &DeploymentKey, worker: &str, epoch: u64) {
        if let Ok(mut h) = self.holds.lock() {
            h.insert(
                key.clone(),
                Hold {
                    worker: worker.to_owned(),
                    epoch,
                },
            );
        }
    }

    /// Forgets the hold on `key`.
    pub fn release(&self, key: &DeploymentKey) {
        if let Ok(mut h) = self.holds.lock() {
            h.remove(key);
        }
    }

    fn held(&self, key: &DeploymentKey) -> Option<Hold> {
        self.holds.lock().ok().and_then(|h| h.get(key).cloned())
    }

    /// Records `generation` as the deployment's newest. Fails with
    /// [`RuntimeError::StaleGeneration`] if a newer one is already recorded.
    pub async fn fence(
        &self,
        key: &DeploymentKey,
        generation: u64,
        version: u32,
        parallelism: u32,
    ) -> Result<(), RuntimeError> {
        let current: i64 = sqlx::query_scalar(
            "INSERT INTO runtime_deployments (tenant, job, generation, version, parallelism)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant, job) DO UPDATE
               SET generation = GREATEST(runtime_deployments.generation, EXCLUDED.generation),
                   version = CASE WHEN EXCLUDED.generation >= runtime_deployments.generation
                                  THEN EXCLUDED.version ELSE runtime_deployments.version END,
                   parallelism = CASE WHEN EXCLUDED.generation >= runtime_deployments.generation
                                  THEN EXCLUDED.parallelism ELSE runtime_deployments.parallelism END,
                   updated_at = now()
             RETURNING generation",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(generation as i64)
        .bind(version as i32)
        .bind(parallelism as i32)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        if current as u64 > generation {
            return Err(RuntimeError::StaleGeneration {
                requested: generation,
                current: current as u64,
            });
        }
        Ok(())
    }

    /// Writes a checkpoint atomically, unless a newer generation has been
    /// fenced in, and prunes all but the newest `retain`.
    pub async fn save(&self, c: NewCheckpoint<'_>) -> Result<CheckpointInfo, RuntimeError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT generation FROM runtime_deployments WHERE tenant = $1 AND job = $2 FOR SHARE",
        )
        .bind(&c.key.tenant)
        .bind(&c.key.job)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(cur) = current {
            if cur as u64 > c.generation {
                return Err(RuntimeError::StaleGeneration {
                    requested: c.generation,
                    current: cur as u64,
                });
            }
        }
        if let Some(hold) = self.held(c.key) {
            // FOR SHARE: a failover's update of the row waits for this
            // checkpoint, or this checkpoint sees the new worker and epoch.
            let placed = sqlx::query(
                "SELECT worker, epoch FROM runtime_placements
                 WHERE tenant = $1 AND job = $2 FOR SHARE",
            )
            .bind(&c.key.tenant)
            .bind(&c.key.job)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let now = placed
                .map(|r| {
                    Ok::<_, RuntimeError>(Hold {
                        worker: r.try_get("worker").map_err(corrupt)?,
                        epoch: r.try_get::<i64, _>("epoch").map_err(corrupt)? as u64,
                    })
                })
                .transpose()?;
            if now.as_ref() != Some(&hold) {
                tracing::warn!(
                    tenant = %c.key.tenant, job = %c.key.job, worker = %hold.worker,
                    epoch = hold.epoch, placed = ?now,
                    "checkpoint refused: the placement moved (epoch fence)"
                );
                return Err(RuntimeError::StaleGeneration {
                    requested: c.generation,
                    current: c.generation,
                });
            }
        }
        let id = format!("ck-{}", uuid::Uuid::now_v7().simple());
        let state_bytes: u64 = c.partitions.iter().map(|p| p.state.len() as u64).sum();
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO runtime_checkpoints
               (id, tenant, job, version, generation, state_bytes, duration_ms, trigger)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at",
        )
        .bind(&id)
        .bind(&c.key.tenant)
        .bind(&c.key.job)
        .bind(c.version as i32)
        .bind(c.generation as i64)
        .bind(state_bytes as i64)
        .bind(c.duration_ms.min(i32::MAX as u64) as i32)
        .bind(c.trigger.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        // One multi-row insert: a checkpoint costs one round trip per table.
        let mut topics = Vec::new();
        let mut parts = Vec::new();
        let mut offsets = Vec::new();
        let mut marks = Vec::new();
        let mut sinks = Vec::new();
        let mut states = Vec::new();
        for p in c.partitions {
            topics.push(p.tp.topic.clone());
            parts.push(p.tp.partition);
            offsets.push(p.next_offset);
            marks.push(p.watermark);
            sinks.push(serde_json::to_value(&p.sink_offsets).map_err(corrupt)?);
            states.push(p.state.clone());
        }
        sqlx::query(
            "INSERT INTO runtime_checkpoint_partitions
               (checkpoint_id, topic, partition, next_offset, watermark, sink_offsets, state)
             SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::jsonb[], $7::bytea[])",
        )
        .bind(&id)
        .bind(&topics)
        .bind(&parts)
        .bind(&offsets)
        .bind(&marks)
        .bind(&sinks)
        .bind(&states)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "DELETE FROM runtime_checkpoints WHERE tenant = $1 AND job = $2 AND seq NOT IN (
               SELECT seq FROM runtime_checkpoints WHERE tenant = $1 AND job = $2
               ORDER BY seq DESC LIMIT $3)",
        )
        .bind(&c.key.tenant)
        .bind(&c.key.job)
        .bind(i64::from(c.retain.max(1)))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(CheckpointInfo {
            id,
            key: c.key.clone(),
            version: c.version,
            generation: c.generation,
            created_at,
            state_bytes,
        })
    }

    /// Completed checkpoints of a job, newest first.
    pub async fn list(&self, key: &DeploymentKey) -> Result<Vec<CheckpointInfo>, RuntimeError> {
        let rows = sqlx::query(
            "SELECT id, version, generation, created_at, state_bytes FROM runtime_checkpoints
             WHERE tenant = $1 AND job = $2 ORDER BY seq DESC",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|r| info_from_row(key, r)).collect()
    }

    /// The newest checkpoint's id, if any.
    pub async fn latest(
        &self,
        key: &DeploymentKey,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let row = sqlx::query(
            "SELECT id, version, generation, created_at, state_bytes FROM runtime_checkpoints
             WHERE tenant = $1 AND job = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| info_from_row(key, &r)).transpose()
    }

    /// A checkpoint of `key` by id.
    pub async fn get(&self, key: &DeploymentKey, id: &str) -> Result<CheckpointInfo, RuntimeError> {
        let row = sqlx::query(
            "SELECT id, version, generation, created_at, state_bytes FROM runtime_checkpoints
             WHERE tenant = $1 AND job = $2 AND id = $3",
        )
        .bind(&key.tenant)
        .bind(&key.job)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(r) => info_from_row(key, &r),
            None => Err(RuntimeError::CheckpointNotFound(id.to_owned())),
        }
    }

    /// The parts of checkpoint `id` for the given partitions (those present).
    pub async fn partitions(
        &self,
        id: &str,
        tps: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, PartitionCheckpoint>, RuntimeError> {
        let topics: Vec<&str> = tps.iter().map(|t| t.topic.as_str()).collect();
        let parts: Vec<i32> = tps.iter().map(|t| t.partition).collect();
        let rows = sqlx::query(
            "SELECT c.topic, c.partition, c.next_offset, c.watermark, c.sink_offsets, c.state
             FROM runtime_checkpoint_partitions c
             JOIN UNNEST($2::text[], $3::int[]) AS w(topic, partition)
               ON w.topic = c.topic AND w.partition = c.partition
             WHERE c.checkpoint_id = $1",
        )
        .bind(id)
        .bind(&topics)
        .bind(&parts)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut out = BTreeMap::new();
        for r in rows {
            let tp = TopicPartition {
                topic: r.try_get("topic").map_err(corrupt)?,
                partition: r.try_get("partition").map_err(corrupt)?,
            };
            let sink_offsets: SinkOffsets =
                serde_json::from_value(r.try_get("sink_offsets").map_err(corrupt)?)
                    .map_err(corrupt)?;
            out.insert(
                tp.clone(),
                PartitionCheckpoint {
                    tp,
                    next_offset: r.try_get("next_offset").map_err(corrupt)?,
                    watermark: r.try_get("watermark").map_err(corrupt)?,
                    sink_offsets,
                    state: r.try_get("state").map_err(corrupt)?,
                },
            );
        }
        Ok(out)
    }
}

fn info_from_row(
    key: &DeploymentKey,
    r: &sqlx::postgres::PgRow,
) -> Result<CheckpointInfo, RuntimeError> {
    Ok(CheckpointInfo {
        id: r.try_get("id").map_err(corrupt)?,
        key: key.clone(),
        version: r.try_get::<i32, _>("version").map_err(corrupt)? as u32,
        generation: r.try_get::<i64, _>("generation").map_err(corrupt)? as u64,
        created_at: r.try_get("created_at").map_err(corrupt)?,
        state_bytes: r.try_get::<i64, _>("state_bytes").map_err(corrupt)? as u64,
    })
}
