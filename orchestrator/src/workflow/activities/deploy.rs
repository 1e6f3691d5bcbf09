//! Data-plane activities, through [`DeploymentControl`]: start, stop,
//! checkpoint, choosing a checkpoint, and the state-compatibility check.

use serde::Deserialize;
use serde_json::{json, Value};

use super::job::job_state;
use super::{input, Activities, ActivityCtx, ActivityError};
use crate::domain::job::state::CompileStatus;
use crate::domain::job::{JobSpec, JobState};
use crate::domain::ErrorClass;
use crate::runtime::control::{
    DeploymentControl, DeploymentKey, DeploymentRequest, RestoreFrom, RuntimeError,
};
use crate::store::EventStore;

fn key(ctx: &ActivityCtx, job: &str) -> DeploymentKey {
    DeploymentKey {
        tenant: ctx.tenant.clone(),
        job: job.to_owned(),
    }
}

fn fingerprint(state: &JobState, version: u32) -> Option<&str> {
    match state.version(version).map(|v| &v.compile) {
        Some(CompileStatus::Compiled {
            state_fingerprint, ..
        }) => Some(state_fingerprint),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartInput {
    job: String,
    version: u32,
    generation: u64,
    parallelism: u32,
    /// Restore from this checkpoint (the runtime's newest compatible one if absent).
    #[serde(default)]
    checkpoint: Option<String>,
    /// False starts fresh, dropping state, whatever `checkpoint` says.
    #[serde(default = "yes")]
    restore: bool,
}

fn yes() -> bool {
    true
}

/// Starts a deployment. Idempotent: the runtime treats a second start of the same generation as done.
pub async fn start<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: StartInput = input(v)?;
    let (_, state) = job_state(a.store(), &ctx.tenant, &i.job).await?;
    let info = state.version(i.version).ok_or_else(|| {
        ActivityError::new(
            ErrorClass::NotFound,
            format!("job `{}` has no version {}", i.job, i.version),
        )
    })?;
    secrets_exist(a, ctx, &info.spec).await?;
    let spec = JobSpec::from_value(info.spec.clone())
        .map_err(|e| ActivityError::invalid(format!("version {} spec: {e}", i.version)))?;
    // Again at start: a grant may have been revoked since the version compiled.
    let tenant = super::compile::enforced_tenant(a, ctx).await?;
    if let Some(t) = &tenant {
        super::compile::topics_allowed(ctx, t, &spec)?;
    }
    let restore = match (&i.checkpoint, i.restore) {
        (_, false) => RestoreFrom::Nothing,
        (Some(c), true) => RestoreFrom::Checkpoint(c.clone()),
        (None, true) => RestoreFrom::Latest,
    };
    a.control
        .start(DeploymentRequest {
            key: key(ctx, &i.job),
            version: i.version,
            generation: i.generation,
            parallelism: i.parallelism,
            spec,
            restore: restore.clone(),
            state_limit: tenant.map(|t| t.quota.max_state_bytes),
        })
        .await?;
    Ok(json!({"generation": i.generation, "restore": restore}))
}

/// Refuses a start whose spec refers to a secret the tenant does not have,
/// or puts a reference where none is resolved (only HTTP sink headers are).
/// The values themselves are put in by the worker, in memory.
async fn secrets_exist<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    spec: &Value,
) -> Result<(), ActivityError> {
    let refs = crate::secrets::refs::references(spec)
        .map_err(|problems| ActivityError::invalid(problems.join("; ")))?;
    if refs.is_empty() {
        return Ok(());
    }
    let have: std::collections::BTreeSet<String> = a
        .secrets
        .list(&ctx.tenant)
        .await
        .map_err(|e| ActivityError::new(ErrorClass::Unavailable, e.to_string()))?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let problems = crate::secrets::refs::problems(&refs, &have);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ActivityError::new(ErrorClass::Refused, problems.join("; ")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopInput {
    job: String,
    /// The generation to stop; nothing happens if a newer one runs.
    #[serde(default)]
    generation: Option<u64>,
    #[serde(default)]
    final_checkpoint: bool,
}

/// Stops a deployment, optionally after a final checkpoint. Stopping what is not running is done already.
pub async fn stop<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: StopInput = input(v)?;
    let Some(generation) = i.generation else {
        return Ok(json!({"stopped": false, "checkpoint": null}));
    };
    match a
        .control
        .stop(&key(ctx, &i.job), generation, i.final_checkpoint)
        .await
    {
        Ok(c) => Ok(json!({"stopped": true, "checkpoint": c.map(|c| c.id)})),
        Err(RuntimeError::NotDeployed(_)) => Ok(json!({"stopped": false, "checkpoint": null})),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobOnly {
    job: String,
}

pub async fn checkpoint<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: JobOnly = input(v)?;
    let c = a.control.checkpoint(&key(ctx, &i.job)).await?;
    Ok(json!({"checkpoint": c.id, "version": c.version, "generation": c.generation}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PickInput {
    job: String,
    /// The version that will restore.
    version: u32,
    /// A named checkpoint; it must exist and be compatible.
    #[serde(default)]
    checkpoint: Option<String>,
}

/// Chooses the checkpoint to restore: the named one, or the newest whose
/// version has the same state fingerprint as `version` (same version if no fingerprints are known).
pub async fn pick_checkpoint<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: PickInput = input(v)?;
    let (_, state) = job_state(a.store(), &ctx.tenant, &i.job).await?;
    let target = fingerprint(&state, i.version);
    let compatible = |version: u32| {
        version == i.version || (target.is_some() && fingerprint(&state, version) == target)
    };
    let all = match a.control.checkpoints(&key(ctx, &i.job)).await {
        Ok(all) => all,
        Err(RuntimeError::NotDeployed(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if let Some(name) = &i.checkpoint {
        let c = all.iter().find(|c| &c.id == name).ok_or_else(|| {
            ActivityError::new(
                ErrorClass::NotFound,
                format!("checkpoint `{name}` of job `{}` does not exist", i.job),
            )
        })?;
        if !compatible(c.version) {
            return Err(ActivityError::new(
                ErrorClass::Refused,
                format!("checkpoint `{name}` was taken by version {}, whose state is not compatible with version {}", c.version, i.version),
            ));
        }
        return Ok(json!({"checkpoint": c.id, "version": c.version}));
    }
    let newest = all.iter().find(|c| compatible(c.version));
    Ok(json!({"checkpoint": newest.map(|c| &c.id), "version": newest.map(|c| c.version)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompatInput {
    job: String,
    /// The version running now; none means there is no state to keep.
    #[serde(default)]
    from_version: Option<u32>,
    to_version: u32,
    #[serde(default)]
    allow_state_loss: bool,
}

/// Refuses an upgrade that would drop operator state, unless explicitly allowed.
pub async fn state_compat<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: CompatInput = input(v)?;
    let Some(from) = i.from_version else {
        return Ok(json!({"compatible": true, "restore": false}));
    };
    let (_, state) = job_state(a.store(), &ctx.tenant, &i.job).await?;
    let (old, new) = (fingerprint(&state, from), fingerprint(&state, i.to_version));
    let Some(new) = new else {
        return Err(ActivityError::new(
            ErrorClass::Invalid,
            format!(
                "version {} is not compiled; its state fingerprint is unknown",
                i.to_version
            ),
        ));
    };
    if old == Some(new) {
        return Ok(json!({"compatible": true, "restore": true, "fingerprint": new}));
    }
    if i.allow_state_loss {
        return Ok(
            json!({"compatible": false, "restore": false, "state_dropped": true, "from": old, "to": new}),
        );
    }
    Err(ActivityError::new(
        ErrorClass::Refused,
        format!(
            "upgrading job `{}` from version {from} to {} would drop operator state (state fingerprint {} → {new}); deploy with allow_state_loss to accept that",
            i.job,
            i.to_version,
            old.unwrap_or("unknown"),
        ),
    ))
}
