//! What the tuner remembers between decisions. It is passed in and returned
//! by every decision, and stored by the caller, so that a decision is a
//! pure function of (policy, reports, state, time) and can be replayed.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::model::CapacityModel;

/// The tuner's memory of one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TunerState {
    /// The deployment last seen, and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// The last rescale decided (in `apply` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rescale: Option<Rescale>,
    /// When rescales were decided within the last hour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rescales: Vec<DateTime<Utc>>,
    /// A lower parallelism recommended continuously since a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_down: Option<PendingDown>,
    /// The observed capacities of the current job version.
    #[serde(default)]
    pub model: CapacityModel,
}

/// A deployment (job version and generation) and when it was first seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub version: u32,
    pub generation: u64,
    pub since: DateTime<Utc>,
}

/// A rescale the tuner decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescale {
    pub at: DateTime<Utc>,
    pub from: u32,
    pub to: u32,
    /// Scaled up further than the input alone needed, to drain a backlog:
    /// once it is drained the job may come back down without the
    /// scale-down delay.
    pub for_backlog: bool,
}

/// A scale-down waiting for its delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingDown {
    /// Since when a lower parallelism has been recommended without a break.
    pub since: DateTime<Utc>,
    /// The highest parallelism recommended since: what the job goes down to.
    pub highest: u32,
}

impl TunerState {
    /// Rescales within the hour before `now`.
    pub fn rescales_in_last_hour(&self, now: DateTime<Utc>) -> usize {
        self.rescales
            .iter()
            .filter(|t| **t > now - Duration::hours(1) && **t <= now)
            .count()
    }
}
