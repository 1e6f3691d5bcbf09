//! Finding the bad records of a failed call by halving the batch.
//!
//! A call either succeeds as a whole (its outputs and state writes are kept)
//! or fails as a whole (nothing is kept and the instance is replaced). On
//! failure the batch is split in two and each half is called again, down to
//! single records, which are dead-lettered with the failure's reason. Every
//! record therefore ends up in exactly one successful call or in exactly one
//! dead letter. A batch of n records with k bad ones costs about
//! 2·k·log2(n) extra calls; a deadline overrun costs a deadline per level.
//!
//! A record that returns an error is dead-lettered without bisecting, and its
//! state writes are dropped. If it wrote state and records after it ran in
//! the same call, they may have read those writes, so the call is not kept:
//! the batch is split just before that record and run again (UDFs are
//! deterministic), which leaves the record last in its call.
//!
//! A call may also keep only a prefix of its records, when an event-time
//! timer it registered comes due inside it ([`UdfInstance::process_until_due`]);
//! the results then stop there, and the caller runs the rest after firing it.

use super::instance::{Batch, BatchTime, CallError, RecordResult, UdfInstance};
use super::state::KeyedState;

pub(crate) fn run(
    inst: &mut UdfInstance,
    batch: Batch<'_>,
    state: &mut KeyedState,
    time: BatchTime,
) -> Vec<RecordResult> {
    if batch.len() == 0 {
        return Vec::new();
    }
    match inst.call(batch, state, time) {
        // The common case: the call's results are the batch's (or a prefix).
        Ok(results) => results,
        Err(e) => {
            let mut out = Vec::with_capacity(batch.len());
            recover(inst, batch, state, time, e, &mut out);
            out
        }
    }
}

/// Runs `batch`, appending its results to `out`; false when only a prefix
/// ran (a timer came due), and nothing after it may run yet.
fn go(
    inst: &mut UdfInstance,
    batch: Batch<'_>,
    state: &mut KeyedState,
    time: BatchTime,
    out: &mut Vec<RecordResult>,
) -> bool {
    match inst.call(batch, state, time) {
        Ok(results) => {
            let whole = results.len() == batch.len();
            out.extend(results);
            whole
        }
        Err(e) => recover(inst, batch, state, time, e, out),
    }
}

/// Handles a failed call of `batch`: splits it, or dead-letters its one record.
fn recover(
    inst: &mut UdfInstance,
    batch: Batch<'_>,
    state: &mut KeyedState,
    time: BatchTime,
    e: CallError,
    out: &mut Vec<RecordResult>,
) -> bool {
    let at = match e {
        CallError::Rerun { at } => at.min(batch.len()),
        CallError::Failed(reason) if batch.len() == 1 => {
            tracing::warn!(
                module = %inst.module().ident.name,
                reason = %reason,
                "record dead-lettered"
            );
            out.push(inst.dead_letter(reason));
            return true;
        }
        CallError::Failed(_) => batch.len() / 2,
    };
    let (left, right) = batch.split(at);
    go(inst, left, state, time, out) && go(inst, right, state, time, out)
}
