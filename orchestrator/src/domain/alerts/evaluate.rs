//! Whether a rule fires or resolves now.
//!
//! A metric condition is judged on each kept report of the running
//! deployment (a rate or "nothing happened" between a report and the one
//! before it); the rule fires once the condition has held in every report
//! for `for`, and resolves at the first report where it no longer holds.
//! Because the verdict is a function of the reports and of whether the
//! rule fires already (a fact on the job's stream), every replica and every
//! restart of `weir serve` reaches the same one.

use chrono::{DateTime, Utc};

use super::report::Report;
use super::rule::{AlertRule, Condition};
use crate::domain::job::Phase;

/// Reports older than this say nothing about now: a metric rule neither
/// fires nor resolves on them (the job's phase tells what happened).
pub const STALE: chrono::Duration = chrono::Duration::seconds(30);

/// What the evaluator knows about a job now.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub now: DateTime<Utc>,
    pub phase: Phase,
    /// The deployment generation in force, if any.
    pub generation: Option<u64>,
    /// Why the job last failed.
    pub failure: Option<&'a str>,
    /// The job's kept reports since `now - lookback(rules)`, oldest first.
    pub reports: &'a [Report],
}

/// What should happen to one rule's alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It starts firing: the condition has held since `since`.
    Fire {
        since: DateTime<Utc>,
        value: Option<f64>,
        message: String,
    },
    /// It stops firing.
    Resolve { value: Option<f64>, message: String },
    /// Nothing changes (it fires and still holds, holds for less than
    /// `for`, does not hold, or there is nothing to judge on).
    Keep,
}

/// How far back reports must be loaded to judge `rules`.
pub fn lookback(rules: &[AlertRule]) -> chrono::Duration {
    let longest = rules
        .iter()
        .map(|r| {
            let window = match &r.when {
                Condition::Restarts(w) => w.within.to_chrono(),
                _ => chrono::Duration::zero(),
            };
            r.hold.to_chrono() + window
        })
        .max()
        .unwrap_or_else(chrono::Duration::zero);
    longest + STALE + STALE
}

/// The condition judged on report `i` (with the one before it for
/// rates): whether it holds, the figure it read, and the start of the
/// span it speaks for. `None` when it cannot be judged there.
struct Judged {
    holds: bool,
    value: f64,
    from: DateTime<Utc>,
}

fn judge(when: &Condition, reports: &[&Report], i: usize) -> Option<Judged> {
    let r = reports[i];
    let prev = i.checked_sub(1).map(|p| reports[p]);
    let point = |holds: bool, value: f64| {
        Some(Judged {
            holds,
            value,
            from: r.at,
        })
    };
    match when {
        Condition::LagAbove(n) => point(r.lag() > *n, r.lag() as f64),
        Condition::EventTimeDelayAbove(d) => {
            let w = r.watermark_ms()?;
            let delay_ms = r.at.timestamp_millis().saturating_sub(w);
            point(
                delay_ms > i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                delay_ms as f64 / 1000.0,
            )
        }
        Condition::CheckpointFailuresInARow(n) => {
            let f = r.checkpoint_failures_in_row();
            point(f >= *n, f64::from(f))
        }
        Condition::Restarts(w) => {
            let cutoff = r.at - w.within.to_chrono();
            let base = reports[..=i]
                .iter()
                .rev()
                .find(|b| b.at <= cutoff)
                .map_or(0, |b| b.restarts());
            let n = r.restarts().saturating_sub(base);
            point(n >= u64::from(w.at_least), n as f64)
        }
        Condition::NoOutput => {
            let p = prev?;
            let arrived = r.source_records_in().saturating_sub(p.source_records_in());
            let written = r.records_out().saturating_sub(p.records_out());
            let waiting = r.lag();
            Some(Judged {
                holds: written == 0 && (arrived > 0 || waiting > 0),
                value: (arrived + waiting) as f64,
                from: p.at,
            })
        }
        Condition::NoInput => {
            let p = prev?;
            let arrived = r.source_records_in().saturating_sub(p.source_records_in());
            Some(Judged {
                holds: arrived == 0 && r.source_lag() == 0,
                value: arrived as f64,
                from: p.at,
            })
        }
        Condition::DeadLetterRateAbove(rate) => {
            let p = prev?;
            let secs = (r.at - p.at).num_milliseconds() as f64 / 1000.0;
            if secs <= 0.0 {
                return None;
            }
            let per_s = r.dead_lettered().saturating_sub(p.dead_lettered()) as f64 / secs;
            Some(Judged {
                holds: per_s > *rate,
                value: per_s,
                from: p.at,
            })
        }
        Condition::NotRunning => None,
    }
}

fn describe(when: &Condition, value: f64, held: chrono::Duration) -> String {
    // Whole seconds: reports come every few seconds anyway.
    let held =
        crate::domain::duration::Dur::from_secs(u64::try_from(held.num_seconds()).unwrap_or(0));
    match when {
        Condition::LagAbove(n) => format!("lag is {value:.0} records (above {n})"),
        Condition::EventTimeDelayAbove(d) => {
            format!("event time is {value:.1}s behind the clock (more than {d})")
        }
        Condition::NoOutput => {
            format!("no output for {held} while {value:.0} records arrived or wait at the sources")
        }
        Condition::NoInput => format!("no input at the sources for {held}"),
        Condition::CheckpointFailuresInARow(n) => {
            format!("{value:.0} checkpoints in a row failed (at least {n})")
        }
        Condition::Restarts(w) => format!(
            "{value:.0} task restarts within {} (at least {})",
            w.within, w.at_least
        ),
        Condition::DeadLetterRateAbove(r) => {
            format!("{value:.2} records dead-lettered per second (above {r})")
        }
        Condition::NotRunning => "the job is not running".into(),
    }
}

/// The verdict for `rule`, whose alert fires already if `firing`.
pub fn evaluate(rule: &AlertRule, firing: bool, input: &Input<'_>) -> Verdict {
    if let Condition::NotRunning = rule.when {
        let failed = input.phase == Phase::Failed;
        return match (failed, firing) {
            (true, false) => Verdict::Fire {
                since: input.now,
                value: None,
                message: format!(
                    "the job failed: {}",
                    input.failure.unwrap_or("no reason recorded")
                ),
            },
            (false, true) => Verdict::Resolve {
                value: None,
                message: format!("the job is {}", input.phase.name()),
            },
            _ => Verdict::Keep,
        };
    }
    match input.phase {
        Phase::Running => {}
        // A deploy, rescale or stop in progress: the alert stays as it is
        // until the next deployment reports.
        Phase::Deploying | Phase::Stopping => return Verdict::Keep,
        other => {
            return if firing {
                Verdict::Resolve {
                    value: None,
                    message: format!("the job is {}", other.name()),
                }
            } else {
                Verdict::Keep
            }
        }
    }
    let Some(generation) = input.generation else {
        return Verdict::Keep;
    };
    let reports: Vec<&Report> = input
        .reports
        .iter()
        .filter(|r| r.generation == generation)
        .collect();
    let Some(last) = reports.last() else {
        return Verdict::Keep;
    };
    if last.at < input.now - STALE {
        return Verdict::Keep;
    }
    let judged: Vec<Option<Judged>> = (0..reports.len())
        .map(|i| judge(&rule.when, &reports, i))
        .collect();
    let Some(Some(latest)) = judged.last() else {
        return Verdict::Keep;
    };
    if !latest.holds {
        return if firing {
            Verdict::Resolve {
                value: Some(latest.value),
                message: format!("resolved: {}", resolved_text(&rule.when, latest.value)),
            }
        } else {
            Verdict::Keep
        };
    }
    if firing {
        return Verdict::Keep;
    }
    let since = judged
        .iter()
        .rev()
        .map_while(|j| j.as_ref().filter(|j| j.holds))
        .last()
        .map_or(latest.from, |j| j.from);
    let held = last.at - since;
    if held < rule.hold.to_chrono() {
        return Verdict::Keep;
    }
    Verdict::Fire {
        since,
        value: Some(latest.value),
        message: describe(&rule.when, latest.value, held),
    }
}

fn resolved_text(when: &Condition, value: f64) -> String {
    match when {
        Condition::LagAbove(n) => format!("lag is {value:.0} records (at most {n})"),
        Condition::EventTimeDelayAbove(d) => {
            format!("event time is {value:.1}s behind the clock (at most {d})")
        }
        Condition::NoOutput => "the job writes output again".into(),
        Condition::NoInput => "records arrive at the sources again".into(),
        Condition::CheckpointFailuresInARow(_) => "a checkpoint succeeded".into(),
        Condition::Restarts(w) => format!(
            "{value:.0} task restarts within {} (fewer than {})",
            w.within, w.at_least
        ),
        Condition::DeadLetterRateAbove(r) => {
            format!("{value:.2} records dead-lettered per second (at most {r})")
        }
        Condition::NotRunning => "the job runs".into(),
    }
}

/// Verdicts for every rule of the deployed version, and a resolve for every
/// alert that fires though its rule is gone (a new version dropped it).
pub fn verdicts(
    rules: &[AlertRule],
    firing: &std::collections::BTreeSet<String>,
    input: &Input<'_>,
) -> Vec<(String, Verdict)> {
    let mut out: Vec<(String, Verdict)> = rules
        .iter()
        .map(|r| (r.name.clone(), evaluate(r, firing.contains(&r.name), input)))
        .collect();
    for name in firing {
        if !rules.iter().any(|r| &r.name == name) {
            out.push((
                name.clone(),
                Verdict::Resolve {
                    value: None,
                    message: "the rule is no longer in the deployed version".into(),
                },
            ));
        }
    }
    out
}
