//! The `autotune:` block of a job spec: whether the tuner acts, what it
//! aims for, and the safeguards that keep it from flapping.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::document::Problem;
use crate::domain::duration::Dur;

/// What the tuner does with its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No decisions are made.
    #[default]
    Off,
    /// Decisions are recorded with their explanation; nothing is changed.
    Recommend,
    /// Decisions are recorded and the job is rescaled accordingly.
    Apply,
}

/// The tuning policy of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutotunePolicy {
    /// `off`, `recommend` or `apply`.
    #[serde(default)]
    pub mode: Mode,
    /// Share of its capacity a task should be busy with, in (0, 1].
    #[serde(default = "default_target")]
    pub target_utilization: f64,
    /// No change while the utilization is within this distance of the target.
    #[serde(default = "default_band")]
    pub utilization_band: f64,
    /// Fewest tasks the tuner chooses.
    #[serde(default = "default_min")]
    pub min_parallelism: u32,
    /// Most tasks the tuner chooses; the source partition count if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallelism: Option<u32>,
    /// Time within which a backlog must be drained.
    #[serde(default = "default_catch_up")]
    pub catch_up: Dur,
    /// Span of metrics a decision is made on.
    #[serde(default = "default_window")]
    pub metric_window: Dur,
    /// Time after a (re)deploy or rescale whose metrics are ignored.
    #[serde(default = "default_stabilization")]
    pub stabilization: Dur,
    /// How long a lower parallelism must be recommended before it is applied.
    #[serde(default = "default_scale_down_delay")]
    pub scale_down_delay: Dur,
    /// Most rescales in any hour.
    #[serde(default = "default_max_rescales")]
    pub max_rescales_per_hour: u32,
    /// Recommended UDF memory is the peak linear memory times this.
    #[serde(default = "default_headroom")]
    pub memory_headroom: f64,
}

fn default_target() -> f64 {
    0.7
}
fn default_band() -> f64 {
    0.1
}
fn default_min() -> u32 {
    1
}
fn default_catch_up() -> Dur {
    Dur::from_secs(300)
}
fn default_window() -> Dur {
    Dur::from_secs(60)
}
fn default_stabilization() -> Dur {
    Dur::from_secs(60)
}
fn default_scale_down_delay() -> Dur {
    Dur::from_secs(600)
}
fn default_max_rescales() -> u32 {
    6
}
fn default_headroom() -> f64 {
    1.5
}

impl Default for AutotunePolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            target_utilization: default_target(),
            utilization_band: default_band(),
            min_parallelism: default_min(),
            max_parallelism: None,
            catch_up: default_catch_up(),
            metric_window: default_window(),
            stabilization: default_stabilization(),
            scale_down_delay: default_scale_down_delay(),
            max_rescales_per_hour: default_max_rescales(),
            memory_headroom: default_headroom(),
        }
    }
}

/// Shortest metric window: a few reports at the runtime's 2 s interval.
const MIN_WINDOW: Dur = Dur::from_secs(10);

impl AutotunePolicy {
    /// Whether nothing was set (the spec then leaves the block out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// What is wrong with the policy, each problem naming its field under
    /// `prefix` (`autotune`).
    pub fn problems(&self, prefix: &str) -> Vec<Problem> {
        // An empty prefix: the policy is the document's root (a policy file).
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let mut out = Vec::new();
        let u = self.target_utilization;
        if !(u > 0.0 && u <= 1.0) {
            out.push(Problem::new(
                field("target_utilization"),
                "must be in (0, 1]",
            ));
        }
        let b = self.utilization_band;
        if !(0.0..1.0).contains(&b) {
            out.push(Problem::new(
                field("utilization_band"),
                "must be at least 0 and below 1",
            ));
        }
        if self.min_parallelism == 0 || self.min_parallelism > 1024 {
            out.push(Problem::new(
                field("min_parallelism"),
                "must be between 1 and 1024",
            ));
        }
        match self.max_parallelism {
            Some(max) if max == 0 || max > 1024 => out.push(Problem::new(
                field("max_parallelism"),
                "must be between 1 and 1024",
            )),
            Some(max) if max < self.min_parallelism => out.push(Problem::new(
                field("max_parallelism"),
                format!(
                    "must be at least min_parallelism ({})",
                    self.min_parallelism
                ),
            )),
            _ => {}
        }
        if self.catch_up.as_millis() == 0 {
            out.push(Problem::new(field("catch_up"), "must be longer than 0s"));
        }
        if self.metric_window < MIN_WINDOW {
            out.push(Problem::new(
                field("metric_window"),
                format!("must be at least {MIN_WINDOW}"),
            ));
        }
        if self.max_rescales_per_hour == 0 {
            out.push(Problem::new(
                field("max_rescales_per_hour"),
                "must be at least 1 (use `mode: recommend` to change nothing)",
            ));
        }
        if !(self.memory_headroom >= 1.0 && self.memory_headroom <= 16.0) {
            out.push(Problem::new(
                field("memory_headroom"),
                "must be between 1 and 16",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_off() {
        let p = AutotunePolicy::default();
        assert_eq!(p.mode, Mode::Off);
        assert!(p.problems("autotune").is_empty());
        let parsed: AutotunePolicy = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(parsed, p);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let p = AutotunePolicy {
            target_utilization: 1.5,
            utilization_band: -0.1,
            min_parallelism: 4,
            max_parallelism: Some(2),
            catch_up: Dur::from_secs(0),
            metric_window: Dur::from_secs(2),
            max_rescales_per_hour: 0,
            memory_headroom: 0.5,
            ..AutotunePolicy::default()
        };
        let fields: Vec<_> = p
            .problems("autotune")
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "autotune.target_utilization",
                "autotune.utilization_band",
                "autotune.max_parallelism",
                "autotune.catch_up",
                "autotune.metric_window",
                "autotune.max_rescales_per_hour",
                "autotune.memory_headroom",
            ]
        );
        for u in [0.0, -1.0, f64::NAN] {
            let p = AutotunePolicy {
                target_utilization: u,
                ..AutotunePolicy::default()
            };
            assert_eq!(p.problems("autotune").len(), 1, "{u}");
        }
        let full = AutotunePolicy {
            target_utilization: 1.0,
            ..AutotunePolicy::default()
        };
        assert!(full.problems("autotune").is_empty());
    }
}
