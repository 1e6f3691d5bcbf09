//! The figures of a runtime metrics report (`docs/metrics.md`) that alert
//! rules read. Counters are cumulative since the deployment started.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One report of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub generation: u64,
    pub at: DateTime<Utc>,
    pub tasks: Vec<TaskFigures>,
}

/// One task's figures in a report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskFigures {
    pub task: u32,
    #[serde(default)]
    pub stage: u32,
    pub records_in: u64,
    pub records_out: u64,
    #[serde(default)]
    pub dead_lettered: u64,
    #[serde(default)]
    pub restarts: u32,
    /// `topic/partition` → records behind; negative while unknown.
    #[serde(default)]
    pub lag: BTreeMap<String, i64>,
    #[serde(default)]
    pub watermark_ms: Option<i64>,
    #[serde(default)]
    pub checkpoint_failures_in_row: u32,
}

impl Report {
    fn last_stage(&self) -> u32 {
        self.tasks.iter().map(|t| t.stage).max().unwrap_or(0)
    }

    /// Records read by the tasks that read the job's sources.
    pub fn source_records_in(&self) -> u64 {
        self.tasks
            .iter()
            .filter(|t| t.stage == 0)
            .map(|t| t.records_in)
            .sum()
    }

    /// Outputs written by the tasks of the last stage (a first stage's
    /// writes into a repartition topic are not the job's output).
    pub fn records_out(&self) -> u64 {
        let last = self.last_stage();
        self.tasks
            .iter()
            .filter(|t| t.stage == last)
            .map(|t| t.records_out)
            .sum()
    }

    /// Records behind the ends of every partition the tasks read (unknown
    /// lags count as none).
    pub fn lag(&self) -> u64 {
        self.tasks
            .iter()
            .flat_map(|t| t.lag.values())
            .map(|l| u64::try_from(*l).unwrap_or(0))
            .sum()
    }

    /// Records behind the ends of the job's source partitions.
    pub fn source_lag(&self) -> u64 {
        self.tasks
            .iter()
            .filter(|t| t.stage == 0)
            .flat_map(|t| t.lag.values())
            .map(|l| u64::try_from(*l).unwrap_or(0))
            .sum()
    }

    pub fn dead_lettered(&self) -> u64 {
        self.tasks.iter().map(|t| t.dead_lettered).sum()
    }

    pub fn restarts(&self) -> u64 {
        self.tasks.iter().map(|t| u64::from(t.restarts)).sum()
    }

    /// The job's watermark: the smallest of its tasks', once every task has one.
    pub fn watermark_ms(&self) -> Option<i64> {
        if self.tasks.is_empty() {
            return None;
        }
        self.tasks
            .iter()
            .map(|t| t.watermark_ms)
            .try_fold(i64::MAX, |acc, w| w.map(|w| acc.min(w)))
    }

    pub fn checkpoint_failures_in_row(&self) -> u32 {
        self.tasks
            .iter()
            .map(|t| t.checkpoint_failures_in_row)
            .max()
            .unwrap_or(0)
    }
}
