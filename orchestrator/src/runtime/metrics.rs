//! Per-task metrics: counters the task loop bumps, exported to Prometheus
//! through the `metrics` crate and published on NATS
//! (`<prefix>.metrics.<tenant>.<job>`) for the autotuner.
//!
//! Metric names are in [`crate::telemetry::names`], with all the others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::control::{DeploymentKey, TaskState, TaskStatus};
use super::topology::TopicPartition;
use crate::telemetry::names::{
    CHECKPOINT_BYTES, CHECKPOINT_SECONDS, TASK_BUSY_SECONDS, TASK_BYTES_IN, TASK_BYTES_OUT,
    TASK_DEAD_LETTERED, TASK_ERRORS, TASK_IDLE_SECONDS, TASK_LAG, TASK_OPERATOR_SECONDS,
    TASK_RECORDS_IN, TASK_RECORDS_OUT, TASK_RESTARTS,
};

/// Live counters of one task (shared between the task loop, its supervisor
/// and status queries).
#[derive(Debug)]
pub struct TaskMetrics {
    labels: Vec<metrics::Label>,
    pub task: u32,
    /// 0 reads the job's sources; later stages read repartition topics.
    pub stage: u32,
    pub partitions: Vec<TopicPartition>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub errors: AtomicU64,
    pub busy_ns: AtomicU64,
    pub idle_ns: AtomicU64,
    pub operator_ns: AtomicU64,
    pub operator_records: AtomicU64,
    pub restarts: AtomicU32,
    /// Sum of per-partition lag; -1 while unknown.
    pub lag: AtomicI64,
    /// The task's event-time watermark (ms); `i64::MIN` until every
    /// partition has seen an event.
    pub watermark_ms: AtomicI64,
    /// Periodic checkpoints that failed, in all and since the last success.
    pub checkpoints_failed: AtomicU64,
    pub checkpoint_failures_in_row: AtomicU32,
    pub state: Mutex<TaskState>,
    /// Next offset to read per partition.
    pub positions: Mutex<BTreeMap<TopicPartition, i64>>,
    pub partition_lag: Mutex<BTreeMap<TopicPartition, i64>>,
    pub last_checkpoint: Mutex<Option<String>>,
    /// Why the task last crashed.
    pub last_error: Mutex<Option<String>>,
    /// Figures operators report about themselves, by operator id.
    pub operators: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
}

/// Counts one batch's worth of work.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchCounts {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    pub dead_lettered: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub operator_ns: u64,
}

impl TaskMetrics {
    pub fn new(
        key: &DeploymentKey,
        task: u32,
        stage: u32,
        partitions: Vec<TopicPartition>,
    ) -> Self {
        Self {
            labels: vec![
                metrics::Label::new("tenant", key.tenant.clone()),
                metrics::Label::new("job", key.job.clone()),
                metrics::Label::new("task", task.to_string()),
            ],
            task,
            stage,
            partitions,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            operator_ns: AtomicU64::new(0),
            operator_records: AtomicU64::new(0),
            restarts: AtomicU32::new(0),
            lag: AtomicI64::new(-1),
            watermark_ms: AtomicI64::new(i64::MIN),
            checkpoints_failed: AtomicU64::new(0),
            checkpoint_failures_in_row: AtomicU32::new(0),
            state: Mutex::new(TaskState::Starting),
            positions: Mutex::new(BTreeMap::new()),
            partition_lag: Mutex::new(BTreeMap::new()),
            last_checkpoint: Mutex::new(None),
            last_error: Mutex::new(None),
            operators: Mutex::new(BTreeMap::new()),
        }
    }

    /// Operators' own figures, as gauges labelled with the operator and in
    /// the task's status (named without the `weir_` prefix).
    pub fn set_operator_stats(&self, stats: BTreeMap<String, Vec<(&'static str, u64)>>) {
        let mut shown = BTreeMap::new();
        for (op, figures) in stats {
            let mut labels = self.labels.clone();
            labels.push(metrics::Label::new("operator", op.clone()));
            let mut values = BTreeMap::new();
            for (name, v) in figures {
                metrics::gauge!(name, labels.iter()).set(v as f64);
                values.insert(name.trim_start_matches("weir_").to_owned(), v);
            }
            shown.insert(op, values);
        }
        if let Ok(mut o) = self.operators.lock() {
            *o = shown;
        }
    }

    pub fn record(&self, c: BatchCounts) {
        let l = &self.labels;
        self.records_in.fetch_add(c.records_in, Relaxed);
        self.records_out.fetch_add(c.records_out, Relaxed);
        self.bytes_in.fetch_add(c.bytes_in, Relaxed);
        self.bytes_out.fetch_add(c.bytes_out, Relaxed);
        self.dead_lettered.fetch_add(c.dead_lettered, Relaxed);
        self.busy_ns.fetch_add(c.busy_ns, Relaxed);
        self.idle_ns.fetch_add(c.idle_ns, Relaxed);
        self.operator_ns.fetch_add(c.operator_ns, Relaxed);
        self.operator_records.fetch_add(c.records_in, Relaxed);
        metrics::counter!(TASK_RECORDS_IN, l.iter()).increment(c.records_in);
        metrics::counter!(TASK_RECORDS_OUT, l.iter()).increment(c.records_out);
        metrics::counter!(TASK_BYTES_IN, l.iter()).increment(c.bytes_in);
        metrics::counter!(TASK_BYTES_OUT, l.iter()).increment(c.bytes_out);
        if c.dead_lettered > 0 {
            metrics::counter!(TASK_DEAD_LETTERED, l.iter()).increment(c.dead_lettered);
        }
        metrics::counter!(TASK_BUSY_SECONDS, l.iter())
            .absolute(self.busy_ns.load(Relaxed) / 1_000_000_000);
        metrics::counter!(TASK_IDLE_SECONDS, l.iter())
            .absolute(self.idle_ns.load(Relaxed) / 1_000_000_000);
        metrics::counter!(TASK_OPERATOR_SECONDS, l.iter())
            .absolute(self.operator_ns.load(Relaxed) / 1_000_000_000);
    }

    /// A crash, with its reason.
    pub fn crashed(&self, reason: &str) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(reason.to_owned());
        }
        self.error();
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
        metrics::counter!(TASK_ERRORS, self.labels.iter()).increment(1);
    }

    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Relaxed);
        metrics::counter!(TASK_RESTARTS, self.labels.iter()).increment(1);
    }

    pub fn set_state(&self, s: TaskState) {
        if let Ok(mut st) = self.state.lock() {
            *st = s;
        }
    }

    pub fn set_lag(&self, per_partition: BTreeMap<TopicPartition, i64>) {
        let total: i64 = per_partition.values().sum();
        self.lag.store(total, Relaxed);
        metrics::gauge!(TASK_LAG, self.labels.iter()).set(total as f64);
        if let Ok(mut l) = self.partition_lag.lock() {
            *l = per_partition;
        }
    }

    pub fn set_watermark(&self, watermark_ms: Option<i64>) {
        self.watermark_ms
            .store(watermark_ms.unwrap_or(i64::MIN), Relaxed);
    }

    /// A periodic checkpoint's outcome, for the failures-in-a-row count.
    pub fn checkpoint_outcome(&self, ok: bool) {
        if ok {
            self.checkpoint_failures_in_row.store(0, Relaxed);
        } else {
            self.checkpoints_failed.fetch_add(1, Relaxed);
            self.checkpoint_failures_in_row.fetch_add(1, Relaxed);
        }
    }

    pub fn checkpointed(&self, id: &str, duration_s: f64, bytes: u64) {
        if let Ok(mut c) = self.last_checkpoint.lock() {
            *c = Some(id.to_owned());
        }
        metrics::histogram!(CHECKPOINT_SECONDS, self.labels.iter()).record(duration_s);
        metrics::gauge!(CHECKPOINT_BYTES, self.labels.iter()).set(bytes as f64);
    }

    pub fn status(&self) -> TaskStatus {
        let lag = self.lag.load(Relaxed);
        TaskStatus {
            task: self.task,
            partitions: self.partitions.iter().map(|p| p.partition).collect(),
            state: self
                .state
                .lock()
                .map(|s| s.clone())
                .unwrap_or(TaskState::Starting),
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            lag: (lag >= 0).then_some(lag),
            restarts: self.restarts.load(Relaxed),
            last_checkpoint: self.last_checkpoint.lock().ok().and_then(|c| c.clone()),
            last_error: self.last_error.lock().ok().and_then(|c| c.clone()),
            operators: self.operators.lock().map(|o| o.clone()).unwrap_or_default(),
        }
    }

    pub fn report(&self) -> TaskReport {
        let recs = self.operator_records.load(Relaxed);
        let watermark = self.watermark_ms.load(Relaxed);
        TaskReport {
            task: self.task,
            stage: self.stage,
            watermark_ms: (watermark != i64::MIN).then_some(watermark),
            checkpoints_failed: self.checkpoints_failed.load(Relaxed),
            checkpoint_failures_in_row: self.checkpoint_failures_in_row.load(Relaxed),
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            errors: self.errors.load(Relaxed),
            busy_ms: self.busy_ns.load(Relaxed) / 1_000_000,
            idle_ms: self.idle_ns.load(Relaxed) / 1_000_000,
            operator_ns_per_record: if recs == 0 {
                0.0
            } else {
                self.operator_ns.load(Relaxed) as f64 / recs as f64
            },
            restarts: self.restarts.load(Relaxed),
            peak_memory_bytes: self
                .operators
                .lock()
                .map(|o| {
                    o.iter()
                        .filter_map(|(op, figures)| {
                            Some((op.clone(), *figures.get(PEAK_MEMORY_STAT)?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            lag: self
                .partition_lag
                .lock()
                .map(|l| {
                    l.iter()
                        .map(|(tp, v)| (format!("{}/{}", tp.topic, tp.partition), *v))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One task's figures as published on NATS (cumulative counters: the
/// autotuner takes differences between reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task: u32,
    /// 0 reads the job's sources; a later stage reads the repartition
    /// topic the stage before it writes.
    #[serde(default)]
    pub stage: u32,
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dead_lettered: u64,
    pub errors: u64,
    pub busy_ms: u64,
    pub idle_ms: u64,
    /// Operator (WASM) time per record, in nanoseconds.
    pub operator_ns_per_record: f64,
    pub restarts: u32,
    /// `topic/partition` → records behind the end of the partition.
    pub lag: BTreeMap<String, i64>,
    /// Event-time watermark (ms since the epoch), absent until every
    /// partition of the task has seen a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_ms: Option<i64>,
    /// Periodic checkpoints that failed since the deployment started.
    #[serde(default)]
    pub checkpoints_failed: u64,
    /// Periodic checkpoints that failed since the last one that succeeded.
    #[serde(default)]
    pub checkpoint_failures_in_row: u32,
    /// UDF operator id → the most linear memory its instances were granted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_memory_bytes: BTreeMap<String, u64>,
}

/// The operator figure (as [`TaskMetrics::set_operator_stats`] names it)
/// that reports a UDF's peak memory.
const PEAK_MEMORY_STAT: &str = "udf_peak_memory_bytes";

/// The message on `<prefix>.metrics.<tenant>.<job>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub tenant: String,
    pub job: String,
    pub version: u32,
    pub generation: u64,
    pub parallelism: u32,
    pub at: chrono::DateTime<chrono::Utc>,
    pub tasks: Vec<TaskReport>,
}
