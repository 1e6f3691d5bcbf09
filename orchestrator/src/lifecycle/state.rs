//! Typed aggregate state behind one enum, so a batch can mix streams of
//! different kinds. Adding an aggregate is one variant and one match arm each.

use chrono::{DateTime, Utc};

use crate::domain::envelope::ParsedCommand;
use crate::domain::job::JobState;
use crate::domain::module::ModuleState;
use crate::domain::tenant::TenantState;
use crate::domain::workflow::RunState;
use crate::domain::{Aggregate, Command, DecideContext, Rejection, RejectionCode};
use crate::store::{self, EventStore, NewEvent, StoreError, StreamKey, StreamState};

/// The folded state of any stream.
#[derive(Debug, Clone)]
pub enum AnyState {
    Job(JobState),
    Run(Box<RunState>),
    Module(ModuleState),
    Tenant(TenantState),
}

impl AnyState {
    pub fn to_snapshot(&self) -> Result<serde_json::Value, StoreError> {
        let r = match self {
            AnyState::Job(s) => serde_json::to_value(s),
            AnyState::Run(s) => serde_json::to_value(s),
            AnyState::Module(s) => serde_json::to_value(s),
            AnyState::Tenant(s) => serde_json::to_value(s),
        };
        r.map_err(|e| StoreError::Corrupt(format!("snapshot encoding: {e}")))
    }

    /// Decides `cmd` and returns the events plus the state after them.
    pub fn decide(
        &self,
        cmd: &ParsedCommand,
        now: DateTime<Utc>,
    ) -> Result<(Vec<NewEvent>, AnyState), Rejection> {
        let ctx = DecideContext {
            target: &cmd.target,
            actor: &cmd.actor,
            now,
        };
        match (self, &cmd.command) {
            (AnyState::Job(s), Command::Job(c)) => {
                run::<JobState>(s, c, &ctx).map(|(e, s)| (e, AnyState::Job(s)))
            }
            (AnyState::Run(s), Command::Workflow(c)) => {
                run::<RunState>(s, c, &ctx).map(|(e, s)| (e, AnyState::Run(Box::new(s))))
            }
            (AnyState::Module(s), Command::Module(c)) => {
                run::<ModuleState>(s, c, &ctx).map(|(e, s)| (e, AnyState::Module(s)))
            }
            (AnyState::Tenant(s), Command::Tenant(c)) => {
                run::<TenantState>(s, c, &ctx).map(|(e, s)| (e, AnyState::Tenant(s)))
            }
            #[allow(unreachable_patterns)]
            _ => Err(Rejection::new(
                RejectionCode::InvalidCommand,
                format!(
                    "{} does not apply to stream {}",
                    cmd.command.kind(),
                    cmd.stream
                ),
            )),
        }
    }
}

fn run<A: Aggregate + Clone>(
    state: &A,
    cmd: &A::Command,
    ctx: &DecideContext<'_>,
) -> Result<(Vec<NewEvent>, A), Rejection> {
    let events = state.decide(cmd, ctx)?;
    let mut next = state.clone();
    let mut out = Vec::with_capacity(events.len());
    for e in &events {
        next.apply(e);
        let payload = serde_json::to_value(e).map_err(|err| {
            Rejection::new(
                RejectionCode::InvalidCommand,
                format!("event encoding: {err}"),
            )
        })?;
        out.push(NewEvent {
            event_type: A::event_type(e).to_owned(),
            payload,
        });
    }
    Ok((out, next))
}

/// Rebuilds a stream's state (see [`store::restore`]), typed by the stream's kind.
pub async fn restore<S: EventStore>(
    store: &S,
    key: &StreamKey,
    st: &StreamState,
) -> Result<AnyState, StoreError> {
    Ok(match key.1.kind() {
        JobState::STREAM_KIND => AnyState::Job(store::restore(store, key, st).await?),
        RunState::STREAM_KIND => AnyState::Run(Box::new(store::restore(store, key, st).await?)),
        ModuleState::STREAM_KIND => AnyState::Module(store::restore(store, key, st).await?),
        TenantState::STREAM_KIND => AnyState::Tenant(store::restore(store, key, st).await?),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown stream kind `{other}`"
            )))
        }
    })
}
