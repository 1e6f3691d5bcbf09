//! What the tuner reads: one metrics report of a deployment. The fields are
//! those of the runtime's `MetricsReport` (docs/metrics.md), so a report as
//! published on NATS, or a line of a recorded trace, deserializes into a
//! [`Sample`]; fields the runtime does not send yet default to nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One report of one deployment (counters cumulative since it started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub version: u32,
    pub generation: u64,
    /// Tasks per stage.
    pub parallelism: u32,
    pub at: DateTime<Utc>,
    pub tasks: Vec<TaskSample>,
    /// Periodic checkpoints that failed since the deployment started.
    #[serde(default)]
    pub checkpoints_failed: u64,
}

/// One task's cumulative figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSample {
    pub task: u32,
    /// Stage of a repartitioned job (0 for the first or only stage).
    #[serde(default)]
    pub stage: u32,
    /// Records read, dead letters included.
    pub records_in: u64,
    pub busy_ms: u64,
    pub idle_ms: u64,
    pub restarts: u32,
    /// `topic/partition` → records behind the end of the partition.
    pub lag: BTreeMap<String, i64>,
    /// UDF operator id → peak linear memory of its instances, in bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_memory_bytes: BTreeMap<String, u64>,
}

impl TaskSample {
    /// Records behind the ends of the task's partitions (unknown lags, written
    /// negative, count as none).
    pub fn lag_total(&self) -> u64 {
        self.lag
            .values()
            .map(|l| u64::try_from(*l).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as docs/metrics.md describes it reads as a sample.
    #[test]
    fn a_published_report_reads_as_a_sample() {
        let line = r#"{"tenant":"acme","job":"orders","version":3,"generation":7,
            "parallelism":2,"at":"2026-12-04T10:00:02Z","tasks":[
            {"task":0,"records_in":100,"records_out":90,"bytes_in":1,"bytes_out":1,
             "dead_lettered":0,"errors":0,"busy_ms":500,"idle_ms":1500,
             "operator_ns_per_record":12.5,"restarts":0,"lag":{"orders/0":4,"orders/2":-1}}]}"#;
        let s: Sample = serde_json::from_str(line).unwrap();
        assert_eq!((s.version, s.generation, s.parallelism), (3, 7, 2));
        assert_eq!(s.tasks[0].stage, 0);
        assert_eq!(s.tasks[0].lag_total(), 4);
        assert!(s.tasks[0].peak_memory_bytes.is_empty());
        assert_eq!(s.checkpoints_failed, 0);
    }
}
