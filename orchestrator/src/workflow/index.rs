//! Finding runs that need an engine: one indexed query over the snapshots the
//! event store keeps current in the same transaction as the events, so the
//! index can never disagree with the runs (migration 0003 adds the index).

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::store::postgres::PgStore;
use crate::store::StoreError;

/// A run that is due. Only ids: the driver loads the state it acts on itself.
#[derive(Debug, Clone)]
pub struct DueRun {
    pub tenant: String,
    pub run_id: String,
}

/// Where the engine finds due runs.
pub trait RunIndex: Send + Sync + 'static {
    /// Running runs whose `due_at` has passed, or whose lease `me` holds (a restarted replica's own), oldest due first.
    fn due_runs(
        &self,
        now: DateTime<Utc>,
        me: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DueRun>, StoreError>> + Send;
}

impl RunIndex for PgStore {
    async fn due_runs(
        &self,
        now: DateTime<Utc>,
        me: &str,
        limit: i64,
    ) -> Result<Vec<DueRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, stream_id FROM streams
             WHERE kind = 'run' AND snapshot->>'status' = 'running'
               AND ((snapshot->>'due_at')::timestamptz <= $1 OR snapshot->>'lease_owner' = $2)
             ORDER BY snapshot->>'due_at' LIMIT $3",
        )
        .bind(now)
        .bind(me)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::Unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let stream: String = r.try_get("stream_id").map_err(StoreError::Unavailable)?;
            out.push(DueRun {
                tenant: r.try_get("tenant").map_err(StoreError::Unavailable)?,
                run_id: stream.strip_prefix("run.").unwrap_or(&stream).to_owned(),
            });
        }
        Ok(out)
    }
}
