//! Ported from Flink's `GreedyITCase`.
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::Pattern;

fn events() -> (Event, Event, Event, Event, Event) {
    (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "a", 2.0),
        ev(43, "a", 2.0),
        ev(44, "d", 3.0),
    )
}

// GreedyITCase#testGreedyZeroOrMore
#[test]
fn greedy_zero_or_more() {
    let (c, a1, a2, a3, d) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .greedy()
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &a1, &a2, &a3, &d]),
        vec![m(&[&c, &a1, &a2, &a3, &d])],
    );
}

// The same pattern without greedy, for contrast: every prefix of the loop.
#[test]
fn non_greedy_zero_or_more() {
    let (c, a1, a2, a3, d) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &a1, &a2, &a3, &d]),
        vec![
            m(&[&c, &a1, &a2, &a3, &d]),
            m(&[&c, &a1, &a2, &d]),
            m(&[&c, &a1, &d]),
            m(&[&c, &d]),
        ],
    );
}

// GreedyITCase#testGreedyZeroOrMoreWithDummyEventsBeforeQuantifier
#[test]
fn greedy_zero_or_more_with_dummy_events_before_quantifier() {
    let (c, a1, a2, _, d) = events();
    let dummy = ev(43, "dummy", 2.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .greedy()
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &dummy, &a1, &a2, &d]),
        vec![m(&[&c, &a1, &a2, &d])],
    );
}

// GreedyITCase#testGreedyZeroOrMoreWithDummyEventsAfterQuantifier: a skipped
// event ends the loop's chance to stop early, so only the longest run.
#[test]
fn greedy_zero_or_more_with_dummy_events_after_quantifier() {
    let (c, a1, a2, _, d) = events();
    let dummy = ev(43, "dummy", 2.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .greedy()
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &a1, &a2, &dummy, &d]),
        vec![m(&[&c, &a1, &a2, &d])],
    );
}

// GreedyITCase#testGreedyOneOrMore
#[test]
fn greedy_one_or_more() {
    let (c, a1, a2, a3, d) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .greedy()
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &a1, &a2, &a3, &d]),
        vec![m(&[&c, &a1, &a2, &a3, &d])],
    );
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .greedy()
        .followed_by("end")
        .where_(name("d"));
    assert_same(run(p, &[&c, &d]), vec![]);
}

// Adapted from GreedyITCase#testGreedyTimesRange
#[test]
fn greedy_times_range() {
    let (c, a1, a2, a3, d) = events();
    let a4 = ev(44, "a", 2.0);
    let p = || {
        Pattern::begin("start")
            .where_(name("c"))
            .followed_by("middle")
            .where_(name("a"))
            .times_range(2, 5)
            .greedy()
            .followed_by("end")
            .where_(name("d"))
    };
    assert_same(
        run(p(), &[&c, &a1, &a2, &a3, &a4, &d]),
        vec![m(&[&c, &a1, &a2, &a3, &a4, &d])],
    );
    assert_same(run(p(), &[&c, &a1, &d]), vec![]);
}

// Weir case in the style of GreedyITCase (not a Flink method): the greedy step's condition
// overlaps the next step's: the next step may not take what the loop takes)
#[test]
fn greedy_overlapping_conditions() {
    let c = ev(40, "c", 1.0);
    let a1 = ev(41, "a", 2.0);
    let a2 = ev(42, "a", 3.0);
    let d = ev(43, "d", 4.0);
    // middle takes any "a"; end takes any event priced above 2.
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .greedy()
        .followed_by("end")
        .where_(|e: &Event, _| e.price > 2.0);
    // Not greedy, a2 could end [c a1 a2]; greedy, a2 must go to the loop.
    assert_same(run(p, &[&c, &a1, &a2, &d]), vec![m(&[&c, &a1, &a2, &d])]);
}

// Adapted from GreedyITCase#testGreedyUntilZeroOrMoreWithDummyEventsAfterQuantifier:
// the until event ends the greedy loop and the next step still sees it.
#[test]
fn greedy_until_zero_or_more() {
    let c = ev(40, "c", 1.0);
    let a1 = ev(41, "a", 2.0);
    let a2 = ev(42, "a", 3.0);
    let a3 = ev(43, "a", 4.0);
    let d = ev(45, "d", 5.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .greedy()
        .until(|e: &Event, _| e.price > 3.0)
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        run(p, &[&c, &a1, &a2, &a3, &d]),
        vec![m(&[&c, &a1, &a2, &d])],
    );
}
