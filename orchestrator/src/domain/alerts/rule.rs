//! One alert rule of a job spec.
//!
//! ```yaml
//! alerts:
//!   - name: orders-behind
//!     when: { lag_above: 10000 }
//!     for: 2m
//!     severity: critical
//!     notify: { webhook: "https://hooks.example.com/weir", subject: "alerts.orders" }
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::document::Problem;
use crate::domain::duration::Dur;
use crate::domain::job::sink_rules;

/// How much a firing alert matters; carried in its events and notifications.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    /// The severity as written in specs, events and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Restarts counted over a sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartsWithin {
    /// Fewest task restarts that fire.
    pub at_least: u32,
    /// The window they are counted over.
    pub within: Dur,
}

/// What the rule watches. Written as one key (`{ lag_above: 10000 }`) or,
/// for those without a figure, a bare word (`no_output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Records behind the ends of the source partitions, summed over tasks.
    LagAbove(u64),
    /// The wall clock minus the job's event-time watermark (the smallest
    /// over its tasks), e.g. `5m`.
    EventTimeDelayAbove(Dur),
    /// No output written while records wait in or arrive at the sources
    /// (a stuck job: a stalled sink, a hung UDF).
    NoOutput,
    /// Nothing arrives at the sources at all (a heartbeat on the input).
    NoInput,
    /// A task's periodic checkpoints failed this many times in a row.
    CheckpointFailuresInARow(u32),
    /// Task restarts within a window.
    Restarts(RestartsWithin),
    /// Records dead-lettered per second, averaged between two reports.
    DeadLetterRateAbove(f64),
    /// The job is `failed` (it left `running` without being asked to).
    /// Fires at once; `for` does not apply.
    NotRunning,
}

impl Condition {
    /// The condition's name as written (`lag_above`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Condition::LagAbove(_) => "lag_above",
            Condition::EventTimeDelayAbove(_) => "event_time_delay_above",
            Condition::NoOutput => "no_output",
            Condition::NoInput => "no_input",
            Condition::CheckpointFailuresInARow(_) => "checkpoint_failures_in_a_row",
            Condition::Restarts(_) => "restarts",
            Condition::DeadLetterRateAbove(_) => "dead_letter_rate_above",
            Condition::NotRunning => "not_running",
        }
    }
}

/// Where a firing or resolved alert is told. Either, both, or neither (the
/// event in the job's history is then the only record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// An `https://` (or `http://`) URL that gets a JSON POST, retried with
    /// one `Idempotency-Key` per notification. Public addresses only,
    /// unless `weir serve --http-sink-allow-private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A NATS subject that gets the same JSON body. Weir's own subjects,
    /// `$…`, `_INBOX.…` and wildcards are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.subject.is_none()
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique within the job: 1-64 letters, digits, `-` or `_`.
    pub name: String,
    /// What fires the alert.
    pub when: Condition,
    /// How long the condition must hold, without a break, before the alert
    /// fires (default 1m). It resolves as soon as the condition no longer
    /// holds.
    #[serde(rename = "for", default = "default_for")]
    pub hold: Dur,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Notify::is_empty")]
    pub notify: Notify,
}

fn default_for() -> Dur {
    Dur::from_secs(60)
}

/// Most rules per job.
pub const MAX_RULES: usize = 32;
/// Longest `for` and restart window: reports are kept six hours.
pub const MAX_SPAN: Dur = Dur::from_secs(3 * 3600);

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is wrong with a job's rules, each problem naming its field under
/// `alerts[i]`.
pub fn problems(rules: &[AlertRule]) -> Vec<Problem> {
    let mut out = Vec::new();
    if rules.len() > MAX_RULES {
        out.push(Problem::new(
            "alerts",
            format!("at most {MAX_RULES} rules per job"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let field = |f: &str| format!("alerts[{i}].{f}");
        if !valid_name(&r.name) {
            out.push(Problem::new(
                field("name"),
                "must be 1-64 letters, digits, '-' or '_'",
            ));
        } else if !names.insert(r.name.as_str()) {
            out.push(Problem::new(
                field("name"),
                "duplicates an earlier rule's name",
            ));
        }
        if r.hold > MAX_SPAN {
            out.push(Problem::new(
                field("for"),
                format!("must be at most {MAX_SPAN}"),
            ));
        }
        match &r.when {
            Condition::LagAbove(_) | Condition::NoOutput | Condition::NoInput => {}
            Condition::NotRunning => {}
            Condition::EventTimeDelayAbove(d) => {
                if d.get().is_zero() {
                    out.push(Problem::new(
                        field("when.event_time_delay_above"),
                        "must be longer than 0s",
                    ));
                }
            }
            Condition::CheckpointFailuresInARow(n) => {
                if *n == 0 {
                    out.push(Problem::new(
                        field("when.checkpoint_failures_in_a_row"),
                        "must be at least 1",
                    ));
                }
            }
            Condition::Restarts(w) => {
                if w.at_least == 0 {
                    out.push(Problem::new(
                        field("when.restarts.at_least"),
                        "must be at least 1",
                    ));
                }
                if w.within.get().is_zero() || w.within > MAX_SPAN {
                    out.push(Problem::new(
                        field("when.restarts.within"),
                        format!("must be longer than 0s and at most {MAX_SPAN}"),
                    ));
                }
            }
            Condition::DeadLetterRateAbove(r) => {
                if !(r.is_finite() && *r >= 0.0) {
                    out.push(Problem::new(
                        field("when.dead_letter_rate_above"),
                        "must be a number of records per second, at least 0",
                    ));
                }
            }
        }
        if let Some(url) = &r.notify.webhook {
            if let Some(p) = sink_rules::url_problem(url) {
                out.push(Problem::new(field("notify.webhook"), p));
            }
        }
        if let Some(subject) = &r.notify.subject {
            if let Some(p) = sink_rules::subject_problem(subject, None) {
                out.push(Problem::new(field("notify.subject"), p));
            }
        }
    }
    out
}
