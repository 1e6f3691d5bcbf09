//! A rule runner's output records, written straight as JSON text: each
//! matched event is copied in exactly as it came in, and no JSON tree is
//! built for a record. Keys are in the sorted order a JSON object map
//! prints them in, as the records were before they were written by hand.

use std::sync::Arc;

use serde_json::Value;

use crate::event::SharedEvent;

/// A match's or timed-out partial match's events, step by step.
pub(crate) type Steps = [(Arc<str>, Vec<SharedEvent>)];

/// What every match and timeout record starts with.
pub(crate) struct Head<'a> {
    pub rule: &'a str,
    pub key: &'a Value,
    pub first: i64,
    pub last: i64,
}

/// Room for a match or timeout record of `steps` (its events' texts and
/// the fields around them), so writing it rarely grows its buffer.
pub(crate) fn size_hint(steps: &Steps) -> usize {
    let events: usize = steps
        .iter()
        .map(|(name, evs)| name.len() + 6 + evs.iter().map(|e| e.raw().len() + 1).sum::<usize>())
        .sum();
    160 + events
}

// Writing into a Vec cannot fail: the results below are ignored.

/// `{emit?, first_event_time, key, last_event_time, rule, steps}`.
pub(crate) fn match_record(
    out: &mut Vec<u8>,
    head: &Head<'_>,
    steps: &Steps,
    emit: Option<&Value>,
) {
    out.push(b'{');
    if let Some(emit) = emit {
        out.extend_from_slice(b"\"emit\":");
        let _ = serde_json::to_writer(&mut *out, emit);
        out.push(b',');
    }
    head_fields(out, head, steps);
    out.push(b'}');
}

/// `{first_event_time, key, last_event_time, rule, steps, timed_out: true,
/// timeout_at}`.
pub(crate) fn timeout_record(out: &mut Vec<u8>, head: &Head<'_>, steps: &Steps, timeout_at: i64) {
    out.push(b'{');
    head_fields(out, head, steps);
    out.extend_from_slice(b",\"timed_out\":true,\"timeout_at\":");
    int(out, timeout_at);
    out.push(b'}');
}

/// `{event, event_time, key, late: true, rule}`.
pub(crate) fn late_record(
    out: &mut Vec<u8>,
    rule: &str,
    key: &Value,
    event: &SharedEvent,
    time: i64,
) {
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(event.raw());
    out.extend_from_slice(b",\"event_time\":");
    int(out, time);
    out.extend_from_slice(b",\"key\":");
    let _ = serde_json::to_writer(&mut *out, key);
    out.extend_from_slice(b",\"late\":true,\"rule\":");
    let _ = serde_json::to_writer(&mut *out, rule);
    out.push(b'}');
}

fn head_fields(out: &mut Vec<u8>, head: &Head<'_>, steps: &Steps) {
    out.extend_from_slice(b"\"first_event_time\":");
    int(out, head.first);
    out.extend_from_slice(b",\"key\":");
    let _ = serde_json::to_writer(&mut *out, head.key);
    out.extend_from_slice(b",\"last_event_time\":");
    int(out, head.last);
    out.extend_from_slice(b",\"rule\":");
    let _ = serde_json::to_writer(&mut *out, head.rule);
    out.extend_from_slice(b",\"steps\":{");
    // Step names in sorted order; a pattern has few steps.
    let mut order: [usize; 16] = [0; 16];
    let n = steps.len().min(order.len());
    if n == steps.len() {
        for (i, o) in order.iter_mut().enumerate().take(n) {
            *o = i;
        }
        order[..n].sort_unstable_by(|a, b| steps[*a].0.cmp(&steps[*b].0));
        for (i, &s) in order[..n].iter().enumerate() {
            step(out, i, &steps[s]);
        }
    } else {
        let mut all: Vec<&(Arc<str>, Vec<SharedEvent>)> = steps.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (i, s) in all.into_iter().enumerate() {
            step(out, i, s);
        }
    }
    out.push(b'}');
}

/// An integer as JSON writes it: serde_json's digits, without the
/// formatting machinery `write!` goes through (a few hundred instructions
/// per number, several numbers per record).
fn int(out: &mut Vec<u8>, n: i64) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

fn step(out: &mut Vec<u8>, i: usize, (name, events): &(Arc<str>, Vec<SharedEvent>)) {
    if i > 0 {
        out.push(b',');
    }
    let _ = serde_json::to_writer(&mut *out, &**name);
    out.extend_from_slice(b":[");
    for (j, e) in events.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e.raw());
    }
    out.push(b']');
}
