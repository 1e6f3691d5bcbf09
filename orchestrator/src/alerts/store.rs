//! What the alert evaluator reads: the jobs that have rules or firing
//! alerts (from the job snapshots the event store keeps current) and their
//! kept metrics reports (`metric_samples`, written by the recorder).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::domain::alerts::Report;
use crate::domain::job::JobState;
use crate::store::StoreError;

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e)
}

/// A job the evaluator looks at.
#[derive(Debug, Clone)]
pub struct WatchedJob {
    pub tenant: String,
    pub job: String,
    pub state: JobState,
}

#[derive(Debug, Clone)]
pub struct AlertStore {
    pool: PgPool,
}

impl AlertStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Jobs with a version that has `alerts:`, or with an alert on record.
    pub async fn watched_jobs(&self) -> Result<Vec<WatchedJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, stream_id, snapshot FROM streams
             WHERE kind = 'job' AND snapshot IS NOT NULL
               AND (snapshot ? 'alerts' OR jsonb_path_exists(snapshot, '$.versions[*].spec.alerts'))
             ORDER BY tenant, stream_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::new();
        for r in rows {
            let stream: String = r.try_get("stream_id").map_err(unavailable)?;
            let snapshot: Value = r.try_get("snapshot").map_err(unavailable)?;
            let tenant: String = r.try_get("tenant").map_err(unavailable)?;
            match serde_json::from_value::<JobState>(snapshot) {
                Ok(state) => out.push(WatchedJob {
                    tenant,
                    job: stream.strip_prefix("job.").unwrap_or(&stream).to_owned(),
                    state,
                }),
                Err(e) => {
                    tracing::warn!(%tenant, %stream, error = %e, "a job snapshot that does not read is not watched");
                }
            }
        }
        Ok(out)
    }

    /// A job's kept reports at or after `since`, oldest first. A report
    /// that does not read is skipped (it was checked when it was kept).
    pub async fn reports(
        &self,
        tenant: &str,
        job: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Report>, StoreError> {
        Ok(
            crate::autotune::store::kept_reports(&self.pool, tenant, job, since)
                .await?
                .into_iter()
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect(),
        )
    }
}
