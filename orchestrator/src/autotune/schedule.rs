//! When the tuner decides: every `every`, each tuned job gets a run of
//! `workflows/autotune.yaml`. The run id is derived from the job and the
//! tick number, so every replica that sees the tick proposes the same run
//! and it starts once; a decision is never made twice for one tick.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::store::TunableJob;
use crate::workflow::triggers::{Trigger, RUN_NAMESPACE};

/// The workflow file of the tuning loop.
pub const WORKFLOW: &str = "autotune.yaml";

/// The number of the tick `now` falls in (ticks start at the Unix epoch).
pub fn tick(now: DateTime<Utc>, every: Duration) -> i64 {
    let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    now.timestamp_millis().div_euclid(every)
}

/// The run that decides for `job` at tick `n`.
pub fn trigger(job: &TunableJob, n: i64) -> Trigger {
    let input: Value = json!({
        "tenant": job.tenant,
        "job": job.job,
        "tick": n,
        "mode": job.mode,
    });
    Trigger {
        run_id: Uuid::new_v5(
            &RUN_NAMESPACE,
            format!("autotune/{}/{}/{n}", job.tenant, job.job).as_bytes(),
        ),
        tenant: job.tenant.clone(),
        job: job.job.clone(),
        file: WORKFLOW.to_owned(),
        input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::autotune::Mode;

    fn job(name: &str) -> TunableJob {
        TunableJob {
            tenant: "acme".into(),
            job: name.into(),
            mode: Mode::Apply,
        }
    }

    #[test]
    fn ticks_count_whole_periods() {
        let every = Duration::from_secs(30);
        let t = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
        assert_eq!(tick(t(0), every), 0);
        assert_eq!(tick(t(29_999), every), 0);
        assert_eq!(tick(t(30_000), every), 1);
        assert_eq!(tick(t(-1), every), -1);
        assert_eq!(tick(t(5), Duration::ZERO), 5);
    }

    #[test]
    fn one_run_per_job_and_tick() {
        assert_eq!(trigger(&job("a"), 7).run_id, trigger(&job("a"), 7).run_id);
        assert_ne!(trigger(&job("a"), 7).run_id, trigger(&job("a"), 8).run_id);
        assert_ne!(trigger(&job("a"), 7).run_id, trigger(&job("b"), 7).run_id);
        let t = trigger(&job("a"), 7);
        assert_eq!(
            (t.input["job"].as_str(), t.input["tick"].as_i64()),
            (Some("a"), Some(7))
        );
        assert_eq!(t.file, WORKFLOW);
    }
}
