//! The explanation every decision carries, "no change" included: the window
//! and inputs, each intermediate figure, the rule that decided and the
//! result. It is serialized into the decision event and printed by
//! `weir job autotune --explain` through its `Display`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::memory::MemoryRecommendation;
use super::model::{Curve, CurveKind};
use super::policy::Mode;
use super::rates::StageRates;
use super::sizing::{Bound, Sizing};
use super::window::Unusable;

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub mode: Mode,
    /// The parallelism the newest report shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    pub outcome: Outcome,
    pub rule: Rule,
    /// The policy's figures the rule compared against.
    pub target_utilization: f64,
    pub utilization_band: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFigures>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageFigures>,
    /// The highest utilization of any stage: what the band is checked on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// From the parallelism needed to the one chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizing: Option<Sizing>,
    /// The parallelism the input alone needs, without the backlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryRecommendation>,
}

/// What the decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome {
    NoChange,
    /// `apply` mode: the job is to be rescaled.
    Rescale {
        from: u32,
        to: u32,
    },
    /// `recommend` mode: what `apply` would have done.
    Recommend {
        from: u32,
        to: u32,
    },
}

impl Outcome {
    /// The parallelism to rescale to, in `apply` mode.
    pub fn rescale_to(&self) -> Option<u32> {
        match self {
            Outcome::Rescale { to, .. } => Some(*to),
            _ => None,
        }
    }
}

/// The rule that decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// The policy's mode is `off`.
    Off,
    /// No window the decision could trust.
    Unusable(Unusable),
    /// The load changed inside the window too recently to measure the new rate.
    LoadChanging {
        stage: u32,
        at: DateTime<Utc>,
        secs_after: f64,
        need_secs: f64,
    },
    /// Records arrive but no task was busy long enough to be timed.
    NotMeasured { stage: u32 },
    /// The utilization is within the band: nothing to gain.
    WithinBand,
    /// Outside the band, but balancing and bounds give the current parallelism.
    NoBetterSize,
    /// More capacity is needed.
    ScaleUp,
    /// Less is needed, and has been for the whole scale-down delay.
    ScaleDown { since: DateTime<Utc> },
    /// A scale-up for a backlog is undone without the delay once what
    /// remains of the backlog needs no more than the input alone (input +
    /// lag / catch-up fits the parallelism the input needs), or is drained.
    BacklogDrained {
        /// Records still behind, summed over the stages: the steady
        /// parallelism drains them within `catch_up`.
        #[serde(default)]
        lag: u64,
        /// Judged on the reports since stabilization, before they span a
        /// full `metric_window`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        early: bool,
    },
    /// Less is needed, not yet for the whole delay.
    ScaleDownPending {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// A change is needed but the hour's rescales are spent.
    RescaleLimit { rescales: u32, max: u32 },
}

/// The window a decision was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub secs: f64,
    pub samples: usize,
    pub version: u32,
    pub generation: u64,
}

/// One stage's figures and what it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFigures {
    #[serde(flatten)]
    pub rates: StageRates,
    /// The capacity curve used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
    /// Smallest parallelism whose predicted capacity × target utilization
    /// reaches the target rate (1024, the most allowed, if none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<u32>,
    /// Its predicted capacity, records/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<f64>,
    /// The same for the input rate alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady: Option<u32>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Off => "off",
            Mode::Recommend => "recommend",
            Mode::Apply => "apply",
        };
        let outcome = match self.outcome {
            Outcome::NoChange => "no change".to_owned(),
            Outcome::Rescale { from, to } => format!("rescale {from} → {to}"),
            Outcome::Recommend { from, to } => format!("recommend {from} → {to} (not applied)"),
        };
        writeln!(
            f,
            "{} [{mode}]: {outcome}: {}",
            self.at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.rule_text()
        )?;
        if let Some(w) = &self.window {
            writeln!(
                f,
                "window {} → {} ({:.0} s, {} reports), version {} generation {}, parallelism {}",
                w.start.format("%H:%M:%S"),
                w.end.format("%H:%M:%S"),
                w.secs,
                w.samples,
                w.version,
                w.generation,
                self.parallelism.unwrap_or(0)
            )?;
        }
        for s in &self.stages {
            write_stage(f, s, self.target_utilization)?;
        }
        if let Some(u) = self.utilization {
            writeln!(
                f,
                "utilization {:.3}, band {:.2}–{:.2} around {:.2}",
                u,
                self.target_utilization - self.utilization_band,
                self.target_utilization + self.utilization_band,
                self.target_utilization
            )?;
        }
        if let Some(z) = &self.sizing {
            write!(
                f,
                "sizing: needed {} → balanced {} over {} partitions → chosen {} (bounds {}–{}",
                z.needed, z.balanced, z.partitions, z.chosen, z.lower, z.upper
            )?;
            match z.bounded_by {
                Some(b) => writeln!(f, ", bounded by {})", bound_text(b))?,
                None => writeln!(f, ")")?,
            }
            if let Some(s) = self.steady {
                writeln!(f, "without the backlog: {s}")?;
            }
        }
        for m in &self.memory {
            writeln!(
                f,
                "memory {}: peak {:.1} MiB × {} → memory_mb {}",
                m.operator,
                m.peak_bytes as f64 / (1024.0 * 1024.0),
                m.headroom,
                m.memory_mb
            )?;
        }
        Ok(())
    }
}

fn write_stage(f: &mut fmt::Formatter<'_>, s: &StageFigures, util: f64) -> fmt::Result {
    let r = &s.rates;
    writeln!(
        f,
        "stage {}: {} tasks on {} partitions, busy {:.0}%",
        r.stage,
        r.tasks,
        r.partitions,
        r.busy_ratio * 100.0
    )?;
    match r.true_rate {
        Some(t) => writeln!(
            f,
            "  true rate  {t:>12.1} rec/s  (records in / busy time, {} of {} tasks timed)",
            r.timed_tasks, r.tasks
        )?,
        None => writeln!(
            f,
            "  true rate  {:>12}        (no task busy long enough)",
            "—"
        )?,
    }
    writeln!(
        f,
        "  input      {:>12.1} rec/s  = read {:.1} + lag growth {:.1} ({} → {})",
        r.window_input_rate, r.read_rate, r.lag_growth, r.lag_start, r.lag_end
    )?;
    if let Some(c) = &r.change {
        writeln!(
            f,
            "  change     {:>12.1} rec/s  after {} ({:.0} s; {:.1} before, t = {:.1}): sized on it",
            c.rate_after,
            c.at.format("%H:%M:%S"),
            c.secs_after,
            c.rate_before,
            c.t
        )?;
    }
    writeln!(
        f,
        "  catch-up   {:>12.1} rec/s  = lag {} / catch_up",
        r.catch_up_rate, r.lag_end
    )?;
    writeln!(
        f,
        "  target     {:>12.1} rec/s  = {:.1} + {:.1}",
        r.target_rate, r.input_rate, r.catch_up_rate
    )?;
    if let Some(c) = &s.curve {
        match c.kind {
            CurveKind::Linear => writeln!(f, "  model      linear (one observed parallelism)")?,
            CurveKind::Learned => writeln!(
                f,
                "  model      learned from {} parallelisms, rate ∝ p^{:.2} beyond them",
                c.points.len(),
                c.exponent
            )?,
        }
    }
    if let (Some(n), Some(p)) = (s.needed, s.predicted) {
        writeln!(
            f,
            "  needed     {n} tasks: predicted {p:.1} rec/s × {util} = {:.1} ≥ {:.1}",
            p * util,
            r.target_rate
        )?;
    }
    Ok(())
}

fn bound_text(b: Bound) -> &'static str {
    match b {
        Bound::MinParallelism => "min_parallelism",
        Bound::MaxParallelism => "max_parallelism",
        Bound::Partitions => "the partition count",
        Bound::TenantCapacity => "the tenant's capacity",
    }
}

impl Decision {
    /// The rule in words.
    pub fn rule_text(&self) -> String {
        match &self.rule {
            Rule::Off => "autotune is off".into(),
            Rule::Unusable(u) => match u {
                Unusable::NoSamples => "no metrics reported yet".into(),
                Unusable::Stale { last } => {
                    format!("metrics are stale (newest at {})", last.format("%H:%M:%S"))
                }
                Unusable::Stabilizing { until } => {
                    format!(
                        "stabilizing after a change until {}",
                        until.format("%H:%M:%S")
                    )
                }
                Unusable::Incomplete {
                    have_ms, need_ms, ..
                } => format!(
                    "the metric window is not full ({:.0} s of {:.0} s)",
                    *have_ms as f64 / 1000.0,
                    *need_ms as f64 / 1000.0
                ),
                Unusable::Restarted { task, restarts } => {
                    format!("task {task} restarted {restarts} time(s) in the window")
                }
                Unusable::CheckpointFailed { failures } => {
                    format!("{failures} checkpoint(s) failed in the window")
                }
                Unusable::CounterReset { task } => {
                    format!("task {task}'s counters were reset in the window")
                }
                Unusable::LagUnknown { task } => format!("task {task} has not measured its lag"),
            },
            Rule::LoadChanging {
                stage,
                at,
                secs_after,
                need_secs,
            } => format!(
                "stage {stage}'s load changed at {}; {:.0} s of {:.0} s measured since",
                at.format("%H:%M:%S"),
                secs_after,
                need_secs
            ),
            Rule::NotMeasured { stage } => {
                format!("stage {stage} has input but no task was busy long enough to time")
            }
            Rule::WithinBand => "utilization within the band".into(),
            Rule::NoBetterSize => {
                "utilization outside the band, but no other parallelism is better".into()
            }
            Rule::ScaleUp => "utilization above the band".into(),
            Rule::ScaleDown { since } => format!(
                "utilization below the band since {}, the whole scale-down delay",
                since.format("%H:%M:%S")
            ),
            Rule::BacklogDrained { lag, early } => {
                let mut text = match (*lag, &self.sizing) {
                    (0, _) | (_, None) => "the backlog scaled up for is drained".to_owned(),
                    (lag, Some(z)) => format!(
                        "the backlog scaled up for no longer needs more tasks: \
                         its {lag} records left drain within catch_up at {}",
                        z.chosen
                    ),
                };
                if let (true, Some(w)) = (early, &self.window) {
                    text += &format!(
                        " (judged on the {:.0} s since stabilization, before a full window)",
                        w.secs
                    );
                }
                text
            }
            Rule::ScaleDownPending { since, until } => format!(
                "utilization below the band since {}; waiting until {}",
                since.format("%H:%M:%S"),
                until.format("%H:%M:%S")
            ),
            Rule::RescaleLimit { rescales, max } => {
                format!("{rescales} rescales in the last hour, the most allowed is {max}")
            }
        }
    }
}
