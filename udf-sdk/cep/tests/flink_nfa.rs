//! Ported from Flink's `NFAITCase` (contiguity, branching, loops, windows).
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::{Pattern, WithinType};

fn abcde() -> [Event; 5] {
    [
        ev(40, "a", 1.0),
        ev(41, "b", 2.0),
        ev(42, "c", 3.0),
        ev(43, "d", 4.0),
        ev(44, "e", 5.0),
    ]
}

// NFAITCase#testNoConditionNFA
#[test]
fn no_condition_followed_by() {
    let [a, b, c, d, e] = abcde();
    let p = Pattern::begin("start").followed_by("end");
    let got = run(p, &[&a, &b, &c, &d, &e]);
    assert_same(
        got,
        vec![m(&[&a, &b]), m(&[&b, &c]), m(&[&c, &d]), m(&[&d, &e])],
    );
}

// NFAITCase#testAnyWithNoConditionNFA
#[test]
fn no_condition_followed_by_any() {
    let [a, b, c, d, e] = abcde();
    let p = Pattern::begin("start").followed_by_any("end");
    let got = run(p, &[&a, &b, &c, &d, &e]);
    assert_same(
        got,
        vec![
            m(&[&a, &b]),
            m(&[&a, &c]),
            m(&[&a, &d]),
            m(&[&a, &e]),
            m(&[&b, &c]),
            m(&[&b, &d]),
            m(&[&b, &e]),
            m(&[&c, &d]),
            m(&[&c, &e]),
            m(&[&d, &e]),
        ],
    );
}

// NFAITCase#testSimplePatternNFA
#[test]
fn simple_pattern_with_subtype() {
    let start = ev(41, "start", 1.0);
    let middle = sub(42, "foo", 1.0, 10.0);
    let end = ev(43, "end", 1.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("middle")
        .where_(|e: &Event, _| e.volume.is_some_and(|v| v > 5.0))
        .followed_by("end")
        .where_(name("end"));
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (start.clone(), 1),
        (ev(43, "foobar", 1.0), 2),
        (sub(41, "barfoo", 1.0, 5.0), 3),
        (middle.clone(), 3),
        (ev(43, "start", 1.0), 4),
        (end.clone(), 5),
    ]);
    assert_same(got, vec![m(&[&start, &middle, &end])]);
}

// NFAITCase#testStrictContinuityWithResults
#[test]
fn strict_continuity_with_results() {
    let a = ev(41, "a", 2.0);
    let b = ev(42, "b", 4.0);
    let p = Pattern::begin("middle")
        .where_(name("a"))
        .next("end")
        .where_(name("b"));
    assert_same(run(p, &[&a, &b]), vec![m(&[&a, &b])]);
}

// NFAITCase#testStrictContinuityNoResults
#[test]
fn strict_continuity_no_results() {
    let a = ev(41, "a", 2.0);
    let c = ev(42, "c", 3.0);
    let b = ev(43, "b", 4.0);
    let p = Pattern::begin("middle")
        .where_(name("a"))
        .next("end")
        .where_(name("b"));
    assert_same(run(p, &[&a, &c, &b]), vec![]);
}

fn start_middle_end() -> Pattern<Event> {
    Pattern::begin("start")
        .where_(name("start"))
        .followed_by("middle")
        .where_(name("middle"))
        .followed_by("end")
        .where_(name("end"))
}

// NFAITCase#testSimplePatternWithTimeWindowNFA: a match must start less than
// the window before its last event (the border is exclusive).
#[test]
fn simple_pattern_with_time_window() {
    let start = ev(2, "start", 1.0);
    let middle = ev(3, "middle", 1.0);
    let end = ev(5, "end", 1.0);
    let p = start_middle_end().within(ms(10), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (ev(1, "start", 1.0), 1),
        (start.clone(), 2),
        (middle.clone(), 3),
        (ev(4, "foobar", 1.0), 4),
        (end.clone(), 11),
        (ev(6, "end", 1.0), 13),
    ]);
    assert_same(got, vec![m(&[&start, &middle, &end])]);
}

// Adapted from NFAITCase#testSimplePatternWithTimeoutHandling: timed-out partial matches
// come out with their events and the time the window closed.
#[test]
fn simple_pattern_with_timeout_handling() {
    let s1 = ev(1, "start", 1.0);
    let s2 = ev(1, "start", 2.0);
    let mid = ev(1, "middle", 3.0);
    let e1 = ev(1, "end", 5.0);
    let p = start_middle_end().within(ms(10), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (s1.clone(), 1),
        (s2.clone(), 2),
        (mid.clone(), 3),
        (ev(1, "foobar", 4.0), 4),
        (e1.clone(), 11),
        (ev(1, "end", 6.0), 13),
    ]);
    assert_same(got, vec![m(&[&s2, &mid, &e1])]);
    assert_eq!(h.timeouts(), vec![(m(&[&s1, &mid]), 11)]);
    assert_eq!(h.state.counters().timeouts, 1);
}

// Adapted from NFAITCase#testTimeoutWindowPruningWindowBorders
#[test]
fn timeout_window_pruning_borders() {
    let s1 = ev(1, "start", 1.0);
    let s2 = ev(2, "start", 2.0);
    let end = ev(3, "end", 3.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("end")
        .where_(name("end"))
        .within(ms(2), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (s1.clone(), 1),
        (s2.clone(), 2),
        (ev(4, "foobar", 1.0), 2),
        (end.clone(), 3),
    ]);
    assert_same(got, vec![m(&[&s2, &end])]);
    assert_eq!(h.timeouts(), vec![(m(&[&s1]), 3)]);
}

// NFAITCase#testBranchingPattern
#[test]
fn branching_pattern() {
    let start = ev(40, "start", 1.0);
    let m1 = sub(41, "foo1", 1.0, 10.0);
    let m2 = sub(42, "foo2", 1.0, 10.0);
    let m3 = sub(43, "foo3", 1.0, 10.0);
    let n1 = sub(44, "next-one", 1.0, 2.0);
    let n2 = sub(45, "next-one", 1.0, 2.0);
    let end = ev(46, "end", 1.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle-first")
        .where_(|e: &Event, _| e.volume.is_some_and(|v| v > 5.0))
        .followed_by_any("middle-second")
        .where_(|e: &Event, _| e.volume.is_some() && e.name == "next-one")
        .followed_by_any("end")
        .where_(name("end"));
    let got = run(p, &[&start, &m1, &m2, &m3, &n1, &n2, &end]);
    assert_same(
        got,
        vec![
            m(&[&start, &m1, &n1, &end]),
            m(&[&start, &m2, &n1, &end]),
            m(&[&start, &m3, &n1, &end]),
            m(&[&start, &m1, &n2, &end]),
            m(&[&start, &m2, &n2, &end]),
            m(&[&start, &m3, &n2, &end]),
        ],
    );
}

// NFAITCase#testComplexBranchingAfterZeroOrMore
#[test]
fn complex_branching_after_zero_or_more() {
    let start = ev(40, "c", 1.0);
    let m1 = ev(41, "a", 2.0);
    let m2 = ev(42, "a", 3.0);
    let m3 = ev(43, "a", 4.0);
    let end1 = ev(44, "b", 5.0);
    let end2 = ev(45, "d", 6.0);
    let end3 = ev(46, "d", 7.0);
    let end4 = ev(47, "e", 8.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .optional()
        .followed_by_any("end1")
        .where_(name("b"))
        .followed_by_any("end2")
        .where_(name("d"))
        .followed_by_any("end3")
        .where_(name("e"));
    let got = run(p, &[&start, &m1, &m2, &m3, &end1, &end2, &end3, &end4]);
    let subsets: Vec<Vec<&Event>> = vec![
        vec![&m1, &m2, &m3],
        vec![&m1, &m2],
        vec![&m1, &m3],
        vec![&m2, &m3],
        vec![&m1],
        vec![&m2],
        vec![&m3],
        vec![],
    ];
    let mut expected = Vec::new();
    for d in [&end2, &end3] {
        for s in &subsets {
            let mut one = vec![&start];
            one.extend(s.iter().copied());
            one.extend([&end1, d, &end4]);
            expected.push(m(&one));
        }
    }
    assert_same(got, expected);
}

fn c_a_b() -> (Event, Event, Event, Event, Event) {
    (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(43, "a", 4.0),
        ev(44, "b", 5.0),
    )
}

// Adapted from NFAITCase#testStrictOneOrMore
#[test]
fn strict_one_or_more() {
    let (c, a1, a2, a3, b) = c_a_b();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .consecutive()
        .followed_by("end1")
        .where_(name("b"));
    let x = ev(50, "x", 0.0);
    let got = run(p, &[&c, &a1, &a2, &x, &a3, &b]);
    // `consecutive` stops the loop at the first non-"a" event.
    assert_same(got, vec![m(&[&c, &a1, &a2, &b]), m(&[&c, &a1, &b])]);
}

// Weir case in the style of NFAITCase (not a Flink method): a relaxed loop, the default inner contiguity
#[test]
fn relaxed_one_or_more() {
    let (c, a1, a2, a3, b) = c_a_b();
    let x = ev(50, "x", 0.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .followed_by("end1")
        .where_(name("b"));
    let got = run(p, &[&c, &a1, &x, &a2, &a3, &b]);
    assert_same(
        got,
        vec![
            m(&[&c, &a1, &a2, &a3, &b]),
            m(&[&c, &a1, &a2, &b]),
            m(&[&c, &a1, &b]),
        ],
    );
}

// Weir case in the style of NFAITCase (not a Flink method): optional loop, skipped entirely.
#[test]
fn zero_or_more_at_end() {
    let (c, a1, a2, _, _) = c_a_b();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional();
    let got = run(p, &[&c, &a1, &a2]);
    assert_same(got, vec![m(&[&c]), m(&[&c, &a1]), m(&[&c, &a1, &a2])]);
}

// Adapted from NFAITCase#testStartWithOneOrMore: a looping first step starts a match at
// every event it accepts.
#[test]
fn start_with_one_or_more() {
    let (_, a1, a2, a3, b) = c_a_b();
    let p = Pattern::begin("middle")
        .where_(name("a"))
        .one_or_more()
        .followed_by("end")
        .where_(name("b"));
    let got = run(p, &[&a1, &a2, &a3, &b]);
    assert_same(
        got,
        vec![
            m(&[&a1, &a2, &a3, &b]),
            m(&[&a2, &a3, &b]),
            m(&[&a3, &b]),
            m(&[&a1, &a2, &b]),
            m(&[&a1, &b]),
            m(&[&a2, &b]),
        ],
    );
}

// Weir case in the style of NFAITCase (not a Flink method): optional step in the middle
#[test]
fn optional_middle_step() {
    let c = ev(40, "c", 1.0);
    let a = ev(41, "a", 2.0);
    let b = ev(42, "b", 3.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .optional()
        .followed_by("end")
        .where_(name("b"));
    assert_same(run(p, &[&c, &a, &b]), vec![m(&[&c, &a, &b]), m(&[&c, &b])]);
}

// Adapted from NFAITCase#testTimes (exactly n, relaxed between repetitions)
#[test]
fn times_relaxed() {
    let (c, a1, a2, a3, b) = c_a_b();
    let x = ev(50, "x", 0.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .times(2)
        .followed_by("end")
        .where_(name("b"));
    let got = run(p, &[&c, &a1, &x, &a2, &a3, &b]);
    assert_same(got, vec![m(&[&c, &a1, &a2, &b])]);
}

// Adapted from NFAITCase#testTimesStrict (times + consecutive)
#[test]
fn times_consecutive() {
    let (c, a1, a2, a3, b) = c_a_b();
    let x = ev(50, "x", 0.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .times(2)
        .consecutive()
        .followed_by("end")
        .where_(name("b"));
    assert_same(run(p, &[&c, &a1, &x, &a2, &a3, &b]), vec![]);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .times(2)
        .consecutive()
        .followed_by("end")
        .where_(name("b"));
    assert_same(
        run(p, &[&c, &x, &a2, &a3, &b]),
        vec![m(&[&c, &a2, &a3, &b])],
    );
}

// Weir case in the style of NFAITCase (not a Flink method), for Flink 1.16+ WithinType: the gap
// before the step's event is bounded, not the whole match.
#[test]
fn within_previous_and_current() {
    let a1 = ev(1, "a", 0.0);
    let b1 = ev(2, "b", 0.0);
    let c1 = ev(3, "c", 0.0);
    let a2 = ev(4, "a", 0.0);
    let b2 = ev(5, "b", 0.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .followed_by("b")
        .where_(name("b"))
        .within(ms(5), WithinType::PreviousAndCurrent)
        .followed_by("c")
        .where_(name("c"));
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (a1.clone(), 0),
        (b1.clone(), 4),
        (c1.clone(), 100),
        (a2.clone(), 200),
        (b2, 206),
    ]);
    assert_same(got, vec![m(&[&a1, &b1, &c1])]);
    // a2 waited for b longer than 5 ms: it timed out at 205.
    assert_eq!(h.timeouts(), vec![(m(&[&a2]), 205)]);
}

// Adapted from NFAITCase#testStartWithOptional: an optional first step; the
// match may start at the second step.
#[test]
fn start_with_optional() {
    let a = ev(1, "a", 0.0);
    let b1 = ev(2, "b", 0.0);
    let b2 = ev(3, "b", 0.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .optional()
        .followed_by("b")
        .where_(name("b"));
    assert_same(
        run(p, &[&a, &b1, &b2]),
        vec![m(&[&a, &b1]), m(&[&b1]), m(&[&b2])],
    );
}

// Adapted from NFAITCase#testOrWhere (Flink's `or`): a step's alternative conditions.
#[test]
fn or_where() {
    let a = ev(1, "a", 0.0);
    let x = ev(2, "x", 9.0);
    let y = ev(3, "y", 1.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .followed_by("b")
        .where_(name("b"))
        .or_where(|e: &Event, _| e.price > 5.0);
    assert_same(run(p, &[&a, &y, &x]), vec![m(&[&a, &x])]);
}
