//! `job_info` and `job_command`: reading a job and reporting back to it.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{input, Activities, ActivityCtx, ActivityError};
use crate::domain::envelope::ParsedCommand;
use crate::domain::job::state::CompileStatus;
use crate::domain::job::{JobCommand, JobState};
use crate::domain::ErrorClass;
use crate::domain::{Command, JobName, RejectionCode, StreamId, Tenant};
use crate::lifecycle::Incoming;
use crate::runtime::control::DeploymentControl;
use crate::store::{self, EventStore};

/// Namespace of the deterministic ids of commands that workflow steps send.
pub const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x5e1f_0a0c_77d4_4c4e_9a7e_3c1b_2f00_0001);

fn job_stream(job: &str) -> Result<StreamId, ActivityError> {
    let name = JobName::new(job).map_err(|e| ActivityError::invalid(format!("input.job: {e}")))?;
    Ok(StreamId::new("job", name.as_str()))
}

/// A job's current state and its stream version.
pub async fn job_state<S: EventStore>(
    store: &S,
    tenant: &str,
    job: &str,
) -> Result<(u64, JobState), ActivityError> {
    let loaded = store::load::<JobState, _>(store, tenant, &job_stream(job)?).await?;
    Ok((loaded.version, loaded.state))
}

/// A job's state as it was at stream version `version` (replayed).
pub async fn job_state_at<S: EventStore>(
    store: &S,
    tenant: &str,
    job: &str,
    version: u64,
) -> Result<JobState, ActivityError> {
    Ok(store::load_at(store, tenant, &job_stream(job)?, version).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoInput {
    job: String,
    /// The version the run is about.
    #[serde(default)]
    version: Option<u32>,
    /// The job stream version of the run's trigger; `previous` is the deployment before it.
    #[serde(default)]
    before: Option<u64>,
}

fn compile_view(state: &JobState, version: Option<u32>) -> Value {
    let Some(info) = version.and_then(|v| state.version(v)) else {
        return Value::Null;
    };
    match &info.compile {
        CompileStatus::Compiled {
            plan_digest,
            state_fingerprint,
        } => {
            json!({"version": info.version, "compiled": true, "plan_digest": plan_digest, "state_fingerprint": state_fingerprint})
        }
        other => json!({"version": info.version, "compiled": false, "status": other}),
    }
}

pub async fn info<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: InfoInput = input(v)?;
    let (stream_version, state) = job_state(a.store(), &ctx.tenant, &i.job).await?;
    let previous = match i.before {
        Some(b) if b > 1 => {
            job_state_at(a.store(), &ctx.tenant, &i.job, b - 1)
                .await?
                .deployment
        }
        _ => None,
    };
    let version = i.version.or(state.latest_version());
    Ok(json!({
        "phase": state.phase,
        "stream_version": stream_version,
        "generation": state.generation,
        "latest_version": state.latest_version(),
        "last_stable_version": state.last_stable_version,
        "deployment": state.deployment,
        "previous": previous,
        "target": compile_view(&state, version),
        "compiled": matches!(version.and_then(|v| state.version(v)).map(|i| &i.compile), Some(CompileStatus::Compiled { .. })),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandInput {
    job: String,
    /// A job command kind, e.g. `job.mark_running`.
    kind: String,
    #[serde(default)]
    payload: Value,
    /// Rejection codes that count as done (e.g. `invalid_transition` for a best-effort mark).
    #[serde(default)]
    tolerate: Vec<RejectionCode>,
}

/// Sends a job command through the command handler. Its id is derived from the
/// step's idempotency key, so a retried or resumed step is answered with the
/// outcome already recorded instead of being applied twice.
pub async fn command<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: CommandInput = input(v)?;
    if !i.kind.starts_with("job.") {
        return Err(ActivityError::invalid(format!(
            "input.kind: `{}` is not a job command",
            i.kind
        )));
    }
    let payload = if i.payload.is_null() {
        json!({})
    } else {
        i.payload
    };
    let command =
        Command::parse(&i.kind, payload).map_err(|r| ActivityError::invalid(r.message))?;
    let Command::Job(job_cmd) = &command else {
        return Err(ActivityError::invalid("input.kind: not a job command"));
    };
    send(a, ctx, &i.job, job_cmd.clone(), &i.tolerate).await
}

pub(crate) async fn send<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    job: &str,
    cmd: JobCommand,
    tolerate: &[RejectionCode],
) -> Result<Value, ActivityError> {
    let tenant = Tenant::new(&ctx.tenant).map_err(|e| ActivityError::invalid(e.to_string()))?;
    let kind = cmd.kind();
    let id = Uuid::new_v5(&COMMAND_NAMESPACE, format!("{}/{kind}", ctx.key).as_bytes());
    let command = Command::Job(cmd);
    let stream = command
        .stream(job)
        .map_err(|r| ActivityError::invalid(r.message))?;
    let now = a.clock.now();
    let parsed = ParsedCommand {
        id,
        tenant,
        target: job.to_owned(),
        stream,
        expected_version: None,
        // `weir job history` shows this: which run and step changed the job.
        actor: format!("workflow:{}", ctx.key),
        issued_at: now,
        command,
    };
    let outcomes = a.handler.handle(&[Incoming::Parsed(parsed)], now).await?;
    let Some(o) = outcomes.into_iter().next() else {
        return Err(ActivityError::new(
            ErrorClass::Internal,
            "no outcome for the command",
        ));
    };
    match &o.rejection {
        None => Ok(json!({"accepted": true, "command_id": id, "stream_version": o.stream_version})),
        Some(r) if tolerate.contains(&r.code) => {
            Ok(json!({"accepted": false, "command_id": id, "rejection": r}))
        }
        // The outcome is stored under this id forever, so retrying cannot change it.
        Some(r) => Err(ActivityError::new(
            ErrorClass::Rejected,
            format!("{kind} for job `{job}` was rejected: {}", r.message),
        )),
    }
}
