//! Workflows, the pure part: the definition format ([`spec`]), its checks
//! ([`validate`]), expressions ([`expr`]) and the run aggregate
//! ([`command`], [`event`], [`state`], [`decide`]). No I/O; the engine that
//! runs activities lives in [`crate::workflow`].

pub mod command;
pub mod decide;
pub mod event;
pub mod expr;
pub mod spec;
pub mod state;
pub mod validate;

pub use command::WorkflowCommand;
pub use event::RunEvent;
pub use spec::WorkflowSpec;
pub use state::{RunState, RunStatus};

use super::aggregate::{Aggregate, DecideContext};
use super::rejection::Rejection;

impl Aggregate for RunState {
    type Command = WorkflowCommand;
    type Event = RunEvent;
    const STREAM_KIND: &'static str = "run";

    fn decide(
        &self,
        cmd: &WorkflowCommand,
        ctx: &DecideContext<'_>,
    ) -> Result<Vec<RunEvent>, Rejection> {
        decide::decide(
            self,
            cmd,
            &decide::Context {
                run_id: ctx.target,
                actor: ctx.actor,
                now: ctx.now,
            },
        )
    }

    fn apply(&mut self, event: &RunEvent) {
        RunState::apply(self, event)
    }

    fn event_type(event: &RunEvent) -> &'static str {
        event.type_name()
    }
}

#[cfg(test)]
mod tests;
