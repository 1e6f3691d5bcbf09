//! The job aggregate: spec, commands, events, state and the pure state machine.

pub mod command;
pub mod decide;
pub mod diff;
pub mod event;
pub mod incident;
pub mod reconcile;
pub mod sink_rules;
pub mod spec;
pub mod state;

pub use command::JobCommand;
pub use event::{DeployCause, JobEvent};
pub use spec::JobSpec;
pub use state::{JobState, Phase};

use super::aggregate::{Aggregate, DecideContext};
use super::rejection::Rejection;

impl Aggregate for JobState {
    type Command = JobCommand;
    type Event = JobEvent;
    const STREAM_KIND: &'static str = "job";

    fn decide(
        &self,
        cmd: &JobCommand,
        ctx: &DecideContext<'_>,
    ) -> Result<Vec<JobEvent>, Rejection> {
        decide::decide(
            self,
            cmd,
            &decide::Context {
                job: ctx.target,
                now: ctx.now,
            },
        )
    }

    fn apply(&mut self, event: &JobEvent) {
        JobState::apply(self, event)
    }

    fn event_type(event: &JobEvent) -> &'static str {
        event.type_name()
    }
}

#[cfg(test)]
mod tests;
