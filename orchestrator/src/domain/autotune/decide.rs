//! The decision: from a policy, the reports, the tuner's state and the time,
//! a new parallelism (or none), its explanation and the next state. Pure:
//! replaying the same inputs gives the same decision.
//!
//! In order: the window must be usable (see [`super::window`]); the
//! capacity of the current parallelism is learned; a load change too recent
//! to measure waits; inside the utilization band nothing changes; outside
//! it, each stage needs the smallest parallelism whose predicted capacity
//! × target utilization reaches its target rate (DS2's
//! `ceil(p × target / (true rate × utilization))` while only one
//! parallelism has been observed), balanced over the partitions and
//! bounded; a scale-up is applied at once, a scale-down once it has held
//! for the whole delay, both within the hourly allowance.
//!
//! A scale-up made for a backlog is undone without the delay as soon as
//! what remains of the backlog no longer needs more than the input alone:
//! the target rate (input + lag / catch-up) falls as the lag drains, and
//! once the parallelism the input needs covers it, the job goes back to
//! that parallelism and drains the rest there. So that the job is back
//! before the backlog is gone rather than a window after, this one rule is
//! also judged on the reports since stabilization once they span
//! [`EARLY_WINDOW_SHARE`] of the window: the input rate is measured on the
//! source side, so a draining backlog does not inflate it, and going back
//! to what the input needs is the safe direction.

use chrono::{DateTime, Duration, Utc};

use super::explain::{Decision, Outcome, Rule, StageFigures, WindowFigures};
use super::memory;
use super::policy::{AutotunePolicy, Mode};
use super::rates;
use super::sample::Sample;
use super::sizing::{self, Limits};
use super::state::{Deployment, PendingDown, Rescale, TunerState};
use super::window::{Segment, Unusable, Window};

/// A backlog whose catch-up rate is below this share of the input rate is
/// drained: it adds less to the target than noise does.
pub const DRAINED_SHARE: f64 = 0.05;

/// The most tasks any job may have (as the spec's `parallelism`).
pub const MAX_PARALLELISM: u32 = 1024;

/// A change of load is measured once this share of the window follows it.
pub const CHANGE_SETTLED_SHARE: f64 = 0.25;

/// After a rescale for a backlog, the reports since stabilization are
/// judged once they span this share of `metric_window`, only to go back to
/// what the input needs (see the module's documentation).
pub const EARLY_WINDOW_SHARE: f64 = 0.25;

/// What a decision is made from, besides the state.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The decision time (the caller's clock).
    pub now: DateTime<Utc>,
    pub policy: &'a AutotunePolicy,
    /// The job's recent reports, any order; those after `now` are ignored.
    /// At least those since `now − metric_window − MAX_SAMPLE_AGE`.
    pub samples: &'a [Sample],
    /// Most tasks the tenant may give this job, if limited.
    pub tenant_limit: Option<u32>,
}

/// Decides, returning the decision and the state to store for the next one.
pub fn decide(input: &DecisionInput<'_>, state: &TunerState) -> (Decision, TunerState) {
    let mut next = state.clone();
    let (policy, now) = (input.policy, input.now);
    next.rescales
        .retain(|t| *t > now - Duration::hours(1) && *t <= now);
    let mut d = Decision {
        at: now,
        mode: policy.mode,
        parallelism: None,
        outcome: Outcome::NoChange,
        rule: Rule::Off,
        target_utilization: policy.target_utilization,
        utilization_band: policy.utilization_band,
        window: None,
        stages: Vec::new(),
        utilization: None,
        sizing: None,
        steady: None,
        memory: Vec::new(),
    };
    if policy.mode == Mode::Off {
        return (d, next);
    }
    let segment = match Segment::current(input.samples, now) {
        Ok(s) => s,
        Err(u) => {
            d.rule = Rule::Unusable(u);
            return (d, next);
        }
    };
    let last = segment.last();
    let current = last.parallelism;
    d.parallelism = Some(current);
    d.memory = memory::recommend(last, policy.memory_headroom);

    let first_seen = match &state.deployment {
        Some(dep) if dep.version == last.version && dep.generation == last.generation => {
            dep.since.min(segment.first().at)
        }
        _ => {
            // A scale-down recommended for the previous deployment has not
            // held for this one.
            next.pending_down = None;
            segment.first().at
        }
    };
    next.deployment = Some(Deployment {
        version: last.version,
        generation: last.generation,
        since: first_seen,
    });
    let changed = next
        .last_rescale
        .as_ref()
        .map_or(first_seen, |r| r.at.max(first_seen));
    let stable_from = changed + policy.stabilization.to_chrono();
    match Window::over(&segment, stable_from, policy.metric_window.to_chrono(), now) {
        Ok(window) => judge(input, state, &window, d, next, false),
        Err(u) => {
            let early = early_return(input, state, &segment, stable_from, &u, &d, &next);
            d.rule = Rule::Unusable(u);
            early.unwrap_or((d, next))
        }
    }
}

/// Before a full window after a rescale for a backlog: the decision on the
/// reports since stabilization, if they span [`EARLY_WINDOW_SHARE`] of the
/// window and it goes back to what the input needs ([`Rule::BacklogDrained`]).
/// Any other finding waits for the full window.
fn early_return(
    input: &DecisionInput<'_>,
    state: &TunerState,
    segment: &Segment<'_>,
    stable_from: DateTime<Utc>,
    unusable: &Unusable,
    d: &Decision,
    next: &TunerState,
) -> Option<(Decision, TunerState)> {
    if !matches!(unusable, Unusable::Incomplete { .. }) {
        return None;
    }
    let last = state.last_rescale.as_ref().filter(|r| r.for_backlog)?;
    // The deployment that rescale started, not the one it replaced.
    if segment.last().parallelism != last.to || segment.first().at < last.at {
        return None;
    }
    // Every report since stabilization, if they span enough.
    let first = segment.samples.iter().find(|s| s.at >= stable_from)?;
    let span = segment.last().at - first.at;
    let full = input.policy.metric_window.to_chrono().num_milliseconds() as f64;
    if (span.num_milliseconds() as f64) < full * EARLY_WINDOW_SHARE {
        return None;
    }
    let window = Window::over(segment, stable_from, span, input.now).ok()?;
    let (d, next) = judge(input, state, &window, d.clone(), next.clone(), true);
    matches!(d.rule, Rule::BacklogDrained { .. }).then_some((d, next))
}

/// The rules, on a usable window (`early`: shorter than `metric_window`).
fn judge(
    input: &DecisionInput<'_>,
    state: &TunerState,
    window: &Window,
    mut d: Decision,
    mut next: TunerState,
    early: bool,
) -> (Decision, TunerState) {
    let policy = input.policy;
    let now = input.now;
    let current = window.parallelism;
    d.window = Some(WindowFigures {
        start: window.start,
        end: window.end,
        secs: window.secs(),
        samples: window.samples,
        version: window.version,
        generation: window.generation,
    });

    let u = policy.target_utilization;
    let material = (policy.utilization_band / u).max(0.05);
    let catch_up_secs = policy.catch_up.as_millis() as f64 / 1000.0;
    let stage_rates = rates::of(window, catch_up_secs, material);
    for r in &stage_rates {
        if let Some(rate) = r.true_rate {
            next.model
                .observe(window.version, r.stage, r.tasks, rate, window.end);
        }
    }

    let mut not_measured = None;
    for r in stage_rates {
        let curve = next.model.curve(r.stage);
        let need = |rate: f64| -> Option<u32> {
            if rate <= 0.0 {
                return Some(1);
            }
            let c = curve.as_ref()?;
            Some(
                c.smallest_for(rate, u, MAX_PARALLELISM)
                    .unwrap_or(MAX_PARALLELISM),
            )
        };
        let needed = need(r.target_rate);
        let steady = need(r.input_rate);
        if needed.is_none() && not_measured.is_none() {
            not_measured = Some(r.stage);
        }
        let predicted = curve.as_ref().zip(needed).map(|(c, n)| c.predict(n));
        d.stages.push(StageFigures {
            rates: r,
            curve,
            needed,
            predicted,
            steady,
        });
    }
    let settle_secs = window.secs() * CHANGE_SETTLED_SHARE;
    let early_change = d.stages.iter().find_map(|s| {
        let c = s.rates.change.as_ref()?;
        (c.secs_after < settle_secs).then_some(Rule::LoadChanging {
            stage: s.rates.stage,
            at: c.at,
            secs_after: c.secs_after,
            need_secs: settle_secs,
        })
    });
    if let Some(rule) = early_change {
        d.rule = rule;
        return (d, next);
    }
    if let Some(stage) = not_measured {
        d.rule = Rule::NotMeasured { stage };
        return (d, next);
    }

    let util = d
        .stages
        .iter()
        .map(|s| s.rates.utilization.unwrap_or(0.0))
        .fold(0.0, f64::max);
    d.utilization = Some(util);
    let (low, high) = (u - policy.utilization_band, u + policy.utilization_band);
    if (low..=high).contains(&util) {
        d.rule = Rule::WithinBand;
        next.pending_down = None;
        return (d, next);
    }

    let partitions = d
        .stages
        .iter()
        .map(|s| s.rates.partitions)
        .max()
        .unwrap_or(0);
    let limits = Limits {
        min: policy.min_parallelism,
        max: policy.max_parallelism,
        tenant: input.tenant_limit,
    };
    let most = |f: fn(&StageFigures) -> Option<u32>| d.stages.iter().filter_map(f).max();
    let sizing = sizing::size(most(|s| s.needed).unwrap_or(1), partitions, limits);
    let steady = sizing::size(most(|s| s.steady).unwrap_or(1), partitions, limits).chosen;
    let chosen = sizing.chosen;
    d.sizing = Some(sizing);
    d.steady = Some(steady);
    let allowed = next.rescales.len() < policy.max_rescales_per_hour as usize;
    let limit = || Rule::RescaleLimit {
        rescales: next.rescales.len() as u32,
        max: policy.max_rescales_per_hour,
    };

    if chosen == current {
        d.rule = Rule::NoBetterSize;
        if util > high {
            next.pending_down = None;
        }
        return (d, next);
    }
    if chosen > current {
        next.pending_down = None;
        if !allowed {
            d.rule = limit();
            return (d, next);
        }
        d.rule = Rule::ScaleUp;
        rescale(&mut d, &mut next, current, chosen, steady < chosen);
        return (d, next);
    }

    // What remains of the backlog needs no more than the input alone (the
    // target rate fits the steady parallelism), or it is drained.
    let drained = chosen <= steady
        || d.stages
            .iter()
            .all(|s| s.rates.catch_up_rate <= DRAINED_SHARE * s.rates.input_rate);
    let after_backlog = state.last_rescale.as_ref().is_some_and(|r| r.for_backlog);
    if after_backlog && drained {
        if !allowed {
            d.rule = limit();
            return (d, next);
        }
        d.rule = Rule::BacklogDrained {
            lag: d.stages.iter().map(|s| s.rates.lag_end).sum(),
            early,
        };
        rescale(&mut d, &mut next, current, chosen, false);
        return (d, next);
    }
    let pending = match &next.pending_down {
        Some(p) => PendingDown {
            since: p.since,
            highest: p.highest.max(chosen),
        },
        None => PendingDown {
            since: now,
            highest: chosen,
        },
    };
    let until = pending.since + policy.scale_down_delay.to_chrono();
    if now < until {
        d.rule = Rule::ScaleDownPending {
            since: pending.since,
            until,
        };
        next.pending_down = Some(pending);
        return (d, next);
    }
    if !allowed {
        d.rule = limit();
        next.pending_down = Some(pending);
        return (d, next);
    }
    d.rule = Rule::ScaleDown {
        since: pending.since,
    };
    next.pending_down = Some(pending.clone());
    rescale(&mut d, &mut next, current, pending.highest, false);
    (d, next)
}

/// Records a change: applied in `apply` mode, only recommended otherwise.
fn rescale(d: &mut Decision, next: &mut TunerState, from: u32, to: u32, for_backlog: bool) {
    if d.mode != Mode::Apply {
        d.outcome = Outcome::Recommend { from, to };
        return;
    }
    d.outcome = Outcome::Rescale { from, to };
    next.last_rescale = Some(Rescale {
        at: d.at,
        from,
        to,
        for_backlog,
    });
    next.rescales.push(d.at);
    next.pending_down = None;
}
