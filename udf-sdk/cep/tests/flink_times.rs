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

// Exact ports of TimesRangeITCase (Flink's events, timestamps and expected matches).

fn exact_feed(pattern: Pattern<Event>, records: &[(&Event, i64)]) -> Vec<Vec<Event>> {
    let records: Vec<(Event, i64)> = records.iter().map(|(e, t)| ((*e).clone(), *t)).collect();
    Harness::new(pattern).feed(&records)
}

fn c_join_a(
    join: fn(Pattern<Event>, &str) -> Pattern<Event>,
    q: fn(Pattern<Event>) -> Pattern<Event>,
) -> Pattern<Event> {
    let p = join(Pattern::begin("start").where_(name("c")), "middle").where_(name("a"));
    q(p).followed_by("end1").where_(name("b"))
}

/// Flink's `ConsecutiveData` with "f" fillers: c f a1 f a2 a3 b.
fn with_fillers() -> (Vec<(Event, i64)>, [Event; 5]) {
    let (c, m1, m2, m3, b) = events();
    let f = ev(23, "f", 1.0);
    let recs = vec![
        (c.clone(), 1),
        (f.clone(), 2),
        (m1.clone(), 3),
        (f, 4),
        (m2.clone(), 5),
        (m3.clone(), 6),
        (b.clone(), 7),
    ];
    (recs, [c, m1, m2, m3, b])
}

// TimesRangeITCase#testTimesRange (exact: next + allowCombinations)
#[test]
fn exact_times_range() {
    let (c, m1, m2, m3, b) = events();
    let p = c_join_a(
        |p, n| p.next(n),
        |p| p.times_range(1, 3).allow_combinations(),
    );
    let got = exact_feed(p, &[(&c, 1), (&m1, 2), (&m2, 3), (&m3, 4), (&b, 6)]);
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

// TimesRangeITCase#testTimesRangeFromZero
#[test]
fn exact_times_range_from_zero() {
    let (c, m1, m2, m3, b) = events();
    let p = c_join_a(
        |p, n| p.next(n),
        |p| p.times_range(0, 2).allow_combinations(),
    );
    let got = exact_feed(p, &[(&c, 1), (&m1, 2), (&m2, 3), (&m3, 4), (&b, 6)]);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
            m(&[&c, &m1, &b]),
            m(&[&c, &b]),
        ],
    );
}

// TimesRangeITCase#testTimesRangeNonStrict
#[test]
fn exact_times_range_non_strict() {
    let (recs, [c, m1, m2, m3, b]) = with_fillers();
    let p = c_join_a(
        |p, n| p.followed_by_any(n),
        |p| p.times_range(1, 3).allow_combinations(),
    );
    let got = Harness::new(p).feed(&recs);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
            m(&[&c, &m2, &m3, &b]),
            m(&[&c, &m1, &b]),
            m(&[&c, &m2, &b]),
            m(&[&c, &m3, &b]),
        ],
    );
}

// TimesRangeITCase#testTimesRangeStrict
#[test]
fn exact_times_range_strict() {
    let (recs, [c, m1, m2, m3, b]) = with_fillers();
    let p = c_join_a(
        |p, n| p.followed_by_any(n),
        |p| p.times_range(0, 3).consecutive(),
    );
    let got = Harness::new(p).feed(&recs);
    assert_same(
        got,
        vec![
            m(&[&c, &m2, &m3, &b]),
            m(&[&c, &m1, &b]),
            m(&[&c, &m2, &b]),
            m(&[&c, &m3, &b]),
            m(&[&c, &b]),
        ],
    );
}

// TimesRangeITCase#testTimesRangeStrictOptional
#[test]
fn exact_times_range_strict_optional() {
    let (recs, [c, m1, m2, m3, b]) = with_fillers();
    let p = c_join_a(
        |p, n| p.followed_by_any(n),
        |p| p.times_range(1, 3).consecutive().optional(),
    );
    let got = Harness::new(p).feed(&recs);
    assert_same(
        got,
        vec![
            m(&[&c, &m2, &m3, &b]),
            m(&[&c, &m1, &b]),
            m(&[&c, &m2, &b]),
            m(&[&c, &m3, &b]),
            m(&[&c, &b]),
        ],
    );
}

// TimesRangeITCase#testTimesRangeStrictOptional1
#[test]
fn exact_times_range_strict_optional_1() {
    let (c, m1, m2, m3, b) = events();
    let p = c_join_a(
        |p, n| p.next(n),
        |p| p.times_range(1, 3).consecutive().optional(),
    );
    let got = exact_feed(p, &[(&c, 1), (&m1, 3), (&m2, 5), (&m3, 6), (&b, 7)]);
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

// TimesRangeITCase#testTimesRangeNonStrictOptional1
#[test]
fn exact_times_range_non_strict_optional_1() {
    let (c, _, _, _, b) = events();
    let f = ev(23, "f", 1.0);
    let p = c_join_a(|p, n| p.followed_by(n), |p| p.times_range(1, 3).optional());
    let got = exact_feed(p, &[(&c, 1), (&f, 2), (&b, 7)]);
    assert_same(got, vec![m(&[&c, &b])]);
}

// Exact ports of TimesOrMoreITCase (its `time == null` runs; the per-loop
// window of `timesOrMore(n, window)` is not supported here).

// TimesOrMoreITCase#testTimesOrMore
#[test]
fn exact_times_or_more() {
    let (c, m1, m2, m3, b) = events();
    let p = c_join_a(
        |p, n| p.followed_by(n),
        |p| p.times_or_more(2).allow_combinations(),
    );
    let got = exact_feed(p, &[(&c, 1), (&m1, 2), (&m2, 3), (&m3, 4), (&b, 6)]);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
        ],
    );
}

// TimesOrMoreITCase#testTimesOrMoreNonStrict
#[test]
fn exact_times_or_more_non_strict() {
    let (recs, [c, m1, m2, m3, b]) = with_fillers();
    let p = c_join_a(
        |p, n| p.followed_by_any(n),
        |p| p.times_or_more(2).allow_combinations(),
    );
    let got = Harness::new(p).feed(&recs);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &m1, &m3, &b]),
            m(&[&c, &m2, &m3, &b]),
        ],
    );
}

// TimesOrMoreITCase#testTimesOrMoreStrict
#[test]
fn exact_times_or_more_strict() {
    let (recs, [c, _, m2, m3, b]) = with_fillers();
    let p = c_join_a(|p, n| p.followed_by_any(n), |p| p.times(2).consecutive());
    let got = Harness::new(p).feed(&recs);
    assert_same(got, vec![m(&[&c, &m2, &m3, &b])]);
}

// TimesOrMoreITCase#testTimesOrMoreStrictOptional
#[test]
fn exact_times_or_more_strict_optional() {
    let (recs, [c, _, m2, m3, b]) = with_fillers();
    let p = c_join_a(
        |p, n| p.followed_by_any(n),
        |p| p.times_or_more(2).consecutive().optional(),
    );
    let got = Harness::new(p).feed(&recs);
    assert_same(got, vec![m(&[&c, &m2, &m3, &b]), m(&[&c, &b])]);
}

// TimesOrMoreITCase#testTimesOrMoreStrictOptional2
#[test]
fn exact_times_or_more_strict_optional_2() {
    let (c, m1, m2, m3, b) = events();
    let p = c_join_a(
        |p, n| p.next(n),
        |p| p.times_or_more(2).consecutive().optional(),
    );
    let got = exact_feed(p, &[(&c, 1), (&m1, 3), (&m2, 5), (&m3, 6), (&b, 7)]);
    assert_same(
        got,
        vec![
            m(&[&c, &m1, &m2, &m3, &b]),
            m(&[&c, &m1, &m2, &b]),
            m(&[&c, &b]),
        ],
    );
}

// TimesOrMoreITCase#testTimesOrMoreNonStrictOptional
#[test]
fn exact_times_or_more_non_strict_optional() {
    let (c, _, _, _, b) = events();
    let f = ev(23, "f", 1.0);
    let p = c_join_a(|p, n| p.followed_by(n), |p| p.times_or_more(2).optional());
    assert_same(
        exact_feed(p, &[(&c, 1), (&f, 2), (&b, 7)]),
        vec![m(&[&c, &b])],
    );
}
