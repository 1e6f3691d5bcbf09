//! What the data plane did on its own, recorded on the job's stream so that
//! `weir job history` explains it: crashes, resumes after a failover or a
//! process restart, and corrections of deployments that should not run.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::state::Phase;

/// One thing that happened to a job's deployment without a command asking for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "what", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuntimeIncident {
    /// The deployment was seen running on `worker` under fencing `epoch`.
    Placed { worker: String, epoch: u64 },
    /// The deployment was started again from its latest checkpoint, on
    /// `worker`, after its worker crashed, restarted or was presumed dead
    /// (the fencing epoch went up).
    Resumed {
        worker: String,
        epoch: u64,
        previous_worker: String,
    },
    /// A task crashed and was restarted from the latest checkpoint;
    /// `restarts` counts its restarts under the current epoch.
    TaskRestarted {
        task: u32,
        restarts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A deployment was running although the job was `phase`; it was stopped.
    StrayStopped {
        phase: Phase,
        /// Whether its final checkpoint was taken.
        checkpointed: bool,
    },
}

/// The deployment as the orchestrator last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeSeen {
    pub generation: u64,
    pub worker: String,
    pub epoch: u64,
    /// Restarts recorded per task under `epoch`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restarts: BTreeMap<u32, u32>,
    /// Task restarts recorded over the job's life, across processes.
    #[serde(default)]
    pub total_restarts: u64,
    /// Resumes recorded over the job's life.
    #[serde(default)]
    pub total_resumes: u64,
}

impl RuntimeSeen {
    /// Folds an incident about `generation` into what was seen.
    pub fn apply(seen: &mut Option<RuntimeSeen>, generation: u64, incident: &RuntimeIncident) {
        let totals = seen
            .as_ref()
            .map(|s| (s.total_restarts, s.total_resumes))
            .unwrap_or((0, 0));
        match incident {
            RuntimeIncident::Placed { worker, epoch } => {
                *seen = Some(RuntimeSeen {
                    generation,
                    worker: worker.clone(),
                    epoch: *epoch,
                    restarts: BTreeMap::new(),
                    total_restarts: totals.0,
                    total_resumes: totals.1,
                });
            }
            RuntimeIncident::Resumed { worker, epoch, .. } => {
                *seen = Some(RuntimeSeen {
                    generation,
                    worker: worker.clone(),
                    epoch: *epoch,
                    restarts: BTreeMap::new(),
                    total_restarts: totals.0,
                    total_resumes: totals.1 + 1,
                });
            }
            RuntimeIncident::TaskRestarted { task, restarts, .. } => {
                if let Some(s) = seen.as_mut().filter(|s| s.generation == generation) {
                    let before = s.restarts.insert(*task, *restarts).unwrap_or(0);
                    s.total_restarts += u64::from(restarts.saturating_sub(before));
                }
            }
            RuntimeIncident::StrayStopped { .. } => {}
        }
    }
}
