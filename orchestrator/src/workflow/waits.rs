//! Checking a wait's conditions against the job's events and the deployment's status.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::activities::{Activities, ActivityError};
use crate::domain::workflow::spec::WaitSpec;
use crate::domain::workflow::validate::resolve;
use crate::domain::ErrorClass;
use crate::domain::StreamId;
use crate::runtime::control::{
    DeploymentControl, DeploymentKey, DeploymentStatus, RuntimeError, TaskState,
};
use crate::store::EventStore;

/// What a look at a wait's conditions found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Every condition holds; the value becomes the step's output.
    Satisfied(Value),
    Pending,
    /// A condition can no longer hold.
    Failed(ActivityError),
}

fn needs_status(w: &WaitSpec) -> bool {
    w.running || w.checkpoints.is_some() || w.healthy_for.is_some()
}

fn key(tenant: &str, input: &Value) -> Option<DeploymentKey> {
    Some(DeploymentKey {
        tenant: tenant.to_owned(),
        job: input.get("job")?.as_str()?.to_owned(),
    })
}

async fn status<C: DeploymentControl>(
    control: &C,
    key: &DeploymentKey,
) -> Result<Option<DeploymentStatus>, ActivityError> {
    match control.status(key).await {
        Ok(s) => Ok(Some(s)),
        Err(RuntimeError::NotDeployed(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn restarts(s: &DeploymentStatus) -> u64 {
    s.tasks.iter().map(|t| u64::from(t.restarts)).sum()
}

/// What the deployment looked like when a wait began: later checks count from here.
pub async fn baseline<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    tenant: &str,
    input: &Value,
    w: &WaitSpec,
) -> Result<Value, ActivityError> {
    if !needs_status(w) {
        return Ok(Value::Null);
    }
    let Some(key) = key(tenant, input) else {
        return Ok(Value::Null);
    };
    let generation = input.get("generation").and_then(|g| g.as_u64());
    Ok(match status(a.control.as_ref(), &key).await? {
        Some(s) if Some(s.generation) == generation => {
            json!({"checkpoints": s.completed_checkpoints, "restarts": restarts(&s)})
        }
        _ => json!({"checkpoints": 0, "restarts": 0}),
    })
}

/// Checks a wait's conditions once.
#[allow(clippy::too_many_arguments)]
pub async fn probe<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    tenant: &str,
    ctx: &Value,
    w: &WaitSpec,
    baseline: &Value,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Probe, ActivityError> {
    let input = &ctx["input"];
    if let Some(d) = w.timer {
        return Ok(if now >= started_at + d.to_chrono() {
            Probe::Satisfied(json!({"waited": d.to_string()}))
        } else {
            Probe::Pending
        });
    }
    let mut output = serde_json::Map::new();
    if let Some(event_type) = &w.event {
        let Some(job) = input.get("job").and_then(|j| j.as_str()) else {
            return Ok(Probe::Failed(ActivityError::invalid(
                "an event wait needs $.input.job",
            )));
        };
        let after = input["trigger"]["stream_version"].as_u64().unwrap_or(0);
        let want = resolve(&w.matches, ctx);
        let matches = |payload: &Value| {
            want.as_object()
                .is_none_or(|m| m.iter().all(|(k, v)| payload.get(k) == Some(v)))
        };
        let events = a
            .store()
            .read_stream(tenant, &StreamId::new("job", job), after)
            .await?;
        let mut found = None;
        for e in events {
            if !matches(&e.payload) {
                continue;
            }
            if w.fail_on.contains(&e.event_type) {
                let why = e
                    .payload
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .unwrap_or("");
                return Ok(Probe::Failed(ActivityError::new(
                    ErrorClass::Rejected,
                    format!("job `{job}` recorded {} {why}", e.event_type)
                        .trim_end()
                        .to_owned(),
                )));
            }
            if &e.event_type == event_type {
                found = Some(e.payload);
                break;
            }
        }
        match found {
            Some(p) => {
                output.insert("event".into(), p);
            }
            None => return Ok(Probe::Pending),
        }
    }
    if needs_status(w) {
        let Some(key) = key(tenant, input) else {
            return Ok(Probe::Failed(ActivityError::invalid(
                "a deployment wait needs $.input.job",
            )));
        };
        let generation = input
            .get("generation")
            .and_then(|g| g.as_u64())
            .unwrap_or(0);
        let Some(s) = status(a.control.as_ref(), &key).await? else {
            return Ok(Probe::Pending);
        };
        if s.generation > generation {
            return Ok(Probe::Failed(ActivityError::new(
                ErrorClass::Conflict,
                format!(
                    "generation {generation} was replaced by generation {}",
                    s.generation
                ),
            )));
        }
        if s.generation < generation {
            return Ok(Probe::Pending);
        }
        if let Some(t) = s.tasks.iter().find_map(|t| match &t.state {
            TaskState::Failed(r) => Some(format!("task {} failed: {r}", t.task)),
            _ => None,
        }) {
            return Ok(Probe::Failed(ActivityError::new(ErrorClass::Unhealthy, t)));
        }
        let base_restarts = baseline["restarts"].as_u64().unwrap_or(0);
        let watching_health = w.checkpoints.is_some() || w.healthy_for.is_some();
        // A restart while watched means the version is not healthy: fail now rather than at `within`.
        if restarts(&s) > base_restarts {
            // Why they crashed is what the user needs, not only that they did.
            let why: Vec<String> = s
                .tasks
                .iter()
                .filter_map(|t| Some(format!("task {}: {}", t.task, t.last_error.as_deref()?)))
                .collect();
            let mut reason = format!(
                "tasks restarted {} time(s) while generation {generation} was being watched",
                restarts(&s) - base_restarts
            );
            if !why.is_empty() {
                reason = format!("{reason} ({})", why.join("; "));
            }
            return Ok(Probe::Failed(ActivityError::new(
                ErrorClass::Unhealthy,
                reason,
            )));
        }
        let all_running =
            !s.tasks.is_empty() && s.tasks.iter().all(|t| t.state == TaskState::Running);
        if (w.running || watching_health) && !all_running {
            return Ok(Probe::Pending);
        }
        let done = s
            .completed_checkpoints
            .saturating_sub(baseline["checkpoints"].as_u64().unwrap_or(0));
        if w.checkpoints.is_some_and(|n| done < u64::from(n)) {
            return Ok(Probe::Pending);
        }
        if w.healthy_for
            .is_some_and(|d| now < started_at + d.to_chrono())
        {
            return Ok(Probe::Pending);
        }
        output.insert("checkpoints".into(), json!(done));
        output.insert("tasks".into(), json!(s.tasks.len()));
    }
    Ok(Probe::Satisfied(Value::Object(output)))
}
