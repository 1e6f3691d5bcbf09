//! The memory recommendation: for each UDF operator, its peak linear memory
//! over all tasks times the policy's headroom, in whole MiB. The runtime
//! reports the peaks; a recommendation is applied only through a new job
//! version, never to a running one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sample::Sample;

const MIB: f64 = 1024.0 * 1024.0;

/// One operator's recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecommendation {
    pub operator: String,
    /// Highest peak of any task, in bytes.
    pub peak_bytes: u64,
    pub headroom: f64,
    /// ceil(peak × headroom / 1 MiB), at least 1.
    pub memory_mb: u32,
}

/// Recommendations from the newest report (the peaks are maxima since the
/// deployment started), by operator id.
pub fn recommend(latest: &Sample, headroom: f64) -> Vec<MemoryRecommendation> {
    let mut peaks: BTreeMap<&str, u64> = BTreeMap::new();
    for t in &latest.tasks {
        for (op, bytes) in &t.peak_memory_bytes {
            let e = peaks.entry(op).or_insert(0);
            *e = (*e).max(*bytes);
        }
    }
    peaks
        .into_iter()
        .map(|(op, peak)| {
            let mb = (peak as f64 * headroom / MIB).ceil();
            MemoryRecommendation {
                operator: op.to_owned(),
                peak_bytes: peak,
                headroom,
                memory_mb: (mb as u32).max(1),
            }
        })
        .collect()
}
