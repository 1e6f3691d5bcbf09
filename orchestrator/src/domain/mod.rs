//! Pure domain logic: identifiers, commands, events, state machines.
//! Nothing here performs I/O or reads the clock, so all of it can be tested
//! exhaustively and replayed.

pub mod aggregate;
pub mod alerts;
pub mod autotune;
pub mod backoff;
pub mod cep_rule;
pub mod document;
pub mod duration;
pub mod envelope;
pub mod error_class;
pub mod ids;
pub mod job;
pub mod lineage;
pub mod module;
pub mod rejection;
pub mod tenant;
pub mod workflow;

pub use aggregate::{Aggregate, DecideContext};
pub use backoff::{Backoff, BackoffPolicy};
pub use duration::Dur;
pub use envelope::{Command, CommandEnvelope, Outcome, OutcomeStatus, ParsedCommand};
pub use error_class::ErrorClass;
pub use ids::{JobName, ModuleName, StreamId, Tenant};
pub use rejection::{Rejection, RejectionCode};
