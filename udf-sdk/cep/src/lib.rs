//! Weir's complex-event-processing engine.
//!
//! Pure code, no I/O: it builds for native and for `wasm32-wasip2`, so the
//! same engine runs inside a rule component and in tests.
//!
//! # A short tour
//!
//! ```
//! use std::time::Duration;
//! use weir_cep::{Pattern, WithinType, Outputs};
//!
//! // An "a", then later a "b", then later a "c", all within a minute.
//! let nfa = Pattern::begin("a")
//!     .where_(|e: &&str, _| *e == "a")
//!     .followed_by("b")
//!     .where_(|e, _| *e == "b")
//!     .followed_by("c")
//!     .where_(|e, _| *e == "c")
//!     .within(Duration::from_secs(60), WithinType::FirstAndLast)
//!     .compile()
//!     .unwrap();
//!
//! let mut key = nfa.new_state();
//! let mut out = Outputs::new();
//! for (ts, e) in [(1, "a"), (2, "x"), (3, "b"), (4, "c")] {
//!     key.process(&nfa, e, ts, &mut out);
//! }
//! assert_eq!(out.matches.len(), 1);
//! assert_eq!(out.matches[0].get("b"), &["b"]);
//!
//! // A second "a" that never completes times out when the minute is over.
//! out.clear();
//! key.process(&nfa, "a", 10, &mut out);
//! key.advance_time(&nfa, 70_000, &mut out);
//! assert_eq!(out.timeouts.len(), 1);
//! assert_eq!(out.timeouts[0].timeout_at, 60_010);
//! assert_eq!(key.counters().matches, 1);
//! ```
//!
//! # Semantics
//!
//! Flink CEP's, case by case (the `tests/flink_*.rs` files port its test
//! suite): the pattern compiles back to front into the same NFA Flink's
//! `NFACompiler` builds, and [`KeyState::process`] runs it as `NFA.process`
//! does, after `advanceTime`. Where this engine differs on purpose:
//! - Partial matches are chains of nodes, one node per taken event per
//!   branch, sharing their prefixes; events are stored once. Flink shares
//!   nodes per (event, step) and tells branches apart by Dewey numbers; the
//!   matches are the same, and no version numbers are needed.
//! - A `PreviousAndCurrent` window belongs to the step it is set on (the
//!   builder's `within` sets it on the current step) and bounds the gap
//!   before each event that step takes.
//! - Matches of one event come out ordered by their first event (Flink's
//!   priority queue leaves ties in no defined order; here ties keep the
//!   order the NFA found them in).
//! - Timestamps and windows are milliseconds (`i64`); a zero window is an
//!   error rather than "no window".
//!
//! As in current Flink: `greedy` guards the step after the loop (and so
//! changes nothing at the end of a pattern); a timed-out partial match is
//! stamped with the end of its window. Not supported: group patterns
//! (`begin(Pattern)`, `followedBy(Pattern)`), `throwExceptionOnMiss` on skip
//! strategies, and conditions reading the current or processing time.
//!
//! # Building patterns at run time
//!
//! Every builder call has a plain-value form: [`Step`] (name, boxed
//! [`Condition`], [`Contiguity`] to the previous step, `negated`,
//! [`Quantifier`], `until`, `within_previous`) and
//! [`Pattern::from_steps`]`(steps).skip(..).within(..)`.
//!
//! # Layout
//! - `matched`: what a condition sees of the partial match it would extend.
//! - `expr`: the rule expression language (parse, type-check, evaluate over JSON events).
//! - `rule`: the declarative rule file (serde types) and its validation into a checked IR.
//! - `condition`: the `Condition` trait and its combinators.
//! - `pattern`: the pattern builder and its plain-value parts (steps, quantifiers).
//! - `validate`: malformed-pattern checks and their typed errors.
//! - `skip`: after-match skip strategies and their pruning rule.
//! - `nfa`: compiling a pattern into an NFA (`nfa::compile`, `nfa::graph`) and running it (`nfa::run`).
//! - `slab`: index-stable storage with a free list.
//! - `small_list`: a list with its first items inline (a key's partial matches).
//! - `buffer`: the shared buffer of events and match chains.
//! - `state`: a key's partial matches and buffer.
//! - `output`: matches, timeouts and late records, and the reusable output buffer.
//! - `time_order`: event-time ordering per key behind the watermark.
//! - `waiting`: a key's records waiting for the watermark, the first held inline.
//! - `small_bytes`: bytes inline when short (record keys, event texts).
//! - `key_index`: key to number, a table of numbers that compares keys where they live.
//! - `keyed`: many keys under one watermark, numbered once, woken by their timers.
//! - `timers`: the keys' timers, bucketed by time.
//! - `checkpoint`: per-key state to bytes and back.
//! - `counters`: per-key counts for metrics.
//! - `project`: reading only the fields of a JSON event a rule reads.
//! - `event`: a runner's event: its JSON text as it came in, plus those fields.
//! - `record`: a runner's output records, written as JSON text.
//! - `runner`: a checked rule over keyed JSON records, partition by partition, with snapshots.

mod buffer;
pub mod checkpoint;
pub mod condition;
pub mod counters;
pub mod event;
pub mod expr;
mod key_index;
pub mod keyed;
pub mod matched;
pub mod nfa;
pub mod output;
pub mod pattern;
pub mod project;
pub mod reads;
mod record;
pub mod rule;
pub mod runner;
pub mod skip;
mod slab;
pub mod small_bytes;
mod small_list;
pub mod state;
pub mod time_order;
mod timers;
pub mod validate;
mod waiting;

pub use checkpoint::{CheckpointError, EventCodec};
pub use condition::{Always, Condition, Simple};
pub use counters::Counters;
pub use event::{JsonEvent, SharedEvent};
pub use keyed::KeyedEventTime;
pub use matched::{Matched, NoMatch};
pub use nfa::{Nfa, DEFAULT_MAX_PARTIAL_MATCHES};
pub use output::{Late, Match, Outputs, TimedOut};
pub use pattern::{Contiguity, Pattern, Quantifier, Step, Times, WithinType};
pub use reads::{BadField, Field, Reads};
pub use skip::AfterMatchSkip;
pub use state::KeyState;
pub use time_order::EventTimeState;
pub use validate::PatternError;
