//! The workflow engine: durable runs of the definitions in `workflows/`.
//!
//! The pure parts (file format, validation, the run state machine) are in
//! [`crate::domain::workflow`]. Here is everything with I/O:
//!
//! - [`load`]: reading files, `file:line: field: problem` errors, the catalog.
//! - [`triggers`]: which job events start which workflow.
//! - [`driver`]: the engine loop: due runs → claim → activity → report
//!   (engine commands are group-committed, see `group`).
//! - [`waits`]: checking wait conditions against job events and the deployment.
//! - [`activities`]: the side effects steps perform.
//! - [`index`]: the due-run query.
//! - `sim`: a PostgreSQL-backed simulated data plane for tests and
//!   benchmarks; a test double, built only with the `test-util` feature.
//! - [`clock`]: time, passed in.
//!
//! # How a run stays correct
//!
//! A run is a stream `run.<uuid>` of events. An engine replica never acts
//! first: it proposes a command (`claim_step`, `complete_step`, …) through
//! the same command handler jobs use, and acts only once it is committed.
//! A crash at any point leaves either a committed claim (the lease holder,
//! or anyone after the lease ends, takes the step again with the same
//! idempotency key) or a committed report (the run moves on). Activities make
//! their effects idempotent by that key, so effects happen once.

pub mod activities;
pub mod clock;
pub mod driver;
mod group;
pub mod index;
pub mod load;
#[cfg(feature = "test-util")]
pub mod sim;
pub mod triggers;
pub mod waits;

pub use driver::{Engine, EngineConfig};
pub use load::{Catalog, LoadError};
