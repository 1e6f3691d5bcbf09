//! Text lines for the API's views (`-o text`); pure, so they are tested
//! without a server.

use chrono::{DateTime, SecondsFormat, Utc};

use super::output::label;
use crate::api::types::{
    CheckpointInfo, DeploymentStatus, JobView, ModuleView, RunView, TaskState,
};
use crate::domain::workflow::state::{Current, StepPhase};
use crate::store::StoredEvent;

/// A time as the API writes it.
fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// One line per job; with `detail`, its last failure below it.
pub fn job(j: &JobView, detail: bool) -> String {
    let deployed = j
        .deployment
        .as_ref()
        .map(|d| format!("v{}×{} ({})", d.version, d.parallelism, label(&d.cause)));
    let mut s = format!(
        "{:<24} {:<10} latest {} stable {} deployed {} gen {}",
        j.name,
        label(&j.phase),
        or_dash(j.latest_version.map(|v| format!("v{v}"))),
        or_dash(j.last_stable_version.map(|v| format!("v{v}"))),
        or_dash(deployed),
        j.generation,
    );
    if detail {
        if let Some(f) = &j.last_failure {
            s.push_str(&format!("\n  last failure: {f}"));
        }
    }
    s
}

fn task_state(s: &TaskState) -> &'static str {
    match s {
        TaskState::Starting => "starting",
        TaskState::Running => "running",
        TaskState::Restarting => "restarting",
        TaskState::Stopped => "stopped",
        TaskState::Failed(_) => "failed",
    }
}

/// The data plane's view of a deployment: a summary, then a line per task.
pub fn runtime(rt: &DeploymentStatus) -> Vec<String> {
    let mut lines = vec![format!(
        "  runtime: generation {} × {} tasks, {} checkpoints, guarantee: {}",
        rt.generation, rt.parallelism, rt.completed_checkpoints, rt.guarantee
    )];
    for t in &rt.tasks {
        let partitions = serde_json::to_string(&t.partitions).unwrap_or_default();
        lines.push(format!(
            "    task {:<3} {:<10} partitions {:<10} in {:<8} out {:<8} dlq {:<5} lag {:<6} restarts {} last checkpoint {}",
            t.task,
            task_state(&t.state),
            partitions,
            t.records_in,
            t.records_out,
            t.dead_lettered,
            or_dash(t.lag),
            t.restarts,
            t.last_checkpoint.as_deref().unwrap_or("-"),
        ));
    }
    lines
}

fn step_phase(p: &StepPhase) -> &'static str {
    match p {
        StepPhase::Ready { .. } => "ready",
        StepPhase::Running { .. } => "running",
        StepPhase::Waiting { .. } => "waiting",
    }
}

fn current(c: &Option<Current>, show: impl Fn(&Current) -> String) -> String {
    c.as_ref().map(show).unwrap_or_else(|| "-".into())
}

/// A run in a listing.
pub fn run(r: &RunView) -> String {
    let at = current(&r.current, |c| {
        format!("{} #{} ({})", c.step, c.attempt, step_phase(&c.phase))
    });
    format!(
        "{}  {:<10} {:<10} job {:<16} at {:<28} {}",
        r.run_id,
        r.workflow,
        label(&r.status),
        r.job.as_deref().unwrap_or("-"),
        at,
        r.reason.as_deref().unwrap_or("")
    )
}

/// A run in progress under `weir job status`, and where it is.
pub fn active_run(r: &RunView) -> String {
    let step = current(&r.current, |c| {
        format!(
            "{} (attempt {}, {})",
            c.step,
            c.attempt,
            step_phase(&c.phase)
        )
    });
    format!(
        "  workflow {} run {} {}: step {step}{}",
        r.workflow,
        r.run_id,
        label(&r.status),
        r.reason
            .as_deref()
            .map(|s| format!(" — {s}"))
            .unwrap_or_default()
    )
}

/// An event's payload without its type tag and the `keys` too long for a line.
fn payload_without(e: &StoredEvent, keys: &[&str], elide: &[&str]) -> serde_json::Value {
    let mut p = e.payload.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("type");
        for k in keys {
            o.remove(*k);
        }
        for k in elide {
            if o.contains_key(*k) {
                o.insert((*k).into(), "…".into());
            }
        }
    }
    p
}

/// A job event under `weir job history`: why the job changed state.
pub fn job_event(e: &StoredEvent) -> String {
    let what = match e.event_type.as_str() {
        "autotune_decided" => autotune_summary(&e.payload["decision"]),
        "alert_fired" | "alert_resolved" => format!(
            "[{}] {}: {}",
            e.payload["severity"].as_str().unwrap_or("?"),
            e.payload["rule"].as_str().unwrap_or("?"),
            e.payload["message"].as_str().unwrap_or("")
        ),
        _ => payload_without(e, &[], &["spec"]).to_string(),
    };
    format!(
        "#{:<6} v{:<3} {:<25} {:<18} by {:<10} {what}",
        e.position,
        e.stream_version,
        time(&e.recorded_at),
        e.event_type,
        e.actor.as_deref().unwrap_or("-"),
    )
}

/// One alert rule under `weir job alerts`: its condition and where it stands.
pub fn alert_rule(r: &crate::api::types::RuleView) -> String {
    let rule = &r.rule;
    let when = serde_json::to_value(&rule.when)
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_default();
    let state = match &r.status {
        Some(s) if s.firing => format!("FIRING since {}: {}", time(&s.since), s.message),
        Some(s) => format!("ok (fired {}×, last resolved {})", s.fired, time(&s.since)),
        None => "ok (never fired)".to_owned(),
    };
    format!(
        "{:<20} {:<9} {} for {}  {state}",
        rule.name,
        rule.severity.name(),
        when,
        rule.hold
    )
}

/// One firing alert under `weir alerts`.
pub fn firing_alert(a: &crate::api::types::FiringAlert) -> String {
    format!(
        "{:<9} {:<20} {:<20} since {}  {}",
        a.severity.name(),
        a.job,
        a.rule,
        time(&a.since),
        a.message
    )
}

/// A run event under `weir workflow show`.
pub fn run_event(e: &StoredEvent) -> String {
    format!(
        "  v{:<4} {:<22} {}",
        e.stream_version,
        e.event_type,
        payload_without(e, &["definition", "spec", "input"], &[])
    )
}

/// A completed checkpoint in a listing.
pub fn checkpoint(c: &CheckpointInfo) -> String {
    format!(
        "{}  v{} gen {}  {}  {} state bytes",
        c.id,
        c.version,
        c.generation,
        time(&c.created_at),
        c.state_bytes
    )
}

/// A line per version of a module.
pub fn module(m: &ModuleView) -> Vec<String> {
    m.versions
        .iter()
        .map(|v| {
            format!(
                "{}@{}\t{}\t{}\t{} bytes\tby {}",
                m.name,
                v.version,
                label(&v.module.module_kind),
                v.module.digest,
                v.module.size,
                v.module.uploader
            )
        })
        .collect()
}

/// One line for an auto-tuner decision: its rule, outcome and utilization
/// (`weir job autotune JOB --explain` prints all of it).
pub fn autotune_summary(d: &serde_json::Value) -> String {
    let rule = d["rule"]["rule"].as_str().unwrap_or("?");
    let outcome = match d["outcome"]["action"].as_str() {
        Some(a @ ("rescale" | "recommend")) => {
            format!("{a} {} -> {}", d["outcome"]["from"], d["outcome"]["to"])
        }
        Some(a) => a.replace('_', " "),
        None => "?".into(),
    };
    let util = d["utilization"]
        .as_f64()
        .map(|u| format!(", utilization {u:.2}"))
        .unwrap_or_default();
    let why = d["rule"]["reason"]
        .as_str()
        .map(|r| format!(" ({})", r.replace('_', " ")))
        .unwrap_or_default();
    format!("{rule}{why}: {outcome}{util}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::state::Deployment;
    use crate::domain::job::{DeployCause, Phase};
    use crate::domain::workflow::state::RunStatus;

    fn at() -> DateTime<Utc> {
        "2025-01-02T03:04:05.5Z".parse().unwrap()
    }

    #[test]
    fn a_job_line_shows_phase_versions_and_deployment() {
        let mut j = JobView {
            tenant: "acme".into(),
            name: "orders".into(),
            phase: Phase::Running,
            stream_version: 7,
            latest_version: Some(2),
            last_stable_version: None,
            generation: 3,
            deployment: Some(Deployment {
                version: 2,
                parallelism: 4,
                generation: 3,
                cause: DeployCause::Upgrade,
                checkpoint: None,
            }),
            last_failure: Some("boom".into()),
            updated_at: at(),
        };
        let line = job(&j, false);
        assert!(line.starts_with("orders "), "{line}");
        assert!(
            line.contains("running    latest v2 stable - deployed v2×4 (upgrade) gen 3"),
            "{line}"
        );
        assert!(job(&j, true).ends_with("\n  last failure: boom"));
        j.deployment = None;
        j.latest_version = None;
        assert!(job(&j, false).contains("latest - stable - deployed - gen 3"));
    }

    #[test]
    fn an_active_run_says_where_it_is_and_why() {
        let r = RunView {
            run_id: "r1".into(),
            workflow: "deploy".into(),
            file: "deploy.yaml".into(),
            definition_sha256: "ab".into(),
            status: RunStatus::Paused,
            job: Some("orders".into()),
            input: serde_json::Value::Null,
            current: Some(Current {
                seq: 2,
                step: "assign".into(),
                attempt: 1,
                compensation: false,
                phase: StepPhase::Ready { not_before: None },
            }),
            reason: Some("step `assign` failed (unavailable)".into()),
            outputs: None,
            steps: Default::default(),
            started_at: None,
            updated_at: None,
        };
        assert_eq!(
            active_run(&r),
            "  workflow deploy run r1 paused: step assign (attempt 1, ready) — step `assign` failed (unavailable)"
        );
        assert!(run(&r).contains("paused     job orders           at assign #1 (ready)"));
    }

    #[test]
    fn an_event_line_hides_the_type_tag_and_long_fields() {
        let e = StoredEvent {
            position: 12,
            tenant: "acme".into(),
            stream: "job.orders".into(),
            stream_version: 1,
            event_type: "created".into(),
            payload: serde_json::json!({"type": "created", "spec": {"big": 1}, "n": 1}),
            command_id: None,
            actor: Some("ops".into()),
            recorded_at: at(),
        };
        let line = job_event(&e);
        assert!(line.contains("2025-01-02T03:04:05.500Z"), "{line}");
        assert!(line.ends_with(r#"{"n":1,"spec":"…"}"#), "{line}");
        assert!(run_event(&e).ends_with(r#"{"n":1}"#));
    }
}
