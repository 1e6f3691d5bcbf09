//! The per-key cap on partial matches, counters and memory release.

use weir_cep::{Outputs, Pattern};

fn named(n: &'static str) -> impl Fn(&&'static str, &dyn weir_cep::Matched<&'static str>) -> bool {
    move |e, _| *e == n
}

#[test]
fn cap_drops_the_oldest_partial_matches_and_counts_them() {
    let nfa = Pattern::begin("a")
        .where_(named("a"))
        .followed_by_any("b")
        .where_(named("b"))
        .compile()
        .unwrap()
        .with_max_partial_matches(3);
    let mut key = nfa.new_state();
    let mut out = Outputs::new();
    for (ts, e) in ["a", "a", "a", "a", "a"].into_iter().enumerate() {
        key.process(&nfa, e, ts as i64, &mut out);
        assert!(key.partial_matches() <= 3);
    }
    assert_eq!(key.counters().dropped, 2);
    assert_eq!(key.partial_matches(), 3);
    // Dropped partial matches free their events.
    assert_eq!(key.buffered_events(), 3);
    key.process(&nfa, "b", 10, &mut out);
    assert_eq!(out.matches.len(), 3);
    assert_eq!(key.counters().matches, 3);
}

#[test]
fn cap_holds_under_a_flood() {
    let nfa = Pattern::begin("a")
        .where_(named("a"))
        .followed_by_any("b")
        .where_(named("b"))
        .compile()
        .unwrap();
    assert_eq!(
        nfa.max_partial_matches(),
        weir_cep::DEFAULT_MAX_PARTIAL_MATCHES
    );
    let nfa = nfa.with_max_partial_matches(500);
    let mut key = nfa.new_state();
    let mut out = Outputs::new();
    for ts in 0..1_050 {
        key.process(&nfa, "a", ts, &mut out);
    }
    assert_eq!(key.partial_matches(), 500);
    assert_eq!(key.counters().dropped, 550);
    assert_eq!(key.buffered_events(), 500);
    // The survivors are the newest: a "b" matches the last 500 "a"s.
    key.process(&nfa, "b", 2_000, &mut out);
    assert_eq!(out.matches.len(), 500);
}

#[test]
fn finished_matches_release_the_buffer() {
    let nfa = Pattern::begin("a")
        .where_(named("a"))
        .followed_by("b")
        .where_(named("b"))
        .compile()
        .unwrap();
    let mut key = nfa.new_state();
    let mut out = Outputs::new();
    for (ts, e) in ["a", "x", "a", "b", "x"].into_iter().enumerate() {
        key.process(&nfa, e, ts as i64, &mut out);
    }
    assert_eq!(out.matches.len(), 2);
    assert!(key.is_idle());
    assert_eq!(key.buffered_events(), 0);
}
