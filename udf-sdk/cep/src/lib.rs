//! Weir's complex-event-processing engine.
//!
//! Pure code, no I/O: it builds for native and for `wasm32-wasip2`, so the
//! same engine runs inside a rule component and in tests.
//!
//! # Layout
//! - `matched`: what a condition sees of the partial match it would extend.
//! - `expr`: the rule expression language (parse, type-check, evaluate over JSON events).

pub mod matched;

pub use matched::{Matched, NoMatch};
