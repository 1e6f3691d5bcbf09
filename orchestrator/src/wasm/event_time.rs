//! Event-time timers fired at the record where the watermark reaches them.
//!
//! A task's batches end wherever a fetch ended, and a replay after a restore
//! cuts them elsewhere. Firing due timers after each batch would hand a
//! timer's outputs to whatever record ended the batch, so a replay would give
//! them another identity (written twice) and the records around them would
//! see other state. Here a timer fires right after the first record, at or
//! after the one that registered it, whose watermark reaches the timer's
//! time; its outputs ride with that record. Watermarks are per partition and
//! never decrease, so that record is the same in every run.
//!
//! Records run in as few calls as that allows: a call stops at the first
//! record where a pending timer comes due, and a call that registers a timer
//! due inside itself keeps only its records up to there
//! ([`UdfInstance::process_until_due`]); the rest run after the timer fired.
//!
//! Processing-time timers fire after each call, by the host clock: like any
//! processing-time effect they depend on when records arrive, not on the
//! records.

use super::codec::InputRecord;
use super::instance::{BatchTime, RecordResult, UdfInstance};
use super::state::KeyedState;

/// The results of timers that fired after input record `after`.
#[derive(Debug)]
pub struct Fired {
    pub after: usize,
    pub results: Vec<RecordResult>,
}

/// Runs `inputs` through `udf` with `operator`'s timers, `marks` holding the
/// watermark right after each input (same length, never decreasing). One
/// result per input, and the timers fired, in order.
pub fn run_with_timers(
    udf: &mut UdfInstance,
    operator: &str,
    inputs: &[InputRecord],
    marks: &[Option<i64>],
    state: &mut KeyedState,
    processing_time: i64,
) -> (Vec<RecordResult>, Vec<Fired>) {
    debug_assert_eq!(inputs.len(), marks.len());
    let n = inputs.len().min(marks.len());
    let mut results = Vec::with_capacity(n);
    let mut fired = Vec::new();
    let mut start = 0;
    while start < n {
        let end = match state.next_event_timer(operator) {
            Some(at) => start + marks[start..n].partition_point(|w| w.is_none_or(|w| w < at)),
            None => n,
        }
        .min(n - 1);
        // The guest's watermark lags inside a call, never leads: a record
        // never sees a watermark past its own.
        let time = BatchTime {
            watermark: marks[start],
            processing_time,
        };
        let done = udf.process_until_due(&inputs[start..=end], &marks[start..=end], state, time);
        if done.is_empty() {
            break;
        }
        let last = start + done.len() - 1;
        results.extend(done);
        let due = state.take_due_timers(operator, marks[last], processing_time);
        if !due.is_empty() {
            let at = BatchTime {
                watermark: marks[last],
                processing_time,
            };
            fired.push(Fired {
                after: last,
                results: udf.on_timer(&due, state, at),
            });
        }
        start = last + 1;
    }
    (results, fired)
}
