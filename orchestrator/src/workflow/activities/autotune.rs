//! `autotune_decide`: one decision of the resource auto-tuner for a job.
//! Reads the job's policy and its kept metrics window, runs the pure
//! decision, saves the tuner's memory, and writes the decision into the
//! job's history (`autotune_decided`) when it rescales, recommends, or its
//! rule changed since the last one written. The rescale itself is the next
//! step of `workflows/autotune.yaml`, through the normal command path.

use serde::Deserialize;
use serde_json::{json, Value};

use super::job::{job_state, send};
use super::{input, Activities, ActivityCtx, ActivityError};
use crate::autotune::store::{Memory, Recorded};
use crate::domain::autotune::window::MAX_SAMPLE_AGE;
use crate::domain::autotune::{decide as decide_fn, DecisionInput, Mode};
use crate::domain::job::command::RecordAutotune;
use crate::domain::job::Phase;
use crate::domain::job::{JobCommand, JobSpec};
use crate::domain::{ErrorClass, RejectionCode};
use crate::runtime::control::DeploymentControl;
use crate::store::EventStore;
use crate::telemetry::names;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideInput {
    job: String,
}

/// The name of a decision's rule, as the explanation tags it.
fn rule_name(r: &Recorded) -> String {
    serde_json::to_value(&r.decision.rule)
        .ok()
        .and_then(|v| v.get("rule").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// What a decision says, for telling a new one from a repeat: its rule and outcome.
fn signature(r: &Recorded) -> String {
    let outcome = serde_json::to_string(&r.decision.outcome).unwrap_or_default();
    format!("{} {outcome}", rule_name(r))
}

/// What the step returns (and the workflow reads).
fn output(r: &Recorded) -> Value {
    json!({
        "decided": true,
        "rule": rule_name(r),
        "outcome": r.decision.outcome,
        "rescale_to": r.decision.outcome.rescale_to(),
        "generation": r.generation,
        "recorded": r.record,
    })
}

pub async fn decide<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: DecideInput = input(v)?;
    let tenant = ctx.tenant.as_str();
    let memory = a.tuner.load(tenant, &i.job).await?;
    // Asked again after a crash: the decision already made stands.
    if let Some(m) = memory.as_ref().filter(|m| m.decided_by == ctx.key) {
        record(a, ctx, &i.job, &m.decision).await?;
        return Ok(output(&m.decision));
    }

    let (_, job) = job_state(a.store(), tenant, &i.job).await?;
    let policy = match job.running_autotune_policy() {
        Some(p) if p.mode != Mode::Off => p,
        running => {
            // A job between deployments (a rescale in flight) keeps what was
            // learnt; one that is gone, or no longer tuned, forgets it.
            let gone = matches!(job.phase, Phase::Deleted | Phase::Absent)
                || running.is_some_and(|p| p.mode == Mode::Off);
            if gone {
                a.tuner.forget(tenant, &i.job).await?;
            }
            return Ok(json!({"decided": false, "phase": job.phase, "rescale_to": null}));
        }
    };
    let now = a.clock.now();
    let since = now - policy.metric_window.to_chrono() - MAX_SAMPLE_AGE * 2;
    let samples = a.tuner.samples(tenant, &i.job, since).await?;
    let stages = job
        .deployment
        .as_ref()
        .and_then(|d| job.version(d.version))
        .and_then(|v| JobSpec::from_value(v.spec.clone()).ok())
        .map_or(1, |spec| {
            crate::runtime::topology::stages(tenant, &i.job, &spec).len()
        });
    // The tuner's rescales skip intake, so the tenant's quota is applied here.
    let quota_tasks = super::compile::enforced_tenant(a, ctx)
        .await?
        .map(|t| t.quota.max_parallelism);
    let tenant_limit = a
        .tuner
        .tenant_limit(
            tenant,
            &i.job,
            u32::try_from(stages).unwrap_or(u32::MAX),
            quota_tasks,
        )
        .await?;
    let state = memory.as_ref().map(|m| m.state.clone()).unwrap_or_default();
    let (decision, next) = decide_fn(
        &DecisionInput {
            now,
            policy: &policy,
            samples: &samples,
            tenant_limit,
        },
        &state,
    );
    let mut recorded = Recorded {
        decision,
        generation: job.generation,
        record: false,
    };
    // The history gets a decision when what it says changes: a rescale
    // (its `from` differs every time), or another rule or recommendation.
    let said = signature(&recorded);
    let last_said = memory.as_ref().and_then(|m| m.recorded_rule.clone());
    recorded.record = last_said.as_deref() != Some(said.as_str());
    let saved = Memory {
        seq: memory.as_ref().map_or(1, |m| m.seq + 1),
        state: next,
        decided_by: ctx.key.clone(),
        recorded_rule: if recorded.record {
            Some(said)
        } else {
            last_said
        },
        decision: recorded,
    };
    if !a
        .tuner
        .save(tenant, &i.job, memory.as_ref().map(|m| m.seq), &saved)
        .await?
    {
        return Err(ActivityError::new(
            ErrorClass::Conflict,
            format!("job `{}`: another decision was saved first", i.job),
        ));
    }
    let d = &saved.decision;
    tracing::info!(
        job = %i.job,
        generation = d.generation,
        rule = %rule_name(d),
        outcome = ?d.decision.outcome,
        "autotune decided"
    );
    if let Some(p) = d.wanted_parallelism() {
        metrics::gauge!(names::AUTOTUNE_DESIRED_PARALLELISM, "tenant" => tenant.to_owned(), "job" => i.job.clone())
            .set(f64::from(p));
    }
    record(a, ctx, &i.job, d).await?;
    Ok(output(d))
}

/// Writes the decision into the job's history, once per step (the
/// command's id comes from the step's key).
async fn record<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    job: &str,
    r: &Recorded,
) -> Result<(), ActivityError> {
    if !r.record {
        return Ok(());
    }
    let decision = serde_json::to_value(&r.decision)
        .map_err(|e| ActivityError::new(ErrorClass::Internal, e.to_string()))?;
    let cmd = JobCommand::RecordAutotune(RecordAutotune {
        generation: r.generation,
        decision,
    });
    // A job that left `running` or moved on since keeps no record of it.
    send(
        a,
        ctx,
        job,
        cmd,
        &[RejectionCode::InvalidTransition, RejectionCode::Conflict],
    )
    .await?;
    Ok(())
}
