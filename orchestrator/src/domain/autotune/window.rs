//! The metric window a decision is made on: the reports of the current
//! deployment that span `metric_window` after stabilization, turned into
//! per-task differences of the cumulative counters. A window that cannot
//! be trusted (a restart, a failed checkpoint, counters that went back) is
//! refused with the reason, which the decision reports.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::sample::{Sample, TaskSample};

/// The newest report must be at most this old; older means the job is not
/// reporting (stopped, moved, or the metrics are not reaching the tuner).
pub const MAX_SAMPLE_AGE: Duration = Duration::seconds(30);

/// Why there is no usable window (each is a rule of the explanation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unusable {
    /// No report at or before the decision time.
    NoSamples,
    /// The newest report is too old.
    Stale { last: DateTime<Utc> },
    /// Reports since the (re)deploy or rescale are still being ignored.
    Stabilizing { until: DateTime<Utc> },
    /// The reports after stabilization do not span the window yet.
    Incomplete {
        from: Option<DateTime<Utc>>,
        have_ms: i64,
        need_ms: i64,
    },
    /// A task restarted from its checkpoint inside the window.
    Restarted { task: u32, restarts: u32 },
    /// A periodic checkpoint failed inside the window.
    CheckpointFailed { failures: u64 },
    /// A counter went back or the tasks changed without a new generation.
    CounterReset { task: u32 },
    /// A task has not measured its lag yet.
    LagUnknown { task: u32 },
}

/// The reports of the newest deployment, oldest first.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    pub samples: Vec<&'a Sample>,
}

impl<'a> Segment<'a> {
    /// The reports at or before `now` that belong to the newest report's
    /// deployment (version and generation), contiguous up to it.
    pub fn current(samples: &'a [Sample], now: DateTime<Utc>) -> Result<Self, Unusable> {
        let mut sorted: Vec<&Sample> = samples.iter().filter(|s| s.at <= now).collect();
        sorted.sort_by_key(|s| s.at);
        let last = *sorted.last().ok_or(Unusable::NoSamples)?;
        if now - last.at > MAX_SAMPLE_AGE {
            return Err(Unusable::Stale { last: last.at });
        }
        let same = |s: &&Sample| s.version == last.version && s.generation == last.generation;
        let first = sorted.iter().rposition(|s| !same(s)).map_or(0, |i| i + 1);
        Ok(Self {
            samples: sorted.split_off(first),
        })
    }

    pub fn first(&self) -> &'a Sample {
        self.samples[0]
    }

    pub fn last(&self) -> &'a Sample {
        self.samples[self.samples.len() - 1]
    }
}

/// One task's activity over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDelta {
    pub task: u32,
    pub stage: u32,
    pub records_in: u64,
    pub busy_ms: u64,
    pub idle_ms: u64,
    pub lag_start: u64,
    pub lag_end: u64,
    /// Partitions the task reads (those it reports a lag for).
    pub partitions: BTreeSet<String>,
}

/// What arrived between two consecutive reports, per stage: records read
/// plus the growth of the lag.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub secs: f64,
    pub arrived: BTreeMap<u32, f64>,
}

/// A usable window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub version: u32,
    pub generation: u64,
    pub parallelism: u32,
    pub samples: usize,
    pub tasks: Vec<TaskDelta>,
    pub intervals: Vec<Interval>,
}

impl Window {
    /// The window over `segment` ending at its newest report and starting at
    /// the newest report at least `length` before it, using no report before
    /// `stable_from`.
    pub fn over(
        segment: &Segment<'_>,
        stable_from: DateTime<Utc>,
        length: Duration,
        now: DateTime<Utc>,
    ) -> Result<Self, Unusable> {
        if now < stable_from {
            return Err(Unusable::Stabilizing { until: stable_from });
        }
        let last = segment.last();
        let usable = segment.samples.iter().position(|s| s.at >= stable_from);
        let want = last.at - length;
        let base = segment
            .samples
            .iter()
            .rposition(|s| s.at <= want && s.at >= stable_from);
        let Some(base) = base else {
            let from = usable.map(|i| segment.samples[i].at);
            return Err(Unusable::Incomplete {
                from,
                have_ms: from.map_or(0, |f| (last.at - f).num_milliseconds()),
                need_ms: length.num_milliseconds(),
            });
        };
        let span = &segment.samples[base..];
        for pair in span.windows(2) {
            check_pair(pair[0], pair[1])?;
        }
        let first = span[0];
        if last.checkpoints_failed > first.checkpoints_failed {
            return Err(Unusable::CheckpointFailed {
                failures: last.checkpoints_failed - first.checkpoints_failed,
            });
        }
        let mut tasks = Vec::with_capacity(last.tasks.len());
        for (a, b) in first.tasks.iter().zip(&last.tasks) {
            if b.restarts > a.restarts {
                return Err(Unusable::Restarted {
                    task: b.task,
                    restarts: b.restarts - a.restarts,
                });
            }
            if a.lag.is_empty() || b.lag.is_empty() {
                return Err(Unusable::LagUnknown { task: b.task });
            }
            tasks.push(TaskDelta {
                task: b.task,
                stage: b.stage,
                records_in: b.records_in - a.records_in,
                busy_ms: b.busy_ms - a.busy_ms,
                idle_ms: b.idle_ms - a.idle_ms,
                lag_start: a.lag_total(),
                lag_end: b.lag_total(),
                partitions: b.lag.keys().cloned().collect(),
            });
        }
        let intervals = span
            .windows(2)
            .map(|pair| interval(pair[0], pair[1]))
            .collect();
        Ok(Self {
            start: first.at,
            end: last.at,
            version: last.version,
            generation: last.generation,
            parallelism: last.parallelism,
            samples: span.len(),
            tasks,
            intervals,
        })
    }

    /// The window's length in seconds.
    pub fn secs(&self) -> f64 {
        (self.end - self.start).num_milliseconds() as f64 / 1000.0
    }

    /// The stages present, in order.
    pub fn stages(&self) -> BTreeSet<u32> {
        self.tasks.iter().map(|t| t.stage).collect()
    }
}

/// Consecutive reports of one deployment must name the same tasks, and no
/// cumulative counter may go back.
fn check_pair(a: &Sample, b: &Sample) -> Result<(), Unusable> {
    if a.tasks.len() != b.tasks.len() {
        let task = b.tasks.first().map_or(0, |t| t.task);
        return Err(Unusable::CounterReset { task });
    }
    for (x, y) in a.tasks.iter().zip(&b.tasks) {
        let back = x.task != y.task
            || x.stage != y.stage
            || y.records_in < x.records_in
            || y.busy_ms < x.busy_ms
            || y.idle_ms < x.idle_ms
            || y.restarts < x.restarts;
        if back {
            return Err(Unusable::CounterReset { task: y.task });
        }
    }
    if b.checkpoints_failed < a.checkpoints_failed {
        let task = b.tasks.first().map_or(0, |t| t.task);
        return Err(Unusable::CounterReset { task });
    }
    Ok(())
}

fn interval(a: &Sample, b: &Sample) -> Interval {
    let mut arrived = BTreeMap::new();
    for (x, y) in a.tasks.iter().zip(&b.tasks) {
        *arrived.entry(y.stage).or_insert(0.0) += arrivals(x, y);
    }
    Interval {
        secs: (b.at - a.at).num_milliseconds() as f64 / 1000.0,
        arrived,
    }
}

/// Records that arrived on a task's partitions between two reports.
fn arrivals(a: &TaskSample, b: &TaskSample) -> f64 {
    (b.records_in - a.records_in) as f64 + b.lag_total() as f64 - a.lag_total() as f64
}
