//! Exhaustive tests of the job state machine: every phase × every command kind.

use chrono::Utc;
use serde_json::json;

use super::command::*;
use super::decide::{allowed_in, decide, Context};
use super::event::{DeployCause, JobEvent};
use super::state::{CompileStatus, JobState, Phase};
use crate::domain::rejection::RejectionCode;

fn spec() -> serde_json::Value {
    json!({"sources": [{"topic": "in"}], "sinks": [{"type": "kafka", "topic": "out"}], "parallelism": 2})
}

fn ctx() -> Context<'static> {
    Context {
        job: "orders",
        now: Utc::now(),
    }
}

fn run(state: &mut JobState, cmd: JobCommand) -> Result<Vec<JobEvent>, crate::domain::Rejection> {
    let events = decide(state, &cmd, &ctx())?;
    for e in &events {
        state.apply(e);
    }
    Ok(events)
}

fn ok(state: &mut JobState, cmd: JobCommand) -> Vec<JobEvent> {
    match run(state, cmd.clone()) {
        Ok(e) => e,
        Err(r) => panic!("{} rejected: {r}", cmd.kind()),
    }
}

fn sample(kind: &str, generation: u64) -> JobCommand {
    let v = serde_json::json!({
        "job.create": {"spec": spec()},
        "job.submit_version": {"spec": spec()},
        "job.compile": {},
        "job.compile_succeeded": {"version": 1, "plan_digest": "p", "state_fingerprint": "f"},
        "job.compile_failed": {"version": 1, "reason": "boom"},
        "job.deploy": {},
        "job.mark_running": {"generation": generation},
        "job.mark_stable": {"generation": generation},
        "job.stop": {},
        "job.mark_stopped": {"generation": generation},
        "job.mark_failed": {"generation": generation, "reason": "oom"},
        "job.rollback": {},
        "job.restore": {},
        "job.rescale": {"parallelism": 3},
        "job.delete": {},
        "job.record_runtime": {"generation": generation, "incident": {"what": "task_restarted", "task": 0, "restarts": 1}},
        "job.record_autotune": {"generation": generation, "decision": {"rule": {"rule": "within_band"}}},
        "job.set_autotune": {"mode": "recommend"},
        "job.record_alert": {"rule": "lag", "firing": true, "severity": "warning", "condition": "lag_above", "message": "lag is 2000 records (above 1000)"},
    });
    serde_json::from_value(json!({"kind": kind, "payload": v[kind]})).unwrap()
}

/// Builds a job in each phase through real commands.
fn in_phase(phase: Phase) -> JobState {
    let mut s = JobState::default();
    if phase == Phase::Absent {
        return s;
    }
    ok(&mut s, sample("job.create", 0));
    match phase {
        Phase::Idle => {}
        Phase::Deleted => {
            ok(&mut s, sample("job.delete", 0));
        }
        _ => {
            ok(&mut s, sample("job.deploy", 0));
            if phase == Phase::Deploying {
                return s;
            }
            ok(&mut s, sample("job.mark_running", 1));
            ok(&mut s, sample("job.mark_stable", 1));
            match phase {
                Phase::Running => {}
                Phase::Stopping => {
                    ok(&mut s, sample("job.stop", 1));
                }
                Phase::Stopped => {
                    ok(&mut s, sample("job.stop", 1));
                    ok(&mut s, sample("job.mark_stopped", 1));
                }
                Phase::Failed => {
                    ok(&mut s, sample("job.mark_failed", 1));
                }
                _ => unreachable!(),
            }
        }
    }
    assert_eq!(s.phase, phase);
    s
}

const PHASES: [Phase; 8] = [
    Phase::Absent,
    Phase::Idle,
    Phase::Deploying,
    Phase::Running,
    Phase::Stopping,
    Phase::Stopped,
    Phase::Failed,
    Phase::Deleted,
];

#[test]
fn every_disallowed_transition_is_rejected_with_a_reason() {
    for phase in PHASES {
        for kind in JobCommand::KINDS {
            let state = in_phase(phase);
            let result = decide(&state, &sample(kind, state.generation), &ctx());
            if allowed_in(phase).contains(&kind) {
                continue;
            }
            let r = result.expect_err(&format!("{kind} must be rejected in {phase:?}"));
            if kind == "job.record_runtime" {
                // Only a job that never existed has no stream to record on.
                assert_eq!((phase, r.code), (Phase::Absent, RejectionCode::NotFound));
                continue;
            }
            match phase {
                Phase::Absent | Phase::Deleted => assert_eq!(r.code, RejectionCode::NotFound),
                _ if kind == "job.create" => assert_eq!(r.code, RejectionCode::AlreadyExists),
                _ => {
                    assert_eq!(r.code, RejectionCode::InvalidTransition, "{r}");
                    assert!(r.message.contains("allowed:"), "{r}");
                    assert!(r.message.contains(kind), "{r}");
                }
            }
        }
    }
}

#[test]
fn full_lifecycle() {
    let mut s = JobState::default();
    ok(&mut s, sample("job.create", 0));
    ok(&mut s, sample("job.compile", 0));
    assert_eq!(s.versions[0].compile, CompileStatus::Compiling);
    ok(&mut s, sample("job.compile_succeeded", 0));
    let e = ok(&mut s, sample("job.deploy", 0));
    assert!(matches!(
        e[0],
        JobEvent::DeployRequested {
            cause: DeployCause::Deploy,
            parallelism: 2,
            generation: 1,
            ..
        }
    ));
    ok(&mut s, sample("job.mark_running", 1));
    ok(&mut s, sample("job.mark_stable", 1));
    assert_eq!(s.last_stable_version, Some(1));
    ok(&mut s, sample("job.submit_version", 1));
    assert_eq!(s.latest_version(), Some(2));
    let e = ok(
        &mut s,
        JobCommand::Deploy(Deploy {
            version: Some(2),
            ..Default::default()
        }),
    );
    assert!(matches!(
        e[0],
        JobEvent::DeployRequested {
            cause: DeployCause::Upgrade,
            version: 2,
            ..
        }
    ));
    ok(&mut s, sample("job.mark_running", 2));
    let e = ok(&mut s, sample("job.rollback", 2));
    assert!(matches!(
        e[0],
        JobEvent::DeployRequested {
            cause: DeployCause::Rollback,
            version: 1,
            generation: 3,
            ..
        }
    ));
    ok(&mut s, sample("job.mark_running", 3));
    let e = ok(&mut s, sample("job.rescale", 3));
    assert!(matches!(
        e[0],
        JobEvent::DeployRequested {
            cause: DeployCause::Rescale,
            parallelism: 3,
            ..
        }
    ));
    ok(&mut s, sample("job.mark_running", 4));
    ok(&mut s, sample("job.restore", 4));
    ok(&mut s, sample("job.mark_running", 5));
    ok(&mut s, sample("job.stop", 5));
    ok(&mut s, sample("job.mark_stopped", 5));
    ok(&mut s, sample("job.delete", 5));
    assert_eq!(s.phase, Phase::Deleted);
}

#[test]
fn stale_generations_are_fenced() {
    let mut s = in_phase(Phase::Deploying);
    let r = run(&mut s, sample("job.mark_running", 0)).unwrap_err();
    assert_eq!(r.code, RejectionCode::Conflict);
    assert!(r.message.contains("stale"), "{r}");
}

#[test]
fn payload_checks() {
    let mut s = in_phase(Phase::Idle);
    let r = run(
        &mut s,
        JobCommand::SubmitVersion(SubmitVersion {
            spec: json!({"sources": []}),
        }),
    )
    .unwrap_err();
    assert_eq!(r.code, RejectionCode::InvalidCommand);
    assert!(r.message.starts_with("payload.spec."), "{r}");
    let r = run(
        &mut s,
        JobCommand::Deploy(Deploy {
            version: Some(9),
            ..Default::default()
        }),
    )
    .unwrap_err();
    assert_eq!(r.code, RejectionCode::NotFound);
    let r = run(&mut s, sample("job.compile_succeeded", 0)).unwrap_err();
    assert!(r.message.contains("not compiling"), "{r}");
    ok(&mut s, sample("job.compile", 0));
    ok(&mut s, sample("job.compile_failed", 0));
    let r = run(&mut s, sample("job.deploy", 0)).unwrap_err();
    assert!(r.message.contains("failed to compile"), "{r}");
    let mut s = in_phase(Phase::Running);
    let r = run(
        &mut s,
        JobCommand::Rescale(Rescale {
            parallelism: 0,
            ..Default::default()
        }),
    )
    .unwrap_err();
    assert_eq!(r.code, RejectionCode::InvalidCommand);
    let r = run(&mut s, sample("job.rollback", 1)).unwrap_err();
    assert!(r.message.contains("already running"), "{r}");
}

#[test]
fn replay_rebuilds_the_same_state() {
    let mut s = JobState::default();
    let mut log = Vec::new();
    for (k, g) in [
        ("job.create", 0),
        ("job.deploy", 0),
        ("job.mark_running", 1),
        ("job.mark_failed", 1),
    ] {
        log.extend(ok(&mut s, sample(k, g)));
    }
    let mut replayed = JobState::default();
    for e in &log {
        let roundtrip: JobEvent = serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
        replayed.apply(&roundtrip);
    }
    assert_eq!(replayed, s);
    assert_eq!(s.last_failure.as_deref(), Some("oom"));
}

#[test]
fn runtime_incidents_are_recorded_in_every_phase_but_for_generations_never_handed_out() {
    for phase in PHASES.into_iter().filter(|p| *p != Phase::Absent) {
        let state = in_phase(phase);
        let events = decide(
            &state,
            &sample("job.record_runtime", state.generation),
            &ctx(),
        )
        .unwrap_or_else(|r| panic!("{phase:?}: {r}"));
        assert!(
            matches!(events[..], [JobEvent::RuntimeObserved { .. }]),
            "{phase:?}"
        );
        let r = decide(
            &state,
            &sample("job.record_runtime", state.generation + 1),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(r.code, RejectionCode::Conflict, "{phase:?}: {r}");
    }
}

#[test]
fn a_rescale_for_a_replaced_deployment_is_refused() {
    let mut s = in_phase(Phase::Running);
    let g = s.generation;
    let stale = serde_json::from_value(
        json!({"kind": "job.rescale", "payload": {"parallelism": 4, "generation": g - 1}}),
    )
    .unwrap();
    let r = run(&mut s, stale).unwrap_err();
    assert_eq!(r.code, RejectionCode::Conflict);
    assert!(r.message.contains(&format!("generation {g}")), "{r}");
    let current = serde_json::from_value(
        json!({"kind": "job.rescale", "payload": {"parallelism": 4, "generation": g}}),
    )
    .unwrap();
    let e = ok(&mut s, current);
    assert!(matches!(
        e[0],
        JobEvent::DeployRequested {
            cause: DeployCause::Rescale,
            parallelism: 4,
            ..
        }
    ));
}

#[test]
fn an_autotune_decision_is_kept_in_history_and_changes_nothing() {
    let mut s = in_phase(Phase::Running);
    let before = s.clone();
    let e = ok(&mut s, sample("job.record_autotune", before.generation));
    assert!(matches!(e[0], JobEvent::AutotuneDecided { .. }));
    assert_eq!(s, before);
    let future = sample("job.record_autotune", before.generation + 1);
    assert_eq!(
        run(&mut s, future).unwrap_err().code,
        RejectionCode::Conflict
    );
}

#[test]
fn the_autotune_mode_can_be_set_without_a_new_version() {
    use crate::domain::autotune::Mode;
    let mut s = in_phase(Phase::Running);
    let e = ok(&mut s, sample("job.set_autotune", 0));
    assert_eq!(
        e,
        [JobEvent::AutotuneModeSet {
            mode: Mode::Recommend
        }]
    );
    assert_eq!(s.autotune_mode, Some(Mode::Recommend));
    assert_eq!(s.phase, Phase::Running);
}

#[test]
fn a_phase_s_name_is_its_wire_name() {
    for p in PHASES {
        assert_eq!(serde_json::to_value(p).unwrap(), json!(p.name()));
    }
}

#[test]
fn an_alert_fires_and_resolves_once_each_and_counts_its_firings() {
    let mut s = in_phase(Phase::Running);
    let fire = sample("job.record_alert", 0);
    let e = ok(&mut s, fire.clone());
    assert!(matches!(&e[..], [JobEvent::AlertFired(c)] if c.rule == "lag"));
    assert!(s.alerts["lag"].firing);
    assert_eq!(s.alerts["lag"].fired, 1);
    // A second "fires" (another replica, a retry) is refused.
    let r = run(&mut s, fire.clone()).unwrap_err();
    assert_eq!(r.code, crate::domain::RejectionCode::InvalidTransition);
    let JobCommand::RecordAlert(mut resolve) = fire.clone() else {
        unreachable!()
    };
    resolve.firing = false;
    let e = ok(&mut s, JobCommand::RecordAlert(resolve.clone()));
    assert!(matches!(&e[..], [JobEvent::AlertResolved(_)]));
    assert!(!s.alerts["lag"].firing);
    assert!(run(&mut s, JobCommand::RecordAlert(resolve)).is_err());
    ok(&mut s, fire);
    assert_eq!(s.alerts["lag"].fired, 2);
    assert_eq!(s.firing_alerts().len(), 1);
}
