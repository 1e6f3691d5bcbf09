//! Ported from Flink's `GreedyITCase` (current Flink: greedy guards the
//! step after the loop; at the end of a pattern it changes nothing), with
//! Flink's events and expected matches. Not ported: the group-pattern case.

mod common;

use common::*;
use weir_cep::Pattern;

fn feed(pattern: Pattern<Event>, events: &[&Event]) -> Vec<Vec<Event>> {
    run(pattern, events)
}

fn c() -> Event {
    ev(40, "c", 1.0)
}

fn dummy() -> Event {
    ev(43, "dummy", 2.0)
}

/// `c`, then greedy `a`s (shaped by `q`), then `d`.
fn c_a_d(q: fn(Pattern<Event>) -> Pattern<Event>) -> Pattern<Event> {
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"));
    q(p).followed_by("end").where_(name("d"))
}

fn a123() -> (Event, Event, Event, Event) {
    (
        ev(41, "a", 2.0),
        ev(42, "a", 2.0),
        ev(43, "a", 2.0),
        ev(44, "d", 3.0),
    )
}

// GreedyITCase#testGreedyZeroOrMore
#[test]
fn greedy_zero_or_more() {
    let (c, (a1, a2, a3, d)) = (c(), a123());
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy()),
        &[&c, &a1, &a2, &a3, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// The same pattern without greedy, for contrast: every prefix of the loop.
#[test]
fn non_greedy_zero_or_more() {
    let (c, (a1, a2, a3, d)) = (c(), a123());
    let got = feed(
        c_a_d(|p| p.one_or_more().optional()),
        &[&c, &a1, &a2, &a3, &d],
    );
    assert_same(
        got,
        vec![
            m(&[&c, &a1, &a2, &a3, &d]),
            m(&[&c, &a1, &a2, &d]),
            m(&[&c, &a1, &d]),
            m(&[&c, &d]),
        ],
    );
}

// GreedyITCase#testGreedyZeroOrMoreInBetween
#[test]
fn greedy_zero_or_more_in_between() {
    let (c, (a1, a2, a3, d)) = (c(), a123());
    let x = ev(1, "dummy", 1111.0);
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy()),
        &[&c, &x, &a1, &x, &a2, &x, &a3, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// GreedyITCase#testGreedyZeroOrMoreWithDummyEventsAfterQuantifier
#[test]
fn greedy_zero_or_more_with_dummy_events_after_quantifier() {
    let (c, (a1, a2, _, d)) = (c(), a123());
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy()),
        &[&c, &a1, &a2, &dummy(), &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &d])]);
}

// GreedyITCase#testGreedyZeroOrMoreWithDummyEventsBeforeQuantifier
#[test]
fn greedy_zero_or_more_with_dummy_events_before_quantifier() {
    let (c, d) = (c(), ev(44, "d", 3.0));
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy()),
        &[&c, &dummy(), &d],
    );
    assert_same(got, vec![m(&[&c, &d])]);
}

fn until_events() -> (Event, Event, Event, Event, Event) {
    (
        ev(41, "a", 2.0),
        ev(42, "a", 3.0),
        ev(43, "a", 3.0),
        ev(44, "a", 4.0),
        ev(45, "d", 3.0),
    )
}

fn price_over_3(e: &Event, _: &dyn weir_cep::Matched<Event>) -> bool {
    e.price > 3.0
}

// GreedyITCase#testGreedyUntilZeroOrMoreWithDummyEventsAfterQuantifier
#[test]
fn greedy_until_zero_or_more_with_dummy_events_after_quantifier() {
    let c = c();
    let (a1, a2, a3, a4, d) = until_events();
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy().until(price_over_3)),
        &[&c, &a1, &a2, &a3, &a4, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// GreedyITCase#testGreedyUntilWithDummyEventsBeforeQuantifier
#[test]
fn greedy_until_with_dummy_events_before_quantifier() {
    let c = c();
    let (a1, a2, a3, a4, d) = until_events();
    let got = feed(
        c_a_d(|p| p.one_or_more().optional().greedy().until(price_over_3)),
        &[&c, &a4, &a1, &a2, &a3, &d],
    );
    assert_same(got, vec![m(&[&c, &d])]);
}

// GreedyITCase#testGreedyOneOrMore
#[test]
fn greedy_one_or_more() {
    let (c, (a1, a2, a3, d)) = (c(), a123());
    let got = feed(
        c_a_d(|p| p.one_or_more().greedy()),
        &[&c, &a1, &a2, &a3, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// GreedyITCase#testGreedyOneOrMoreInBetween
#[test]
fn greedy_one_or_more_in_between() {
    let (c, (a1, a2, a3, d)) = (c(), a123());
    let x = ev(1, "dummy", 1111.0);
    let got = feed(
        c_a_d(|p| p.one_or_more().greedy()),
        &[&c, &x, &a1, &x, &a2, &x, &a3, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// GreedyITCase#testGreedyOneOrMoreWithDummyEventsAfterQuantifier
#[test]
fn greedy_one_or_more_with_dummy_events_after_quantifier() {
    let (c, (a1, a2, _, d)) = (c(), a123());
    let got = feed(
        c_a_d(|p| p.one_or_more().greedy()),
        &[&c, &a1, &a2, &dummy(), &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &d])]);
}

// GreedyITCase#testGreedyOneOrMoreWithDummyEventsBeforeQuantifier
#[test]
fn greedy_one_or_more_with_dummy_events_before_quantifier() {
    let (c, d) = (c(), ev(44, "d", 3.0));
    let got = feed(c_a_d(|p| p.one_or_more().greedy()), &[&c, &dummy(), &d]);
    assert_same(got, vec![]);
}

// GreedyITCase#testGreedyUntilOneOrMoreWithDummyEventsAfterQuantifier
#[test]
fn greedy_until_one_or_more_with_dummy_events_after_quantifier() {
    let c = c();
    let (a1, a2, a3, a4, d) = until_events();
    let got = feed(
        c_a_d(|p| p.one_or_more().greedy().until(price_over_3)),
        &[&c, &a1, &a2, &a3, &a4, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &d])]);
}

// GreedyITCase#testGreedyUntilOneOrMoreWithDummyEventsBeforeQuantifier
#[test]
fn greedy_until_one_or_more_with_dummy_events_before_quantifier() {
    let c = c();
    let (a1, a2, a3, a4, d) = until_events();
    let got = feed(
        c_a_d(|p| p.one_or_more().greedy().until(price_over_3)),
        &[&c, &a4, &a1, &a2, &a3, &d],
    );
    assert_same(got, vec![]);
}

fn c_then_end(q: fn(Pattern<Event>) -> Pattern<Event>) -> Pattern<Event> {
    q(Pattern::begin("start")
        .where_(name("c"))
        .followed_by("end")
        .where_(name("a")))
}

// GreedyITCase#testEndWithZeroOrMoreGreedy
#[test]
fn end_with_zero_or_more_greedy() {
    let (c, (a1, a2, a3, _)) = (c(), a123());
    let x = ev(44, "dummy", 2.0);
    let got = feed(
        c_then_end(|p| p.one_or_more().optional().greedy()),
        &[&c, &a1, &a2, &x, &a3],
    );
    assert_same(
        got,
        vec![
            m(&[&c]),
            m(&[&c, &a1]),
            m(&[&c, &a1, &a2]),
            m(&[&c, &a1, &a2, &a3]),
        ],
    );
}

// GreedyITCase#testEndWithZeroOrMoreConsecutiveGreedy
#[test]
fn end_with_zero_or_more_consecutive_greedy() {
    let (c, (a1, a2, a3, _)) = (c(), a123());
    let x = ev(44, "dummy", 2.0);
    let got = feed(
        c_then_end(|p| p.one_or_more().optional().consecutive().greedy()),
        &[&c, &a1, &a2, &x, &a3],
    );
    assert_same(got, vec![m(&[&c]), m(&[&c, &a1]), m(&[&c, &a1, &a2])]);
}

// GreedyITCase#testEndWithGreedyTimesRange
#[test]
fn end_with_greedy_times_range() {
    let (c, (a1, a2, a3, _)) = (c(), a123());
    let a4 = ev(44, "a", 2.0);
    let x = ev(44, "dummy", 2.0);
    let got = feed(
        c_then_end(|p| p.times_range(2, 5).greedy()),
        &[&c, &a1, &a2, &a3, &a4, &x],
    );
    assert_same(
        got,
        vec![
            m(&[&c, &a1, &a2]),
            m(&[&c, &a1, &a2, &a3]),
            m(&[&c, &a1, &a2, &a3, &a4]),
        ],
    );
}

// GreedyITCase#testGreedyTimesRange
#[test]
fn greedy_times_range() {
    let (c, (a1, a2, a3, _)) = (c(), a123());
    let a4 = ev(44, "a", 2.0);
    let d = ev(45, "d", 2.0);
    let got = feed(
        c_a_d(|p| p.times_range(2, 5).greedy()),
        &[&c, &a1, &a2, &a3, &a4, &d],
    );
    assert_same(got, vec![m(&[&c, &a1, &a2, &a3, &a4, &d])]);
}

// Weir case in the style of GreedyITCase (not a Flink method): the step
// after a greedy loop may not take what the loop can take.
#[test]
fn greedy_overlapping_conditions() {
    let c = c();
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
