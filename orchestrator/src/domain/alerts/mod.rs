//! Alert rules (the `alerts:` block of a job spec) and their evaluation.
//!
//! - [`rule`]: what a rule says, and what is wrong with one;
//! - [`report`]: the figures of a metrics report that rules read;
//! - [`evaluate`]: whether a rule should fire or resolve now, from the
//!   job's phase, its kept reports and whether the rule fires already.
//!
//! Nothing here reads the clock or performs I/O: the evaluator in
//! [`crate::alerts`] loads the inputs and records the verdicts as job
//! events, which is what makes firing survive a restart without repeating.

pub mod evaluate;
pub mod report;
pub mod rule;

#[cfg(test)]
mod tests;

pub use evaluate::{evaluate, lookback, verdicts, Input, Verdict};
pub use report::{Report, TaskFigures};
pub use rule::{AlertRule, Condition, Notify, RestartsWithin, Severity};
