//! Ported from Flink's `NFAITCase`: iterative conditions, branching,
//! negation and repeated-element cases, with Flink's events, timestamps and
//! expected matches (Flink compares matches as sorted event sets; here each
//! match's events are listed in match order).

mod common;

use common::*;
use weir_cep::{Matched, Pattern, WithinType};

fn feed(pattern: Pattern<Event>, records: &[(&Event, i64)]) -> Vec<Vec<Event>> {
    let records: Vec<(Event, i64)> = records.iter().map(|(e, t)| ((*e).clone(), *t)).collect();
    Harness::new(pattern).feed(&records)
}

fn sum(m: &dyn Matched<Event>, step: &str) -> f64 {
    let mut s = 0.0;
    m.visit(step, &mut |e| s += e.price);
    s
}

fn is_sub(e: &Event) -> bool {
    e.volume.is_some()
}

// NFAITCase#testSimplePatternWithTimeoutHandling (as since Flink 1.5: a
// timeout is stamped with the end of its window, not the time that noticed it)
#[test]
fn simple_pattern_with_timeout_handling() {
    let events = [
        ev(1, "start", 1.0),
        ev(2, "start", 1.0),
        ev(3, "middle", 1.0),
        ev(4, "foobar", 1.0),
        ev(5, "end", 1.0),
        ev(6, "end", 1.0),
    ];
    let ts = [1, 2, 3, 4, 11, 13];
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle")
        .where_(name("middle"))
        .followed_by_any("end")
        .where_(name("end"))
        .within(ms(10), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let records: Vec<(Event, i64)> = events.iter().cloned().zip(ts).collect();
    let got = h.feed(&records);
    assert_eq!(got.len(), 1);
    let mut timeouts = h.timeouts();
    timeouts.sort_by_key(|(evs, at)| (*at, evs.len(), evs[0].id));
    assert_eq!(
        timeouts,
        vec![
            (m(&[&events[0]]), 11),
            (m(&[&events[0], &events[2]]), 11),
            (m(&[&events[1]]), 12),
            (m(&[&events[1], &events[2]]), 12),
        ]
    );
}

// Flink's fields for the iterative cases.
struct It {
    s1: Event,
    s2: Event,
    s3: Event,
    s4: Event,
    m1: Event,
    m2: Event,
    m3: Event,
    m4: Event,
    next_one: Event,
    end: Event,
}

fn it() -> It {
    It {
        s1: ev(40, "start", 1.0),
        s2: ev(40, "start", 2.0),
        s3: ev(40, "start", 3.0),
        s4: ev(40, "start", 4.0),
        m1: sub(41, "foo1", 1.0, 10.0),
        m2: sub(42, "foo2", 2.0, 10.0),
        m3: sub(43, "foo3", 3.0, 10.0),
        m4: sub(43, "foo4", 1.0, 10.0),
        next_one: ev(44, "next-one", 1.0),
        end: ev(46, "end", 1.0),
    }
}

/// Flink's `MySubeventIterCondition`.
fn sub_iter(e: &Event, m: &dyn Matched<Event>) -> bool {
    is_sub(e) && e.name.starts_with("foo") && sum(m, "middle") + e.price < 5.0
}

fn iterative_with_branching(combinations: bool) -> Vec<Vec<Event>> {
    let t = it();
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("middle")
        .where_(sub_iter)
        .one_or_more();
    let p = if combinations {
        p.allow_combinations()
    } else {
        p
    };
    let p = p.followed_by("end").where_(name("end"));
    feed(
        p,
        &[
            (&t.s1, 1),
            (&t.m1, 2),
            (&t.m2, 3),
            (&t.s2, 4),
            (&t.m3, 5),
            (&t.m4, 5),
            (&t.next_one, 6),
            (&t.end, 8),
        ],
    )
}

// NFAITCase#testIterativeWithBranchingPatternEager
#[test]
fn iterative_with_branching_pattern_eager() {
    let t = it();
    assert_same(
        iterative_with_branching(false),
        vec![
            m(&[&t.s1, &t.m1, &t.m2, &t.m4, &t.end]),
            m(&[&t.s1, &t.m1, &t.m2, &t.end]),
            m(&[&t.s1, &t.m1, &t.end]),
            m(&[&t.s2, &t.m3, &t.m4, &t.end]),
            m(&[&t.s2, &t.m3, &t.end]),
        ],
    );
}

// NFAITCase#testIterativeWithBranchingPatternCombinations
#[test]
fn iterative_with_branching_pattern_combinations() {
    let t = it();
    assert_same(
        iterative_with_branching(true),
        vec![
            m(&[&t.s1, &t.m1, &t.m2, &t.m4, &t.end]),
            m(&[&t.s1, &t.m1, &t.m2, &t.end]),
            m(&[&t.s1, &t.m1, &t.m3, &t.end]),
            m(&[&t.s2, &t.m3, &t.m4, &t.end]),
            m(&[&t.s1, &t.m1, &t.m4, &t.end]),
            m(&[&t.s1, &t.m1, &t.end]),
            m(&[&t.s2, &t.m3, &t.end]),
        ],
    );
}

fn iterative_with_looping_starting(combinations: bool) -> Vec<Vec<Event>> {
    let t = it();
    // Flink's `MyEventIterCondition`.
    let cond =
        |e: &Event, m: &dyn Matched<Event>| e.name == "start" && sum(m, "start") + e.price < 5.0;
    let p = Pattern::begin("start").where_(cond).one_or_more();
    let p = if combinations {
        p.allow_combinations()
    } else {
        p
    };
    let p = p.optional().followed_by("end").where_(name("end"));
    feed(p, &[(&t.s1, 1), (&t.s2, 2), (&t.s3, 3), (&t.end, 4)])
}

// NFAITCase#testIterativeWithLoopingStartingEager
#[test]
fn iterative_with_looping_starting_eager() {
    let t = it();
    assert_same(
        iterative_with_looping_starting(false),
        vec![
            m(&[&t.s1, &t.s2, &t.end]),
            m(&[&t.s1, &t.end]),
            m(&[&t.s2, &t.end]),
            m(&[&t.s3, &t.end]),
            m(&[&t.end]),
        ],
    );
}

// NFAITCase#testIterativeWithLoopingStartingCombination
#[test]
fn iterative_with_looping_starting_combination() {
    let t = it();
    assert_same(
        iterative_with_looping_starting(true),
        vec![
            m(&[&t.s1, &t.s2, &t.end]),
            m(&[&t.s1, &t.s3, &t.end]),
            m(&[&t.s1, &t.end]),
            m(&[&t.s2, &t.end]),
            m(&[&t.s3, &t.end]),
            m(&[&t.end]),
        ],
    );
}

// NFAITCase#testIterativeWithPrevPatternDependency
#[test]
fn iterative_with_prev_pattern_dependency() {
    let t = it();
    let p = Pattern::begin("start")
        .where_(name("start"))
        .one_or_more()
        .followed_by("end")
        .where_(|e: &Event, m: &dyn Matched<Event>| e.name == "end" && sum(m, "start") >= 2.0);
    let got = feed(p, &[(&t.s1, 1), (&t.s2, 2), (&t.end, 4)]);
    assert_same(got, vec![m(&[&t.s1, &t.s2, &t.end]), m(&[&t.s2, &t.end])]);
}

// NFAITCase#testIterativeWithABACPattern
#[test]
fn iterative_with_abac_pattern() {
    let t = it();
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle1")
        .where_(|e: &Event, _| is_sub(e) && e.name.starts_with("foo"))
        .followed_by("middle2")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            e.name == "start" && sum(m, "middle2") + e.price <= 5.0
        })
        .one_or_more()
        .followed_by("end")
        .where_(name("end"));
    let got = feed(
        p,
        &[
            (&t.s1, 1),
            (&t.m1, 2),
            (&t.s2, 2),
            (&t.s3, 2),
            (&t.m2, 2),
            (&t.s4, 2),
            (&t.m3, 2),
            (&t.m4, 2),
            (&t.end, 4),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&t.s1, &t.m1, &t.s2, &t.s3, &t.end]),
            m(&[&t.s1, &t.m1, &t.s2, &t.end]),
            m(&[&t.s1, &t.m2, &t.s4, &t.end]),
            m(&[&t.s2, &t.m2, &t.s4, &t.end]),
            m(&[&t.s3, &t.m2, &t.s4, &t.end]),
        ],
    );
}

// NFAITCase#testIterativeWithPrevPatternDependencyAfterBranching
#[test]
fn iterative_with_prev_pattern_dependency_after_branching() {
    let t = it();
    let p = Pattern::begin("start")
        .where_(name("start"))
        .one_or_more()
        .followed_by_any("middle1")
        .where_(|e: &Event, _| is_sub(e) && e.name.starts_with("foo"))
        .followed_by_any("end")
        .where_(|e: &Event, m: &dyn Matched<Event>| e.name == "end" && sum(m, "start") >= 2.0);
    let got = feed(
        p,
        &[
            (&t.s1, 1),
            (&t.s2, 2),
            (&t.m1, 4),
            (&t.s3, 5),
            (&t.m2, 6),
            (&t.end, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&t.s1, &t.s2, &t.m1, &t.end]),
            m(&[&t.s2, &t.m1, &t.end]),
            m(&[&t.s1, &t.s2, &t.m2, &t.end]),
            m(&[&t.s1, &t.s2, &t.s3, &t.m2, &t.end]),
            m(&[&t.s2, &t.s3, &t.m2, &t.end]),
            m(&[&t.s2, &t.m2, &t.end]),
            m(&[&t.s3, &t.m2, &t.end]),
        ],
    );
}

struct Br {
    start: Event,
    m1: Event,
    m2: Event,
    m3: Event,
    n1: Event,
    n2: Event,
    end: Event,
}

fn br() -> Br {
    Br {
        start: ev(40, "start", 1.0),
        m1: sub(41, "foo1", 1.0, 10.0),
        m2: sub(42, "foo2", 1.0, 10.0),
        m3: sub(43, "foo3", 1.0, 10.0),
        n1: sub(44, "next-one", 1.0, 2.0),
        n2: sub(45, "next-one", 1.0, 2.0),
        end: ev(46, "end", 1.0),
    }
}

fn branching(first: fn(Pattern<Event>, &str) -> Pattern<Event>) -> Vec<Vec<Event>> {
    let b = br();
    let p = first(
        Pattern::begin("start").where_(name("start")),
        "middle-first",
    )
    .where_(|e: &Event, _| e.volume.is_some_and(|v| v > 5.0))
    .followed_by("middle-second")
    .where_(|e: &Event, _| is_sub(e) && e.name == "next-one")
    .followed_by_any("end")
    .where_(name("end"));
    feed(
        p,
        &[
            (&b.start, 1),
            (&b.m1, 3),
            (&b.m2, 4),
            (&b.m3, 5),
            (&b.n1, 6),
            (&b.n2, 7),
            (&b.end, 8),
        ],
    )
}

// NFAITCase#testBranchingPatternSkipTillNext
#[test]
fn branching_pattern_skip_till_next() {
    let b = br();
    assert_same(
        branching(|p, n| p.followed_by(n)),
        vec![m(&[&b.start, &b.m1, &b.n1, &b.end])],
    );
}

// NFAITCase#testBranchingPatternMixedFollowedBy
#[test]
fn branching_pattern_mixed_followed_by() {
    let b = br();
    assert_same(
        branching(|p, n| p.followed_by_any(n)),
        vec![
            m(&[&b.start, &b.m1, &b.n1, &b.end]),
            m(&[&b.start, &b.m2, &b.n1, &b.end]),
            m(&[&b.start, &b.m3, &b.n1, &b.end]),
        ],
    );
}

// NFAITCase#testNotNextNoMatchesAtTheEnd
#[test]
fn not_next_no_matches_at_the_end() {
    let (a1, c1, c2, d, b1) = (
        ev(40, "a", 1.0),
        ev(41, "c", 2.0),
        ev(43, "c", 4.0),
        ev(43, "d", 4.0),
        ev(42, "b", 3.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .followed_by_any("middle")
        .where_(name("c"))
        .followed_by_any("end")
        .where_(name("d"))
        .not_next("notPattern")
        .where_(name("b"));
    assert_same(
        feed(p, &[(&a1, 1), (&c1, 2), (&c2, 3), (&d, 4), (&b1, 5)]),
        vec![],
    );
}

fn acbcd() -> [Event; 5] {
    [
        ev(40, "a", 1.0),
        ev(41, "c", 2.0),
        ev(42, "b", 3.0),
        ev(43, "c", 4.0),
        ev(43, "d", 4.0),
    ]
}

// NFAITCase#testNotFollowedBy
#[test]
fn not_followed_by() {
    let [a1, c1, b1, c2, d] = acbcd();
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by_any("middle")
        .where_(name("c"))
        .followed_by("end")
        .where_(name("d"));
    let got = feed(p, &[(&a1, 1), (&c1, 2), (&b1, 3), (&c2, 4), (&d, 5)]);
    assert_same(got, vec![m(&[&a1, &c1, &d])]);
}

// NFAITCase#testNotFollowedByBeforeOptional
#[test]
fn not_followed_by_before_optional() {
    let [a1, c1, b1, c2, d] = acbcd();
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by_any("middle")
        .where_(name("c"))
        .optional()
        .followed_by("end")
        .where_(name("d"));
    let got = feed(p, &[(&a1, 1), (&c1, 2), (&b1, 3), (&c2, 4), (&d, 5)]);
    assert_same(got, vec![m(&[&a1, &c1, &d])]);
}

// NFAITCase#testTimesWithNotFollowedBy
#[test]
fn times_with_not_followed_by() {
    let (a1, b1, c, b2, d) = (
        ev(40, "a", 1.0),
        ev(41, "b", 2.0),
        ev(42, "c", 3.0),
        ev(43, "b", 4.0),
        ev(43, "d", 4.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .followed_by_any("middle")
        .where_(name("b"))
        .times(2)
        .not_followed_by("notPattern")
        .where_(name("c"))
        .followed_by("end")
        .where_(name("d"));
    assert_same(
        feed(p, &[(&a1, 1), (&b1, 2), (&c, 3), (&b2, 4), (&d, 5)]),
        vec![],
    );
}

// NFAITCase#testIgnoreStateOfTimesWithNotFollowedBy
#[test]
fn ignore_state_of_times_with_not_followed_by() {
    let (a1, e, c1, b1, c2, d1, d2) = (
        ev(40, "a", 1.0),
        ev(41, "e", 2.0),
        ev(42, "c", 3.0),
        ev(43, "b", 4.0),
        ev(44, "c", 5.0),
        ev(45, "d", 6.0),
        ev(46, "d", 7.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by_any("middle")
        .where_(name("c"))
        .times(2)
        .optional()
        .followed_by("end")
        .where_(name("d"));
    let got = feed(
        p,
        &[
            (&a1, 1),
            (&d1, 2),
            (&e, 1),
            (&b1, 3),
            (&c1, 2),
            (&c2, 4),
            (&d2, 5),
        ],
    );
    assert_same(got, vec![m(&[&a1, &d1])]);
}

// NFAITCase#testTimesWithNotFollowedByAfter
#[test]
fn times_with_not_followed_by_after() {
    let (a1, e, c1, b1, b2, d1, d2) = (
        ev(40, "a", 1.0),
        ev(41, "e", 2.0),
        ev(42, "c", 3.0),
        ev(43, "b", 4.0),
        ev(44, "b", 5.0),
        ev(46, "d", 7.0),
        ev(47, "d", 8.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .followed_by_any("middle")
        .where_(name("b"))
        .times(2)
        .not_followed_by("notPattern")
        .where_(name("c"))
        .followed_by("end")
        .where_(name("d"));
    let got = feed(
        p,
        &[
            (&a1, 1),
            (&d1, 2),
            (&e, 1),
            (&b1, 3),
            (&b2, 3),
            (&c1, 2),
            (&d2, 5),
        ],
    );
    assert_same(got, vec![]);
}

// NFAITCase#testNotFollowedByBeforeOptionalAtTheEnd
#[test]
fn not_followed_by_before_optional_at_the_end() {
    let [a1, c1, b1, c2, _] = acbcd();
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by_any("end")
        .where_(name("c"))
        .optional();
    let got = feed(p, &[(&a1, 1), (&c1, 2), (&b1, 3), (&c2, 4)]);
    assert_same(got, vec![m(&[&a1, &c1]), m(&[&a1])]);
}

// NFAITCase#testNotFollowedByBeforeOptionalTimes
#[test]
fn not_followed_by_before_optional_times() {
    let [a1, c1, b1, c2, d] = acbcd();
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by_any("middle")
        .where_(name("c"))
        .times(2)
        .optional()
        .followed_by("end")
        .where_(name("d"));
    let got = feed(p, &[(&a1, 1), (&c1, 2), (&b1, 3), (&c2, 4), (&d, 5)]);
    assert_same(got, vec![m(&[&a1, &c1, &c2, &d])]);
}

// NFAITCase#testNotFollowedByWithBranchingAtStart
#[test]
fn not_followed_by_with_branching_at_start() {
    let (a1, b1, c1, a2, c2, d) = (
        ev(40, "a", 1.0),
        ev(42, "b", 3.0),
        ev(41, "c", 2.0),
        ev(41, "a", 4.0),
        ev(43, "c", 5.0),
        ev(43, "d", 6.0),
    );
    let p = Pattern::begin("start")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by("middle")
        .where_(name("c"))
        .followed_by("end")
        .where_(name("d"));
    let got = feed(
        p,
        &[(&a1, 1), (&b1, 2), (&c1, 3), (&a2, 4), (&c2, 5), (&d, 6)],
    );
    assert_same(got, vec![m(&[&a2, &c2, &d])]);
}

/// Flink's `NotFollowByData`.
struct Nf {
    a1: Event,
    b1: Event,
    b2: Event,
    b3: Event,
    c1: Event,
    b4: Event,
    b5: Event,
    b6: Event,
    d1: Event,
}

fn nf() -> Nf {
    Nf {
        a1: ev(40, "a", 1.0),
        b1: ev(41, "b", 2.0),
        b2: ev(42, "b", 3.0),
        b3: ev(42, "b", 4.0),
        c1: ev(43, "c", 5.0),
        b4: ev(42, "b", 6.0),
        b5: ev(42, "b", 7.0),
        b6: ev(42, "b", 8.0),
        d1: ev(43, "d", 9.0),
    }
}

fn in_order(events: &[&Event]) -> Vec<(Event, i64)> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| ((*e).clone(), i as i64))
        .collect()
}

fn then_b(p: Pattern<Event>, all_matches: bool) -> Pattern<Event> {
    let p = if all_matches {
        p.followed_by_any("b*")
    } else {
        p.followed_by("b*")
    };
    p.where_(name("b"))
}

fn not_next_after_one_or_more(all_matches: bool) -> Vec<Vec<Event>> {
    let d = nf();
    let p = then_b(Pattern::begin("a").where_(name("a")), all_matches)
        .one_or_more()
        .not_next("not c")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    Harness::new(p).feed(&in_order(&[&d.a1, &d.b1, &d.c1, &d.b2, &d.d1]))
}

// NFAITCase#testNotNextAfterOneOrMoreSkipTillNext
#[test]
fn not_next_after_one_or_more_skip_till_next() {
    assert_same(not_next_after_one_or_more(false), vec![]);
}

// NFAITCase#testNotNextAfterOneOrMoreSkipTillAny
#[test]
fn not_next_after_one_or_more_skip_till_any() {
    let d = nf();
    assert_same(
        not_next_after_one_or_more(true),
        vec![m(&[&d.a1, &d.b2, &d.d1])],
    );
}

fn not_followed_by_after_one_or_more(eager: bool, all_matches: bool) -> Vec<Vec<Event>> {
    let d = nf();
    let p = then_b(Pattern::begin("a").where_(name("a")), all_matches).one_or_more();
    let p = if eager { p } else { p.allow_combinations() };
    let p = p
        .not_followed_by("not c")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    Harness::new(p).feed(&in_order(&[
        &d.a1, &d.b1, &d.b2, &d.b3, &d.c1, &d.b4, &d.b5, &d.b6, &d.d1,
    ]))
}

// NFAITCase#testNotFollowedByNextAfterOneOrMoreEager
#[test]
fn not_followed_by_next_after_one_or_more_eager() {
    assert_same(not_followed_by_after_one_or_more(true, false), vec![]);
}

// NFAITCase#testNotFollowedByAnyAfterOneOrMoreEager
#[test]
fn not_followed_by_any_after_one_or_more_eager() {
    let d = nf();
    assert_same(
        not_followed_by_after_one_or_more(true, true),
        vec![
            m(&[&d.a1, &d.b4, &d.b5, &d.b6, &d.d1]),
            m(&[&d.a1, &d.b4, &d.b5, &d.d1]),
            m(&[&d.a1, &d.b4, &d.d1]),
            m(&[&d.a1, &d.b5, &d.b6, &d.d1]),
            m(&[&d.a1, &d.b5, &d.d1]),
            m(&[&d.a1, &d.b6, &d.d1]),
        ],
    );
}

// NFAITCase#testNotFollowedByNextAfterOneOrMoreCombinations
#[test]
fn not_followed_by_next_after_one_or_more_combinations() {
    assert_same(not_followed_by_after_one_or_more(false, false), vec![]);
}

// NFAITCase#testNotFollowedByAnyAfterOneOrMoreCombinations
#[test]
fn not_followed_by_any_after_one_or_more_combinations() {
    let d = nf();
    assert_same(
        not_followed_by_after_one_or_more(false, true),
        vec![
            m(&[&d.a1, &d.b4, &d.b5, &d.b6, &d.d1]),
            m(&[&d.a1, &d.b4, &d.b5, &d.d1]),
            m(&[&d.a1, &d.b4, &d.b6, &d.d1]),
            m(&[&d.a1, &d.b4, &d.d1]),
            m(&[&d.a1, &d.b5, &d.b6, &d.d1]),
            m(&[&d.a1, &d.b5, &d.d1]),
            m(&[&d.a1, &d.b6, &d.d1]),
        ],
    );
}

fn not_followed_by_before_loop(eager: bool, all_matches: bool, optional: bool) -> Vec<Vec<Event>> {
    let d = nf();
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("not c")
        .where_(name("c"));
    let p = then_b(p, all_matches).one_or_more();
    let p = if optional { p.optional() } else { p };
    let p = if eager { p } else { p.allow_combinations() };
    let p = p.followed_by("d").where_(name("d"));
    Harness::new(p).feed(&in_order(&[
        &d.a1, &d.b1, &d.c1, &d.b4, &d.b5, &d.b6, &d.d1,
    ]))
}

fn eager_expected(d: &Nf) -> Vec<Vec<Event>> {
    vec![
        m(&[&d.a1, &d.b1, &d.b4, &d.b5, &d.b6, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b4, &d.b5, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b4, &d.d1]),
        m(&[&d.a1, &d.b1, &d.d1]),
    ]
}

fn combinations_expected(d: &Nf) -> Vec<Vec<Event>> {
    vec![
        m(&[&d.a1, &d.b1, &d.b4, &d.b5, &d.b6, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b4, &d.b6, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b4, &d.b5, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b4, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b5, &d.b6, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b5, &d.d1]),
        m(&[&d.a1, &d.b1, &d.b6, &d.d1]),
        m(&[&d.a1, &d.b1, &d.d1]),
    ]
}

// NFAITCase#testNotFollowedByAnyBeforeOneOrMoreEager
#[test]
fn not_followed_by_any_before_one_or_more_eager() {
    assert_same(
        not_followed_by_before_loop(true, true, false),
        eager_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByAnyBeforeOneOrMoreCombinations
#[test]
fn not_followed_by_any_before_one_or_more_combinations() {
    assert_same(
        not_followed_by_before_loop(false, true, false),
        combinations_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeOneOrMoreEager
#[test]
fn not_followed_by_before_one_or_more_eager() {
    assert_same(
        not_followed_by_before_loop(true, false, false),
        eager_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeOneOrMoreCombinations
#[test]
fn not_followed_by_before_one_or_more_combinations() {
    assert_same(
        not_followed_by_before_loop(false, false, false),
        combinations_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeZeroOrMoreEagerSkipTillNext
#[test]
fn not_followed_by_before_zero_or_more_eager_skip_till_next() {
    assert_same(
        not_followed_by_before_loop(true, false, true),
        eager_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeZeroOrMoreCombinationsSkipTillNext
#[test]
fn not_followed_by_before_zero_or_more_combinations_skip_till_next() {
    assert_same(
        not_followed_by_before_loop(false, false, true),
        combinations_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeZeroOrMoreEagerSkipTillAny
#[test]
fn not_followed_by_before_zero_or_more_eager_skip_till_any() {
    assert_same(
        not_followed_by_before_loop(true, true, true),
        eager_expected(&nf()),
    );
}

// NFAITCase#testNotFollowedByBeforeZeroOrMoreCombinationsSkipTillAny
#[test]
fn not_followed_by_before_zero_or_more_combinations_skip_till_any() {
    assert_same(
        not_followed_by_before_loop(false, true, true),
        combinations_expected(&nf()),
    );
}

// NFAITCase#testEagerZeroOrMoreSameElement
#[test]
fn eager_zero_or_more_same_element() {
    let (s, m1, m2, m3, e) = (
        ev(40, "c", 1.0),
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(43, "a", 4.0),
        ev(44, "b", 5.0),
    );
    let d = d50();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .followed_by("end1")
        .where_(name("b"));
    let got = feed(
        p,
        &[
            (&s, 1),
            (&m1, 3),
            (&m1, 3),
            (&m1, 3),
            (&m2, 4),
            (&d, 5),
            (&m3, 6),
            (&m3, 6),
            (&e, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&s, &m1, &m1, &m1, &m2, &m3, &m3, &e]),
            m(&[&s, &m1, &m1, &m1, &m2, &m3, &e]),
            m(&[&s, &m1, &m1, &m1, &m2, &e]),
            m(&[&s, &m1, &m1, &m1, &e]),
            m(&[&s, &m1, &m1, &e]),
            m(&[&s, &m1, &e]),
            m(&[&s, &e]),
        ],
    );
}

fn d50() -> Event {
    ev(50, "d", 6.0)
}

// NFAITCase#testMultipleTakesVersionCollision: Flink's Dewey numbers once
// mixed these branches up; each branch here is its own chain.
#[test]
fn multiple_takes_version_collision() {
    let s = ev(40, "c", 1.0);
    let a: Vec<Event> = (0..5).map(|i| ev(41, "a", 2.0 + f64::from(i))).collect();
    let e = ev(44, "b", 5.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle1")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .followed_by("middle2")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .followed_by("end")
        .where_(name("b"));
    let got = feed(
        p,
        &[
            (&s, 1),
            (&a[0], 3),
            (&a[1], 4),
            (&a[2], 5),
            (&a[3], 6),
            (&a[4], 7),
            (&e, 10),
        ],
    );
    let x = |idx: &[usize]| {
        let mut v = vec![&s];
        v.extend(idx.iter().map(|&i| &a[i - 1]));
        v.push(&e);
        m(&v)
    };
    assert_same(
        got,
        vec![
            x(&[1, 2, 3, 4, 5]),
            x(&[1, 2, 3, 4, 5]),
            x(&[1, 2, 3, 4, 5]),
            x(&[1, 2, 3, 4, 5]),
            x(&[1, 2, 3, 4]),
            x(&[1, 2, 4, 5]),
            x(&[1, 2, 3, 4]),
            x(&[1, 2, 3, 5]),
            x(&[1, 3, 4, 5]),
            x(&[1, 3, 4, 5]),
            x(&[1, 2, 3, 4]),
            x(&[1, 2, 3, 5]),
            x(&[1, 2, 4, 5]),
            x(&[1, 2, 3]),
            x(&[1, 3, 4]),
            x(&[1, 4, 5]),
            x(&[1, 2, 3]),
            x(&[1, 2, 4]),
            x(&[1, 2, 5]),
            x(&[1, 2]),
        ],
    );
}

// NFAITCase#testZeroOrMoreSameElement
#[test]
fn zero_or_more_same_element() {
    let s = ev(40, "c", 1.0);
    let (m1, m1a, m2) = (ev(41, "a", 2.0), ev(41, "a", 2.0), ev(42, "a", 3.0));
    let (m3, m3a) = (ev(43, "a", 4.0), ev(43, "a", 4.0));
    let e = ev(44, "b", 5.0);
    let d = d50();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .allow_combinations()
        .followed_by_any("end1")
        .where_(name("b"));
    let got = feed(
        p,
        &[
            (&s, 1),
            (&m1, 3),
            (&m1a, 3),
            (&m2, 4),
            (&d, 5),
            (&m3, 6),
            (&m3a, 6),
            (&e, 7),
        ],
    );
    // Every subset of the five "a"s, in order.
    let mids = [&m1, &m1a, &m2, &m3, &m3a];
    let mut expected = Vec::new();
    for mask in 0u32..32 {
        let mut one = vec![&s];
        one.extend((0..5).filter(|i| mask & (1 << i) != 0).map(|i| mids[i]));
        one.push(&e);
        expected.push(m(&one));
    }
    assert_same(got, expected);
}

// NFAITCase#testSimplePatternWSameElement
#[test]
fn simple_pattern_w_same_element() {
    let (s, m1, e) = (ev(40, "c", 1.0), ev(41, "a", 2.0), ev(44, "b", 5.0));
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .followed_by("end1")
        .where_(name("b"));
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m1, 3), (&e, 7)]);
    assert_same(got, vec![m(&[&s, &m1, &e]), m(&[&s, &m1, &e])]);
}

// NFAITCase#testIterativeConditionWSameElement: the end condition reads
// only the middle's sum, so a third "a" can be the end.
#[test]
fn iterative_condition_w_same_element() {
    let s = ev(40, "c", 1.0);
    let (m1, m1a, m1b) = (ev(41, "a", 2.0), ev(41, "a", 2.0), ev(41, "a", 2.0));
    let e = ev(44, "b", 5.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .allow_combinations()
        .followed_by("end")
        .where_(|_: &Event, m: &dyn Matched<Event>| sum(m, "middle") == 4.0);
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m1a, 3), (&m1b, 3), (&e, 7)]);
    assert_same(
        got,
        vec![
            m(&[&s, &m1, &m1a, &m1b]),
            m(&[&s, &m1, &m1b, &e]),
            m(&[&s, &m1a, &m1b, &e]),
        ],
    );
}

// NFAITCase#testEndWLoopingWSameElement
#[test]
fn end_w_looping_w_same_element() {
    let s = ev(40, "c", 1.0);
    let (m1, m1a, m1b) = (ev(41, "a", 2.0), ev(41, "a", 2.0), ev(41, "a", 2.0));
    let e = ev(44, "b", 5.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by_any("middle")
        .where_(name("a"))
        .one_or_more()
        .optional();
    let got = feed(p, &[(&s, 1), (&m1, 3), (&m1a, 3), (&m1b, 3), (&e, 7)]);
    assert_same(
        got,
        vec![
            m(&[&s]),
            m(&[&s, &m1]),
            m(&[&s, &m1a]),
            m(&[&s, &m1b]),
            m(&[&s, &m1, &m1a]),
            m(&[&s, &m1a, &m1b]),
            m(&[&s, &m1, &m1a, &m1b]),
        ],
    );
}

// NFAITCase#testRepeatingPatternWSameElement
#[test]
fn repeating_pattern_w_same_element() {
    let s = ev(40, "c", 1.0);
    let (a1, a2, a3) = (ev(40, "a", 2.0), ev(40, "a", 3.0), ev(40, "a", 4.0));
    let b1 = ev(40, "b", 5.0);
    let d = ev(40, "d", 6.0);
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle1")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .followed_by("middle2")
        .where_(name("b"))
        .optional()
        .followed_by("end")
        .where_(name("a"));
    let got = feed(
        p,
        &[
            (&s, 1),
            (&a1, 3),
            (&a1, 3),
            (&a2, 3),
            (&d, 5),
            (&b1, 6),
            (&a3, 7),
        ],
    );
    assert_same(
        got,
        vec![
            m(&[&s, &a1]),
            m(&[&s, &a1, &a1]),
            m(&[&s, &b1, &a3]),
            m(&[&s, &a1, &a1, &a2]),
            m(&[&s, &a1, &b1, &a3]),
            m(&[&s, &a1, &a1, &a2, &a3]),
            m(&[&s, &a1, &a1, &b1, &a3]),
            m(&[&s, &a1, &a1, &a2, &b1, &a3]),
        ],
    );
}

fn window_events() -> Vec<(Event, i64)> {
    vec![
        (ev(1, "start", 1.0), 1),
        (ev(2, "start", 1.0), 2),
        (ev(3, "middle", 1.0), 3),
        (ev(4, "foobar", 1.0), 4),
        (ev(5, "end", 1.0), 11),
        (ev(6, "end", 1.0), 13),
    ]
}

// NFAITCase#testSimplePatternWithTimeWindowNFAWithinPreviousAndCurrent
#[test]
fn simple_pattern_with_time_window_within_previous_and_current() {
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by("middle")
        .where_(name("middle"))
        .followed_by("end")
        .where_(name("end"))
        .within(ms(9), WithinType::PreviousAndCurrent);
    let e = window_events();
    let got = Harness::new(p).feed(&e);
    assert_same(
        got,
        vec![
            m(&[&e[0].0, &e[2].0, &e[4].0]),
            m(&[&e[1].0, &e[2].0, &e[4].0]),
        ],
    );
}

// NFAITCase#testSimplePatternWithTimeoutHandlingWithinPreviousAndCurrent
#[test]
fn simple_pattern_with_timeout_handling_within_previous_and_current() {
    let p = Pattern::begin("start")
        .where_(name("start"))
        .followed_by_any("middle")
        .where_(name("middle"))
        .followed_by_any("end")
        .where_(name("end"))
        .within(ms(10), WithinType::PreviousAndCurrent);
    let e = window_events();
    let mut h = Harness::new(p);
    assert_eq!(h.feed(&e).len(), 2);
    let mut timeouts = h.timeouts();
    timeouts.sort_by_key(|(evs, _)| evs[0].id);
    assert_eq!(
        timeouts,
        vec![(m(&[&e[0].0, &e[2].0]), 13), (m(&[&e[1].0, &e[2].0]), 13)]
    );
}

fn pending_state_matches(kind: WithinType) {
    let p = Pattern::begin("start")
        .where_(name("start"))
        .not_followed_by("middle")
        .where_(name("middle"))
        .within(ms(5), kind);
    let e = [
        (ev(1, "start", 1.0), 1),
        (ev(2, "middle", 1.0), 4),
        (ev(3, "start", 1.0), 5),
        (ev(4, "start", 1.0), 11),
        (ev(5, "middle", 1.0), 18),
    ];
    let got = Harness::new(p).feed(&e);
    assert_same(got, vec![m(&[&e[2].0]), m(&[&e[3].0])]);
}

// NFAITCase#testPendingStateMatchesWithinFirstAndLast
#[test]
fn pending_state_matches_within_first_and_last() {
    pending_state_matches(WithinType::FirstAndLast);
}

// NFAITCase#testPendingStateMatchesWithinPreviousAndCurrent
#[test]
fn pending_state_matches_within_previous_and_current() {
    pending_state_matches(WithinType::PreviousAndCurrent);
}
