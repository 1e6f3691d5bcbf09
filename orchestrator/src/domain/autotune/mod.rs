//! The resource auto-tuner's pure half: the `autotune:` policy of a job
//! spec and the decision that turns a window of metrics reports into a
//! parallelism, with an explanation. No I/O and no clock: the caller (the
//! autotune workflow, the replay command, the simulator) passes the
//! reports, the time and the tuner's state in, and stores the state that
//! comes back.
//!
//! - [`policy`]: the spec block and its validation;
//! - [`sample`]: the reports read (the runtime's `MetricsReport`);
//! - [`window`]: the window of reports a decision trusts;
//! - [`rates`] and [`change`]: true processing, input and target rates;
//! - [`model`]: capacity learned per parallelism;
//! - [`sizing`]: balancing over partitions and bounds;
//! - [`decide`]: the rules; [`explain`]: what they found;
//! - [`memory`]: UDF memory recommendations;
//! - `sim` (tests and `test-util`): a simulated job for the closed-loop benchmark.

pub mod change;
pub mod decide;
pub mod explain;
pub mod memory;
pub mod model;
pub mod policy;
pub mod rates;
pub mod sample;
#[cfg(any(test, feature = "test-util"))]
pub mod sim;
pub mod sizing;
pub mod state;
pub mod window;

#[cfg(test)]
mod tests;

pub use decide::{decide, DecisionInput};
pub use explain::{Decision, Outcome, Rule};
pub use policy::{AutotunePolicy, Mode};
pub use sample::{Sample, TaskSample};
pub use state::TunerState;
