//! Ported from Flink's `NFAITCase`: the quantifier, optional and
//! consecutive cases, with Flink's events, timestamps and expected matches
//! (events listed in match order).

mod common;

use common::*;
use weir_cep::{Pattern, WithinType};

/// Runs `pattern` over `(event, timestamp)` records.
fn feed(pattern: Pattern<Event>, records: &[(&Event, i64)]) -> Vec<Vec<Event>> {
    let records: Vec<(Event, i64)> = records.iter().map(|(e, t)| ((*e).clone(), *t)).collect();
    Harness::new(pattern).feed(&records)
}

/// Flink's `ConsecutiveData`.
struct Cd {
    start: Event,
    m1: Event,
    m2: Event,
    m3: Event,
    m4: Event,
    end: Event,
}

fn cd() -> Cd {
    Cd {
        start: ev(40, "c", 1.0),
        m1: ev(41, "a", 2.0),
        m2: ev(42, "a", 3.0),
        m3: ev(43, "a", 4.0),
        m4: ev(43, "a", 5.0),
        end: ev(44, "b", 5.0),
    }
}

fn f() -> Event {
    ev(23, "f", 1.0)
}

fn d50() -> Event {
    ev(50, "d", 6.0)
}

/// `begin("start").where(c)`, then `middle` (a) joined by `join`, shaped by
/// `quantify`, then `end1` (b) followed by.
fn c_a_b(
    join: fn(Pattern<Event>, &str) -> Pattern<Event>,
    quantify: fn(Pattern<Event>) -> Pattern<Event>,
) -> Pattern<Event> {
    let p = join(Pattern::begin("start").where_(name("c")), "middle").where_(name("a"));
    quantify(p).followed_by("end1").where_(name("b"))
}

fn followed_by(p: Pattern<Event>, n: &str) -> Pattern<Event> {
    p.followed_by(n)
}

fn followed_by_any(p: Pattern<Event>, n: &str) -> Pattern<Event> {
    p.followed_by_any(n)
}

fn next(p: Pattern<Event>, n: &str) -> Pattern<Event> {
    p.next(n)
}

// NFAITCase#testZeroOrMore
#[test]
fn zero_or_more() {
    let (s, m1, m2, e) = (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(44, "b", 5.0),
    );
    let p = c_a_b(followed_by_any, |p| {
        p.one_or_more().allow_combinations().optional()
    });
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m2, 4), (&e, 6)]);
    assert_same(
        got,
        vec![
            m(&[&s, &m1, &m2, &e]),
            m(&[&s, &m1, &e]),
            m(&[&s, &m2, &e]),
            m(&[&s, &e]),
        ],
    );
}

// NFAITCase#testEagerZeroOrMore
#[test]
fn eager_zero_or_more() {
    let c = cd();
    let d = d50();
    let p = c_a_b(followed_by, |p| p.one_or_more().optional());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 3),
            (&c.m2, 4),
            (&d, 5),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testBeginWithZeroOrMore
#[test]
fn begin_with_zero_or_more() {
    let (m1, m2, m3, e) = (
        ev(40, "a", 2.0),
        ev(41, "a", 3.0),
        ev(41, "a", 3.0),
        ev(42, "b", 4.0),
    );
    let p = Pattern::begin("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .followed_by("end")
        .where_(name("b"));
    let got = feed(p, &[(&m1, 3), (&m2, 4), (&m3, 5), (&e, 6)]);
    assert_same(
        got,
        vec![
            m(&[&m1, &m2, &m3, &e]),
            m(&[&m1, &m2, &e]),
            m(&[&m2, &m3, &e]),
            m(&[&m1, &e]),
            m(&[&m2, &e]),
            m(&[&m3, &e]),
            m(&[&e]),
        ],
    );
}

// NFAITCase#testZeroOrMoreAfterZeroOrMore
#[test]
fn zero_or_more_after_zero_or_more() {
    let (s, m1, m2, m3, e) = (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "d", 3.0),
        ev(43, "d", 4.0),
        ev(44, "e", 4.0),
    );
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle-first")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .optional()
        .followed_by("middle-second")
        .where_(name("d"))
        .one_or_more()
        .allow_combinations()
        .optional()
        .followed_by("end")
        .where_(name("e"));
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m2, 4), (&m3, 5), (&e, 6)]);
    assert_same(
        got,
        vec![
            m(&[&s, &m1, &m2, &m3, &e]),
            m(&[&s, &m1, &m2, &e]),
            m(&[&s, &m2, &m3, &e]),
            m(&[&s, &m2, &e]),
            m(&[&s, &m1, &e]),
            m(&[&s, &e]),
        ],
    );
}

// NFAITCase#testZeroOrMoreAfterBranching
#[test]
fn zero_or_more_after_branching() {
    let s = ev(40, "c", 1.0);
    let (m1, m2) = (ev(41, "a", 2.0), ev(42, "a", 3.0));
    let merging = ev(42, "f", 3.0);
    let (k1, k2) = (ev(43, "d", 4.0), ev(44, "d", 4.0));
    let e = ev(45, "e", 4.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("branching")
        .where_(name("a"))
        .followed_by_any("merging")
        .where_(name("f"))
        .followed_by_any("kleene")
        .where_(name("d"))
        .one_or_more()
        .allow_combinations()
        .optional()
        .followed_by("end")
        .where_(name("e"));
    let got = feed(
        p,
        &[
            (&s, 1),
            (&m1, 3),
            (&m2, 4),
            (&merging, 5),
            (&k1, 6),
            (&k2, 7),
            (&e, 8),
        ],
    );
    let mut expected = Vec::new();
    for mid in [&m1, &m2] {
        for ks in [vec![], vec![&k1], vec![&k2], vec![&k1, &k2]] {
            let mut one = vec![&s, mid, &merging];
            one.extend(ks);
            one.push(&e);
            expected.push(m(&one));
        }
    }
    assert_same(got, expected);
}

// NFAITCase#testStrictContinuityNoResultsAfterZeroOrMore
#[test]
fn strict_continuity_no_results_after_zero_or_more() {
    let (s, m1, m2, m3, e) = (
        ev(40, "d", 2.0),
        ev(41, "a", 2.0),
        ev(42, "a", 2.0),
        ev(43, "c", 3.0),
        ev(44, "b", 4.0),
    );
    let p = Pattern::begin("start")
        .where_(name("d"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .next("end")
        .where_(name("b"));
    assert_same(
        feed(p, &[(&s, 1), (&m1, 2), (&m2, 3), (&m3, 4), (&e, 5)]),
        vec![],
    );
}

// NFAITCase#testStrictContinuityResultsAfterZeroOrMore
#[test]
fn strict_continuity_results_after_zero_or_more() {
    let (s, m1, m2, e) = (
        ev(40, "d", 2.0),
        ev(41, "a", 2.0),
        ev(42, "a", 2.0),
        ev(43, "b", 4.0),
    );
    let p = Pattern::begin("start")
        .where_(name("d"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .allow_combinations()
        .next("end")
        .where_(name("b"));
    let got = feed(p, &[(&s, 1), (&m1, 2), (&m2, 3), (&e, 5)]);
    assert_same(got, vec![m(&[&s, &m1, &m2, &e]), m(&[&s, &m2, &e])]);
}

// NFAITCase#testAtLeastOne
#[test]
fn at_least_one() {
    let (s, m1, m2, e) = (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(44, "b", 5.0),
    );
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .followed_by_any("end1")
        .where_(name("b"));
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m2, 4), (&e, 6)]);
    assert_same(
        got,
        vec![m(&[&s, &m1, &m2, &e]), m(&[&s, &m1, &e]), m(&[&s, &m2, &e])],
    );
}

// NFAITCase#testBeginWithAtLeastOne
#[test]
fn begin_with_at_least_one() {
    let (s1, s2, s3, e) = (
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(42, "a", 4.0),
        ev(44, "b", 5.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .followed_by("end")
        .where_(name("b"));
    let got = feed(p, &[(&s1, 3), (&s2, 4), (&s3, 5), (&e, 6)]);
    assert_same(
        got,
        vec![
            m(&[&s1, &s2, &s3, &e]),
            m(&[&s1, &s2, &e]),
            m(&[&s1, &s3, &e]),
            m(&[&s2, &s3, &e]),
            m(&[&s1, &e]),
            m(&[&s2, &e]),
            m(&[&s3, &e]),
        ],
    );
}

// NFAITCase#testNextZeroOrMore
#[test]
fn next_zero_or_more() {
    let s = ev(40, "start", 1.0);
    let (m1, m2, m3) = (
        ev(40, "middle", 2.0),
        ev(40, "middle", 3.0),
        ev(40, "middle", 4.0),
    );
    let e = ev(46, "end", 1.0);
    let other = ev(1, "event", 1.0);
    let p = Pattern::begin("start")
        .where_(name("start"))
        .next("middle")
        .where_(name("middle"))
        .one_or_more()
        .optional()
        .consecutive()
        .followed_by("end")
        .where_(name("end"));
    let got = feed(
        p,
        &[(&s, 1), (&other, 2), (&m1, 3), (&m2, 4), (&m3, 5), (&e, 6)],
    );
    assert_same(got, vec![m(&[&s, &e])]);
}

// NFAITCase#testAtLeastOneEager
#[test]
fn at_least_one_eager() {
    let c = cd();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .followed_by_any("end1")
        .where_(name("b"));
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 3),
            (&c.m2, 4),
            (&c.m3, 5),
            (&c.end, 6),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m3, &c.end]),
            m(&[&c.start, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
        ],
    );
}

// NFAITCase#testOptional
#[test]
fn optional() {
    let (s, mid, e) = (ev(40, "c", 1.0), ev(43, "a", 4.0), ev(44, "b", 5.0));
    let p = c_a_b(followed_by, |p| p.optional());
    assert_same(
        feed(p, &[(&s, 1), (&mid, 5), (&e, 6)]),
        vec![m(&[&s, &mid, &e]), m(&[&s, &e])],
    );
}

// NFAITCase#testTimes
#[test]
fn times() {
    let c = cd();
    let p = c_a_b(next, |p| p.times(2).allow_combinations());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&c.m2, 3),
            (&c.m3, 4),
            (&c.end, 6),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
        ],
    );
}

// NFAITCase#testStartWithTimes
#[test]
fn start_with_times() {
    let c = cd();
    let p = Pattern::begin("middle")
        .where_(name("a"))
        .times(2)
        .consecutive()
        .followed_by("end1")
        .where_(name("b"));
    let got = feed(p, &[(&c.m1, 2), (&c.m2, 3), (&c.m3, 4), (&c.end, 6)]);
    assert_same(
        got,
        vec![m(&[&c.m1, &c.m2, &c.end]), m(&[&c.m2, &c.m3, &c.end])],
    );
}

// NFAITCase#testTimesNonStrictWithNext
#[test]
fn times_non_strict_with_next() {
    let c = cd();
    let (f1, f2) = (f(), f());
    let p = c_a_b(next, |p| p.times(2).allow_combinations());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&f1, 3),
            (&c.m2, 4),
            (&f2, 5),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
        ],
    );
}

// NFAITCase#testTimesNotStrictWithFollowedByEager
#[test]
fn times_not_strict_with_followed_by_eager() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.times(2));
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&c.m2, 4),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(got, vec![m(&[&c.start, &c.m1, &c.m2, &c.end])]);
}

// NFAITCase#testTimesNotStrictWithFollowedByNotEager
#[test]
fn times_not_strict_with_followed_by_not_eager() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| p.times(2).allow_combinations());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&c.m2, 4),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
        ],
    );
}

// NFAITCase#testTimesStrictWithNextAndConsecutive
#[test]
fn times_strict_with_next_and_consecutive() {
    let c = cd();
    let f1 = f();
    let p = c_a_b(next, |p| p.times(2).consecutive());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&f1, 3),
            (&c.m2, 4),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(got, vec![]);
}

// NFAITCase#testStartWithOptional
#[test]
fn start_with_optional_c() {
    let (s, e) = (ev(40, "c", 1.0), ev(44, "b", 5.0));
    let p = Pattern::begin("start")
        .where_(name("c"))
        .optional()
        .followed_by("end1")
        .where_(name("b"));
    assert_same(feed(p, &[(&s, 1), (&e, 6)]), vec![m(&[&s, &e]), m(&[&e])]);
}

// NFAITCase#testEndWithZeroOrMore
#[test]
fn end_with_zero_or_more() {
    let c = cd();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional();
    let got = feed(p, &[(&c.start, 1), (&c.m1, 3), (&c.m2, 4), (&c.m3, 5)]);
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3]),
            m(&[&c.start, &c.m1, &c.m2]),
            m(&[&c.start, &c.m1]),
            m(&[&c.start]),
        ],
    );
}

// NFAITCase#testStartAndEndWithZeroOrMore
#[test]
fn start_and_end_with_zero_or_more() {
    let c = cd();
    let (d1, d2, d3) = (ev(44, "d", 5.0), ev(45, "d", 5.0), ev(46, "d", 5.0));
    let p = Pattern::begin("start")
        .where_(name("a"))
        .one_or_more()
        .optional();
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 3),
            (&c.m2, 4),
            (&c.m3, 5),
            (&d1, 6),
            (&d2, 6),
            (&d3, 6),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.m1, &c.m2, &c.m3]),
            m(&[&c.m1, &c.m2]),
            m(&[&c.m1]),
            m(&[&c.m2, &c.m3]),
            m(&[&c.m2]),
            m(&[&c.m3]),
        ],
    );
}

// NFAITCase#testEndWithOptional
#[test]
fn end_with_optional() {
    let c = cd();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .optional();
    let got = feed(p, &[(&c.start, 1), (&c.m1, 3)]);
    assert_same(got, vec![m(&[&c.start, &c.m1]), m(&[&c.start])]);
}

// NFAITCase#testEndWithOneOrMore
#[test]
fn end_with_one_or_more() {
    let c = cd();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more();
    let got = feed(p, &[(&c.start, 1), (&c.m1, 3), (&c.m2, 4), (&c.m3, 5)]);
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3]),
            m(&[&c.start, &c.m1, &c.m2]),
            m(&[&c.start, &c.m1]),
        ],
    );
}

// NFAITCase#testTimesNonStrictOptional1
#[test]
fn times_non_strict_optional_1() {
    let c = cd();
    let f1 = f();
    let p = c_a_b(followed_by, |p| p.times(3).optional());
    let got = feed(p, &[(&c.start, 1), (&f1, 2), (&c.end, 7)]);
    assert_same(got, vec![m(&[&c.start, &c.end])]);
}

fn optional_records(c: &Cd, f1: &Event, f2: &Event) -> Vec<(Event, i64)> {
    vec![
        (c.start.clone(), 1),
        (f1.clone(), 2),
        (c.m1.clone(), 3),
        (f2.clone(), 4),
        (c.m2.clone(), 5),
        (c.m3.clone(), 6),
        (c.end.clone(), 7),
    ]
}

// NFAITCase#testTimesNonStrictOptional2
#[test]
fn times_non_strict_optional_2() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| {
        p.times(2).allow_combinations().optional()
    });
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testTimesNonStrictOptional3
#[test]
fn times_non_strict_optional_3() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| p.times(2).optional());
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testTimesStrictOptional
#[test]
fn times_strict_optional() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| p.times(2).consecutive().optional());
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(
        got,
        vec![m(&[&c.start, &c.m2, &c.m3, &c.end]), m(&[&c.start, &c.end])],
    );
}

// NFAITCase#testOneOrMoreStrictOptional
#[test]
fn one_or_more_strict_optional() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| {
        p.one_or_more().consecutive().optional()
    });
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
            m(&[&c.start, &c.m2, &c.end]),
            m(&[&c.start, &c.m3, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testTimesStrictOptional1
#[test]
fn times_strict_optional_1() {
    let c = cd();
    let p = c_a_b(next, |p| p.times(2).consecutive().optional());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 3),
            (&c.m2, 5),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(
        got,
        vec![m(&[&c.start, &c.m1, &c.m2, &c.end]), m(&[&c.start, &c.end])],
    );
}

// NFAITCase#testOptionalTimesNonStrictWithNext
#[test]
fn optional_times_non_strict_with_next() {
    let c = cd();
    let (f1, f2) = (f(), f());
    let p = c_a_b(next, |p| p.times(2).allow_combinations().optional());
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&f1, 3),
            (&c.m2, 4),
            (&f2, 5),
            (&c.m3, 6),
            (&c.end, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

fn loop_records(c: &Cd) -> Vec<(Event, i64)> {
    vec![
        (c.start.clone(), 1),
        (d50(), 2),
        (c.m1.clone(), 3),
        (c.m2.clone(), 4),
        (c.m3.clone(), 4),
        (d50(), 5),
        (c.m4.clone(), 6),
        (c.end.clone(), 7),
    ]
}

// NFAITCase#testStrictOneOrMore
#[test]
fn strict_one_or_more_consecutive_data() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more().consecutive());
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
        ],
    );
}

// NFAITCase#testSkipTillNextOneOrMore
#[test]
fn skip_till_next_one_or_more() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more());
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
        ],
    );
}

// NFAITCase#testSkipTillAnyOneOrMore
#[test]
fn skip_till_any_one_or_more() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more().allow_combinations());
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
        ],
    );
}

// NFAITCase#testStrictEagerZeroOrMore
#[test]
fn strict_eager_zero_or_more() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more().optional().consecutive());
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testSkipTillAnyZeroOrMore
#[test]
fn skip_till_any_zero_or_more() {
    let c = cd();
    let p = c_a_b(followed_by, |p| {
        p.one_or_more().optional().allow_combinations()
    });
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testSkipTillNextZeroOrMore
#[test]
fn skip_till_next_zero_or_more() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more().optional());
    let got = Harness::new(p).feed(&loop_records(&c));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.m4, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.m3, &c.end]),
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.end]),
            m(&[&c.start, &c.end]),
        ],
    );
}

// NFAITCase#testTimesStrict
#[test]
fn times_strict() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| p.times(2).consecutive());
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(got, vec![m(&[&c.start, &c.m2, &c.m3, &c.end])]);
}

// NFAITCase#testTimesNonStrict
#[test]
fn times_non_strict() {
    let c = cd();
    let p = c_a_b(followed_by_any, |p| p.times(2).allow_combinations());
    let got = Harness::new(p).feed(&optional_records(&c, &f(), &f()));
    assert_same(
        got,
        vec![
            m(&[&c.start, &c.m1, &c.m2, &c.end]),
            m(&[&c.start, &c.m1, &c.m3, &c.end]),
            m(&[&c.start, &c.m2, &c.m3, &c.end]),
        ],
    );
}

fn start_with_strict_loop(p: Pattern<Event>) {
    let c = cd();
    let got = feed(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 3),
            (&c.start, 4),
            (&c.m2, 5),
            (&c.m3, 6),
        ],
    );
    assert_same(
        got,
        vec![m(&[&c.m1]), m(&[&c.m2, &c.m3]), m(&[&c.m2]), m(&[&c.m3])],
    );
}

// NFAITCase#testStartWithZeroOrMoreStrict
#[test]
fn start_with_zero_or_more_strict() {
    start_with_strict_loop(
        Pattern::begin("start")
            .where_(name("a"))
            .one_or_more()
            .optional()
            .consecutive(),
    );
}

// NFAITCase#testStartWithOneOrMoreStrict
#[test]
fn start_with_one_or_more_strict() {
    start_with_strict_loop(
        Pattern::begin("start")
            .where_(name("a"))
            .one_or_more()
            .consecutive(),
    );
}

/// Flink's "clearing buffer" cases: after the window, nothing is left.
fn assert_clears(p: Pattern<Event>, records: &[(&Event, i64)]) {
    let mut h = Harness::new(p.within(ms(8), WithinType::FirstAndLast));
    let records: Vec<(Event, i64)> = records.iter().map(|(e, t)| ((*e).clone(), *t)).collect();
    h.feed(&records);
    h.advance(10);
    assert!(
        h.state.is_idle(),
        "{} partial matches, {} events",
        h.state.partial_matches(),
        h.state.buffered_events()
    );
}

// NFAITCase#testTimesClearingBuffer
#[test]
fn times_clearing_buffer() {
    let c = cd();
    let p = c_a_b(next, |p| p.times(2));
    assert_clears(
        p,
        &[
            (&c.start, 1),
            (&c.m1, 2),
            (&c.m2, 3),
            (&c.m3, 4),
            (&c.end, 6),
        ],
    );
}

// NFAITCase#testOptionalClearingBuffer
#[test]
fn optional_clearing_buffer() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.optional());
    assert_clears(p, &[(&c.start, 1), (&c.m3, 5), (&c.end, 6)]);
}

// NFAITCase#testAtLeastOneClearingBuffer
#[test]
fn at_least_one_clearing_buffer() {
    let c = cd();
    let p = c_a_b(followed_by, |p| p.one_or_more().allow_combinations());
    assert_clears(p, &[(&c.start, 1), (&c.m1, 3), (&c.m2, 4), (&c.end, 6)]);
}

// NFAITCase#testZeroOrMoreClearingBuffer
#[test]
fn zero_or_more_clearing_buffer() {
    let c = cd();
    let p = c_a_b(followed_by, |p| {
        p.one_or_more().allow_combinations().optional()
    });
    assert_clears(p, &[(&c.start, 1), (&c.m1, 3), (&c.m2, 4), (&c.end, 6)]);
}
