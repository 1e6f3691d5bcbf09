//! A simulated job for the closed-loop benchmark (`benches/autotune.rs`):
//! records arrive on the partitions at a load that changes over time; each
//! task drains its partitions at `capacity(p) / p` records per busy second;
//! a rescale or an outage stops processing while records keep arriving.
//! Every 2 s it reports what the runtime would (cumulative per-task
//! counters, lag per partition, a new generation after every restart), and
//! a tuner reads those reports and decides, as the autotune workflow does.
//!
//! Two tuners: Weir's [`decide`](super::decide()) with its policy and state,
//! and [`Ds2Baseline`], the plain DS2 / Flink autoscaler formula without
//! Weir's safeguards, balancing or learned model.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use super::decide::{decide, DecisionInput};
use super::policy::AutotunePolicy;
use super::rates;
use super::sample::{Sample, TaskSample};
use super::state::TunerState;
use super::window::{Segment, Window};

/// A data file that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct DataError {
    pub line: usize,
    pub problem: String,
}

/// Reads `x,y` rows of numbers, skipping a header and `#` comments.
fn rows(text: &str) -> Result<Vec<(f64, f64)>, DataError> {
    let mut out = Vec::new();
    let mut header = true;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |problem: &str| DataError {
            line: i + 1,
            problem: problem.to_owned(),
        };
        let (a, b) = line.split_once(',').ok_or_else(|| bad("expected `x,y`"))?;
        match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => out.push((x, y)),
            // The header: the first row that is not a comment.
            _ if header => {}
            _ => return Err(bad("expected two numbers")),
        }
        header = false;
    }
    if out.is_empty() {
        return Err(DataError {
            line: 0,
            problem: "no rows".into(),
        });
    }
    Ok(out)
}

/// Records/s of the whole job by parallelism (`parallelism,records_per_s`),
/// interpolated between rows and extended linearly from the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityCurve(Vec<(f64, f64)>);

impl CapacityCurve {
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let mut rows = rows(text)?;
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self(rows))
    }

    pub fn at(&self, p: u32) -> f64 {
        let p = f64::from(p);
        let pts = &self.0;
        for w in pts.windows(2) {
            let ((p0, r0), (p1, r1)) = (w[0], w[1]);
            if p <= p1 {
                return r0 + (r1 - r0) * ((p - p0) / (p1 - p0)).max(0.0);
            }
        }
        pts.last().map_or(0.0, |&(q, r)| r * p / q)
    }
}

/// Input records/s over time (`seconds,records_per_s`): each rate holds
/// from its time until the next row's.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadShape(Vec<(f64, f64)>);

impl LoadShape {
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let mut rows = rows(text)?;
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self(rows))
    }

    pub fn at(&self, t: f64) -> f64 {
        self.0
            .iter()
            .take_while(|(s, _)| *s <= t)
            .last()
            .map_or(0.0, |r| r.1)
    }

    /// Times at which the rate changes.
    pub fn steps(&self) -> Vec<f64> {
        self.0.iter().map(|r| r.0).collect()
    }
}

/// A simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub partitions: u32,
    pub capacity: CapacityCurve,
    pub load: LoadShape,
    /// Each second's arrivals vary uniformly by ± this share.
    pub load_noise: f64,
    /// Each task's speed varies uniformly by ± this share each second.
    pub capacity_noise: f64,
    /// Seconds a rescale stops processing.
    pub rescale_pause: f64,
    pub initial_parallelism: u32,
    /// (start, seconds) during which the job is down.
    pub outages: Vec<(f64, f64)>,
    pub seconds: f64,
    /// How often the tuner decides.
    pub evaluate_every: f64,
    pub seed: u64,
}

/// Decides a parallelism from reports.
pub trait Tuner {
    /// The parallelism to rescale to, if any.
    fn evaluate(&mut self, now: DateTime<Utc>, samples: &[Sample]) -> Option<u32>;
}

/// Weir's decision, applied.
pub struct Weir {
    pub policy: AutotunePolicy,
    pub state: TunerState,
}

impl Tuner for Weir {
    fn evaluate(&mut self, now: DateTime<Utc>, samples: &[Sample]) -> Option<u32> {
        let input = DecisionInput {
            now,
            policy: &self.policy,
            samples,
            tenant_limit: None,
        };
        let (d, state) = decide(&input, &self.state);
        self.state = state;
        d.outcome.rescale_to()
    }
}

/// The DS2 / Flink autoscaler formula alone: every evaluation with a full
/// window of the current deployment, `ceil(p × (input + lag / catch_up) /
/// (true rate × utilization))`, bounded by the partitions only.
pub struct Ds2Baseline {
    pub target_utilization: f64,
    pub catch_up_secs: f64,
    pub window: Duration,
}

impl Tuner for Ds2Baseline {
    fn evaluate(&mut self, now: DateTime<Utc>, samples: &[Sample]) -> Option<u32> {
        let segment = Segment::current(samples, now).ok()?;
        let window = Window::over(&segment, segment.first().at, self.window, now).ok()?;
        let p = window.parallelism;
        let mut wanted = 1;
        for r in rates::of(&window, self.catch_up_secs, f64::INFINITY) {
            let rate = r.true_rate?;
            let need = (f64::from(r.tasks) * r.target_rate / (rate * self.target_utilization))
                .ceil()
                .clamp(1.0, f64::from(r.partitions.max(1)));
            wanted = wanted.max(need as u32);
        }
        (wanted != p).then_some(wanted)
    }
}

/// The state of the simulated job each second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    pub t: f64,
    pub load: f64,
    pub parallelism: u32,
    /// Records/s the job can process (its busiest task's limit).
    pub capacity: f64,
    pub lag: f64,
    pub running: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub ticks: Vec<Tick>,
    /// (time, from, to).
    pub rescales: Vec<(f64, u32, u32)>,
}

/// Reports kept for the tuner.
const KEEP: f64 = 300.0;
const REPORT_EVERY: u64 = 2;

struct Job<'a> {
    s: &'a Scenario,
    rng: fastrand::Rng,
    p: u32,
    generation: u64,
    backlog: Vec<f64>,
    tasks: Vec<TaskAcc>,
    down_until: f64,
}

#[derive(Clone, Default)]
struct TaskAcc {
    records: f64,
    busy: f64,
    idle: f64,
}

impl Job<'_> {
    fn restart(&mut self, p: u32) {
        self.p = p.clamp(1, self.s.partitions);
        self.generation += 1;
        self.tasks = vec![TaskAcc::default(); self.p as usize];
    }

    fn mine(&self, task: usize) -> impl Iterator<Item = usize> {
        (task..self.s.partitions as usize).step_by(self.p as usize)
    }

    /// What the job can process per second: its busiest task limits it
    /// when partitions are loaded evenly.
    fn capacity(&self) -> f64 {
        let n = f64::from(self.s.partitions);
        let per_task = self.s.capacity.at(self.p) / f64::from(self.p);
        per_task * n / f64::from(self.s.partitions.div_ceil(self.p))
    }

    fn second(&mut self, t: f64) {
        let n = self.backlog.len() as f64;
        let noise = 1.0 + self.s.load_noise * (2.0 * self.rng.f64() - 1.0);
        let arriving = self.s.load.at(t) * noise.max(0.0);
        self.backlog.iter_mut().for_each(|b| *b += arriving / n);
        if t < self.down_until {
            return;
        }
        let per_task = self.s.capacity.at(self.p) / f64::from(self.p);
        for task in 0..self.tasks.len() {
            let speed =
                per_task * (1.0 + self.s.capacity_noise * (2.0 * self.rng.f64() - 1.0)).max(0.01);
            let parts: Vec<usize> = self.mine(task).collect();
            let waiting: f64 = parts.iter().map(|&i| self.backlog[i]).sum();
            let done = waiting.min(speed);
            if waiting > 0.0 {
                for &i in &parts {
                    self.backlog[i] -= done * self.backlog[i] / waiting;
                }
            }
            let acc = &mut self.tasks[task];
            acc.records += done;
            acc.busy += done / speed;
            acc.idle += 1.0 - done / speed;
        }
    }

    fn report(&self, at: DateTime<Utc>) -> Sample {
        let tasks = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, acc)| TaskSample {
                task: i as u32,
                stage: 0,
                records_in: acc.records as u64,
                busy_ms: (acc.busy * 1000.0) as u64,
                idle_ms: (acc.idle * 1000.0) as u64,
                restarts: 0,
                lag: self
                    .mine(i)
                    .map(|p| (format!("in/{p}"), self.backlog[p] as i64))
                    .collect::<BTreeMap<_, _>>(),
                peak_memory_bytes: BTreeMap::new(),
            })
            .collect();
        Sample {
            version: 1,
            generation: self.generation,
            parallelism: self.p,
            at,
            tasks,
            checkpoints_failed: 0,
        }
    }
}

/// Runs `scenario` with `tuner` deciding every `evaluate_every` seconds.
pub fn run(scenario: &Scenario, tuner: &mut dyn Tuner) -> Trace {
    let start: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
    let mut job = Job {
        s: scenario,
        rng: fastrand::Rng::with_seed(scenario.seed),
        p: 1,
        generation: 0,
        backlog: vec![0.0; scenario.partitions as usize],
        tasks: Vec::new(),
        down_until: 0.0,
    };
    job.restart(scenario.initial_parallelism);
    let mut samples: VecDeque<Sample> = VecDeque::new();
    let mut trace = Trace::default();
    let every = scenario.evaluate_every.max(1.0) as u64;
    let mut pending: Option<u32> = None;
    for sec in 0..scenario.seconds as u64 {
        let t = sec as f64;
        let now = start + Duration::seconds(sec as i64);
        for &(from, secs) in &scenario.outages {
            if t == from {
                job.down_until = t + secs;
                pending = Some(job.p);
            }
        }
        if let Some(p) = pending {
            if t >= job.down_until {
                job.restart(p);
                pending = None;
            }
        }
        let running = t >= job.down_until;
        if running && sec % REPORT_EVERY == 0 {
            samples.push_back(job.report(now));
            while samples
                .front()
                .is_some_and(|s| (now - s.at).num_seconds() as f64 > KEEP)
            {
                samples.pop_front();
            }
        }
        if running && sec % every == 0 {
            if let Some(to) = tuner.evaluate(now, samples.make_contiguous()) {
                let to = to.clamp(1, scenario.partitions);
                if to != job.p {
                    trace.rescales.push((t, job.p, to));
                    job.down_until = t + scenario.rescale_pause;
                    pending = Some(to);
                }
            }
        }
        trace.ticks.push(Tick {
            t,
            load: scenario.load.at(t),
            parallelism: pending.unwrap_or(job.p),
            capacity: job.capacity(),
            lag: job.backlog.iter().sum(),
            running,
        });
        job.second(t);
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::autotune::policy::Mode;

    fn scenario(load: &str, p: u32) -> Scenario {
        Scenario {
            partitions: 32,
            capacity: CapacityCurve::parse("parallelism,records_per_s\n1,1000\n32,32000\n")
                .unwrap(),
            load: LoadShape::parse(load).unwrap(),
            load_noise: 0.0,
            capacity_noise: 0.0,
            rescale_pause: 5.0,
            initial_parallelism: p,
            outages: Vec::new(),
            seconds: 1800.0,
            evaluate_every: 10.0,
            seed: 1,
        }
    }

    #[test]
    fn reads_data_files_and_names_a_bad_line() {
        let c =
            CapacityCurve::parse("# comment\nparallelism,records_per_s\n1,1000\n4,2800\n").unwrap();
        assert_eq!(c.at(1), 1000.0);
        assert_eq!(c.at(2), 1600.0);
        assert_eq!(c.at(8), 5600.0);
        let l = LoadShape::parse("seconds,records_per_s\n0,100\n60,400\n").unwrap();
        assert_eq!((l.at(59.0), l.at(60.0)), (100.0, 400.0));
        let e = LoadShape::parse("seconds,records_per_s\n0,100\n60;400\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = LoadShape::parse("# c\nseconds,rate\n0,100\nx,1\n").unwrap_err();
        assert_eq!(e.line, 4);
    }

    #[test]
    fn records_are_conserved_and_a_stopped_job_builds_lag() {
        let mut s = scenario("seconds,records_per_s\n0,3000\n", 4);
        s.outages = vec![(600.0, 60.0)];
        struct Never;
        impl Tuner for Never {
            fn evaluate(&mut self, _: DateTime<Utc>, _: &[Sample]) -> Option<u32> {
                None
            }
        }
        let trace = run(&s, &mut Never);
        let at = |t: usize| trace.ticks[t];
        assert!(at(599).lag < 1.0);
        assert!((at(660).lag - 180_000.0).abs() < 1.0, "{:?}", at(660));
        // 4000/s of capacity for 3000/s of load drains 1000/s.
        assert!((at(700).lag - 140_000.0).abs() < 1_500.0, "{:?}", at(700));
        assert!(at(1000).lag < 1.0);
    }

    /// Scenario (c) of the benchmark, whatever the outage's phase against
    /// the tuner's 10 s: the backlog is drained at the steady parallelism,
    /// not at the one scaled up to for it.
    #[test]
    fn an_outage_backlog_ends_at_the_steady_parallelism() {
        for (offset, seed) in [(0.0, 1), (3.0, 2), (7.0, 3)] {
            let mut s = scenario("seconds,records_per_s\n0,5000\n", 8);
            s.load_noise = 0.3;
            s.capacity_noise = 0.05;
            s.seed = seed;
            let restart = 600.0 + offset + 600.0;
            s.outages = vec![(600.0 + offset, 600.0)];
            s.seconds = restart + 900.0;
            let mut weir = Weir {
                policy: AutotunePolicy {
                    mode: Mode::Apply,
                    ..AutotunePolicy::default()
                },
                state: TunerState::default(),
            };
            let trace = run(&s, &mut weir);
            let drained = trace
                .ticks
                .iter()
                .find(|k| k.t > restart && k.lag <= 2.0 * k.load)
                .unwrap();
            assert!(drained.t - restart <= 300.0, "{drained:?}");
            let above: u32 = trace
                .ticks
                .iter()
                .filter(|k| k.t >= drained.t)
                .map(|k| k.parallelism.saturating_sub(8))
                .sum();
            assert_eq!(above, 0, "{offset}: {:?}", trace.rescales);
            let to: Vec<u32> = trace.rescales.iter().map(|r| r.2).collect();
            assert_eq!(to, [32, 8], "{offset}: {:?}", trace.rescales);
        }
    }

    #[test]
    fn weir_meets_a_step_and_the_baseline_follows_too() {
        let s = scenario("seconds,records_per_s\n0,2000\n600,8000\n", 4);
        let mut weir = Weir {
            policy: AutotunePolicy {
                mode: Mode::Apply,
                ..AutotunePolicy::default()
            },
            state: TunerState::default(),
        };
        let trace = run(&s, &mut weir);
        let last = trace.ticks[trace.ticks.len() - 1];
        assert!(
            last.capacity * 0.8 >= 8000.0,
            "{:?} {:?}",
            last,
            trace.rescales
        );
        assert!(last.lag < 1000.0, "{last:?}");
        assert!(trace.rescales.len() <= 2, "{:?}", trace.rescales);
        let mut ds2 = Ds2Baseline {
            target_utilization: 0.7,
            catch_up_secs: 300.0,
            window: Duration::seconds(60),
        };
        let trace = run(&s, &mut ds2);
        assert!(!trace.rescales.is_empty());
        assert!(trace.ticks[trace.ticks.len() - 1].capacity >= 8000.0);
    }
}
