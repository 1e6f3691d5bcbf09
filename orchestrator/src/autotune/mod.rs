//! The resource auto-tuner's I/O half; the decision itself is pure, in
//! [`crate::domain::autotune`].
//!
//! - [`recorder`]: keeps the runtime's metrics reports (NATS) in PostgreSQL,
//!   so a decision's window survives a restart of `weir serve`;
//! - [`store`]: those reports, the tuner's memory per job, and the jobs due
//!   a decision;
//! - [`schedule`]: which autotune run each job gets at each tick (one run
//!   id per job and tick, so replicas start it once);
//! - [`capacity`]: the tasks every deployed job wants and the workers that
//!   takes, as gauges for an external autoscaler;
//! - the `autotune_decide` activity of `workflows/autotune.yaml` lives with
//!   the other activities, in [`crate::workflow::activities`].

pub mod capacity;
pub mod recorder;
pub mod schedule;
pub mod store;

pub use store::{Memory, TunableJob, TunerStore};
