//! Pure placement decisions: which worker a deployment goes to, and which
//! placements move when their worker stops heartbeating. No I/O: the callers
//! read the live workers (NATS) and the placements (PostgreSQL) and carry out
//! the result with conditional updates.

use std::collections::BTreeMap;

use crate::runtime::control::DeploymentKey;

/// A live worker as the control plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLoad {
    pub id: String,
    /// Deployments it accepts (from its heartbeat).
    pub capacity: u32,
    /// Deployments placed on it (desired running).
    pub placed: u32,
}

impl WorkerLoad {
    fn has_room(&self) -> bool {
        self.placed < self.capacity
    }
}

/// Where a deployment should run: its current worker if that one is alive
/// (a redeploy stays put, keeping caches warm), else the live worker with
/// the smallest share of its capacity in use; ties go to the lower id, so
/// replicas deciding at the same time agree. `None` if no live worker has room.
pub fn choose_worker(current: Option<&str>, live: &[WorkerLoad]) -> Option<String> {
    if let Some(cur) = current {
        if live.iter().any(|w| w.id == cur) {
            return Some(cur.to_owned());
        }
    }
    least_loaded(live.iter())
}

fn least_loaded<'a>(workers: impl Iterator<Item = &'a WorkerLoad>) -> Option<String> {
    workers
        .filter(|w| w.has_room())
        // placed/capacity compared without division: a/b < c/d ⇔ a·d < c·b.
        .min_by(|a, b| {
            (u64::from(a.placed) * u64::from(b.capacity))
                .cmp(&(u64::from(b.placed) * u64::from(a.capacity)))
                .then_with(|| a.id.cmp(&b.id))
        })
        .map(|w| w.id.clone())
}

/// A placement the failover looks at: desired running, on `worker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub key: DeploymentKey,
    pub worker: String,
    pub epoch: u64,
}

/// Move `key` from a dead worker to `to`, if its epoch is still `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub key: DeploymentKey,
    pub from: String,
    pub to: String,
    pub epoch: u64,
}

/// The moves that put every placement of a dead worker on a live one,
/// spreading them by load (each planned move counts towards its target).
/// Placements that find no room stay where they are, to be retried.
pub fn failover(placements: &[Placed], live: &[WorkerLoad]) -> Vec<Move> {
    let mut load: BTreeMap<&str, WorkerLoad> =
        live.iter().map(|w| (w.id.as_str(), w.clone())).collect();
    let mut moves = Vec::new();
    let mut orphans: Vec<&Placed> = placements
        .iter()
        .filter(|p| !load.contains_key(p.worker.as_str()))
        .collect();
    // Deterministic order: the same inputs give the same plan on every replica.
    orphans.sort_by(|a, b| (&a.key.tenant, &a.key.job).cmp(&(&b.key.tenant, &b.key.job)));
    for p in orphans {
        let Some(to) = least_loaded(load.values()) else {
            break;
        };
        if let Some(w) = load.get_mut(to.as_str()) {
            w.placed += 1;
        }
        moves.push(Move {
            key: p.key.clone(),
            from: p.worker.clone(),
            to,
            epoch: p.epoch,
        });
    }
    moves
}

/// A placement naming this worker, as its reconcile pass sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub key: DeploymentKey,
    pub generation: u64,
    pub epoch: u64,
    /// Desired running (else stopped).
    pub running: bool,
    /// How long ago the row last changed.
    pub age: std::time::Duration,
}

/// A deployment this worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub key: DeploymentKey,
    pub generation: u64,
    pub epoch: u64,
}

/// What one reconcile pass of a worker does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPlan {
    /// Stop these (with a final checkpoint if `true`).
    pub stop: Vec<(DeploymentKey, bool)>,
    /// Start (resume) these placements.
    pub start: Vec<DeploymentKey>,
}

/// A worker's reconcile decision. Running placements it does not run at
/// their generation and epoch are started. What it runs but no longer
/// holds (moved to another worker, or claimed again under a new epoch and
/// marked stopped) stops without a final checkpoint, which the epoch fence
/// would refuse anyway; what is marked stopped under the same epoch for
/// longer than `stop_grace` (the control plane's stop request was lost)
/// stops with one.
pub fn reconcile_local(
    assigned: &[Assigned],
    local: &[Local],
    stop_grace: std::time::Duration,
) -> LocalPlan {
    let mut plan = LocalPlan::default();
    for l in local {
        match assigned.iter().find(|a| a.key == l.key) {
            None => plan.stop.push((l.key.clone(), false)),
            Some(a) if a.running => {}
            Some(a) if a.epoch != l.epoch => plan.stop.push((l.key.clone(), false)),
            Some(a) if a.age > stop_grace => plan.stop.push((l.key.clone(), true)),
            Some(_) => {}
        }
    }
    for a in assigned.iter().filter(|a| a.running) {
        let runs = local
            .iter()
            .any(|l| l.key == a.key && l.generation == a.generation && l.epoch == a.epoch);
        if !runs {
            plan.start.push(a.key.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(job: &str) -> DeploymentKey {
        DeploymentKey {
            tenant: "acme".into(),
            job: job.into(),
        }
    }

    fn assigned(job: &str, generation: u64, epoch: u64, running: bool, age_s: u64) -> Assigned {
        Assigned {
            key: key(job),
            generation,
            epoch,
            running,
            age: Duration::from_secs(age_s),
        }
    }

    fn local(job: &str, generation: u64, epoch: u64) -> Local {
        Local {
            key: key(job),
            generation,
            epoch,
        }
    }

    #[test]
    fn a_restarted_worker_starts_everything_placed_on_it() {
        let plan = reconcile_local(
            &[assigned("a", 1, 2, true, 0), assigned("b", 3, 5, true, 0)],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(plan.start, [key("a"), key("b")]);
        assert!(plan.stop.is_empty());
    }

    #[test]
    fn what_runs_at_the_placed_generation_and_epoch_is_left_alone() {
        let plan = reconcile_local(
            &[assigned("a", 1, 2, true, 0)],
            &[local("a", 1, 2)],
            Duration::from_secs(30),
        );
        assert_eq!(plan, LocalPlan::default());
    }

    #[test]
    fn a_new_epoch_or_generation_restarts_and_a_moved_job_stops() {
        let plan = reconcile_local(
            &[assigned("a", 1, 3, true, 0), assigned("b", 2, 1, true, 0)],
            &[local("a", 1, 2), local("b", 1, 1), local("gone", 1, 1)],
            Duration::from_secs(30),
        );
        assert_eq!(plan.start, [key("a"), key("b")]);
        assert_eq!(plan.stop, [(key("gone"), false)]);
    }

    #[test]
    fn a_stopped_placement_stops_after_the_grace_with_a_final_checkpoint() {
        let grace = Duration::from_secs(30);
        let fresh = reconcile_local(&[assigned("a", 1, 1, false, 5)], &[local("a", 1, 1)], grace);
        assert_eq!(
            fresh,
            LocalPlan::default(),
            "the stop request is on its way"
        );
        let old = reconcile_local(
            &[assigned("a", 1, 1, false, 60)],
            &[local("a", 1, 1)],
            grace,
        );
        assert_eq!(old.stop, [(key("a"), true)]);
        let fenced = reconcile_local(&[assigned("a", 1, 2, false, 0)], &[local("a", 1, 1)], grace);
        assert_eq!(fenced.stop, [(key("a"), false)]);
        assert!(fenced.start.is_empty());
    }

    fn w(id: &str, capacity: u32, placed: u32) -> WorkerLoad {
        WorkerLoad {
            id: id.into(),
            capacity,
            placed,
        }
    }

    fn placed(job: &str, worker: &str, epoch: u64) -> Placed {
        Placed {
            key: DeploymentKey {
                tenant: "acme".into(),
                job: job.into(),
            },
            worker: worker.into(),
            epoch,
        }
    }

    #[test]
    fn a_live_current_worker_keeps_its_deployment_even_when_busier() {
        let live = [w("a", 10, 9), w("b", 10, 0)];
        assert_eq!(choose_worker(Some("a"), &live).as_deref(), Some("a"));
    }

    #[test]
    fn a_dead_current_worker_is_replaced_by_the_least_loaded_share() {
        // b runs 2 of 4 (50%), c 3 of 10 (30%).
        let live = [w("b", 4, 2), w("c", 10, 3)];
        assert_eq!(choose_worker(Some("a"), &live).as_deref(), Some("c"));
        assert_eq!(choose_worker(None, &live).as_deref(), Some("c"));
    }

    #[test]
    fn ties_go_to_the_lower_id_and_full_workers_are_skipped() {
        assert_eq!(
            choose_worker(None, &[w("z", 4, 1), w("m", 4, 1)]).as_deref(),
            Some("m")
        );
        assert_eq!(
            choose_worker(None, &[w("a", 2, 2), w("b", 8, 7)]).as_deref(),
            Some("b")
        );
        assert_eq!(choose_worker(None, &[w("a", 1, 1)]), None);
        assert_eq!(choose_worker(Some("gone"), &[]), None);
    }

    #[test]
    fn failover_moves_only_placements_of_dead_workers_spreading_them() {
        let live = [w("b", 10, 1), w("c", 10, 0)];
        let ps = [
            placed("j1", "a", 3),
            placed("j2", "a", 1),
            placed("j3", "b", 7),
            placed("j4", "dead", 2),
        ];
        let moves = failover(&ps, &live);
        let got: Vec<_> = moves
            .iter()
            .map(|m| (m.key.job.as_str(), m.from.as_str(), m.to.as_str(), m.epoch))
            .collect();
        // c is emptiest, then b and c tie at 1 (b wins by id), then c again.
        assert_eq!(
            got,
            [
                ("j1", "a", "c", 3),
                ("j2", "a", "b", 1),
                ("j4", "dead", "c", 2)
            ]
        );
    }

    #[test]
    fn failover_without_room_leaves_placements_for_later() {
        let live = [w("b", 1, 0)];
        let ps = [placed("j1", "a", 1), placed("j2", "a", 1)];
        let moves = failover(&ps, &live);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].to, "b");
        assert!(failover(&ps, &[]).is_empty());
    }
}
