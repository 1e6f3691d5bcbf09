//! The rates of each stage over a window: how fast its tasks process when
//! busy (the true processing rate, DS2's), how fast records arrive, and the
//! rate it must sustain to also drain its backlog within `catch_up`.
//!
//! The input rate is measured on the source side (records read plus the
//! growth of the lag), not from what the tasks emit: while a backlog drains,
//! the tasks read faster than records arrive, and the lag shrinks by exactly
//! the difference, so catching up does not inflate the input rate.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::change::{self, LoadChange};
use super::window::Window;

/// A task busy for less than this is not timed: its rate would be noise.
pub const MIN_BUSY_MS: u64 = 100;

/// One stage's figures over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRates {
    pub stage: u32,
    pub tasks: u32,
    pub partitions: u32,
    /// Records read, busy and idle time, summed over the tasks.
    pub records_in: u64,
    pub busy_ms: u64,
    pub idle_ms: u64,
    /// busy / (busy + idle).
    pub busy_ratio: f64,
    /// Tasks busy long enough to be timed.
    pub timed_tasks: u32,
    /// Sum over tasks of records read / busy time, records/s; tasks not
    /// timed count at the mean of those that were. None if none was.
    pub true_rate: Option<f64>,
    /// Lag summed over the stage's partitions at the window's ends.
    pub lag_start: u64,
    pub lag_end: u64,
    /// records_in / window.
    pub read_rate: f64,
    /// (lag_end − lag_start) / window.
    pub lag_growth: f64,
    /// read_rate + lag_growth: what arrived, per second, over the window.
    pub window_input_rate: f64,
    /// A change of load inside the window, if one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<LoadChange>,
    /// The input rate sized for: the rate after the change if there was
    /// one, else the window's.
    pub input_rate: f64,
    /// lag_end / catch_up.
    pub catch_up_rate: f64,
    /// input_rate + catch_up_rate.
    pub target_rate: f64,
    /// target_rate / true_rate: how busy the stage would be at the target.
    pub utilization: Option<f64>,
}

/// Rates of every stage. `material` is the relative change of load that
/// counts as a change (see [`change::detect`]).
pub fn of(window: &Window, catch_up_secs: f64, material: f64) -> Vec<StageRates> {
    let secs = window.secs();
    let mut starts = Vec::with_capacity(window.intervals.len());
    let mut at = window.start;
    for i in &window.intervals {
        starts.push(at);
        at += chrono::Duration::milliseconds((i.secs * 1000.0).round() as i64);
    }
    window
        .stages()
        .into_iter()
        .map(|stage| {
            let tasks: Vec<_> = window.tasks.iter().filter(|t| t.stage == stage).collect();
            let sum = |f: fn(&super::window::TaskDelta) -> u64| tasks.iter().map(|t| f(t)).sum();
            let records_in: u64 = sum(|t| t.records_in);
            let busy_ms: u64 = sum(|t| t.busy_ms);
            let idle_ms: u64 = sum(|t| t.idle_ms);
            let lag_start: u64 = sum(|t| t.lag_start);
            let lag_end: u64 = sum(|t| t.lag_end);
            let partitions: BTreeSet<&String> =
                tasks.iter().flat_map(|t| t.partitions.iter()).collect();
            let timed: Vec<f64> = tasks
                .iter()
                .filter(|t| t.busy_ms >= MIN_BUSY_MS)
                .map(|t| t.records_in as f64 * 1000.0 / t.busy_ms as f64)
                .collect();
            let true_rate = (!timed.is_empty()).then(|| {
                let mean = timed.iter().sum::<f64>() / timed.len() as f64;
                mean * tasks.len() as f64
            });
            let read_rate = records_in as f64 / secs;
            let lag_growth = (lag_end as f64 - lag_start as f64) / secs;
            let window_input_rate = read_rate + lag_growth;
            let change = change::detect(stage, &window.intervals, &starts, material);
            let input_rate = change
                .as_ref()
                .map_or(window_input_rate, |c| c.rate_after)
                .max(0.0);
            let catch_up_rate = lag_end as f64 / catch_up_secs;
            let target_rate = input_rate + catch_up_rate;
            let total_ms = busy_ms + idle_ms;
            StageRates {
                stage,
                tasks: tasks.len() as u32,
                partitions: partitions.len() as u32,
                records_in,
                busy_ms,
                idle_ms,
                busy_ratio: if total_ms == 0 {
                    0.0
                } else {
                    busy_ms as f64 / total_ms as f64
                },
                timed_tasks: timed.len() as u32,
                true_rate,
                lag_start,
                lag_end,
                read_rate,
                lag_growth,
                window_input_rate,
                change,
                input_rate,
                catch_up_rate,
                target_rate,
                utilization: true_rate.map(|r| target_rate / r),
            }
        })
        .collect()
}
