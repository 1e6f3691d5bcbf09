//! What the alert evaluator reads: the jobs that have rules or firing
//! alerts (from the job snapshots the event store keeps current) and their
//! kept metrics reports (`metric_samples`, written by the recorder).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::alerts::Report;
use crate::domain::job::JobState;
use crate::store::StoreError;

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
        Ok(crate::store::postgres::job_states(
            &self.pool,
            "snapshot ? 'alerts' OR jsonb_path_exists(snapshot, '$.versions[*].spec.alerts')",
        )
        .await?
        .into_iter()
        .map(|(tenant, job, state)| WatchedJob { tenant, job, state })
        .collect())
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
