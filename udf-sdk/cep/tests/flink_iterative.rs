//! Ported from Flink's `IterativeConditionsITCase`: conditions that read the
//! partial match they would extend.
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::{Matched, Pattern};

fn sum(m: &dyn Matched<Event>, step: &str) -> f64 {
    let mut s = 0.0;
    m.visit(step, &mut |e| s += e.price);
    s
}

// Adapted from IterativeConditionsITCase#testIterativeWithLoopingStartingEager: the loop
// takes "foo" events while the running sum of its prices stays below 5.
#[test]
fn iterative_with_looping_sum() {
    let start = ev(40, "start", 1.0);
    let f1 = sub(41, "foo1", 1.0, 10.0);
    let f2 = sub(42, "foo2", 2.0, 10.0);
    let f3 = sub(43, "foo3", 3.0, 10.0);
    let end = ev(46, "end", 1.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            e.name.starts_with("foo") && sum(m, "middle") + e.price < 5.0
        })
        .one_or_more()
        .allow_combinations()
        .followed_by("end")
        .where_(name("end"));
    let got = run(p, &[&start, &f1, &f2, &f3, &end]);
    assert_same(
        got,
        vec![
            m(&[&start, &f1, &end]),
            m(&[&start, &f2, &end]),
            m(&[&start, &f3, &end]),
            m(&[&start, &f1, &f2, &end]),
            m(&[&start, &f1, &f3, &end]),
        ],
    );
}

// Adapted from IterativeConditionsITCase#testIterativeWithPrevPatternDependency: the end
// must cost more than the start.
#[test]
fn iterative_with_prev_pattern_dependency() {
    let s = ev(40, "start", 2.0);
    let cheap = ev(41, "end", 1.0);
    let dear = ev(42, "end", 3.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("end")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            let mut first = f64::MAX;
            m.visit("start", &mut |s| first = s.price);
            e.name == "end" && e.price > first
        });
    assert_same(run(p, &[&s, &cheap, &dear]), vec![m(&[&s, &dear])]);
}

// Adapted from IterativeConditionsITCase#testIterativeWithABACPattern: the last event must
// have the first event's name again.
#[test]
fn iterative_aba() {
    let a1 = ev(1, "a", 1.0);
    let b1 = ev(2, "b", 1.0);
    let c1 = ev(3, "c", 1.0);
    let a2 = ev(4, "a", 2.0);
    let p = Pattern::begin("first")
        .followed_by("second")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            let mut first = "";
            m.visit("first", &mut |f| first = f.name);
            e.name != first
        })
        .followed_by("third")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            let mut first = "";
            m.visit("first", &mut |f| first = f.name);
            e.name == first
        });
    let got = run(p, &[&a1, &b1, &c1, &a2]);
    // a1 b1 .. a2; b1 c1 .. (no later b); c1 a2 .. (no later c).
    assert_same(got, vec![m(&[&a1, &b1, &a2])]);
}

// Adapted from IterativeConditionsITCase#testIterativeWithBranchingPatternEager: each
// branch of followedByAny sees only its own events.
#[test]
fn iterative_branches_see_their_own_events() {
    let s = ev(40, "start", 1.0);
    let x1 = ev(41, "x", 1.0);
    let x2 = ev(42, "x", 2.0);
    let e = ev(43, "end", 0.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle")
        .where_(name("x"))
        .followed_by("end")
        .where_(|ev: &Event, m: &dyn Matched<Event>| {
            let mut n = 0;
            m.visit("middle", &mut |_| n += 1);
            ev.name == "end" && n == 1 && sum(m, "middle") < 10.0
        });
    let got = run(p, &[&s, &x1, &x2, &e]);
    assert_same(got, vec![m(&[&s, &x1, &e]), m(&[&s, &x2, &e])]);
}
