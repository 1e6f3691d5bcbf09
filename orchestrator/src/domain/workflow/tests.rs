//! The run state machine, driven through commands with a manual clock.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::command::*;
use super::decide::{decide, Context};
use super::event::RunEvent;
use super::state::{Next, RunState, RunStatus, StepStatus};
use crate::domain::rejection::RejectionCode;
use crate::domain::ErrorClass;

const DEF: &str = "name: t
steps:
  - id: a
    activity: x
    compensate: { activity: undo_a }
  - id: b
    if: $.input.skip_b != true
    activity: x
    retry: { max_attempts: 3, backoff: { initial: 1s, multiplier: 2, max: 10s }, retry_on: [unavailable] }
    on_failure: compensate
  - id: c
    wait: { checkpoints: 2, within: 1m }
    on_failure: { goto: d }
    next: end
  - id: d
    activity: x
outputs:
  a: $.steps.a.output.v
";

struct Harness {
    state: RunState,
    now: DateTime<Utc>,
    log: Vec<RunEvent>,
}

impl Harness {
    fn start(input: serde_json::Value) -> Self {
        let mut h = Harness {
            state: RunState::default(),
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            log: Vec::new(),
        };
        h.ok(WorkflowCommand::Start(StartRun {
            file: "t.yaml".into(),
            definition: DEF.into(),
            input,
        }));
        h
    }

    fn run(&mut self, cmd: WorkflowCommand) -> Result<Vec<RunEvent>, crate::domain::Rejection> {
        let ctx = Context {
            run_id: "r1",
            actor: "tester",
            now: self.now,
        };
        let events = decide(&self.state, &cmd, &ctx)?;
        for e in &events {
            self.state.apply(e);
        }
        self.log.extend(events.clone());
        Ok(events)
    }

    fn ok(&mut self, cmd: WorkflowCommand) -> Vec<RunEvent> {
        let kind = cmd.kind();
        self.run(cmd)
            .unwrap_or_else(|r| panic!("{kind} rejected: {r}"))
    }

    fn seq(&self) -> u64 {
        self.state.current.as_ref().unwrap().seq
    }

    fn step(&self) -> String {
        self.state.current.as_ref().unwrap().step.clone()
    }

    fn claim(&mut self, owner: &str) -> Result<Vec<RunEvent>, crate::domain::Rejection> {
        self.run(WorkflowCommand::ClaimStep(ClaimStep {
            seq: self.seq(),
            step: self.step(),
            owner: owner.into(),
            lease_ms: 30_000,
            baseline: None,
        }))
    }

    fn complete(&mut self, output: serde_json::Value) {
        let (seq, step) = (self.seq(), self.step());
        self.ok(WorkflowCommand::CompleteStep(CompleteStep {
            seq,
            step,
            output,
            claim_next: None,
        }));
    }

    fn fail(&mut self, class: ErrorClass) {
        let (seq, step) = (self.seq(), self.step());
        self.ok(WorkflowCommand::FailStep(FailStep {
            seq,
            step,
            class,
            message: "boom".into(),
        }));
    }
}

#[test]
fn happy_path_skips_false_conditions_and_reports_outputs() {
    let mut h = Harness::start(json!({"skip_b": true}));
    assert_eq!(h.state.status, RunStatus::Running);
    assert_eq!(h.state.definition_sha256.len(), 64);
    assert_eq!(
        h.state.next(h.now, "r"),
        Next::Claim {
            seq: 1,
            step: "a".into()
        }
    );
    h.claim("r").unwrap();
    h.complete(json!({"v": 7}));
    assert_eq!(h.state.steps["b"].status, StepStatus::Skipped);
    assert_eq!(h.step(), "c");
    h.claim("r").unwrap();
    assert!(matches!(h.state.next(h.now, "r"), Next::Poll { .. }));
    h.complete(json!({}));
    assert_eq!(h.state.status, RunStatus::Completed);
    assert_eq!(h.state.outputs, Some(json!({"a": 7})));
    assert!(!h.state.steps.contains_key("d"), "`next: end` must skip d");
}

#[test]
fn a_lease_keeps_other_replicas_out_until_it_expires() {
    let mut h = Harness::start(json!({}));
    h.claim("r1").unwrap();
    let r = h.claim("r2").unwrap_err();
    assert_eq!(r.code, RejectionCode::Conflict);
    assert!(r.message.contains("leased by r1"), "{r}");
    assert_eq!(
        h.state.next(h.now, "r2"),
        Next::At(h.now + Duration::seconds(30))
    );
    // The same replica, restarted, takes its step back at once.
    assert!(matches!(h.state.next(h.now, "r1"), Next::Claim { .. }));
    h.now += Duration::seconds(31);
    h.claim("r2").unwrap();
    assert_eq!(h.state.steps["a"].starts, 2);
}

/// The wait before the next retry, checked to be `base` cut by at most the
/// backoff's jitter (a fifth).
fn retry_wait(h: &Harness, base: Duration) -> Duration {
    let Next::At(t) = h.state.next(h.now, "r") else {
        panic!("no retry scheduled: {:?}", h.state.next(h.now, "r"));
    };
    let wait = t - h.now;
    assert!(wait <= base && wait >= base * 4 / 5, "{wait} for {base}");
    wait
}

#[test]
fn retries_back_off_then_compensate() {
    let mut h = Harness::start(json!({}));
    h.claim("r").unwrap();
    h.complete(json!({"v": 1}));
    assert_eq!(h.step(), "b");
    h.claim("r").unwrap();
    h.fail(ErrorClass::Unavailable);
    let t1 = h.now + retry_wait(&h, Duration::seconds(1));
    assert_eq!(
        h.claim("r").unwrap_err().code,
        RejectionCode::InvalidTransition
    );
    h.now = t1;
    h.claim("r").unwrap();
    h.fail(ErrorClass::Unavailable);
    h.now += retry_wait(&h, Duration::seconds(2));
    h.claim("r").unwrap();
    h.fail(ErrorClass::Unavailable);
    // Retries spent: b's on_failure compensates a, the only completed step with a compensation.
    assert_eq!(h.state.compensating, Some(vec!["a".to_string()]));
    assert!(h.state.current.as_ref().unwrap().compensation);
    let e = h.claim("r").unwrap();
    assert!(
        matches!(&e[0], RunEvent::StepStarted { idempotency_key, .. } if idempotency_key == "r1/a/compensate")
    );
    h.complete(json!({}));
    assert_eq!(h.state.status, RunStatus::Compensated);
    assert_eq!(h.state.steps["a"].status, StepStatus::Compensated);
    assert!(h
        .state
        .reason
        .as_deref()
        .unwrap()
        .contains("step `b` failed (unavailable)"));
}

#[test]
fn a_class_not_worth_retrying_fails_at_once() {
    let mut h = Harness::start(json!({}));
    h.claim("r").unwrap();
    h.complete(json!({}));
    h.claim("r").unwrap();
    h.fail(ErrorClass::Invalid);
    assert!(h.state.compensating.is_some());
}

#[test]
fn exhausted_retries_pause_and_resume_gives_a_fresh_budget() {
    let mut h = Harness::start(json!({}));
    for attempt in 1..=3 {
        h.claim("r").unwrap();
        h.fail(ErrorClass::Unavailable);
        if attempt < 3 {
            h.now += Duration::minutes(1);
        }
    }
    assert_eq!(h.state.status, RunStatus::Paused);
    assert_eq!(h.state.next(h.now, "r"), Next::Nothing);
    assert!(h
        .state
        .reason
        .as_deref()
        .unwrap()
        .contains("step `a` failed"));
    h.ok(WorkflowCommand::Resume(Empty {}));
    assert_eq!(h.state.current.as_ref().unwrap().attempt, 1);
    h.claim("r").unwrap();
    h.complete(json!({}));
    assert_eq!(h.step(), "b");
}

#[test]
fn a_wait_times_out_on_its_durable_timer_and_branches() {
    let mut h = Harness::start(json!({"skip_b": true}));
    h.claim("r").unwrap();
    h.complete(json!({}));
    h.claim("r").unwrap();
    let fire = WorkflowCommand::FireTimer(StepRef {
        seq: h.seq(),
        step: "c".into(),
    });
    assert_eq!(
        h.run(fire.clone()).unwrap_err().code,
        RejectionCode::InvalidTransition
    );
    h.now += Duration::seconds(60);
    assert!(matches!(
        h.state.next(h.now, "other"),
        Next::FireTimer { .. }
    ));
    h.ok(fire);
    assert_eq!(h.step(), "d", "on_failure goto d");
    assert_eq!(h.state.error.as_ref().unwrap().class, ErrorClass::Timeout);
}

#[test]
fn stale_reports_and_ended_runs_are_refused() {
    let mut h = Harness::start(json!({}));
    h.claim("r").unwrap();
    let stale = WorkflowCommand::CompleteStep(CompleteStep {
        seq: 99,
        step: "a".into(),
        output: json!({}),
        claim_next: None,
    });
    assert_eq!(h.run(stale).unwrap_err().code, RejectionCode::Conflict);
    h.ok(WorkflowCommand::Abort(Abort {
        reason: Some("enough".into()),
    }));
    assert_eq!(h.state.status, RunStatus::Aborted);
    assert_eq!(
        h.run(WorkflowCommand::Resume(Empty {})).unwrap_err().code,
        RejectionCode::InvalidTransition
    );
    let again = WorkflowCommand::Start(StartRun {
        file: "t.yaml".into(),
        definition: DEF.into(),
        input: json!({}),
    });
    assert_eq!(h.run(again).unwrap_err().code, RejectionCode::AlreadyExists);
}

#[test]
fn an_invalid_definition_is_refused_with_its_problems() {
    let mut s = RunState::default();
    let ctx = Context {
        run_id: "r",
        actor: "a",
        now: Utc::now(),
    };
    let cmd = WorkflowCommand::Start(StartRun {
        file: "bad.yaml".into(),
        definition: "name: t\nsteps:\n  - id: a\n".into(),
        input: json!({}),
    });
    let r = decide(&s, &cmd, &ctx).unwrap_err();
    assert_eq!(r.code, RejectionCode::InvalidCommand);
    assert!(
        r.message.contains("steps[0]: needs `activity` or `wait`"),
        "{r}"
    );
    s.apply(&RunEvent::RunFailed {
        reason: "x".into(),
        at: Utc::now(),
    });
}

#[test]
fn replay_rebuilds_the_same_state() {
    let mut h = Harness::start(json!({}));
    h.claim("r").unwrap();
    h.complete(json!({"v": 1}));
    h.claim("r").unwrap();
    h.fail(ErrorClass::Unavailable);
    let mut replayed = RunState::default();
    for e in &h.log {
        let e: RunEvent = serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
        replayed.apply(&e);
    }
    assert_eq!(replayed, h.state);
    let snap: RunState = serde_json::from_value(serde_json::to_value(&h.state).unwrap()).unwrap();
    assert_eq!(snap, h.state);
}

#[test]
fn a_report_can_take_the_next_activity_step_but_not_a_wait() {
    let mut h = Harness::start(json!({}));
    h.claim("r").unwrap();
    let next = Some(ClaimNext {
        owner: "r".into(),
        grace_ms: 1_000,
    });
    let (seq, step) = (h.seq(), h.step());
    let events = h.ok(WorkflowCommand::CompleteStep(CompleteStep {
        seq,
        step,
        output: json!({}),
        claim_next: next.clone(),
    }));
    // b is an activity with the default 30s timeout: leased for 31s to the reporter.
    match events.last().unwrap() {
        RunEvent::StepStarted {
            step,
            owner,
            lease_until,
            idempotency_key,
            ..
        } => {
            assert_eq!(
                (step.as_str(), owner.as_str(), idempotency_key.as_str()),
                ("b", "r", "r1/b")
            );
            assert_eq!(*lease_until, h.now + Duration::seconds(31));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.state.steps["b"].starts, 1);
    let (seq, step) = (h.seq(), h.step());
    let events = h.ok(WorkflowCommand::CompleteStep(CompleteStep {
        seq,
        step,
        output: json!({}),
        claim_next: next,
    }));
    // c is a wait: it is scheduled, not started.
    assert!(matches!(events.last().unwrap(), RunEvent::StepScheduled { step, .. } if step == "c"));
}
