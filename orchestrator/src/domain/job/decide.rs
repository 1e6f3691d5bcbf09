//! The job state machine: `decide(state, command) -> events | rejection`.
//!
//! Which command kinds each phase admits is declared once, in [`allowed_in`].
//! Rejections name the current phase and the commands that phase allows,
//! both read from that same table, so the message can never drift from the rule.

use chrono::{DateTime, Utc};

use super::command::JobCommand;
use super::event::{AlertChange, DeployCause, JobEvent};
use super::spec::JobSpec;
use super::state::{CompileStatus, JobState, Phase};
use crate::domain::rejection::{Rejection, RejectionCode};

const MAX_PARALLELISM: u32 = 1024;

/// Command kinds that each phase admits. Payload-level checks come after.
pub fn allowed_in(phase: Phase) -> &'static [&'static str] {
    const COMPILE: [&str; 4] = [
        "job.submit_version",
        "job.compile",
        "job.compile_succeeded",
        "job.compile_failed",
    ];
    // The data plane can act whatever the phase says (a stray deployment of a
    // deleted job is exactly what must be recorded), so every phase but
    // `absent` takes its reports.
    const RECORD: &str = "job.record_runtime";
    // Decisions are made on a running job; one may land just after it
    // changed phase, and is still worth keeping.
    const TUNE: &str = "job.record_autotune";
    const SET_TUNE: &str = "job.set_autotune";
    // Alerts watch every phase a job can be in once it exists.
    const ALERT: &str = "job.record_alert";
    match phase {
        Phase::Absent => &["job.create"],
        Phase::Deleted => &["job.create", RECORD],
        Phase::Idle => &[
            COMPILE[0],
            COMPILE[1],
            COMPILE[2],
            COMPILE[3],
            "job.deploy",
            "job.delete",
            RECORD,
            SET_TUNE,
            ALERT,
        ],
        Phase::Deploying => &[
            COMPILE[0],
            COMPILE[1],
            COMPILE[2],
            COMPILE[3],
            "job.mark_running",
            "job.mark_failed",
            "job.stop",
            RECORD,
            SET_TUNE,
            TUNE,
            ALERT,
        ],
        Phase::Running => &[
            COMPILE[0],
            COMPILE[1],
            COMPILE[2],
            COMPILE[3],
            "job.deploy",
            "job.mark_stable",
            "job.mark_failed",
            "job.stop",
            "job.rollback",
            "job.restore",
            "job.rescale",
            RECORD,
            SET_TUNE,
            TUNE,
            ALERT,
        ],
        Phase::Stopping => &[
            COMPILE[0],
            COMPILE[1],
            COMPILE[2],
            COMPILE[3],
            "job.mark_stopped",
            "job.mark_failed",
            RECORD,
            SET_TUNE,
            TUNE,
            ALERT,
        ],
        Phase::Stopped | Phase::Failed => &[
            COMPILE[0],
            COMPILE[1],
            COMPILE[2],
            COMPILE[3],
            "job.deploy",
            "job.rollback",
            "job.restore",
            "job.delete",
            RECORD,
            SET_TUNE,
            TUNE,
            ALERT,
        ],
    }
}

/// Context the decision may depend on. Time is passed in, never read.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub job: &'a str,
    pub now: DateTime<Utc>,
}

fn reject(code: RejectionCode, msg: impl Into<String>) -> Rejection {
    Rejection::new(code, msg)
}

/// Decides what a command means for a job in `state`.
pub fn decide(
    state: &JobState,
    cmd: &JobCommand,
    ctx: &Context<'_>,
) -> Result<Vec<JobEvent>, Rejection> {
    let kind = cmd.kind();
    if !allowed_in(state.phase).contains(&kind) {
        return Err(match state.phase {
            Phase::Absent => reject(
                RejectionCode::NotFound,
                format!(
                    "job `{}` does not exist; create it first with job.create",
                    ctx.job
                ),
            ),
            Phase::Deleted => reject(
                RejectionCode::NotFound,
                format!("job `{}` was deleted; only job.create is allowed", ctx.job),
            ),
            _ if kind == "job.create" => reject(
                RejectionCode::AlreadyExists,
                format!("job `{}` already exists", ctx.job),
            ),
            phase => reject(
                RejectionCode::InvalidTransition,
                format!(
                    "{kind} is not allowed while job `{}` is {}; allowed: {}",
                    ctx.job,
                    phase.name(),
                    allowed_in(phase).join(", ")
                ),
            ),
        });
    }

    // Records of the data plane and the tuner may be about an older
    // generation, never a newer one.
    let handed_out = |generation: u64| {
        if generation <= state.generation {
            Ok(())
        } else {
            Err(reject(
                RejectionCode::Conflict,
                format!(
                    "generation {generation} was never handed out; job `{}` is at generation {}",
                    ctx.job, state.generation
                ),
            ))
        }
    };
    let gen_check = |generation: u64| {
        if generation == state.generation {
            Ok(())
        } else {
            Err(reject(
                RejectionCode::Conflict,
                format!(
                    "generation {generation} is stale; job `{}` is at generation {}",
                    ctx.job, state.generation
                ),
            ))
        }
    };

    let next_version = state.latest_version().unwrap_or(0) + 1;
    let events = match cmd {
        JobCommand::Create(c) => {
            let spec = checked_spec(&c.spec)?;
            vec![JobEvent::JobCreated {
                version: 1,
                spec,
                at: ctx.now,
            }]
        }
        JobCommand::SubmitVersion(c) => {
            let spec = checked_spec(&c.spec)?;
            vec![JobEvent::VersionSubmitted {
                version: next_version,
                spec,
                at: ctx.now,
            }]
        }
        JobCommand::Compile(v) => {
            let version = resolve_version(state, v.version, ctx)?;
            if let Some(info) = state.version(version) {
                if info.compile == CompileStatus::Compiling {
                    return Err(reject(
                        RejectionCode::InvalidTransition,
                        format!("version {version} is already compiling"),
                    ));
                }
            }
            vec![JobEvent::CompileRequested {
                version,
                workflow: checked_workflow(&v.workflow)?,
            }]
        }
        JobCommand::CompileSucceeded(c) => {
            expect_compiling(state, c.version)?;
            vec![JobEvent::CompileSucceeded {
                version: c.version,
                plan_digest: c.plan_digest.clone(),
                state_fingerprint: c.state_fingerprint.clone(),
            }]
        }
        JobCommand::CompileFailed(c) => {
            expect_compiling(state, c.version)?;
            vec![JobEvent::CompileFailed {
                version: c.version,
                reason: c.reason.clone(),
            }]
        }
        JobCommand::Deploy(d) => {
            let version = resolve_version(state, d.version, ctx)?;
            let info = state.version(version).ok_or_else(|| {
                reject(
                    RejectionCode::NotFound,
                    format!("version {version} does not exist"),
                )
            })?;
            if let CompileStatus::Failed { reason } = &info.compile {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("version {version} failed to compile and cannot be deployed: {reason}"),
                ));
            }
            let parallelism = match d.parallelism {
                Some(p) => checked_parallelism(p)?,
                None => spec_parallelism(&info.spec),
            };
            let cause = if state.phase == Phase::Running {
                if state.deployment.as_ref().map(|d| d.version) == Some(version) {
                    return Err(reject(
                        RejectionCode::InvalidTransition,
                        format!(
                            "version {version} is already running; use job.rescale or job.restore"
                        ),
                    ));
                }
                DeployCause::Upgrade
            } else {
                DeployCause::Deploy
            };
            vec![JobEvent::DeployRequested {
                cause,
                version,
                parallelism,
                generation: state.generation + 1,
                checkpoint: None,
                allow_state_loss: d.allow_state_loss,
                workflow: checked_workflow(&d.workflow)?,
            }]
        }
        JobCommand::MarkRunning(g) => {
            gen_check(g.generation)?;
            vec![JobEvent::Running {
                generation: g.generation,
            }]
        }
        JobCommand::MarkStable(g) => {
            gen_check(g.generation)?;
            let version = state.deployment.as_ref().map(|d| d.version).unwrap_or(0);
            vec![JobEvent::MarkedStable {
                version,
                generation: g.generation,
            }]
        }
        JobCommand::Stop(_) => vec![JobEvent::StopRequested {
            generation: state.generation,
        }],
        JobCommand::MarkStopped(g) => {
            gen_check(g.generation)?;
            vec![JobEvent::Stopped {
                generation: g.generation,
            }]
        }
        JobCommand::RecordRuntime(r) => {
            handed_out(r.generation)?;
            vec![JobEvent::RuntimeObserved {
                generation: r.generation,
                incident: r.incident.clone(),
                at: ctx.now,
            }]
        }
        JobCommand::RecordAutotune(r) => {
            handed_out(r.generation)?;
            vec![JobEvent::AutotuneDecided {
                generation: r.generation,
                decision: r.decision.clone(),
                at: ctx.now,
            }]
        }
        JobCommand::SetAutotune(t) => vec![JobEvent::AutotuneModeSet { mode: t.mode }],
        JobCommand::RecordAlert(a) => {
            let fires = state.alerts.get(&a.rule).is_some_and(|s| s.firing);
            if fires == a.firing {
                let now = if fires { "fires" } else { "does not fire" };
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("alert `{}` of job `{}` {now} already", a.rule, ctx.job),
                ));
            }
            let change = AlertChange {
                rule: a.rule.clone(),
                severity: a.severity,
                condition: a.condition.clone(),
                since: a.since,
                value: a.value,
                message: a.message.clone(),
                notify: a.notify.clone(),
                generation: state.generation,
                at: ctx.now,
            };
            vec![if a.firing {
                JobEvent::AlertFired(change)
            } else {
                JobEvent::AlertResolved(change)
            }]
        }
        JobCommand::MarkFailed(f) => {
            gen_check(f.generation)?;
            vec![JobEvent::Failed {
                generation: f.generation,
                reason: f.reason.clone(),
            }]
        }
        JobCommand::Rollback(_) => {
            let target = state.last_stable_version.ok_or_else(|| {
                reject(
                    RejectionCode::InvalidTransition,
                    format!("job `{}` has no stable version to roll back to", ctx.job),
                )
            })?;
            let current = state.deployment.as_ref();
            if state.phase == Phase::Running && current.map(|d| d.version) == Some(target) {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!("the last stable version {target} is already running"),
                ));
            }
            let parallelism = state
                .version(target)
                .map(|v| spec_parallelism(&v.spec))
                .unwrap_or(1);
            vec![JobEvent::DeployRequested {
                cause: DeployCause::Rollback,
                version: target,
                parallelism,
                generation: state.generation + 1,
                checkpoint: None,
                allow_state_loss: false,
                workflow: None,
            }]
        }
        JobCommand::Restore(r) => {
            let d = state.deployment.as_ref().ok_or_else(|| {
                reject(
                    RejectionCode::InvalidTransition,
                    format!(
                        "job `{}` was never deployed; there is nothing to restore",
                        ctx.job
                    ),
                )
            })?;
            vec![JobEvent::DeployRequested {
                cause: DeployCause::Restore,
                version: d.version,
                parallelism: d.parallelism,
                generation: state.generation + 1,
                checkpoint: r.checkpoint.clone(),
                allow_state_loss: false,
                workflow: checked_workflow(&r.workflow)?,
            }]
        }
        JobCommand::Rescale(r) => {
            let parallelism = checked_parallelism(r.parallelism)?;
            if let Some(g) = r.generation.filter(|g| *g != state.generation) {
                return Err(reject(
                    RejectionCode::Conflict,
                    format!(
                        "job `{}` is at generation {}, not {g}: the rescale was decided for a deployment that has since been replaced",
                        ctx.job, state.generation
                    ),
                ));
            }
            let d = state
                .deployment
                .as_ref()
                .ok_or_else(|| reject(RejectionCode::InvalidTransition, "nothing is deployed"))?;
            if d.parallelism == parallelism {
                return Err(reject(
                    RejectionCode::InvalidTransition,
                    format!(
                        "job `{}` already runs at parallelism {parallelism}",
                        ctx.job
                    ),
                ));
            }
            vec![JobEvent::DeployRequested {
                cause: DeployCause::Rescale,
                version: d.version,
                parallelism,
                generation: state.generation + 1,
                checkpoint: None,
                allow_state_loss: false,
                workflow: checked_workflow(&r.workflow)?,
            }]
        }
        JobCommand::Delete(_) => vec![JobEvent::Deleted],
    };
    Ok(events)
}

fn checked_spec(spec: &serde_json::Value) -> Result<serde_json::Value, Rejection> {
    let parsed = JobSpec::from_value(spec.clone()).map_err(|e| {
        let list: Vec<String> = e
            .problems
            .iter()
            .map(|p| format!("payload.spec.{p}"))
            .collect();
        reject(RejectionCode::InvalidCommand, list.join("; "))
    })?;
    serde_json::to_value(parsed)
        .map_err(|e| reject(RejectionCode::InvalidCommand, format!("payload.spec: {e}")))
}

/// A workflow named by a command: a file name in the workflows directory.
fn checked_workflow(w: &Option<String>) -> Result<Option<String>, Rejection> {
    let Some(name) = w else { return Ok(None) };
    let stem = name.strip_suffix(".yaml").unwrap_or(name);
    let ok = !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(Some(format!("{stem}.yaml")))
    } else {
        Err(reject(
            RejectionCode::InvalidCommand,
            format!("payload.workflow: `{name}` must be a workflow file name like `canary` or `canary.yaml`"),
        ))
    }
}

fn checked_parallelism(p: u32) -> Result<u32, Rejection> {
    if p == 0 || p > MAX_PARALLELISM {
        Err(reject(
            RejectionCode::InvalidCommand,
            format!("payload.parallelism: must be between 1 and {MAX_PARALLELISM}, got {p}"),
        ))
    } else {
        Ok(p)
    }
}

fn spec_parallelism(spec: &serde_json::Value) -> u32 {
    spec.get("parallelism")
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(1)
}

fn resolve_version(state: &JobState, v: Option<u32>, ctx: &Context<'_>) -> Result<u32, Rejection> {
    let version = v.or(state.latest_version()).unwrap_or(0);
    if state.version(version).is_none() {
        return Err(reject(
            RejectionCode::NotFound,
            format!(
                "job `{}` has no version {version}; latest is {}",
                ctx.job,
                state.latest_version().unwrap_or(0)
            ),
        ));
    }
    Ok(version)
}

fn expect_compiling(state: &JobState, version: u32) -> Result<(), Rejection> {
    match state.version(version).map(|v| &v.compile) {
        Some(CompileStatus::Compiling) => Ok(()),
        Some(other) => Err(reject(
            RejectionCode::InvalidTransition,
            format!(
                "version {version} is not compiling (status: {})",
                serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
                    .unwrap_or_default()
            ),
        )),
        None => Err(reject(
            RejectionCode::NotFound,
            format!("version {version} does not exist"),
        )),
    }
}
