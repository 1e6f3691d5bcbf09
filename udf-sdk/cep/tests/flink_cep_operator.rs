//! Ported from Flink's `CEPOperatorTest`: event-time buffering, ordering,
//! late records and watermark-driven timeouts, per key.
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::{EventTimeState, Outputs, Pattern, WithinType};

fn pattern() -> Pattern<Event> {
    Pattern::begin("start")
        .where_(name("start"))
        .followed_by("middle")
        .where_(name("middle"))
        .followed_by("end")
        .where_(name("end"))
}

fn flat_matches(out: &Outputs<Event>) -> Vec<Vec<Event>> {
    out.matches.iter().map(flat).collect()
}

// Adapted from CEPOperatorTest#testKeyedCEPOperatorWatermarkForwarding / testCEPOperatorComparatorEventTime:
// records wait for the watermark, then go in timestamp order.
#[test]
fn records_are_ordered_by_timestamp_behind_the_watermark() {
    let nfa = pattern().compile().unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    let start = ev(1, "start", 1.0);
    let middle = ev(2, "middle", 1.0);
    let end = ev(3, "end", 1.0);
    // Arrival order: end, start, middle; time order: start, middle, end.
    key.push(end.clone(), 3, &mut out);
    key.push(start.clone(), 1, &mut out);
    key.push(middle.clone(), 2, &mut out);
    assert_eq!(key.buffered_events(), 3);
    key.advance_watermark(&nfa, 2, &mut out);
    assert!(out.matches.is_empty());
    key.advance_watermark(&nfa, 3, &mut out);
    assert_same(flat_matches(&out), vec![m(&[&start, &middle, &end])]);
}

// Adapted from CEPOperatorTest#testCEPOperatorComparatorEventTime: equal timestamps keep
// their arrival order (Flink sorts ties with a comparator or keeps arrival).
#[test]
fn equal_timestamps_keep_arrival_order() {
    let nfa = Pattern::begin("first")
        .where_(name("x"))
        .next("second")
        .where_(name("x"))
        .compile()
        .unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    let (x1, x2, x3) = (ev(1, "x", 0.0), ev(2, "x", 0.0), ev(3, "x", 0.0));
    key.push(x3.clone(), 7, &mut out);
    key.push(x1.clone(), 5, &mut out);
    key.push(x2.clone(), 5, &mut out);
    key.advance_watermark(&nfa, 10, &mut out);
    assert_same(flat_matches(&out), vec![m(&[&x1, &x2]), m(&[&x2, &x3])]);
}

// Adapted from CEPOperatorTest#testCEPOperatorSideOutputLateElements: records at or behind
// the watermark come out as late, counted, and do not match.
#[test]
fn late_records_are_reported_not_dropped() {
    let nfa = pattern().compile().unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    key.push(ev(1, "start", 1.0), 5, &mut out);
    key.advance_watermark(&nfa, 10, &mut out);
    let at = ev(2, "middle", 1.0);
    let behind = ev(3, "end", 1.0);
    key.push(at.clone(), 10, &mut out);
    key.push(behind.clone(), 3, &mut out);
    assert_eq!(out.late.len(), 2);
    assert_eq!((out.late[0].event.clone(), out.late[0].timestamp), (at, 10));
    assert_eq!(
        (out.late[1].event.clone(), out.late[1].timestamp),
        (behind, 3)
    );
    assert_eq!(key.counters().late, 2);
    key.advance_watermark(&nfa, 20, &mut out);
    assert!(out.matches.is_empty());
}

// Adapted from CEPOperatorTest#testCEPOperatorCleanupEventTime: the watermark closes
// windows, timing out partial matches even with no further event.
#[test]
fn watermark_times_out_partial_matches() {
    let nfa = pattern()
        .within(ms(10), WithinType::FirstAndLast)
        .compile()
        .unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    let start = ev(1, "start", 1.0);
    let middle = ev(2, "middle", 1.0);
    key.push(start.clone(), 2, &mut out);
    key.push(middle.clone(), 4, &mut out);
    key.advance_watermark(&nfa, 5, &mut out);
    assert_eq!(key.partial_matches(), 1);
    key.advance_watermark(&nfa, 11, &mut out);
    assert!(out.timeouts.is_empty());
    key.advance_watermark(&nfa, 12, &mut out);
    assert_eq!(out.timeouts.len(), 1);
    assert_eq!(out.timeouts[0].timeout_at, 12);
    assert_eq!(
        out.timeouts[0]
            .steps
            .iter()
            .flat_map(|s| s.1.clone())
            .collect::<Vec<_>>(),
        m(&[&start, &middle])
    );
    assert_eq!(key.partial_matches(), 0);
    assert_eq!(key.buffered_events(), 0);
}

// Adapted from CEPOperatorTest#testCEPOperatorCleanupEventTimeWithSameElements: records
// with the same timestamp as the watermark-closed window are processed after
// the timeout, so they cannot join it.
#[test]
fn window_border_under_event_time() {
    let nfa = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("end")
        .where_(name("end"))
        .within(ms(10), WithinType::FirstAndLast)
        .compile()
        .unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    let s = ev(1, "start", 1.0);
    let e = ev(2, "end", 1.0);
    key.push(s.clone(), 0, &mut out);
    key.push(e.clone(), 10, &mut out);
    key.advance_watermark(&nfa, 100, &mut out);
    assert!(out.matches.is_empty());
    assert_eq!(out.timeouts.len(), 1);
    assert_eq!(out.timeouts[0].timeout_at, 10);
}

// Weir case in the style of CEPOperatorTest (not a Flink method): the timer a
// keyed caller registers (Flink's operator registers event-time timers).
#[test]
fn next_timer_says_when_the_watermark_matters() {
    let nfa = pattern()
        .within(ms(10), WithinType::FirstAndLast)
        .compile()
        .unwrap();
    let mut key = EventTimeState::new();
    let mut out = Outputs::new();
    assert_eq!(key.next_timer(), None);
    key.push(ev(1, "start", 1.0), 5, &mut out);
    key.push(ev(2, "x", 1.0), 3, &mut out);
    assert_eq!(key.next_timer(), Some(3));
    key.advance_watermark(&nfa, 5, &mut out);
    // The start's window closes at 15.
    assert_eq!(key.next_timer(), Some(15));
    key.advance_watermark(&nfa, 14, &mut out);
    assert!(out.timeouts.is_empty());
    key.advance_watermark(&nfa, 15, &mut out);
    assert_eq!(out.timeouts.len(), 1);
    assert_eq!(key.next_timer(), None);
}
