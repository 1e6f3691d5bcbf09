//! Desired against actual: what the orchestrator does when a job's phase and
//! its deployment disagree, and what it records of the deployment's life.
//!
//! Pure: the caller observes the placement and the worker's status, and
//! carries out the corrections through the command path and the runtime.

use std::time::Duration;

use super::incident::RuntimeIncident;
use super::state::{JobState, Phase};

/// One task as its worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSeen {
    pub task: u32,
    pub restarts: u32,
    /// The reason of the last crash, if any.
    pub last_error: Option<String>,
    /// Set when the task has failed for good (restart budget spent).
    pub failed: Option<String>,
}

/// A deployment the runtime is asked to keep running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub generation: u64,
    pub worker: String,
    pub epoch: u64,
    /// The worker's answer; `None` when it could not be asked.
    pub tasks: Option<Vec<TaskSeen>>,
    /// How long the placed worker has been dead with the deployment still on
    /// it (no live worker could take it); `None` while it is alive.
    pub worker_lost_for: Option<Duration>,
}

/// What to do about one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correction {
    /// Record an incident on the job's stream.
    Record(RuntimeIncident),
    /// Stop a deployment that runs although the job is `phase`; record
    /// [`RuntimeIncident::StrayStopped`] once it is stopped.
    StopStray { generation: u64, phase: Phase },
    /// The deployment cannot run: move the job to `failed`.
    MarkFailed { generation: u64, reason: String },
}

/// How long a lost worker may keep a deployment before the job is failed.
pub const LOST_WORKER_GRACE: Duration = Duration::from_secs(60);

/// The corrections for one running placement of a job in `state`.
pub fn reconcile(state: &JobState, obs: &Observation) -> Vec<Correction> {
    match state.phase {
        // Nothing of this job should run.
        Phase::Absent | Phase::Idle | Phase::Stopped | Phase::Failed | Phase::Deleted => {
            return vec![Correction::StopStray {
                generation: obs.generation,
                phase: state.phase,
            }];
        }
        // The stop workflow owns the deployment until it reports.
        Phase::Stopping => return Vec::new(),
        Phase::Deploying | Phase::Running => {}
    }
    if obs.generation != state.generation {
        // An older generation still placed while a newer one deploys: the
        // deploy replaces it; a newer one cannot exist.
        return Vec::new();
    }
    let mut out = Vec::new();
    let seen = state
        .runtime
        .as_ref()
        .filter(|s| s.generation == obs.generation);
    match seen {
        None => out.push(Correction::Record(RuntimeIncident::Placed {
            worker: obs.worker.clone(),
            epoch: obs.epoch,
        })),
        Some(s) if obs.epoch > s.epoch => out.push(Correction::Record(RuntimeIncident::Resumed {
            worker: obs.worker.clone(),
            epoch: obs.epoch,
            previous_worker: s.worker.clone(),
        })),
        Some(_) => {}
    }
    // Restart counts are per process: compare only within the recorded epoch.
    let recorded = |task: u32| {
        seen.filter(|s| s.epoch == obs.epoch)
            .and_then(|s| s.restarts.get(&task).copied())
            .unwrap_or(0)
    };
    for t in obs.tasks.iter().flatten() {
        if t.restarts > recorded(t.task) {
            out.push(Correction::Record(RuntimeIncident::TaskRestarted {
                task: t.task,
                restarts: t.restarts,
                reason: t.last_error.clone(),
            }));
        }
    }
    // Failing for good is judged only once the deploy workflow has handed
    // the job over (`running`): while deploying, the workflow owns failures.
    if state.phase == Phase::Running {
        let failed = obs
            .tasks
            .iter()
            .flatten()
            .find_map(|t| t.failed.as_ref().map(|r| (t.task, r)));
        if let Some((task, reason)) = failed {
            out.push(Correction::MarkFailed {
                generation: obs.generation,
                reason: format!("task {task} failed after spending its restart budget: {reason}"),
            });
        } else if let Some(lost) = obs.worker_lost_for.filter(|d| *d >= LOST_WORKER_GRACE) {
            out.push(Correction::MarkFailed {
                generation: obs.generation,
                reason: format!(
                    "worker `{}` has been lost for {}s and no live worker could take its deployment",
                    obs.worker,
                    lost.as_secs()
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::event::JobEvent;
    use crate::domain::job::DeployCause;
    use chrono::Utc;

    fn job(phase_events: &[JobEvent]) -> JobState {
        let mut s = JobState::default();
        s.apply(&JobEvent::JobCreated {
            version: 1,
            spec: serde_json::json!({}),
            at: Utc::now(),
        });
        for e in phase_events {
            s.apply(e);
        }
        s
    }

    fn deployed(generation: u64) -> JobEvent {
        JobEvent::DeployRequested {
            cause: DeployCause::Deploy,
            version: 1,
            parallelism: 2,
            generation,
            checkpoint: None,
            allow_state_loss: false,
            workflow: None,
        }
    }

    fn running(generation: u64) -> Vec<JobEvent> {
        vec![deployed(generation), JobEvent::Running { generation }]
    }

    fn obs(generation: u64, epoch: u64, tasks: Vec<TaskSeen>) -> Observation {
        Observation {
            generation,
            worker: "serve".into(),
            epoch,
            tasks: Some(tasks),
            worker_lost_for: None,
        }
    }

    fn task(task: u32, restarts: u32) -> TaskSeen {
        TaskSeen {
            task,
            restarts,
            last_error: (restarts > 0).then(|| "broker gone".to_owned()),
            failed: None,
        }
    }

    fn record(state: &mut JobState, generation: u64, c: &[Correction]) {
        for c in c {
            if let Correction::Record(incident) = c {
                state.apply(&JobEvent::RuntimeObserved {
                    generation,
                    incident: incident.clone(),
                    at: Utc::now(),
                });
            }
        }
    }

    #[test]
    fn a_deployment_of_a_job_that_should_not_run_is_stopped() {
        let cases = [
            (vec![], Phase::Idle),
            (
                vec![
                    deployed(1),
                    JobEvent::Failed {
                        generation: 1,
                        reason: "x".into(),
                    },
                ],
                Phase::Failed,
            ),
            (
                vec![
                    deployed(1),
                    JobEvent::Failed {
                        generation: 1,
                        reason: "x".into(),
                    },
                    JobEvent::Deleted,
                ],
                Phase::Deleted,
            ),
            (
                vec![
                    deployed(1),
                    JobEvent::StopRequested { generation: 1 },
                    JobEvent::Stopped { generation: 1 },
                ],
                Phase::Stopped,
            ),
        ];
        for (events, phase) in cases {
            let s = job(&events);
            assert_eq!(s.phase, phase);
            assert_eq!(
                reconcile(&s, &obs(1, 1, vec![task(0, 0)])),
                vec![Correction::StopStray {
                    generation: 1,
                    phase
                }]
            );
        }
    }

    #[test]
    fn stopping_and_older_generations_are_left_to_their_workflows() {
        let mut ev = running(1);
        ev.push(JobEvent::StopRequested { generation: 1 });
        assert!(reconcile(&job(&ev), &obs(1, 1, vec![task(0, 0)])).is_empty());
        let mut ev = running(1);
        ev.push(deployed(2));
        assert!(reconcile(&job(&ev), &obs(1, 1, vec![task(0, 0)])).is_empty());
    }

    #[test]
    fn placement_resumes_and_restarts_are_recorded_once() {
        let mut s = job(&running(1));
        let first = reconcile(&s, &obs(1, 4, vec![task(0, 0), task(1, 0)]));
        assert_eq!(
            first,
            vec![Correction::Record(RuntimeIncident::Placed {
                worker: "serve".into(),
                epoch: 4
            })]
        );
        record(&mut s, 1, &first);
        assert!(reconcile(&s, &obs(1, 4, vec![task(0, 0), task(1, 0)])).is_empty());

        let crashed = reconcile(&s, &obs(1, 4, vec![task(0, 2), task(1, 0)]));
        assert_eq!(
            crashed,
            vec![Correction::Record(RuntimeIncident::TaskRestarted {
                task: 0,
                restarts: 2,
                reason: Some("broker gone".into())
            })]
        );
        record(&mut s, 1, &crashed);
        assert!(reconcile(&s, &obs(1, 4, vec![task(0, 2), task(1, 0)])).is_empty());
        assert_eq!(s.runtime.as_ref().map(|r| r.total_restarts), Some(2));

        // A new process under epoch 5: counters start again at 0; the
        // resume is recorded and old counts are not mistaken for new ones.
        let mut moved = obs(1, 5, vec![task(0, 1), task(1, 0)]);
        moved.worker = "w2".into();
        let resumed = reconcile(&s, &moved);
        assert_eq!(
            resumed,
            vec![
                Correction::Record(RuntimeIncident::Resumed {
                    worker: "w2".into(),
                    epoch: 5,
                    previous_worker: "serve".into()
                }),
                Correction::Record(RuntimeIncident::TaskRestarted {
                    task: 0,
                    restarts: 1,
                    reason: Some("broker gone".into())
                })
            ]
        );
        record(&mut s, 1, &resumed);
        let r = s
            .runtime
            .as_ref()
            .map(|r| (r.total_restarts, r.total_resumes));
        assert_eq!(r, Some((3, 1)));
    }

    #[test]
    fn a_task_failed_for_good_fails_a_running_job_but_not_a_deploying_one() {
        let mut t = task(1, 10);
        t.failed = Some("table not found".into());
        let o = obs(1, 1, vec![task(0, 0), t]);
        let c = reconcile(&job(&running(1)), &o);
        assert!(c.contains(&Correction::MarkFailed {
            generation: 1,
            reason: "task 1 failed after spending its restart budget: table not found".into()
        }));
        let c = reconcile(&job(&[deployed(1)]), &o);
        assert!(!c.iter().any(|c| matches!(c, Correction::MarkFailed { .. })));
    }

    #[test]
    fn a_lost_worker_fails_the_job_only_after_the_grace() {
        let s = job(&running(1));
        let mut o = obs(1, 1, vec![]);
        o.tasks = None;
        o.worker_lost_for = Some(LOST_WORKER_GRACE / 2);
        assert!(!reconcile(&s, &o)
            .iter()
            .any(|c| matches!(c, Correction::MarkFailed { .. })));
        o.worker_lost_for = Some(LOST_WORKER_GRACE);
        assert!(reconcile(&s, &o)
            .iter()
            .any(|c| matches!(c, Correction::MarkFailed { reason, .. } if reason.contains("worker `serve` has been lost"))));
    }
}
