//! Ported from Flink's `AfterMatchSkipITCase`, with Flink's events, patterns
//! and expected matches (records carry no timestamp there: all at 0 here).
//! Not ported: the `throwExceptionOnMiss` cases (no such option here; a
//! missing skip target prunes nothing, Flink's default).

mod common;

use common::*;
use weir_cep::{AfterMatchSkip, Matched, Pattern};

fn feed(pattern: Pattern<Event>, events: &[&Event]) -> Vec<Vec<Event>> {
    let records: Vec<(Event, i64)> = events.iter().map(|e| ((*e).clone(), 0)).collect();
    Harness::new(pattern).feed(&records)
}

fn has(s: &'static str) -> impl Fn(&Event, &dyn Matched<Event>) -> bool {
    move |e, _| e.name.contains(s)
}

fn six_a() -> Vec<Event> {
    (1..=6).map(|i| ev(i, "a", 0.0)).collect()
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
    let got = feed(
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
    let got = feed(
        three_a(AfterMatchSkip::SkipPastLastEvent),
        &a.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![m(&[&a[0], &a[1], &a[2]]), m(&[&a[3], &a[4], &a[5]])],
    );
}

/// Flink's `TwoVariablesFollowedByAny`.
fn two_variables(skip: AfterMatchSkip) -> (Vec<Vec<Event>>, [Event; 4]) {
    let ev4 = [
        ev(1, "a", 0.0),
        ev(2, "b", 0.0),
        ev(4, "a", 0.0),
        ev(5, "b", 0.0),
    ];
    let p = Pattern::begin_with_skip("start", skip)
        .where_(name("a"))
        .followed_by_any("end")
        .where_(name("b"));
    (feed(p, &ev4.iter().collect::<Vec<_>>()), ev4)
}

// AfterMatchSkipITCase#testNoSkipWithFollowedByAny
#[test]
fn no_skip_with_followed_by_any() {
    let (got, [a1, b1, a2, b2]) = two_variables(AfterMatchSkip::NoSkip);
    assert_same(got, vec![m(&[&a1, &b1]), m(&[&a1, &b2]), m(&[&a2, &b2])]);
}

// AfterMatchSkipITCase#testSkipToNextWithFollowedByAny
#[test]
fn skip_to_next_with_followed_by_any() {
    let (got, [a1, b1, a2, b2]) = two_variables(AfterMatchSkip::SkipToNext);
    assert_same(got, vec![m(&[&a1, &b1]), m(&[&a2, &b2])]);
}

/// Flink's `QuantifierAtEndOfPattern`.
fn quantifier_at_end(skip: AfterMatchSkip) -> (Vec<Vec<Event>>, [Event; 4]) {
    let ev4 = [
        ev(1, "a", 0.0),
        ev(2, "b", 0.0),
        ev(4, "b", 0.0),
        ev(5, "b", 0.0),
    ];
    let p = Pattern::begin_with_skip("start", skip)
        .where_(name("a"))
        .next("end")
        .where_(name("b"))
        .one_or_more();
    (feed(p, &ev4.iter().collect::<Vec<_>>()), ev4)
}

// AfterMatchSkipITCase#testNoSkipWithQuantifierAtTheEnd
#[test]
fn no_skip_with_quantifier_at_the_end() {
    let (got, [a1, b1, b2, b3]) = quantifier_at_end(AfterMatchSkip::NoSkip);
    assert_same(
        got,
        vec![
            m(&[&a1, &b1, &b2, &b3]),
            m(&[&a1, &b1, &b2]),
            m(&[&a1, &b1]),
        ],
    );
}

// AfterMatchSkipITCase#testSkipToNextWithQuantifierAtTheEnd
#[test]
fn skip_to_next_with_quantifier_at_the_end() {
    let (got, [a1, b1, _, _]) = quantifier_at_end(AfterMatchSkip::SkipToNext);
    assert_same(got, vec![m(&[&a1, &b1])]);
}

fn ab_pattern(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("start", skip)
        .where_(has("a"))
        .times(2)
        .next("end")
        .where_(has("b"))
        .times(2)
}

// AfterMatchSkipITCase#testSkipToFirst
#[test]
fn skip_to_first() {
    let ab: Vec<Event> = (1..=6).map(|i| ev(i, "ab", 0.0)).collect();
    let got = feed(
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
    let ab: Vec<Event> = (1..=7).map(|i| ev(i, "ab", 0.0)).collect();
    let got = feed(
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

// AfterMatchSkipITCase#testSkipPastLast2
#[test]
fn skip_past_last_2() {
    let (a1, a2, b1, b2) = (
        ev(1, "a1", 0.0),
        ev(2, "a2", 0.0),
        ev(3, "b1", 0.0),
        ev(4, "b2", 0.0),
    );
    let (c1, c2, d1, d2) = (
        ev(5, "c1", 0.0),
        ev(6, "c2", 0.0),
        ev(7, "d1", 0.0),
        ev(7, "d2", 0.0),
    );
    let p = Pattern::begin_with_skip("a", AfterMatchSkip::SkipPastLastEvent)
        .where_(has("a"))
        .followed_by_any("b")
        .where_(has("b"))
        .followed_by_any("c")
        .where_(has("c"))
        .followed_by("d")
        .where_(has("d"));
    let got = feed(p, &[&a1, &a2, &b1, &b2, &c1, &c2, &d1, &d2]);
    assert_same(got, vec![m(&[&a1, &b1, &c1, &d1])]);
}

// AfterMatchSkipITCase#testSkipPastLast3
#[test]
fn skip_past_last_3() {
    let (a1, c, a2, b2) = (
        ev(1, "a1", 0.0),
        ev(2, "c", 0.0),
        ev(3, "a2", 0.0),
        ev(4, "b2", 0.0),
    );
    let p = Pattern::begin_with_skip("a", AfterMatchSkip::SkipPastLastEvent)
        .where_(has("a"))
        .next("b")
        .where_(has("b"));
    assert_same(feed(p, &[&a1, &c, &a2, &b2]), vec![m(&[&a2, &b2])]);
}

fn ab_c() -> [Event; 4] {
    [
        ev(1, "ab1", 0.0),
        ev(2, "c1", 0.0),
        ev(3, "ab2", 0.0),
        ev(4, "c2", 0.0),
    ]
}

// AfterMatchSkipITCase#testSkipToFirstWithOptionalMatch
#[test]
fn skip_to_first_with_optional_match() {
    let [ab1, c1, ab2, c2] = ab_c();
    let p = Pattern::begin_with_skip("x", AfterMatchSkip::SkipToFirst("b".into()))
        .where_(has("x"))
        .one_or_more()
        .optional()
        .next("b")
        .where_(has("b"))
        .next("c")
        .where_(has("c"));
    assert_same(
        feed(p, &[&ab1, &c1, &ab2, &c2]),
        vec![m(&[&ab1, &c1]), m(&[&ab2, &c2])],
    );
}

// AfterMatchSkipITCase#testSkipToFirstAtStartPosition
#[test]
fn skip_to_first_at_start_position() {
    let [ab1, c1, ab2, c2] = ab_c();
    let p = Pattern::begin_with_skip("b", AfterMatchSkip::SkipToFirst("b".into()))
        .where_(has("b"))
        .next("c")
        .where_(has("c"));
    assert_same(
        feed(p, &[&ab1, &c1, &ab2, &c2]),
        vec![m(&[&ab1, &c1]), m(&[&ab2, &c2])],
    );
}

fn one_or_more_events() -> [Event; 7] {
    [
        ev(1, "a1", 0.0),
        ev(2, "b1", 0.0),
        ev(3, "a2", 0.0),
        ev(4, "b2", 0.0),
        ev(5, "b3", 0.0),
        ev(3, "a3", 0.0),
        ev(4, "b4", 0.0),
    ]
}

fn a_then_bs(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("a", skip)
        .where_(has("a"))
        .next("b")
        .where_(has("b"))
        .one_or_more()
        .consecutive()
}

// AfterMatchSkipITCase#testSkipToFirstWithOneOrMore
#[test]
fn skip_to_first_with_one_or_more() {
    let e = one_or_more_events();
    let got = feed(
        a_then_bs(AfterMatchSkip::SkipToFirst("b".into())),
        &e.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![m(&[&e[0], &e[1]]), m(&[&e[2], &e[3]]), m(&[&e[5], &e[6]])],
    );
}

// AfterMatchSkipITCase#testSkipToLastWithOneOrMore
#[test]
fn skip_to_last_with_one_or_more() {
    let e = one_or_more_events();
    let got = feed(
        a_then_bs(AfterMatchSkip::SkipToLast("b".into())),
        &e.iter().collect::<Vec<_>>(),
    );
    assert_same(
        got,
        vec![m(&[&e[0], &e[1]]), m(&[&e[2], &e[3]]), m(&[&e[5], &e[6]])],
    );
}

/// Flink's `MissedSkipTo`: the skip target took no event.
fn missed_skip_to(skip: AfterMatchSkip) -> (Vec<Vec<Event>>, Event, Event) {
    let (a, c) = (ev(1, "a", 0.0), ev(4, "c", 0.0));
    let p = Pattern::begin_with_skip("a", skip)
        .where_(has("a"))
        .next("b")
        .where_(has("b"))
        .one_or_more()
        .optional()
        .consecutive()
        .next("c")
        .where_(has("c"));
    (feed(p, &[&a, &c]), a, c)
}

// AfterMatchSkipITCase#testSkipToFirstNonExistentPositionWithoutException
#[test]
fn skip_to_first_non_existent_position_without_exception() {
    let (got, a, c) = missed_skip_to(AfterMatchSkip::SkipToFirst("b".into()));
    assert_same(got, vec![m(&[&a, &c])]);
}

// AfterMatchSkipITCase#testSkipToLastNonExistentPositionWithoutException
#[test]
fn skip_to_last_non_existent_position_without_exception() {
    let (got, a, c) = missed_skip_to(AfterMatchSkip::SkipToLast("b".into()));
    assert_same(got, vec![m(&[&a, &c])]);
}

fn a3_b1() -> [Event; 4] {
    [
        ev(1, "a1", 0.0),
        ev(2, "a2", 0.0),
        ev(3, "a3", 0.0),
        ev(4, "b1", 0.0),
    ]
}

fn greedy_as_then_b(skip: AfterMatchSkip) -> Pattern<Event> {
    Pattern::begin_with_skip("a", skip)
        .where_(has("a"))
        .one_or_more()
        .consecutive()
        .greedy()
        .next("b")
        .where_(has("b"))
}

// AfterMatchSkipITCase#testSkipPastLastWithOneOrMoreAtBeginning (example from Flink's docs)
#[test]
fn skip_past_last_with_one_or_more_at_beginning() {
    let [a1, a2, a3, b1] = a3_b1();
    let got = feed(
        greedy_as_then_b(AfterMatchSkip::SkipPastLastEvent),
        &[&a1, &a2, &a3, &b1],
    );
    assert_same(got, vec![m(&[&a1, &a2, &a3, &b1])]);
}

// AfterMatchSkipITCase#testSkipToLastWithOneOrMoreAtBeginning (example from Flink's docs)
#[test]
fn skip_to_last_with_one_or_more_at_beginning() {
    let [a1, a2, a3, b1] = a3_b1();
    let got = feed(
        greedy_as_then_b(AfterMatchSkip::SkipToLast("a".into())),
        &[&a1, &a2, &a3, &b1],
    );
    assert_same(got, vec![m(&[&a1, &a2, &a3, &b1]), m(&[&a3, &b1])]);
}

// AfterMatchSkipITCase#testSkipToFirstWithOneOrMoreAtBeginning (example from Flink's docs)
#[test]
fn skip_to_first_with_one_or_more_at_beginning() {
    let [a1, a2, a3, b1] = a3_b1();
    let got = feed(
        greedy_as_then_b(AfterMatchSkip::SkipToFirst("a".into())),
        &[&a1, &a2, &a3, &b1],
    );
    assert_same(
        got,
        vec![
            m(&[&a1, &a2, &a3, &b1]),
            m(&[&a2, &a3, &b1]),
            m(&[&a3, &b1]),
        ],
    );
}

// AfterMatchSkipITCase#testNoSkipWithOneOrMoreAtBeginning (example from Flink's docs)
#[test]
fn no_skip_with_one_or_more_at_beginning() {
    let [a1, a2, a3, b1] = a3_b1();
    let got = feed(
        greedy_as_then_b(AfterMatchSkip::NoSkip),
        &[&a1, &a2, &a3, &b1],
    );
    assert_same(
        got,
        vec![
            m(&[&a1, &a2, &a3, &b1]),
            m(&[&a2, &a3, &b1]),
            m(&[&a3, &b1]),
        ],
    );
}

// AfterMatchSkipITCase#testSkipToFirstDiscarding (example from Flink's docs)
#[test]
fn skip_to_first_discarding() {
    let (a, b) = (ev(1, "a", 0.0), ev(2, "b", 0.0));
    let (c1, c2, c3, d) = (
        ev(3, "c1", 0.0),
        ev(4, "c2", 0.0),
        ev(5, "c3", 0.0),
        ev(6, "d", 0.0),
    );
    let p = Pattern::begin_with_skip("a or c", AfterMatchSkip::SkipToFirst("c*".into()))
        .where_(|e: &Event, _| e.name.contains('a') || e.name.contains('c'))
        .followed_by("b or c")
        .where_(|e: &Event, _| e.name.contains('b') || e.name.contains('c'))
        .followed_by("c*")
        .where_(has("c"))
        .one_or_more()
        .greedy()
        .followed_by("d")
        .where_(has("d"));
    let got = feed(p, &[&a, &b, &c1, &c2, &c3, &d]);
    assert_same(
        got,
        vec![m(&[&a, &b, &c1, &c2, &c3, &d]), m(&[&c1, &c2, &c3, &d])],
    );
}

// AfterMatchSkipITCase#testSkipBeforeOtherAlreadyCompleted
#[test]
fn skip_before_other_already_completed() {
    let (a1, c1, a2, c2) = (
        ev(1, "a1", 0.0),
        ev(2, "c1", 0.0),
        ev(3, "a2", 1.0),
        ev(4, "c2", 0.0),
    );
    let (b1, b2) = (ev(5, "b1", 1.0), ev(6, "b2", 0.0));
    let p = Pattern::begin_with_skip("a", AfterMatchSkip::SkipToFirst("c".into()))
        .where_(has("a"))
        .followed_by("c")
        .where_(has("c"))
        .followed_by("b")
        .where_(|e: &Event, m: &dyn Matched<Event>| {
            let mut first = None;
            m.visit("a", &mut |a| {
                first.get_or_insert(a.price);
            });
            e.name.contains('b') && first == Some(e.price)
        });
    let got = feed(p, &[&a1, &c1, &a2, &c2, &b1, &b2]);
    assert_same(got, vec![m(&[&a1, &c1, &b2]), m(&[&a2, &c2, &b1])]);
}

// AfterMatchSkipITCase#testSharedBufferIsProperlyCleared
#[test]
fn shared_buffer_is_properly_cleared() {
    let p = Pattern::begin_with_skip("start", AfterMatchSkip::SkipPastLastEvent)
        .where_(|_: &Event, _| true)
        .times(2);
    let mut h = Harness::new(p);
    let records: Vec<(Event, i64)> = (0..4).map(|i| (ev(1, "a", 1.0), i)).collect();
    assert_eq!(h.feed(&records).len(), 2);
    assert!(h.state.is_idle());
}

// Weir case in the style of AfterMatchSkipITCase (not a Flink method): a skip
// strategy holds a match back until no earlier-starting partial match is
// left (NFA#processMatchesAccordingToSkipStrategy), then prunes.
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
            .where_(|e: &Event, m: &dyn Matched<Event>| {
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
