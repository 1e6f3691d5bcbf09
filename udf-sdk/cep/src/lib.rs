//! Weir's complex-event-processing engine.
//!
//! Pure code, no I/O: it builds for native and for `wasm32-wasip2`, so the
//! same engine runs inside a rule component and in tests.
//!
//! # Layout
//! - `matched`: what a condition sees of the partial match it would extend.
//! - `expr`: the rule expression language (parse, type-check, evaluate over JSON events).
//! - `rule`: the declarative rule file (serde types) and its validation into a checked IR.

pub mod expr;
pub mod matched;
pub mod rule;

pub use matched::{Matched, NoMatch};
