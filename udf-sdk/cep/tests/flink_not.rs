//! Ported from Flink's `NotPatternITCase`.
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::{Pattern, WithinType};

// NotPatternITCase#testNotNext
#[test]
fn not_next() {
    let a1 = ev(40, "a", 1.0);
    let c1 = ev(41, "c", 2.0);
    let b1 = ev(42, "b", 3.0);
    let c2 = ev(43, "c", 4.0);
    let d = ev(43, "d", 4.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_next("notPattern")
        .where_(name("b"))
        .followed_by_any("c")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    let got = run(p, &[&a1, &c1, &b1, &c2, &d]);
    assert_same(got, vec![m(&[&a1, &c1, &d]), m(&[&a1, &c2, &d])]);
}

// NotPatternITCase#testNotNextNoMatches
#[test]
fn not_next_no_matches() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(42, "b", 3.0);
    let c1 = ev(41, "c", 2.0);
    let d = ev(43, "d", 4.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_next("notPattern")
        .where_(name("b"))
        .followed_by("c")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    assert_same(run(p, &[&a1, &b1, &c1, &d]), vec![]);
}

fn not_next_at_end() -> Pattern<Event> {
    Pattern::begin("a")
        .where_(name("a"))
        .followed_by("b")
        .where_(name("b"))
        .not_next("notPattern")
        .where_(name("c"))
}

// NotPatternITCase#testNotNextNoMatchesAtTheEnd
#[test]
fn not_next_no_matches_at_the_end() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(41, "b", 2.0);
    let c1 = ev(42, "c", 3.0);
    assert_same(run(not_next_at_end(), &[&a1, &b1, &c1]), vec![]);
}

// Weir case in the style of NotPatternITCase (not a Flink method): the match comes out with the next,
// harmless event)
#[test]
fn not_next_at_the_end_matches_on_next_event() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(41, "b", 2.0);
    let d1 = ev(42, "d", 3.0);
    let mut h = Harness::new(not_next_at_end());
    assert_same(h.feed(&seq(&[&a1, &b1])), vec![]);
    assert_same(h.feed(&[(d1, 3)]), vec![m(&[&a1, &b1])]);
}

// Adapted from NotPatternITCase#testNotFollowedBy
#[test]
fn not_followed_by() {
    let a1 = ev(40, "a", 1.0);
    let c1 = ev(41, "c", 2.0);
    let b1 = ev(42, "b", 3.0);
    let a2 = ev(43, "a", 4.0);
    let c2 = ev(44, "c", 5.0);
    let d = ev(45, "d", 6.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by("c")
        .where_(name("c"));
    // a1 .. c1 is clean; a2 .. c2 too; b1 sits before a2, so it kills nothing.
    let got = run(p, &[&a1, &c1, &b1, &a2, &d, &c2]);
    assert_same(got, vec![m(&[&a1, &c1]), m(&[&a2, &c2])]);
}

// Weir case in the style of NotPatternITCase (not a Flink method): the negated event in between
#[test]
fn not_followed_by_no_matches() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(42, "b", 3.0);
    let d = ev(45, "d", 6.0);
    let c1 = ev(41, "c", 2.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by("c")
        .where_(name("c"));
    assert_same(run(p, &[&a1, &d, &b1, &c1]), vec![]);
}

// NotPatternITCase#testNotFollowedByBeforeOptionalAtTheEnd
#[test]
fn not_followed_by_before_optional_at_the_end() {
    let a1 = ev(40, "a", 1.0);
    let c1 = ev(41, "c", 2.0);
    let b1 = ev(42, "b", 3.0);
    let c2 = ev(43, "c", 4.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("notPattern")
        .where_(name("b"))
        .followed_by("c")
        .where_(name("c"))
        .optional();
    assert_same(
        run(p, &[&a1, &c1, &b1, &c2]),
        vec![m(&[&a1, &c1]), m(&[&a1])],
    );
}

// Adapted from NotPatternITCase#testNotFollowedByBeforeOptional: taking the optional step
// ends the notFollowedBy; skipping it does not.
#[test]
fn not_followed_by_before_optional() {
    let a1 = ev(40, "a", 1.0);
    let c1 = ev(41, "c", 2.0);
    let b1 = ev(42, "b", 3.0);
    let d1 = ev(43, "d", 4.0);
    let p = || {
        Pattern::begin("a")
            .where_(name("a"))
            .not_followed_by("notPattern")
            .where_(name("b"))
            .followed_by("c")
            .where_(name("c"))
            .optional()
            .followed_by("d")
            .where_(name("d"))
    };
    assert_same(run(p(), &[&a1, &c1, &b1, &d1]), vec![m(&[&a1, &c1, &d1])]);
    assert_same(run(p(), &[&a1, &b1, &d1]), vec![]);
    let x = ev(44, "x", 0.0);
    assert_same(run(p(), &[&a1, &x, &d1]), vec![m(&[&a1, &d1])]);
}

// NotPatternITCase#testTimesWithNotFollowedBy
#[test]
fn times_with_not_followed_by() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(41, "b", 2.0);
    let c = ev(42, "c", 3.0);
    let b2 = ev(43, "b", 4.0);
    let d = ev(44, "d", 5.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .followed_by("b")
        .where_(name("b"))
        .times(2)
        .not_followed_by("notPattern")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    // The c between the two b's breaks the repetition (stop edges on its
    // inner states), so nothing matches.
    assert_same(run(p, &[&a1, &b1, &c, &b2, &d]), vec![]);
}

// Weir case in the style of NotPatternITCase (not a Flink method), for Flink 1.16+: a trailing
// notFollowedBy completes when the window closes with no offending event.
#[test]
fn not_followed_by_at_end_with_within() {
    let a1 = ev(1, "a", 0.0);
    let a2 = ev(2, "a", 0.0);
    let b = ev(3, "b", 0.0);
    let a3 = ev(4, "a", 0.0);
    let x = ev(5, "x", 0.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("b")
        .where_(name("b"))
        .within(ms(10), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[(a1, 1), (a2, 5), (b, 8), (a3.clone(), 20), (x, 25)]);
    assert_same(got, vec![]);
    // The window of a3 closes at 30.
    assert_same(h.advance(29), vec![]);
    assert_same(h.advance(30), vec![m(&[&a3])]);
    assert!(h.timeouts().is_empty());
}

// Adapted from NotPatternITCase#testNotNextAfterOneOrMoreSkipTillNext
#[test]
fn not_next_after_one_or_more() {
    let a1 = ev(40, "a", 1.0);
    let b1 = ev(41, "b", 2.0);
    let b2 = ev(42, "b", 3.0);
    let d = ev(43, "d", 4.0);
    let c = ev(44, "c", 5.0);
    let p = Pattern::begin("a")
        .where_(name("a"))
        .followed_by("b")
        .where_(name("b"))
        .one_or_more()
        .not_next("not c")
        .where_(name("c"))
        .followed_by("d")
        .where_(name("d"));
    // b2 followed immediately by d (not c): [a b1 b2 d] and [a b1 d] (b1's
    // next event is b2, not c).
    let got = run(p, &[&a1, &b1, &b2, &d, &c]);
    assert_same(got, vec![m(&[&a1, &b1, &b2, &d]), m(&[&a1, &b1, &d])]);
}

fn within_at_end(kind: WithinType) -> Vec<Vec<Event>> {
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("b")
        .where_(name("b"))
        .within(ms(3), kind);
    let e = within_at_end_events();
    let records: Vec<(Event, i64)> = e.iter().cloned().zip([1, 2, 4, 5, 10, 11, 13]).collect();
    Harness::new(p).feed(&records)
}

fn within_at_end_events() -> [Event; 7] {
    [
        ev(40, "a", 1.0),
        ev(41, "b", 2.0),
        ev(42, "a", 3.0),
        ev(43, "c", 4.0),
        ev(44, "b", 5.0),
        ev(45, "a", 7.0),
        ev(46, "b", 8.0),
    ]
}

// NotPatternITCase#testNotFollowedByWithinFirstAndLastAtEnd
#[test]
fn not_followed_by_within_first_and_last_at_end() {
    let e = within_at_end_events();
    assert_same(within_at_end(WithinType::FirstAndLast), vec![m(&[&e[2]])]);
}

// NotPatternITCase#testNotFollowedByWithinPreviousAndCurrentAtEnd
#[test]
fn not_followed_by_within_previous_and_current_at_end() {
    let e = within_at_end_events();
    assert_same(
        within_at_end(WithinType::PreviousAndCurrent),
        vec![m(&[&e[2]])],
    );
}

// NotPatternITCase#testNotFollowByBeforeTimesWithin
#[test]
fn not_follow_by_before_times_within() {
    let (a1, b1, a2) = (ev(40, "a", 1.0), ev(41, "b", 2.0), ev(42, "a", 3.0));
    let (c1, c2, a3) = (ev(43, "c", 4.0), ev(44, "c", 5.0), ev(45, "a", 7.0));
    let (c3, c4) = (ev(46, "c", 8.0), ev(47, "c", 8.0));
    let p = Pattern::begin("a")
        .where_(name("a"))
        .not_followed_by("b")
        .where_(name("b"))
        .followed_by("c")
        .where_(name("c"))
        .times_range(0, 2)
        .within(ms(3), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (a1.clone(), 1),
        (b1, 2),
        (a2.clone(), 10),
        (c1.clone(), 11),
        (c2.clone(), 12),
        (a3.clone(), 20),
        (c3.clone(), 21),
        (c4, 24),
    ]);
    assert_same(
        got,
        vec![
            m(&[&a1]),
            m(&[&a2]),
            m(&[&a2, &c1]),
            m(&[&a2, &c1, &c2]),
            m(&[&a3]),
            m(&[&a3, &c3]),
        ],
    );
}

// NotPatternITCase#testNotFollowedByWithinAtEndAfterMatch
#[test]
fn not_followed_by_within_at_end_after_match() {
    let (a1, a2, a3) = (ev(40, "a", 1.0), ev(41, "a", 2.0), ev(42, "a", 3.0));
    let (c1, c2) = (ev(43, "c", 4.0), ev(44, "c", 5.0));
    let p = Pattern::begin_with_skip("a", weir_cep::AfterMatchSkip::SkipPastLastEvent)
        .where_(name("a"))
        .one_or_more()
        .allow_combinations()
        .followed_by("c")
        .where_(name("c"))
        .not_followed_by("b")
        .where_(name("b"))
        .within(ms(5), WithinType::FirstAndLast);
    let mut h = Harness::new(p);
    let got = h.feed(&[
        (a1.clone(), 1),
        (a2.clone(), 2),
        (a3.clone(), 3),
        (c1.clone(), 4),
        (c2, 10),
    ]);
    assert_same(got, vec![m(&[&a1, &a2, &a3, &c1])]);
}
