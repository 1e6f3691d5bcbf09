//! Closed-loop benchmark of the auto-tuner: a simulated job
//! (`weir::domain::autotune::sim`) reports every 2 s as the runtime does,
//! a tuner decides every 10 s, and its rescales are applied (processing
//! stops for the rescale pause while records keep arriving). Each scenario
//! runs twice in the same process, with the same seeded noise: once with
//! Weir's decision (default policy, `mode: apply`) and once with the plain
//! DS2 / Flink autoscaler formula (no band, stabilization, scale-down
//! delay, hourly limit, balancing or learned model). Load shapes and
//! capacity curves are the files in `benches/autotune/`.
//!
//! Run: `cargo bench -p weir --features test-util --bench autotune`.
//!
//! - (a) steady load ±30% noise for 24 h: rescales (target 0);
//! - (b) a step from 1× to 4×: seconds until the capacity is right
//!   (utilization at most the top of the band) and the lag drained, for
//!   good (target: two metric windows plus the rescale pause);
//! - (c) a 10-minute outage: the parallelism once the lag has drained
//!   against what the steady load needs (target: no overshoot), and the
//!   task·s above that need from the drain to the end (target 0);
//! - (d) a sub-linear job under ten load steps: rescales per step (target:
//!   ≥ 60% fewer than DS2) and steps left under-provisioned (target 0).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Duration;
use weir::domain::autotune::policy::{AutotunePolicy, Mode};
use weir::domain::autotune::sim::{
    self, CapacityCurve, Ds2Baseline, LoadShape, Scenario, Trace, Tuner, Weir,
};
use weir::domain::autotune::{sizing, TunerState};

const SEED: u64 = 0x5eed_a070;
const PAUSE: f64 = 5.0;

fn data(name: &str) -> Result<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/autotune")
        .join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn curve(name: &str) -> Result<CapacityCurve, String> {
    CapacityCurve::parse(&data(name)?).map_err(|e| format!("{name}: {e}"))
}

fn load(name: &str) -> Result<LoadShape, String> {
    LoadShape::parse(&data(name)?).map_err(|e| format!("{name}: {e}"))
}

fn policy() -> AutotunePolicy {
    AutotunePolicy {
        mode: Mode::Apply,
        ..AutotunePolicy::default()
    }
}

/// Weir's decision with its learned model forgotten before every decision,
/// so it always scales linearly from the current parallelism, as DS2 does:
/// what the model alone is worth.
struct WeirLinear(Weir);

impl Tuner for WeirLinear {
    fn evaluate(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        samples: &[weir::domain::autotune::Sample],
    ) -> Option<u32> {
        self.0.state.model = Default::default();
        self.0.evaluate(now, samples)
    }
}

/// Both tuners over one scenario: (Weir, DS2).
fn both(s: &Scenario) -> (Trace, Trace) {
    let p = policy();
    let mut weir = Weir {
        policy: p.clone(),
        state: TunerState::default(),
    };
    let mut ds2 = Ds2Baseline {
        target_utilization: p.target_utilization,
        catch_up_secs: p.catch_up.as_millis() as f64 / 1000.0,
        window: Duration::milliseconds(p.metric_window.as_millis() as i64),
    };
    let tuners: [&mut dyn Tuner; 2] = [&mut weir, &mut ds2];
    let [a, b] = tuners.map(|t| sim::run(s, t));
    (a, b)
}

/// Records of lag that count as drained: what arrives in one report interval.
fn drained(load: f64) -> f64 {
    load * 2.0
}

/// Whether the job keeps up with room to spare: utilization at most the
/// band's top, lag drained.
fn settled(t: &sim::Tick, top: f64) -> bool {
    t.running && t.capacity * top >= t.load && t.lag <= drained(t.load)
}

/// Seconds from `from` until the job is settled for good (until `to`).
fn settle_time(trace: &Trace, from: f64, to: f64, top: f64) -> Option<f64> {
    let ticks: Vec<_> = trace
        .ticks
        .iter()
        .filter(|t| t.t >= from && t.t < to)
        .collect();
    let last_bad = ticks.iter().rposition(|t| !settled(t, top));
    match last_bad {
        None => Some(0.0),
        Some(i) if i + 1 < ticks.len() => Some(ticks[i + 1].t - from),
        Some(_) => None,
    }
}

fn rescales_between(trace: &Trace, from: f64, to: f64) -> usize {
    trace
        .rescales
        .iter()
        .filter(|r| r.0 >= from && r.0 < to)
        .count()
}

struct Row {
    scenario: &'static str,
    figure: &'static str,
    weir: String,
    ds2: String,
    target: String,
}

fn main() -> ExitCode {
    match run() {
        Ok(rows) => {
            print(&rows);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("autotune bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<Vec<Row>, String> {
    let p = policy();
    let top = p.target_utilization + p.utilization_band;
    let window = p.metric_window.as_millis() as f64 / 1000.0;
    let linear = curve("capacity-linear.csv")?;
    let base = Scenario {
        partitions: 32,
        capacity: linear.clone(),
        load: load("load-steady.csv")?,
        load_noise: 0.3,
        capacity_noise: 0.05,
        rescale_pause: PAUSE,
        initial_parallelism: 8,
        outages: Vec::new(),
        seconds: 24.0 * 3600.0,
        evaluate_every: 10.0,
        seed: SEED,
    };
    let mut rows = Vec::new();

    // (a) steady ±30% for 24 h, sized right from the start.
    let (w, d) = both(&base);
    rows.push(Row {
        scenario: "(a) steady ±30%, 24 h",
        figure: "rescales",
        weir: w.rescales.len().to_string(),
        ds2: d.rescales.len().to_string(),
        target: "0".into(),
    });

    // (b) a step from 1× to 4×.
    let step = Scenario {
        partitions: 64,
        load: load("load-step.csv")?,
        initial_parallelism: 6,
        seconds: 2.0 * 3600.0,
        ..base.clone()
    };
    let at = step
        .load
        .steps()
        .get(1)
        .copied()
        .ok_or("load-step.csv has no step")?;
    let (w, d) = both(&step);
    let secs = |t: &Trace| {
        settle_time(t, at, step.seconds, top).map_or("never".into(), |s| format!("{s:.0} s"))
    };
    rows.push(Row {
        scenario: "(b) step 1× → 4×",
        figure: "time to right size, lag drained",
        weir: secs(&w),
        ds2: secs(&d),
        target: format!("≤ {:.0} s", 2.0 * window + PAUSE),
    });
    rows.push(Row {
        scenario: "",
        figure: "rescales after the step",
        weir: rescales_between(&w, at, step.seconds).to_string(),
        ds2: rescales_between(&d, at, step.seconds).to_string(),
        target: "1".into(),
    });

    // (c) a 10-minute outage under the steady load.
    let outage_at = 3600.0;
    let outage = Scenario {
        outages: vec![(outage_at, 600.0)],
        seconds: 3.0 * 3600.0,
        ..base.clone()
    };
    let (w, d) = both(&outage);
    // What the steady load needs: the smallest parallelism whose capacity at
    // the target utilization covers it, balanced over the partitions.
    let steady_load = outage.load.at(outage_at);
    let need = (1..=outage.partitions)
        .find(|&q| outage.capacity.at(q) * p.target_utilization >= steady_load)
        .unwrap_or(outage.partitions);
    let need = sizing::balanced(need, outage.partitions);
    let before = |t: &Trace| {
        t.ticks
            .iter()
            .rfind(|k| k.t < outage_at)
            .map_or(0, |k| k.parallelism)
    };
    let drain_at = |t: &Trace| {
        t.ticks
            .iter()
            .find(|k| k.t > outage_at + 600.0 && k.running && k.lag <= drained(k.load))
            .map(|k| k.t)
    };
    let after = |t: &Trace| -> String {
        let Some(at) = drain_at(t) else {
            return "never drained".into();
        };
        let peak = t
            .ticks
            .iter()
            .filter(|k| k.t >= at)
            .map(|k| k.parallelism)
            .max()
            .unwrap_or(0);
        let end = t.ticks.last().map_or(0, |k| k.parallelism);
        format!(
            "before {}, at drain {}, max after {peak}, end {end}",
            before(t),
            t.ticks
                .iter()
                .find(|k| k.t == at)
                .map_or(0, |k| k.parallelism)
        )
    };
    rows.push(Row {
        scenario: "(c) 10-minute outage",
        figure: "parallelism once drained",
        weir: after(&w),
        ds2: after(&d),
        target: format!("{need} (steady need)"),
    });
    let excess = |t: &Trace| {
        drain_at(t).map_or("never drained".into(), |at| {
            let sum: u32 = t
                .ticks
                .iter()
                .filter(|k| k.t >= at)
                .map(|k| k.parallelism.saturating_sub(need))
                .sum();
            format!("{sum} task·s")
        })
    };
    rows.push(Row {
        scenario: "",
        figure: "task·s above steady need after the drain",
        weir: excess(&w),
        ds2: excess(&d),
        target: "0".into(),
    });
    let drain = |t: &Trace| {
        drain_at(t).map_or("never".into(), |a| {
            format!("{:.0} s", a - outage_at - 600.0)
        })
    };
    rows.push(Row {
        scenario: "",
        figure: "restart → lag drained",
        weir: drain(&w),
        ds2: drain(&d),
        target: format!("≤ {}", p.catch_up),
    });
    rows.push(Row {
        scenario: "",
        figure: "rescales after the outage",
        weir: rescales_between(&w, outage_at, outage.seconds).to_string(),
        ds2: rescales_between(&d, outage_at, outage.seconds).to_string(),
        target: "".into(),
    });

    // (d) a sub-linear job under load steps, one an hour.
    let steps = Scenario {
        partitions: 60,
        capacity: curve("capacity-sublinear.csv")?,
        load: load("load-steps.csv")?,
        load_noise: 0.1,
        initial_parallelism: 3,
        ..base.clone()
    };
    let times = steps.load.steps();
    let steps = Scenario {
        seconds: times.last().copied().unwrap_or(0.0) + 3600.0,
        ..steps
    };
    let (w, d) = both(&steps);
    let per_step = |t: &Trace| {
        let mut counts = Vec::new();
        let mut under = 0;
        for (i, &from) in times.iter().enumerate() {
            let to = times.get(i + 1).copied().unwrap_or(steps.seconds);
            counts.push(rescales_between(t, from, to));
            let end = t.ticks.iter().rfind(|k| k.t < to);
            if end.is_some_and(|k| !settled(k, top)) {
                under += 1;
            }
        }
        (counts, under)
    };
    let mut ablation = WeirLinear(Weir {
        policy: p.clone(),
        state: TunerState::default(),
    });
    let l = sim::run(&steps, &mut ablation);
    let ((wc, wu), (dc, du), (lc, lu)) = (per_step(&w), per_step(&d), per_step(&l));
    let total = |c: &[usize]| c.iter().sum::<usize>();
    let list = |c: &[usize]| {
        c.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    rows.push(Row {
        scenario: "(d) sub-linear, 10 steps",
        figure: "rescales per step",
        weir: list(&wc),
        ds2: list(&dc),
        target: "".into(),
    });
    let (tw, td) = (total(&wc), total(&dc));
    rows.push(Row {
        scenario: "",
        figure: "rescales in all",
        weir: tw.to_string(),
        ds2: td.to_string(),
        target: format!(
            "≥ 60% fewer (Weir: {:.0}% fewer)",
            if td == 0 {
                0.0
            } else {
                100.0 * (1.0 - tw as f64 / td as f64)
            }
        ),
    });
    rows.push(Row {
        scenario: "",
        figure: "Weir without the learned model",
        weir: format!("{} ({}; {lu} under)", total(&lc), list(&lc)),
        ds2: "".into(),
        target: "".into(),
    });
    rows.push(Row {
        scenario: "",
        figure: "steps ending under-provisioned",
        weir: wu.to_string(),
        ds2: du.to_string(),
        target: "0".into(),
    });
    Ok(rows)
}

fn print(rows: &[Row]) {
    let w = |f: fn(&Row) -> &str, head: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(head.chars().count())
    };
    let ws = [
        w(|r| r.scenario, "scenario"),
        w(|r| r.figure, "figure"),
        w(|r| &r.weir, "Weir"),
        w(|r| &r.ds2, "DS2 baseline"),
        w(|r| &r.target, "target"),
    ];
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(ws)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(["scenario", "figure", "Weir", "DS2 baseline", "target"]);
    println!(
        "|{}|",
        ws.iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in rows {
        line([r.scenario, r.figure, &r.weir, &r.ds2, &r.target]);
    }
}
