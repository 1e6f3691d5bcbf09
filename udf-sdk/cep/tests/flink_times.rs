//! Ported from Flink's `TimesRangeITCase` and `TimesOrMoreITCase`.
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
        ev(42, "a", 3.0),
        ev(43, "a", 4.0),
        ev(44, "b", 5.0),
    )
}

fn c_then(times: impl FnOnce(Pattern<Event>) -> Pattern<Event>) -> Pattern<Event> {
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"));
    times(p).followed_by("end1").where_(name("b"))
}

// TimesRangeITCase#testTimesRange
#[test]
fn times_range() {
    let (c, m1, m2, m3, b) = events();
    let got = run(c_then(|p| p.times_range(1, 3)), &[&c, &m1, &m2, &m3, &b]);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &b]),
        ],
    );
}

// TimesRangeITCase#testTimesRangeNonStrict
#[test]
fn times_range_non_strict() {
    let (c, m1, m2, m3, b) = events();
    let got = run(
        c_then(|p| p.times_range(1, 3).allow_combinations()),
        &[&c, &m1, &m2, &m3, &b],
    );
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
            m(&[&c, &m1, &b]),
        ],
    );
}

// Adapted from TimesRangeITCase#testTimesRangeStrict
#[test]
fn times_range_strict() {
    let (c, m1, m2, m3, b) = events();
    let x = ev(45, "x", 0.0);
    let got = run(
        c_then(|p| p.times_range(2, 3).consecutive()),
        &[&c, &m1, &m2, &x, &m3, &b],
    );
    assert_same(got, vec![m(&[&c, &m1, &m2, &b])]);
}

// TimesRangeITCase#testTimesRangeOptional
#[test]
fn times_range_optional() {
    let (c, m1, m2, m3, b) = events();
    let got = run(
        c_then(|p| p.times_range(1, 3).optional()),
        &[&c, &m1, &m2, &m3, &b],
    );
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &b]),
            m(&[&c, &b]),
        ],
    );
}

// Adapted from TimesRangeITCase#testTimesRangeFromZero: times(0, n) is an optional times(1, n).
#[test]
fn times_range_from_zero() {
    let (c, m1, m2, _, b) = events();
    let got = run(c_then(|p| p.times_range(0, 2)), &[&c, &m1, &m2, &b]);
    assert_same(
        got,
        vec![m(&[&c, &m1, &m2, &b]), m(&[&c, &m1, &b]), m(&[&c, &b])],
    );
}

// TimesOrMoreITCase#testTimesOrMore
#[test]
fn times_or_more() {
    let (c, m1, m2, m3, b) = events();
    let got = run(c_then(|p| p.times_or_more(2)), &[&c, &m1, &m2, &m3, &b]);
    assert_same(
        got,
        vec![m(&[&c, &m1, &m2, &m3, &b]), m(&[&c, &m1, &m2, &b])],
    );
}

// TimesOrMoreITCase#testTimesOrMoreNonStrict
#[test]
fn times_or_more_non_strict() {
    let (c, m1, m2, m3, b) = events();
    let got = run(
        c_then(|p| p.times_or_more(2).allow_combinations()),
        &[&c, &m1, &m2, &m3, &b],
    );
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
        ],
    );
}

// TimesOrMoreITCase#testTimesOrMoreStrict
#[test]
fn times_or_more_strict() {
    let (c, m1, m2, m3, b) = events();
    let d = ev(45, "d", 0.0);
    let got = run(
        c_then(|p| p.times_or_more(2).consecutive()),
        &[&c, &m1, &m2, &d, &m3, &b],
    );
    assert_same(got, vec![m(&[&c, &m1, &m2, &b])]);
}

// Adapted from TimesOrMoreITCase#testTimesOrMoreOptional
#[test]
fn times_or_more_optional() {
    let (c, m1, _, _, b) = events();
    let got = run(c_then(|p| p.times_or_more(2).optional()), &[&c, &m1, &b]);
    assert_same(got, vec![m(&[&c, &b])]);
}
