//! The run state machine: `decide(state, command, now) -> events | rejection`.
//!
//! Everything an engine replica does is first proposed here as a command and
//! only acted on once the events are committed, so replaying a run's events
//! rebuilds it exactly and has no side effects. Scheduling (conditions,
//! `next`, retries with backoff, failure actions, compensation) is all here;
//! the driver only runs activities and polls waits.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::command::{ClaimNext, ClaimStep, FailStep, WorkflowCommand};
use super::event::{RunEvent, StepError};
use super::expr::{Expr, Path};
use super::spec::{Backoff, FailureAction, OnFailure};
use super::state::{RunState, RunStatus, StepPhase};
use super::validate::{self, END};
use crate::domain::rejection::{Rejection, RejectionCode};
use crate::domain::{BackoffPolicy, ErrorClass};

/// Inputs besides state and command. Time is passed in, never read.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub run_id: &'a str,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
}

fn reject(code: RejectionCode, msg: impl Into<String>) -> Rejection {
    Rejection::new(code, msg)
}

/// Collects events while keeping a scratch state current, so each decision
/// step sees the effects of the ones before it.
struct Out<'a> {
    state: RunState,
    events: Vec<RunEvent>,
    ctx: &'a Context<'a>,
}

impl Out<'_> {
    fn emit(&mut self, e: RunEvent) {
        self.state.apply(&e);
        self.events.push(e);
    }

    /// Schedules the first step at or after `index` whose condition holds, or completes the run.
    fn schedule_from(&mut self, mut index: usize) {
        let Some(spec) = self.state.spec.clone() else {
            return;
        };
        loop {
            let Some(step) = spec.steps.get(index) else {
                let ctx = self.state.context(self.ctx.run_id);
                let outputs: serde_json::Map<String, serde_json::Value> = spec
                    .outputs
                    .iter()
                    .map(|(k, p)| {
                        let v = Path::parse(p)
                            .map(|p| p.get(&ctx).clone())
                            .unwrap_or_default();
                        (k.clone(), v)
                    })
                    .collect();
                self.emit(RunEvent::RunCompleted {
                    outputs: outputs.into(),
                    at: self.ctx.now,
                });
                return;
            };
            let run = match &step.condition {
                None => true,
                // Conditions were checked when the run started; an unparsable one cannot occur.
                Some(c) => Expr::parse(c)
                    .map(|e| e.test(&self.state.context(self.ctx.run_id)))
                    .unwrap_or(false),
            };
            if run {
                let seq = self.state.seq + 1;
                self.emit(RunEvent::StepScheduled {
                    seq,
                    step: step.id.clone(),
                    attempt: 1,
                    compensation: false,
                    not_before: None,
                });
                return;
            }
            self.emit(RunEvent::StepSkipped {
                step: step.id.clone(),
            });
            index += 1;
        }
    }

    fn goto(&mut self, target: &str) {
        if target == END {
            self.schedule_from(usize::MAX);
        } else if let Some(i) = self.state.spec.as_ref().and_then(|s| s.step_index(target)) {
            self.schedule_from(i);
        }
    }

    fn schedule_compensation(&mut self, reason: &str) {
        let next = self
            .state
            .compensating
            .as_ref()
            .and_then(|l| l.first().cloned());
        match next {
            Some(step) => {
                let seq = self.state.seq + 1;
                self.emit(RunEvent::StepScheduled {
                    seq,
                    step,
                    attempt: 1,
                    compensation: true,
                    not_before: None,
                });
            }
            None => self.emit(RunEvent::RunCompensated {
                reason: reason.to_owned(),
                at: self.ctx.now,
            }),
        }
    }

    /// A step failed for good: apply its `on_failure`.
    fn failed_for_good(&mut self, error: &StepError, compensation: bool) {
        let reason = format!(
            "step `{}` failed ({}): {}",
            error.step, error.class, error.message
        );
        if compensation {
            // A compensation that cannot finish needs a person.
            self.emit(RunEvent::RunPaused {
                reason,
                at: self.ctx.now,
            });
            return;
        }
        let action = self
            .state
            .spec
            .as_ref()
            .and_then(|s| s.step(&error.step).map(|st| s.on_failure_of(st).clone()))
            .unwrap_or_default();
        match action {
            OnFailure::Action(FailureAction::Pause) => self.emit(RunEvent::RunPaused {
                reason,
                at: self.ctx.now,
            }),
            OnFailure::Action(FailureAction::Fail) => self.emit(RunEvent::RunFailed {
                reason,
                at: self.ctx.now,
            }),
            OnFailure::Goto { goto } => self.goto(&goto),
            OnFailure::Action(FailureAction::Compensate) => {
                let spec = self.state.spec.clone().unwrap_or_else(unreachable_spec);
                let steps: Vec<String> = self
                    .state
                    .completed
                    .iter()
                    .rev()
                    .filter(|id| spec.step(id).is_some_and(|s| s.compensate.is_some()))
                    .cloned()
                    .collect();
                self.emit(RunEvent::CompensationStarted { steps });
                self.schedule_compensation(&reason);
            }
        }
    }
}

/// A run never holds a spec-less current step; this only satisfies the types.
fn unreachable_spec() -> super::spec::WorkflowSpec {
    super::spec::WorkflowSpec {
        name: String::new(),
        description: None,
        defaults: Default::default(),
        steps: Vec::new(),
        outputs: Default::default(),
    }
}

/// The sha256 of a definition's text, hex.
pub fn definition_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The idempotency key every activity receives.
pub fn idempotency_key(run_id: &str, step: &str, compensation: bool) -> String {
    if compensation {
        format!("{run_id}/{step}/compensate")
    } else {
        format!("{run_id}/{step}")
    }
}

/// The wait after failed attempt `attempt` of the step with idempotency key
/// `key`, computed by the shared [`BackoffPolicy`]. Its jitter is drawn from
/// the key and the attempt rather than from a random source, so deciding the
/// same failure again (a simulation, a replayed test) gives the same time,
/// while runs that failed together still retry apart.
fn retry_delay(backoff: &Backoff, key: &str, attempt: u32) -> chrono::Duration {
    let policy = BackoffPolicy::new(backoff.initial.get(), backoff.max.get())
        .with_multiplier(backoff.multiplier);
    let digest = Sha256::digest(format!("{key}#{attempt}").as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    // The top 53 bits as a number in [0, 1), as a float holds them exactly.
    let unit = (u64::from_le_bytes(seed) >> 11) as f64 / (1u64 << 53) as f64;
    chrono::Duration::from_std(policy.delay(attempt, unit)).unwrap_or(chrono::Duration::MAX)
}

/// Decides what a command means for a run in `state`.
pub fn decide(
    state: &RunState,
    cmd: &WorkflowCommand,
    ctx: &Context<'_>,
) -> Result<Vec<RunEvent>, Rejection> {
    let mut out = Out {
        state: state.clone(),
        events: Vec::new(),
        ctx,
    };
    if let WorkflowCommand::Start(s) = cmd {
        if state.status != RunStatus::Absent {
            return Err(reject(
                RejectionCode::AlreadyExists,
                format!("run {} already exists", ctx.run_id),
            ));
        }
        let spec = validate::parse(&s.definition, None).map_err(|problems| {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            reject(
                RejectionCode::InvalidCommand,
                format!("payload.definition ({}): {}", s.file, list.join("; ")),
            )
        })?;
        out.emit(RunEvent::RunStarted {
            workflow: spec.name.clone(),
            file: s.file.clone(),
            definition_sha256: definition_sha256(&s.definition),
            definition: s.definition.clone(),
            spec: Box::new(spec),
            input: s.input.clone(),
            at: ctx.now,
        });
        out.schedule_from(0);
        return Ok(out.events);
    }

    match state.status {
        RunStatus::Absent => {
            return Err(reject(
                RejectionCode::NotFound,
                format!("run {} does not exist", ctx.run_id),
            ))
        }
        s if s.is_terminal() => {
            return Err(reject(
                RejectionCode::InvalidTransition,
                format!("run {} has ended ({})", ctx.run_id, status_name(s)),
            ))
        }
        _ => {}
    }

    match cmd {
        WorkflowCommand::Start(_) => unreachable!("handled above"),
        WorkflowCommand::Resume(_) => {
            if state.status != RunStatus::Paused {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("run {} is not paused", ctx.run_id),
                ));
            }
            out.emit(RunEvent::RunResumed {
                by: ctx.actor.to_owned(),
                at: ctx.now,
            });
            match state.current.clone() {
                Some(c) => {
                    let seq = out.state.seq + 1;
                    out.emit(RunEvent::StepScheduled {
                        seq,
                        step: c.step,
                        attempt: 1,
                        compensation: c.compensation,
                        not_before: None,
                    });
                }
                None => {
                    let failed = state
                        .error
                        .as_ref()
                        .map(|e| e.step.clone())
                        .unwrap_or_default();
                    let index = state
                        .spec()
                        .and_then(|s| s.step_index(&failed))
                        .unwrap_or(0);
                    out.schedule_from(index);
                }
            }
        }
        WorkflowCommand::Abort(a) => out.emit(RunEvent::RunAborted {
            by: ctx.actor.to_owned(),
            reason: a.reason.clone().unwrap_or_else(|| "no reason given".into()),
            at: ctx.now,
        }),
        WorkflowCommand::ClaimStep(c) => claim(&mut out, c)?,
        WorkflowCommand::CompleteStep(c) => {
            let cur = expect_current(state, c.seq, &c.step, ctx)?;
            if matches!(cur.phase, StepPhase::Ready { .. }) {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("step `{}` was not started", c.step),
                ));
            }
            let compensation = cur.compensation;
            out.emit(RunEvent::StepCompleted {
                seq: c.seq,
                step: c.step.clone(),
                attempt: cur.attempt,
                compensation,
                output: c.output.clone(),
                at: ctx.now,
            });
            if compensation {
                let reason = out
                    .state
                    .error
                    .as_ref()
                    .map(|e| format!("step `{}` failed ({}): {}", e.step, e.class, e.message))
                    .unwrap_or_default();
                out.schedule_compensation(&reason);
            } else {
                let spec = state.spec().cloned().unwrap_or_else(unreachable_spec);
                let index = spec.step_index(&c.step).unwrap_or(usize::MAX);
                match spec.steps.get(index).and_then(|s| s.next.clone()) {
                    Some(target) => out.goto(&target),
                    None => out.schedule_from(index.saturating_add(1)),
                }
            }
            if let Some(next) = &c.claim_next {
                claim_next(&mut out, next);
            }
        }
        WorkflowCommand::FailStep(f) => fail(&mut out, state, f)?,
        WorkflowCommand::FireTimer(t) => {
            let cur = expect_current(state, t.seq, &t.step, ctx)?;
            let StepPhase::Waiting {
                deadline,
                started_at,
                ..
            } = &cur.phase
            else {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("step `{}` is not waiting", t.step),
                ));
            };
            if *deadline > ctx.now {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("the timer of step `{}` is due at {deadline}", t.step),
                ));
            }
            out.emit(RunEvent::TimerFired {
                seq: t.seq,
                step: t.step.clone(),
                at: ctx.now,
            });
            let waited = (*deadline - *started_at).num_milliseconds().max(0) as u64;
            fail(
                &mut out,
                state,
                &FailStep {
                    seq: t.seq,
                    step: t.step.clone(),
                    class: ErrorClass::Timeout,
                    message: format!(
                        "the wait's conditions did not hold within {}",
                        crate::domain::duration::Dur::from_millis(waited)
                    ),
                },
            )?;
        }
    }
    Ok(out.events)
}

fn status_name(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn expect_current<'s>(
    state: &'s RunState,
    seq: u64,
    step: &str,
    ctx: &Context<'_>,
) -> Result<&'s super::state::Current, Rejection> {
    if state.status != RunStatus::Running {
        return Err(reject(
            RejectionCode::InvalidTransition,
            format!("run {} is {}", ctx.run_id, status_name(state.status)),
        ));
    }
    match &state.current {
        Some(c) if c.seq == seq && c.step == step => Ok(c),
        Some(c) => Err(reject(
            RejectionCode::Conflict,
            format!(
                "step `{step}` #{seq} is not current; the run is at step `{}` #{}",
                c.step, c.seq
            ),
        )),
        None => Err(reject(
            RejectionCode::Conflict,
            format!("run {} has no current step", ctx.run_id),
        )),
    }
}

fn claim(out: &mut Out<'_>, c: &ClaimStep) -> Result<(), Rejection> {
    let ctx = out.ctx;
    let state = out.state.clone();
    let cur = expect_current(&state, c.seq, &c.step, ctx)?;
    let spec = state.spec().cloned().unwrap_or_else(unreachable_spec);
    let step = spec
        .step(&c.step)
        .ok_or_else(|| reject(RejectionCode::NotFound, format!("no step `{}`", c.step)))?;
    match &cur.phase {
        StepPhase::Ready {
            not_before: Some(t),
        } if *t > ctx.now => {
            return Err(reject(
                RejectionCode::InvalidTransition,
                format!("step `{}` is not due until {t}", c.step),
            ))
        }
        StepPhase::Ready { .. } => {}
        StepPhase::Running {
            owner, lease_until, ..
        } => {
            if owner != &c.owner && *lease_until > ctx.now {
                return Err(reject(
                    RejectionCode::Conflict,
                    format!("step `{}` is leased by {owner} until {lease_until}", c.step),
                ));
            }
        }
        StepPhase::Waiting { .. } => {
            return Err(reject(
                RejectionCode::Conflict,
                format!("step `{}` is already waiting", c.step),
            ))
        }
    }
    match (&step.wait, cur.compensation) {
        (Some(w), false) => {
            let span = w.timer.unwrap_or_else(|| spec.within_of(w));
            out.emit(RunEvent::WaitStarted {
                seq: c.seq,
                step: c.step.clone(),
                deadline: ctx.now + span.to_chrono(),
                baseline: c.baseline.clone().unwrap_or_default(),
                at: ctx.now,
            });
        }
        _ => out.emit(RunEvent::StepStarted {
            seq: c.seq,
            step: c.step.clone(),
            attempt: cur.attempt,
            owner: c.owner.clone(),
            lease_until: ctx.now
                + chrono::Duration::milliseconds(c.lease_ms.min(i64::MAX as u64) as i64),
            idempotency_key: idempotency_key(ctx.run_id, &c.step, cur.compensation),
            at: ctx.now,
        }),
    }
    Ok(())
}

/// Starts the newly scheduled step for `next.owner` when it is an activity due now.
fn claim_next(out: &mut Out<'_>, next: &ClaimNext) {
    let ctx = out.ctx;
    let Some(cur) = out.state.current.clone() else {
        return;
    };
    if out.state.status != RunStatus::Running
        || cur.phase != (StepPhase::Ready { not_before: None })
    {
        return;
    }
    let Some(spec) = out.state.spec.clone() else {
        return;
    };
    let Some(step) = spec.step(&cur.step) else {
        return;
    };
    if step.wait.is_some() && !cur.compensation {
        return;
    }
    let lease = spec.timeout_of(step).to_chrono()
        + chrono::Duration::milliseconds(next.grace_ms.min(i64::MAX as u64) as i64);
    out.emit(RunEvent::StepStarted {
        seq: cur.seq,
        step: cur.step.clone(),
        attempt: cur.attempt,
        owner: next.owner.clone(),
        lease_until: ctx.now + lease,
        idempotency_key: idempotency_key(ctx.run_id, &cur.step, cur.compensation),
        at: ctx.now,
    });
}

fn fail(out: &mut Out<'_>, state: &RunState, f: &FailStep) -> Result<(), Rejection> {
    let ctx = out.ctx;
    let cur = expect_current(state, f.seq, &f.step, ctx)?.clone();
    if matches!(cur.phase, StepPhase::Ready { .. }) {
        return Err(reject(
            RejectionCode::InvalidTransition,
            format!("step `{}` was not started", f.step),
        ));
    }
    let error = StepError {
        step: f.step.clone(),
        attempt: cur.attempt,
        class: f.class,
        message: f.message.clone(),
    };
    let spec = state.spec().cloned().unwrap_or_else(unreachable_spec);
    let step = spec.step(&f.step);
    // Waits do not retry: their `within` already is the patience.
    let retry_at = step.filter(|s| s.wait.is_none()).and_then(|s| {
        let policy = spec.retry_of(s);
        (policy.retry_on.contains(&f.class) && cur.attempt < policy.max_attempts).then(|| {
            let key = idempotency_key(ctx.run_id, &f.step, cur.compensation);
            ctx.now + retry_delay(&policy.backoff, &key, cur.attempt)
        })
    });
    out.emit(RunEvent::StepFailed {
        seq: f.seq,
        error: error.clone(),
        compensation: cur.compensation,
        retry_at,
        at: ctx.now,
    });
    match retry_at {
        Some(t) => {
            let seq = out.state.seq + 1;
            out.emit(RunEvent::StepScheduled {
                seq,
                step: f.step.clone(),
                attempt: cur.attempt + 1,
                compensation: cur.compensation,
                not_before: Some(t),
            });
        }
        None => out.failed_for_good(&error, cur.compensation),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Dur;

    fn backoff() -> Backoff {
        Backoff {
            initial: Dur::from_secs(1),
            multiplier: 2.0,
            max: Dur::from_secs(10),
        }
    }

    #[test]
    fn retry_delays_grow_within_the_jitter_and_are_the_same_when_decided_again() {
        for run in 0..50 {
            let key = idempotency_key(&format!("run-{run}"), "deploy", false);
            for (attempt, base_ms) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (5, 10_000)] {
                let d = retry_delay(&backoff(), &key, attempt);
                assert_eq!(d, retry_delay(&backoff(), &key, attempt), "deterministic");
                let ms = d.num_milliseconds();
                assert!(
                    ms <= base_ms && ms as f64 >= base_ms as f64 * 0.8,
                    "attempt {attempt}: {ms} ms"
                );
            }
        }
    }

    #[test]
    fn runs_that_failed_together_retry_apart() {
        let delays: std::collections::BTreeSet<_> = (0..20)
            .map(|run| retry_delay(&backoff(), &format!("run-{run}/deploy"), 1))
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}
