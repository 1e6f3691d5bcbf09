//! Ported from Flink's `AfterMatchSkipITCase`.
//!
//! Method names are Flink's. "Adapted" cases changed the events or pattern
//! slightly; their expected matches follow Flink's documented semantics.
//! "Weir case" marks a test in the style of the class for a rule it does not
//! test by that name.

mod common;

use common::*;
use weir_cep::{AfterMatchSkip, Pattern};

fn six_a() -> Vec<Event> {
    (0..6).map(|i| ev(i, "a", 0.0)).collect()
}

fn three_a(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("start", skip)
        .where_(name("a"))
        .times(3)
}

// AfterMatchSkipITCase#testNoSkip
#[test]
fn no_skip() {
    let a = six_a();
    let got = run(
        three_a(AfterMatchSkip::NoSkip),
        &a.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![
            m(&[&a[0], &a[1], &a[2]]),
            m(&[&a[1], &a[2], &a[3]]),
            m(&[&a[2], &a[3], &a[4]]),
            m(&[&a[3], &a[4], &a[5]]),
        ],
    );
}

// AfterMatchSkipITCase#testSkipPastLast
#[test]
fn skip_past_last() {
    let a = six_a();
    let got = run(
        three_a(AfterMatchSkip::SkipPastLastEvent),
        &a.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![m(&[&a[0], &a[1], &a[2]]), m(&[&a[3], &a[4], &a[5]])],
    );
}

// Adapted from AfterMatchSkipITCase#testSkipToNext (times: every start event is new)
#[test]
fn skip_to_next_times() {
    let a = six_a();
    let got = run(
        three_a(AfterMatchSkip::SkipToNext),
        &a.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![
            m(&[&a[0], &a[1], &a[2]]),
            m(&[&a[1], &a[2], &a[3]]),
            m(&[&a[2], &a[3], &a[4]]),
            m(&[&a[3], &a[4], &a[5]]),
        ],
    );
}

fn ab_events(n: u32) -> Vec<Event> {
    (1..=n).map(|i| ev(i, "ab", 0.0)).collect()
}

fn ab_pattern(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("start", skip)
        .where_(|e: &Event, _| e.name.contains('a'))
        .times(2)
        .next("end")
        .where_(|e: &Event, _| e.name.contains('b'))
        .times(2)
}

// AfterMatchSkipITCase#testSkipToFirst
#[test]
fn skip_to_first() {
    let ab = ab_events(6);
    let got = run(
        ab_pattern(AfterMatchSkip::SkipToFirst("end".into())),
        &ab.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![
            m(&[&ab[0], &ab[1], &ab[2], &ab[3]]),
            m(&[&ab[2], &ab[3], &ab[4], &ab[5]]),
        ],
    );
}

// AfterMatchSkipITCase#testSkipToLast
#[test]
fn skip_to_last() {
    let ab = ab_events(7);
    let got = run(
        ab_pattern(AfterMatchSkip::SkipToLast("end".into())),
        &ab.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![
            m(&[&ab[0], &ab[1], &ab[2], &ab[3]]),
            m(&[&ab[3], &ab[4], &ab[5], &ab[6]]),
        ],
    );
}

// The same events without skipping, for contrast with the two tests above.
#[test]
fn ab_no_skip() {
    let ab = ab_events(6);
    let got = run(
        ab_pattern(AfterMatchSkip::NoSkip),
        &ab.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![
            m(&[&ab[0], &ab[1], &ab[2], &ab[3]]),
            m(&[&ab[1], &ab[2], &ab[3], &ab[4]]),
            m(&[&ab[2], &ab[3], &ab[4], &ab[5]]),
        ],
    );
}

fn a1_b123() -> [Event; 4] {
    [
        ev(1, "a1", 0.0),
        ev(2, "b1", 0.0),
        ev(3, "b2", 0.0),
        ev(4, "b3", 0.0),
    ]
}

fn quantifier_at_end(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("start", skip)
        .where_(|e: &Event, _| e.name.contains('a'))
        .next("end")
        .where_(|e: &Event, _| e.name.contains('b'))
        .one_or_more()
        .consecutive()
}

// AfterMatchSkipITCase#testSkipToNextWithQuantifierAtTheEnd
#[test]
fn skip_to_next_with_quantifier_at_the_end() {
    let [a1, b1, b2, b3] = a1_b123();
    let got = run(
        quantifier_at_end(AfterMatchSkip::SkipToNext),
        &[&a1, &b1, &b2, &b3],
    );
    assert_same(got, vec![m(&[&a1, &b1])]);
}

// AfterMatchSkipITCase#testSkipPastLastWithQuantifierAtTheEnd
#[test]
fn skip_past_last_with_quantifier_at_the_end() {
    let [a1, b1, b2, b3] = a1_b123();
    let got = run(
        quantifier_at_end(AfterMatchSkip::SkipPastLastEvent),
        &[&a1, &b1, &b2, &b3],
    );
    assert_same(got, vec![m(&[&a1, &b1])]);
    let got = run(
        quantifier_at_end(AfterMatchSkip::NoSkip),
        &[&a1, &b1, &b2, &b3],
    );
    assert_same(
        got,
        vec![
            m(&[&a1, &b1]),
            m(&[&a1, &b1, &b2]),
            m(&[&a1, &b1, &b2, &b3]),
        ],
    );
}

fn two_variables(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("a", skip)
        .where_(name("a"))
        .followed_by_any("b")
        .where_(name("b"))
}

// Adapted from AfterMatchSkipITCase#testSkipToNextWithFollowedByAny (TwoVariablesFollowedByAny)
#[test]
fn skip_to_next_with_followed_by_any() {
    let (a1, a2, b1, b2) = (
        ev(1, "a", 1.0),
        ev(2, "a", 2.0),
        ev(3, "b", 3.0),
        ev(4, "b", 4.0),
    );
    let got = run(
        two_variables(AfterMatchSkip::SkipToNext),
        &[&a1, &a2, &b1, &b2],
    );
    assert_same(got, vec![m(&[&a1, &b1]), m(&[&a2, &b1])]);
    let got = run(two_variables(AfterMatchSkip::NoSkip), &[&a1, &a2, &b1, &b2]);
    assert_same(
        got,
        vec![
            m(&[&a1, &b1]),
            m(&[&a2, &b1]),
            m(&[&a1, &b2]),
            m(&[&a2, &b2]),
        ],
    );
}

// Adapted from AfterMatchSkipITCase#testSkipPastLastWithFollowedByAny
#[test]
fn skip_past_last_with_followed_by_any() {
    let (a1, a2, b1, b2) = (
        ev(1, "a", 1.0),
        ev(2, "a", 2.0),
        ev(3, "b", 3.0),
        ev(4, "b", 4.0),
    );
    let got = run(
        two_variables(AfterMatchSkip::SkipPastLastEvent),
        &[&a1, &a2, &b1, &b2],
    );
    assert_same(got, vec![m(&[&a1, &b1])]);
}

// Not a Flink method: in the style of AfterMatchSkipITCase, the rule that
// a skip strategy holds a match back until no earlier-starting partial match
// is left (NFA#processMatchesAccordingToSkipStrategy), then prunes.
#[test]
fn skip_holds_later_match_behind_earlier_partial() {
    let (x1, x2, y2, y1) = (
        ev(1, "x", 1.0),
        ev(2, "x", 2.0),
        ev(3, "y", 2.0),
        ev(4, "y", 1.0),
    );
    let pattern = |skip| {
        Pattern::begin_with_skip("x", skip)
            .where_(name("x"))
            .followed_by("y")
            .where_(|e: &Event, m: &dyn weir_cep::Matched<Event>| {
                let mut same = false;
                m.visit("x", &mut |x| same = x.price == e.price);
                e.name == "y" && same
            })
    };
    let mut h = Harness::new(pattern(AfterMatchSkip::SkipPastLastEvent));
    // [x2 y2] is complete at y2 but waits behind x1's partial match...
    assert_same(h.feed(&seq(&[&x1, &x2, &y2])), vec![]);
    // ...which completes at y1, comes out first and prunes [x2 y2].
    assert_same(h.feed(&[(y1.clone(), 4)]), vec![m(&[&x1, &y1])]);
    let got = run(pattern(AfterMatchSkip::NoSkip), &[&x1, &x2, &y2, &y1]);
    assert_same(got, vec![m(&[&x1, &y1]), m(&[&x2, &y2])]);
}
