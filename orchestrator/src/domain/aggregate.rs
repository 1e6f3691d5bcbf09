//! What every event-sourced aggregate (job, module, workflow run) provides.
//! The store and the command handler are generic over this; nothing in them is job-specific.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use super::rejection::Rejection;

/// Inputs to a decision besides state and command. Time is passed in, never read.
#[derive(Debug, Clone)]
pub struct DecideContext<'a> {
    /// The aggregate's name within its tenant (the command's `target`).
    pub target: &'a str,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
}

/// A pure, replayable aggregate.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync {
    type Command;
    type Event: Serialize + DeserializeOwned;
    /// The stream id prefix, e.g. `job` for `job.orders`.
    const STREAM_KIND: &'static str;

    fn decide(
        &self,
        cmd: &Self::Command,
        ctx: &DecideContext<'_>,
    ) -> Result<Vec<Self::Event>, Rejection>;
    fn apply(&mut self, event: &Self::Event);
    fn event_type(event: &Self::Event) -> &'static str;
}
