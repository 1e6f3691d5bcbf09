//! Ported from Flink's `UntilConditionITCase`.
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
        // The until condition is price == 5.0.
        ev(44, "a", 5.0),
    )
}

fn until_price_5(e: &Event, _: &dyn weir_cep::Matched<Event>) -> bool {
    e.price == 5.0
}

// UntilConditionITCase#testUntilConditionFollowedByOneOrMore
#[test]
fn until_followed_by_one_or_more() {
    let (c, m1, m2, m3, breaking) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .until(until_price_5);
    let got = run(p, &[&c, &m1, &m2, &breaking, &m3]);
    assert_same(got, vec![m(&[&c, &m1, &m2]), m(&[&c, &m1])]);
}

// UntilConditionITCase#testUntilConditionFollowedByZeroOrMore
#[test]
fn until_followed_by_zero_or_more() {
    let (c, m1, m2, m3, breaking) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .optional()
        .until(until_price_5);
    let got = run(p, &[&c, &m1, &m2, &breaking, &m3]);
    assert_same(got, vec![m(&[&c, &m1, &m2]), m(&[&c, &m1]), m(&[&c])]);
}

// UntilConditionITCase#testUntilConditionFollowedByOneOrMoreCombinations
#[test]
fn until_followed_by_one_or_more_combinations() {
    let (c, m1, m2, m3, breaking) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .until(until_price_5);
    let got = run(p, &[&c, &m1, &m2, &m3, &breaking]);
    assert_same(
        got,
        vec![
            m(&[&c, &m1]),
            m(&[&c, &m1, &m2]),
            m(&[&c, &m1, &m3]),
            m(&[&c, &m1, &m2, &m3]),
        ],
    );
}

// UntilConditionITCase#testUntilConditionWithEmptyWhere
#[test]
fn until_with_empty_where() {
    let (c, m1, m2, m3, breaking) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .one_or_more()
        .until(until_price_5);
    let got = run(p, &[&c, &m1, &m2, &breaking, &m3]);
    assert_same(got, vec![m(&[&c, &m1, &m2]), m(&[&c, &m1])]);
}

// Weir case in the style of UntilConditionITCase (not a Flink method): followed by
// a step: the event that ends the loop can be taken by the next step.
#[test]
fn until_then_next_step_takes_the_breaking_event() {
    let (c, m1, m2, _, breaking) = events();
    let p = Pattern::begin("start")
        .where_(name("c"))
        .followed_by("middle")
        .where_(name("a"))
        .one_or_more()
        .until(until_price_5)
        .followed_by("end")
        .where_(until_price_5);
    let got = run(p, &[&c, &m1, &m2, &breaking]);
    assert_same(
        got,
        vec![m(&[&c, &m1, &m2, &breaking]), m(&[&c, &m1, &breaking])],
    );
}
