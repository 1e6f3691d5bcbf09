//! The decision on synthetic windows: a small fluid model of a job produces
//! the reports the runtime would, every 2 s.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::decide::{decide, DecisionInput};
use super::explain::{Decision, Outcome, Rule};
use super::model::CurveKind;
use super::policy::{AutotunePolicy, Mode};
use super::sample::{Sample, TaskSample};
use super::sizing::Bound;
use super::state::{Rescale, TunerState};
use super::window::Unusable;
use crate::domain::duration::Dur;

/// A job whose tasks each process `capacity(p) / p` records per busy second.
struct Fake {
    at: DateTime<Utc>,
    generation: u64,
    p: u32,
    partitions: usize,
    capacity: fn(u32) -> f64,
    backlog: Vec<f64>,
    tasks: Vec<TaskSample>,
    checkpoints_failed: u64,
    samples: Vec<Sample>,
}

fn linear(p: u32) -> f64 {
    1000.0 * f64::from(p)
}

fn sublinear(p: u32) -> f64 {
    1000.0 * f64::from(p).powf(0.7)
}

fn t0() -> DateTime<Utc> {
    "2026-12-04T10:00:00Z".parse().unwrap()
}

impl Fake {
    fn new(p: u32, partitions: usize, capacity: fn(u32) -> f64) -> Self {
        let mut f = Fake {
            at: t0(),
            generation: 0,
            p,
            partitions,
            capacity,
            backlog: vec![0.0; partitions],
            tasks: Vec::new(),
            checkpoints_failed: 0,
            samples: Vec::new(),
        };
        f.rescale(p);
        f
    }

    /// A new generation at parallelism `p`: counters start again.
    fn rescale(&mut self, p: u32) {
        self.p = p;
        self.generation += 1;
        self.tasks = (0..p)
            .map(|task| TaskSample {
                task,
                stage: 0,
                records_in: 0,
                busy_ms: 0,
                idle_ms: 0,
                restarts: 0,
                lag: BTreeMap::new(),
                peak_memory_bytes: BTreeMap::new(),
            })
            .collect();
        self.report();
    }

    fn with_backlog(mut self, records: f64) -> Self {
        let n = self.partitions as f64;
        self.backlog.iter_mut().for_each(|b| *b += records / n);
        self
    }

    /// `secs` of `load` records/s, a report every 2 s.
    fn run(&mut self, secs: i64, load: f64) {
        let per_task = (self.capacity)(self.p) / f64::from(self.p);
        for _ in 0..secs / 2 {
            let n = self.partitions as f64;
            self.backlog.iter_mut().for_each(|b| *b += load * 2.0 / n);
            for t in &mut self.tasks {
                let mine: Vec<usize> = (t.task as usize..self.partitions)
                    .step_by(self.p as usize)
                    .collect();
                let waiting: f64 = mine.iter().map(|&i| self.backlog[i]).sum();
                let done = waiting.min(per_task * 2.0);
                for &i in &mine {
                    if waiting > 0.0 {
                        self.backlog[i] -= done * self.backlog[i] / waiting;
                    }
                }
                let busy = (done / per_task * 1000.0).round() as u64;
                t.records_in += done.round() as u64;
                t.busy_ms += busy;
                t.idle_ms += 2000 - busy.min(2000);
            }
            self.at += Duration::seconds(2);
            self.report();
        }
    }

    fn report(&mut self) {
        for t in &mut self.tasks {
            t.lag = (t.task as usize..self.partitions)
                .step_by(self.p as usize)
                .map(|i| (format!("in/{i}"), self.backlog[i].round() as i64))
                .collect();
        }
        self.samples.push(Sample {
            version: 1,
            generation: self.generation,
            parallelism: self.p,
            at: self.at,
            tasks: self.tasks.clone(),
            checkpoints_failed: self.checkpoints_failed,
        });
    }

    fn decide(&self, policy: &AutotunePolicy, state: &TunerState) -> (Decision, TunerState) {
        self.decide_limited(policy, state, None)
    }

    fn decide_limited(
        &self,
        policy: &AutotunePolicy,
        state: &TunerState,
        tenant_limit: Option<u32>,
    ) -> (Decision, TunerState) {
        let input = DecisionInput {
            now: self.at,
            policy,
            samples: &self.samples,
            tenant_limit,
        };
        decide(&input, state)
    }
}

fn apply() -> AutotunePolicy {
    AutotunePolicy {
        mode: Mode::Apply,
        ..AutotunePolicy::default()
    }
}

/// Past stabilization (1 m) and a full window (1 m).
const SETTLED: i64 = 130;

#[test]
fn scales_up_under_backlog_by_the_ds2_formula() {
    let mut job = Fake::new(4, 32, linear).with_backlog(300_000.0);
    job.run(SETTLED, 5000.0);
    let (d, state) = job.decide(&apply(), &TunerState::default());
    assert_eq!(d.rule, Rule::ScaleUp, "{d}");
    let s = &d.stages[0];
    let r = &s.rates;
    // Lag grows by what the 4 tasks cannot take.
    assert!((r.window_input_rate - 5000.0).abs() < 5.0, "{d}");
    assert!((r.true_rate.unwrap() - 4000.0).abs() < 5.0, "{d}");
    assert!(r.lag_end > 400_000, "{d}");
    let ds2 = (4.0 * r.target_rate / (r.true_rate.unwrap() * 0.7)).ceil() as u32;
    assert_eq!(s.needed, Some(ds2), "{d}");
    let sizing = d.sizing.as_ref().unwrap();
    assert_eq!(sizing.needed, ds2);
    assert_eq!(sizing.chosen, super::sizing::balanced(ds2, 32));
    assert_eq!(
        d.outcome,
        Outcome::Rescale {
            from: 4,
            to: sizing.chosen
        }
    );
    // The backlog pushed it above what the input alone needs: 5000 / 700 → 8.
    assert_eq!(d.steady, Some(8));
    assert!(sizing.chosen > 8);
    let last = state.last_rescale.as_ref().unwrap();
    assert!(last.for_backlog);
    assert_eq!(state.rescales, [job.at]);
}

#[test]
fn no_change_inside_the_band() {
    let mut job = Fake::new(8, 32, linear);
    job.run(SETTLED, 5000.0);
    let (d, state) = job.decide(&apply(), &TunerState::default());
    assert_eq!(d.rule, Rule::WithinBand, "{d}");
    assert_eq!(d.outcome, Outcome::NoChange);
    let u = d.utilization.unwrap();
    assert!((u - 0.625).abs() < 0.01, "{u}");
    assert!(state.pending_down.is_none() && state.last_rescale.is_none());
    // The band is what held it: without one the same window rescales.
    let tight = AutotunePolicy {
        utilization_band: 0.0,
        ..apply()
    };
    let (d, _) = job.decide(&tight, &TunerState::default());
    assert_ne!(d.rule, Rule::WithinBand, "{d}");
}

#[test]
fn scales_down_only_after_the_delay() {
    let mut job = Fake::new(16, 32, linear);
    job.run(SETTLED, 2000.0);
    let policy = apply();
    let (d, mut state) = job.decide(&policy, &TunerState::default());
    let since = job.at;
    assert_eq!(
        d.rule,
        Rule::ScaleDownPending {
            since,
            until: since + Duration::minutes(10)
        },
        "{d}"
    );
    // Held for 9m50s: still waiting; a load within the band in between resets it.
    for _ in 0..59 {
        job.run(10, 2000.0);
        let (d, s) = job.decide(&policy, &state);
        assert!(matches!(d.rule, Rule::ScaleDownPending { .. }), "{d}");
        assert_eq!(d.outcome, Outcome::NoChange);
        state = s;
    }
    job.run(10, 2000.0);
    let (d, after) = job.decide(&policy, &state);
    assert_eq!(d.rule, Rule::ScaleDown { since }, "{d}");
    // 2000 / 700 → 3 tasks, balanced over 32 partitions → 4.
    assert_eq!(d.outcome, Outcome::Rescale { from: 16, to: 4 });
    assert!(after.pending_down.is_none());

    let mut job = Fake::new(16, 32, linear);
    job.run(SETTLED, 2000.0);
    let (_, state) = job.decide(&policy, &TunerState::default());
    job.run(300, 2000.0);
    let (_, state) = job.decide(&policy, &state);
    job.run(120, 11_000.0);
    let (d, state) = job.decide(&policy, &state);
    assert_eq!(d.rule, Rule::WithinBand, "{d}");
    assert!(state.pending_down.is_none());
}

#[test]
fn a_drained_backlog_does_not_keep_the_parallelism_high() {
    // 8 tasks drain 200,000 records at 4000/s over the window's first 50 s.
    let mut job = Fake::new(8, 32, linear);
    job.run(60, 4000.0);
    job = job.with_backlog(200_000.0);
    job.run(SETTLED - 60, 4000.0);
    let policy = apply();
    let (d, _) = job.decide(&policy, &TunerState::default());
    let r = &d.stages[0].rates;
    // The tasks read faster than records arrived, and the lag fell by the difference.
    assert!(r.read_rate > 6000.0, "{d}");
    assert!(r.lag_growth < -2000.0, "{d}");
    assert!((r.input_rate - 4000.0).abs() < 300.0, "{d}");
    // 4000 / 700 → 6 (balanced 7), not what the read rate would ask for.
    assert_eq!(d.stages[0].needed, Some(6), "{d}");
    assert!(matches!(d.rule, Rule::ScaleDownPending { .. }), "{d}");

    // After a scale-up for a backlog, the drained job comes back without the delay.
    let state = TunerState {
        last_rescale: Some(Rescale {
            at: job.at - Duration::minutes(3),
            from: 4,
            to: 8,
            for_backlog: true,
        }),
        ..TunerState::default()
    };
    let (d, next) = job.decide(&policy, &state);
    assert_eq!(
        d.rule,
        Rule::BacklogDrained {
            lag: 0,
            early: false
        },
        "{d}"
    );
    assert_eq!(d.outcome, Outcome::Rescale { from: 8, to: 7 });
    assert!(!next.last_rescale.unwrap().for_backlog);
}

/// 8 tasks on 32 partitions, 5000 records/s and a 10-minute outage's
/// backlog: scaled up for it (to 32), as the tuner decides.
fn caught_up_job() -> (Fake, AutotunePolicy, TunerState, DateTime<Utc>) {
    let policy = apply();
    let mut job = Fake::new(8, 32, linear).with_backlog(3_000_000.0);
    job.run(SETTLED, 5000.0);
    let (d, state) = job.decide(&policy, &TunerState::default());
    assert_eq!(d.rule, Rule::ScaleUp, "{d}");
    assert_eq!(d.outcome, Outcome::Rescale { from: 8, to: 32 }, "{d}");
    assert_eq!(d.steady, Some(8), "{d}");
    assert!(state.last_rescale.as_ref().unwrap().for_backlog);
    let at = job.at;
    job.rescale(32);
    (job, policy, state, at)
}

#[test]
fn a_backlog_scale_up_is_undone_before_the_backlog_is_gone() {
    let (mut job, policy, mut state, scaled_up) = caught_up_job();
    let steady_drain = (0.7 * linear(8) - 5000.0) * 300.0;
    // A decision every 2 s: the first rescale is back to what the input needs.
    let (d, next) = loop {
        job.run(2, 5000.0);
        let (d, next) = job.decide(&policy, &state);
        if d.outcome != Outcome::NoChange {
            break (d, next);
        }
        assert!(job.at - scaled_up < Duration::minutes(3), "{d}");
        state = next;
    };
    assert_eq!(d.outcome, Outcome::Rescale { from: 32, to: 8 }, "{d}");
    let Rule::BacklogDrained { lag, early } = d.rule else {
        panic!("{d}");
    };
    // Before a full window (stabilization 1 m + window 1 m), and before the
    // backlog is gone: what remains is what 8 tasks drain within catch_up.
    assert!(early, "{d}");
    assert!(job.at - scaled_up < Duration::minutes(2), "{d}");
    let left: f64 = job.backlog.iter().sum();
    assert!(
        left > 0.0 && (lag as f64 - left).abs() < 100.0,
        "{left} {d}"
    );
    assert!(lag as f64 <= steady_drain, "{d}");
    // Had it waited for the full window (2 m after the scale-up), the 32
    // tasks (27,000 records/s above the input) would have drained it first.
    let to_full = (Duration::minutes(2) - (job.at - scaled_up)).num_seconds() as f64;
    assert!(left < 27_000.0 * to_full, "{left} {to_full}");
    assert!(!next.last_rescale.as_ref().unwrap().for_backlog);

    // Back at 8, the rest drains within catch_up of the scale-up, and the
    // job stays at 8: within the band, no further rescale.
    job.rescale(8);
    state = next;
    for _ in 0..60 {
        job.run(10, 5000.0);
        let (d, next) = job.decide(&policy, &state);
        assert_eq!(d.outcome, Outcome::NoChange, "{d}");
        state = next;
    }
    assert!(job.backlog.iter().sum::<f64>() < 1.0);
    let (d, _) = job.decide(&policy, &state);
    assert_eq!(d.rule, Rule::WithinBand, "{d}");
}

#[test]
fn before_a_full_window_nothing_but_going_back_is_decided() {
    let (mut job, policy, state, scaled_up) = caught_up_job();
    // 80 s after the scale-up: 20 s past stabilization, 450,000 records left
    // (a target of 6500 records/s: 10 tasks, balanced 16, more than the
    // input's 8). Nothing is decided on the short window, not even 32 → 16.
    job.run(80, 5000.0);
    let (d, next) = job.decide(&policy, &state);
    assert_eq!(
        d.rule,
        Rule::Unusable(Unusable::Incomplete {
            from: Some(scaled_up + Duration::minutes(1)),
            have_ms: 20_000,
            need_ms: 60_000
        }),
        "{d}"
    );
    assert_eq!(d.outcome, Outcome::NoChange);
    assert!(d.window.is_none() && d.stages.is_empty(), "{d}");
    assert_eq!(next.model, state.model);
    assert_eq!(
        (&next.rescales, &next.pending_down),
        (&state.rescales, &None)
    );
    // Without a scale-up for a backlog there is no early window at all.
    let plain = TunerState {
        last_rescale: None,
        ..state.clone()
    };
    job.run(12, 5000.0);
    let (d, _) = job.decide(&policy, &plain);
    assert!(
        matches!(d.rule, Rule::Unusable(Unusable::Incomplete { .. })),
        "{d}"
    );
    // With one, the same reports take it back to 8.
    let (d, _) = job.decide(&policy, &state);
    assert!(
        matches!(d.rule, Rule::BacklogDrained { early: true, .. }),
        "{d}"
    );
}

#[test]
fn a_backlog_decisions_figures_add_up() {
    let (mut job, policy, state, _) = caught_up_job();
    let (d, _) = loop {
        job.run(2, 5000.0);
        let (d, next) = job.decide(&policy, &state);
        if d.outcome != Outcome::NoChange {
            break (d, next);
        }
    };
    let Rule::BacklogDrained { lag, early: true } = d.rule else {
        panic!("{d}");
    };
    let w = d.window.as_ref().unwrap();
    assert_eq!(w.secs, (w.end - w.start).num_milliseconds() as f64 / 1000.0);
    assert!(w.secs >= 15.0 && w.secs < 60.0, "{d}");
    assert_eq!(w.samples as f64, w.secs / 2.0 + 1.0);
    let s = &d.stages[0];
    let r = &s.rates;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    assert_eq!(lag, r.lag_end);
    // The tasks read far above the input; the lag fell by the difference.
    assert!(r.read_rate > 25_000.0, "{d}");
    assert!(close(r.window_input_rate, r.read_rate + r.lag_growth));
    assert!((r.input_rate - 5000.0).abs() < 50.0, "{d}");
    assert!(close(r.catch_up_rate, r.lag_end as f64 / 300.0));
    assert!(close(r.target_rate, r.input_rate + r.catch_up_rate));
    assert!(close(
        r.utilization.unwrap(),
        r.target_rate / r.true_rate.unwrap()
    ));
    // The input alone needs 8, and so does the input with what is left.
    let steady = d.steady.unwrap();
    let z = d.sizing.as_ref().unwrap();
    assert_eq!((steady, z.chosen), (8, 8), "{d}");
    assert_eq!(d.outcome, Outcome::Rescale { from: 32, to: 8 });
    let curve = s.curve.as_ref().unwrap();
    let (n, p) = (s.needed.unwrap(), s.predicted.unwrap());
    assert!(p * 0.7 >= r.target_rate && curve.predict(n - 1) * 0.7 < r.target_rate);
    assert!(curve.predict(steady) * 0.7 >= r.target_rate, "{d}");
    // Serialized and read back whole, and readable.
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["rule"]["rule"], "backlog_drained");
    assert_eq!(json["rule"]["lag"], lag);
    assert_eq!(json["rule"]["early"], true);
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
    let text = d.to_string();
    for part in [
        "[apply]: rescale 32 → 8",
        &format!("its {lag} records left drain within catch_up at 8"),
        &format!("judged on the {:.0} s since stabilization", w.secs),
        "without the backlog: 8",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
    // A decision recorded before the rule carried figures still reads.
    let old: Rule = serde_json::from_str(r#"{"rule":"backlog_drained"}"#).unwrap();
    assert_eq!(
        old,
        Rule::BacklogDrained {
            lag: 0,
            early: false
        }
    );
}

#[test]
fn clamped_by_partitions_policy_and_tenant() {
    let mut job = Fake::new(2, 8, linear);
    job.run(SETTLED, 50_000.0);
    let (d, _) = job.decide(&apply(), &TunerState::default());
    let z = d.sizing.as_ref().unwrap();
    assert_eq!(
        (z.chosen, z.bounded_by),
        (8, Some(Bound::Partitions)),
        "{d}"
    );
    let capped = AutotunePolicy {
        max_parallelism: Some(6),
        ..apply()
    };
    let (d, _) = job.decide(&capped, &TunerState::default());
    // 6 tasks on 8 partitions are no faster than 4.
    assert_eq!(d.outcome, Outcome::Rescale { from: 2, to: 4 }, "{d}");
    let (d, _) = job.decide_limited(&capped, &TunerState::default(), Some(2));
    let z = d.sizing.as_ref().unwrap();
    assert_eq!((z.chosen, z.bounded_by), (2, Some(Bound::TenantCapacity)));
    assert_eq!(d.rule, Rule::NoBetterSize, "{d}");

    let mut idle = Fake::new(8, 8, linear);
    idle.run(SETTLED, 100.0);
    let floor = AutotunePolicy {
        min_parallelism: 3,
        scale_down_delay: Dur::from_secs(0),
        ..apply()
    };
    let (d, _) = idle.decide(&floor, &TunerState::default());
    let z = d.sizing.as_ref().unwrap();
    assert_eq!(
        (z.chosen, z.bounded_by),
        (3, Some(Bound::MinParallelism)),
        "{d}"
    );
    assert_eq!(d.outcome, Outcome::Rescale { from: 8, to: 3 });
}

#[test]
fn a_restart_or_failed_checkpoint_in_the_window_blocks() {
    let mut job = Fake::new(4, 32, linear);
    job.run(SETTLED - 30, 5000.0);
    job.tasks[2].restarts += 1;
    job.run(30, 5000.0);
    let (d, state) = job.decide(&apply(), &TunerState::default());
    assert_eq!(
        d.rule,
        Rule::Unusable(Unusable::Restarted {
            task: 2,
            restarts: 1
        }),
        "{d}"
    );
    assert_eq!(d.outcome, Outcome::NoChange);
    assert!(state.rescales.is_empty());
    // Once the restart is out of the window, decisions resume.
    job.run(62, 5000.0);
    let (d, _) = job.decide(&apply(), &TunerState::default());
    assert_eq!(d.rule, Rule::ScaleUp, "{d}");

    let mut job = Fake::new(4, 32, linear);
    job.run(SETTLED - 30, 5000.0);
    job.checkpoints_failed += 1;
    job.run(30, 5000.0);
    let (d, _) = job.decide(&apply(), &TunerState::default());
    assert_eq!(
        d.rule,
        Rule::Unusable(Unusable::CheckpointFailed { failures: 1 }),
        "{d}"
    );
}

#[test]
fn stabilizes_after_every_change() {
    let policy = apply();
    let mut job = Fake::new(4, 32, linear);
    job.run(50, 5000.0);
    let (d, state) = job.decide(&policy, &TunerState::default());
    assert_eq!(
        d.rule,
        Rule::Unusable(Unusable::Stabilizing {
            until: t0() + Duration::minutes(1)
        }),
        "{d}"
    );
    job.run(40, 5000.0);
    let (d, state) = job.decide(&policy, &state);
    assert!(
        matches!(d.rule, Rule::Unusable(Unusable::Incomplete { .. })),
        "{d}"
    );
    job.run(40, 5000.0);
    let (d, state) = job.decide(&policy, &state);
    let to = d.outcome.rescale_to().unwrap();
    let rescaled_at = job.at;
    // The old deployment keeps reporting until the rescale happens: ignored.
    job.run(20, 5000.0);
    job.rescale(to);
    job.run(90, 5000.0);
    let (d, state) = job.decide(&policy, &state);
    // Stabilization counts from the new deployment's first report.
    let restarted = rescaled_at + Duration::seconds(20);
    assert_eq!(
        d.rule,
        Rule::Unusable(Unusable::Incomplete {
            from: Some(restarted + Duration::minutes(1)),
            have_ms: 30_000,
            need_ms: 60_000
        }),
        "{d}"
    );
    job.run(30, 5000.0);
    let (d, _) = job.decide(&policy, &state);
    assert!(d.window.is_some(), "{d}");
}

#[test]
fn at_most_max_rescales_per_hour() {
    let mut job = Fake::new(4, 32, linear);
    job.run(SETTLED, 5000.0);
    let policy = AutotunePolicy {
        max_rescales_per_hour: 2,
        ..apply()
    };
    let now = job.at;
    let state = TunerState {
        rescales: vec![
            now - Duration::minutes(61),
            now - Duration::minutes(50),
            now - Duration::minutes(40),
        ],
        ..TunerState::default()
    };
    let (d, next) = job.decide(&policy, &state);
    assert_eq!(
        d.rule,
        Rule::RescaleLimit {
            rescales: 2,
            max: 2
        },
        "{d}"
    );
    assert_eq!(d.outcome, Outcome::NoChange);
    assert_eq!(next.rescales.len(), 2, "the oldest has aged out");
    let more = AutotunePolicy {
        max_rescales_per_hour: 3,
        ..policy
    };
    let (d, next) = job.decide(&more, &state);
    assert_eq!(d.rule, Rule::ScaleUp, "{d}");
    assert_eq!(next.rescales.len(), 3);
}

#[test]
fn recommend_mode_changes_nothing() {
    let mut job = Fake::new(4, 32, linear);
    job.run(SETTLED, 5000.0);
    let policy = AutotunePolicy {
        mode: Mode::Recommend,
        ..apply()
    };
    let (d, state) = job.decide(&policy, &TunerState::default());
    assert!(
        matches!(d.outcome, Outcome::Recommend { from: 4, .. }),
        "{d}"
    );
    assert_eq!(d.outcome.rescale_to(), None);
    assert!(state.last_rescale.is_none() && state.rescales.is_empty());
    let (d, _) = job.decide(&AutotunePolicy::default(), &TunerState::default());
    assert_eq!((d.rule, d.outcome), (Rule::Off, Outcome::NoChange));
}

#[test]
fn the_explanations_figures_add_up() {
    let mut job = Fake::new(4, 32, linear);
    job.run(SETTLED, 5000.0);
    let policy = apply();
    let (d, _) = job.decide(&policy, &TunerState::default());
    let w = d.window.as_ref().unwrap();
    assert_eq!(w.secs, (w.end - w.start).num_milliseconds() as f64 / 1000.0);
    assert!(w.secs >= 60.0 && w.samples as f64 == w.secs / 2.0 + 1.0);
    let s = &d.stages[0];
    let r = &s.rates;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    assert!(close(r.read_rate, r.records_in as f64 / w.secs));
    assert!(close(
        r.lag_growth,
        (r.lag_end as f64 - r.lag_start as f64) / w.secs
    ));
    assert!(close(r.window_input_rate, r.read_rate + r.lag_growth));
    assert!(close(r.input_rate, r.window_input_rate));
    assert!(close(r.catch_up_rate, r.lag_end as f64 / 300.0));
    assert!(close(r.target_rate, r.input_rate + r.catch_up_rate));
    assert!(close(
        r.utilization.unwrap(),
        r.target_rate / r.true_rate.unwrap()
    ));
    assert!(close(d.utilization.unwrap(), r.utilization.unwrap()));
    assert!(close(
        r.busy_ratio,
        r.busy_ms as f64 / (r.busy_ms + r.idle_ms) as f64
    ));
    let (n, p) = (s.needed.unwrap(), s.predicted.unwrap());
    assert!(
        p * 0.7 >= r.target_rate && s.curve.as_ref().unwrap().predict(n - 1) * 0.7 < r.target_rate
    );
    // Serialized and read back whole, and readable.
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["rule"]["rule"], "scale_up");
    assert_eq!(json["outcome"]["action"], "rescale");
    assert_eq!(json["stages"][0]["target_rate"], r.target_rate);
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
    let text = d.to_string();
    for part in [
        "[apply]: rescale 4 →",
        "utilization above the band",
        "true rate",
        "= read",
        "catch-up",
        "model      linear",
        "sizing: needed",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

#[test]
fn learns_a_sub_linear_job_and_sizes_a_step_on_it() {
    let policy = apply();
    let mut job = Fake::new(4, 64, sublinear);
    job.run(SETTLED, 2000.0);
    let (d, state) = job.decide(&policy, &TunerState::default());
    assert_eq!(d.rule, Rule::WithinBand, "{d}");
    assert_eq!(d.stages[0].curve.as_ref().unwrap().kind, CurveKind::Linear);
    // Run at a second parallelism (say an operator rescaled it).
    job.rescale(8);
    job.run(SETTLED, 2000.0);
    let (d, state) = job.decide(&policy, &state);
    let curve = d.stages[0].curve.as_ref().unwrap();
    assert_eq!(
        (curve.kind, curve.points.len()),
        (CurveKind::Learned, 2),
        "{d}"
    );
    assert!((curve.exponent - 0.7).abs() < 0.01, "{d}");
    // A step in load: sized on the learned curve, not on linear scaling.
    job.run(20, 6000.0);
    let (d, state) = job.decide(&policy, &state);
    let target = d.stages[0].rates.target_rate;
    let truth = (1..=64).find(|&p| sublinear(p) * 0.7 >= target).unwrap();
    let ds2 = (8.0 * target / (sublinear(8) * 0.7)).ceil() as u32;
    assert!(ds2 < truth, "{ds2} {truth}");
    assert_eq!(d.stages[0].needed, Some(truth), "{d}");
    let to = d.outcome.rescale_to().unwrap();
    assert_eq!(to, super::sizing::balanced(truth, 64));
    job.rescale(to);
    job.run(SETTLED, 6000.0);
    let (d, _) = job.decide(&policy, &state);
    assert!(d.utilization.unwrap() <= 0.8, "{d}");
}

#[test]
fn a_step_inside_the_window_is_sized_on_the_new_rate() {
    let policy = apply();
    let mut job = Fake::new(4, 64, linear);
    job.run(SETTLED, 2000.0);
    job.run(6, 8000.0);
    let (d, _) = job.decide(&policy, &TunerState::default());
    assert!(matches!(d.rule, Rule::LoadChanging { .. }), "{d}");
    job.run(12, 8000.0);
    let (d, _) = job.decide(&policy, &TunerState::default());
    let r = &d.stages[0].rates;
    let c = r.change.as_ref().unwrap();
    assert!((c.rate_after - 8000.0).abs() < 50.0, "{d}");
    assert!(r.window_input_rate < 4000.0, "{d}");
    // 8000 + catch-up over 0.7 of 1000/task: 12 tasks at least, balanced over 64.
    let to = d.outcome.rescale_to().unwrap();
    assert!(to >= 12, "{d}");
}

#[test]
fn recommends_memory_from_the_peak() {
    let mut job = Fake::new(2, 4, linear);
    job.tasks[0]
        .peak_memory_bytes
        .insert("upper".into(), 10 << 20);
    job.tasks[1]
        .peak_memory_bytes
        .insert("upper".into(), 12 << 20);
    job.run(10, 100.0);
    let (d, _) = job.decide(&apply(), &TunerState::default());
    assert_eq!(d.memory.len(), 1);
    assert_eq!(
        (d.memory[0].peak_bytes, d.memory[0].memory_mb),
        (12 << 20, 18)
    );
    assert!(d
        .to_string()
        .contains("memory upper: peak 12.0 MiB × 1.5 → memory_mb 18"));
}
