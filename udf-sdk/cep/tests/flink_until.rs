//! Ported from Flink's `UntilConditionITCase`, with Flink's events,
//! timestamps and expected matches (and its check that nothing is left).

mod common;

use common::*;
use weir_cep::{Matched, Pattern};

fn until_price_5(e: &Event, _: &dyn Matched<Event>) -> bool {
    e.price == 5.0
}

/// Runs and checks that the key holds nothing afterwards (Flink's `nfa.isEmpty()`).
fn feed_empty(
    pattern: Pattern<Event>,
    records: &[(&Event, i64)],
    expect_empty: bool,
) -> Vec<Vec<Event>> {
    let records: Vec<(Event, i64)> = records.iter().map(|(e, t)| ((*e).clone(), *t)).collect();
    let mut h = Harness::new(pattern);
    let got = h.feed(&records);
    if expect_empty {
        assert!(
            h.state.is_idle(),
            "{} partial matches left",
            h.state.partial_matches()
        );
    }
    got
}

fn c_then_a(join: fn(Pattern<Event>, &str) -> Pattern<Event>) -> Pattern<Event> {
    join(Pattern::begin("start").where_(name("c")), "middle").where_(name("a"))
}

fn followed_by(p: Pattern<Event>, n: &str) -> Pattern<Event> {
    p.followed_by(n)
}

fn followed_by_any(p: Pattern<Event>, n: &str) -> Pattern<Event> {
    p.followed_by_any(n)
}

struct U {
    start: Event,
    m1: Event,
    m2: Event,
    breaking: Event,
    ignored: Event,
}

fn u() -> U {
    U {
        start: ev(40, "c", 1.0),
        m1: ev(41, "a", 2.0),
        m2: ev(42, "a", 3.0),
        breaking: ev(44, "a", 5.0),
        ignored: ev(45, "a", 6.0),
    }
}

fn recs(u: &U) -> Vec<(&Event, i64)> {
    vec![
        (&u.start, 1),
        (&u.m1, 3),
        (&u.m2, 4),
        (&u.breaking, 6),
        (&u.ignored, 7),
    ]
}

// UntilConditionITCase#testUntilConditionFollowedByOneOrMore
#[test]
fn until_condition_followed_by_one_or_more() {
    let u = u();
    let p = c_then_a(followed_by)
        .one_or_more()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(p, &recs(&u), true);
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByOneOrMoreCombinations
#[test]
fn until_condition_followed_by_one_or_more_combinations() {
    let u = u();
    let m3 = ev(43, "a", 4.0);
    let p = c_then_a(followed_by)
        .one_or_more()
        .allow_combinations()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&m3, 5),
            (&u.breaking, 6),
            (&u.ignored, 7),
        ],
        true,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &m3, &u.breaking]),
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &m3, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByOneOrMoreConsecutive
#[test]
fn until_condition_followed_by_one_or_more_consecutive() {
    let u = u();
    let p = c_then_a(followed_by)
        .one_or_more()
        .consecutive()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&u.breaking, 7),
            (&u.ignored, 8),
        ],
        true,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByZeroOrMore
#[test]
fn until_condition_followed_by_zero_or_more() {
    let u = u();
    let p = c_then_a(followed_by)
        .one_or_more()
        .optional()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(p, &recs(&u), true);
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
            m(&[&u.start, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByZeroOrMoreCombinations
#[test]
fn until_condition_followed_by_zero_or_more_combinations() {
    let u = u();
    let m3 = ev(43, "a", 4.0);
    let p = c_then_a(followed_by)
        .one_or_more()
        .optional()
        .allow_combinations()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&m3, 5),
            (&u.breaking, 6),
            (&u.ignored, 7),
        ],
        true,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &m3, &u.breaking]),
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &m3, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
            m(&[&u.start, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByZeroOrMoreConsecutive
#[test]
fn until_condition_followed_by_zero_or_more_consecutive() {
    let u = u();
    let p = c_then_a(followed_by)
        .one_or_more()
        .optional()
        .consecutive()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&u.breaking, 7),
            (&u.ignored, 8),
        ],
        true,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2, &u.breaking]),
            m(&[&u.start, &u.m1, &u.breaking]),
            m(&[&u.start, &u.breaking]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByAnyOneOrMore
#[test]
fn until_condition_followed_by_any_one_or_more() {
    let u = u();
    let m3 = ev(45, "a", 6.0);
    let p = c_then_a(followed_by_any).one_or_more().until(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&u.breaking, 6),
            (&m3, 7),
        ],
        false,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2]),
            m(&[&u.start, &u.m1]),
            m(&[&u.start, &u.m2]),
            m(&[&u.start, &m3]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionFollowedByAnyZeroOrMore
#[test]
fn until_condition_followed_by_any_zero_or_more() {
    let u = u();
    let m3 = ev(45, "a", 6.0);
    let p = c_then_a(followed_by_any)
        .one_or_more()
        .optional()
        .until(until_price_5);
    let got = feed_empty(
        p,
        &[
            (&u.start, 1),
            (&u.m1, 3),
            (&u.m2, 4),
            (&u.breaking, 6),
            (&m3, 7),
        ],
        false,
    );
    assert_same(
        got,
        vec![
            m(&[&u.start, &u.m1, &u.m2]),
            m(&[&u.start, &u.m1]),
            m(&[&u.start, &u.m2]),
            m(&[&u.start, &m3]),
            m(&[&u.start]),
        ],
    );
}

fn empty_where_records(u: &U, d: &Event) -> Vec<(Event, i64)> {
    vec![
        (u.start.clone(), 1),
        (u.m1.clone(), 3),
        (u.m2.clone(), 4),
        (d.clone(), 5),
        (u.breaking.clone(), 6),
        (u.ignored.clone(), 7),
    ]
}

fn middle_sum_is_6(_: &Event, m: &dyn Matched<Event>) -> bool {
    let mut s = 0.0;
    m.visit("middle", &mut |e| s += e.price);
    s == 6.0
}

fn check_empty_where(p: Pattern<Event>, with_start_only: bool) {
    let u = u();
    let d = ev(40, "d", 1.0);
    let mut h = Harness::new(p);
    let got = h.feed(&empty_where_records(&u, &d));
    let mut expected = vec![
        m(&[&u.start, &u.m1, &u.m2, &d]),
        m(&[&u.start, &u.m1, &u.m2]),
        m(&[&u.start, &u.m1]),
    ];
    if with_start_only {
        expected.push(m(&[&u.start]));
    }
    assert_same(got, expected);
    assert!(h.state.is_idle());
}

// UntilConditionITCase#testUntilConditionWithEmptyWhere
#[test]
fn until_condition_with_empty_where() {
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .one_or_more()
        .until(until_price_5);
    check_empty_where(p, false);
}

// UntilConditionITCase#testIterativeUntilConditionOneOrMore
#[test]
fn iterative_until_condition_one_or_more() {
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .one_or_more()
        .until(middle_sum_is_6);
    check_empty_where(p, false);
}

// UntilConditionITCase#testIterativeUntilConditionZeroOrMore
#[test]
fn iterative_until_condition_zero_or_more() {
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .one_or_more()
        .optional()
        .until(middle_sum_is_6);
    check_empty_where(p, true);
}
