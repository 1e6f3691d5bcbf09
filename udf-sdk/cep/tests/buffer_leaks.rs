//! The shared buffer frees every event and node once no partial match needs
//! it, whatever the pattern does (branching, loops, negation, skipping).

use std::time::Duration;

use weir_cep::{AfterMatchSkip, KeyState, Matched, Nfa, Outputs, Pattern, WithinType};

fn is(c: char) -> impl Fn(&char, &dyn Matched<char>) -> bool {
    move |e, _| *e == c
}

fn patterns() -> Vec<Nfa<char>> {
    let w = Duration::from_millis(50);
    let skips = [
        AfterMatchSkip::NoSkip,
        AfterMatchSkip::SkipToNext,
        AfterMatchSkip::SkipPastLastEvent,
        AfterMatchSkip::SkipToFirst("b".into()),
        AfterMatchSkip::SkipToLast("b".into()),
    ];
    let mut all = Vec::new();
    for skip in skips {
        let list = vec![
            Pattern::begin_with_skip("a", skip.clone())
                .where_(is('a'))
                .followed_by_any("b")
                .where_(is('b'))
                .one_or_more()
                .allow_combinations()
                .optional()
                .followed_by("c")
                .where_(is('c')),
            Pattern::begin_with_skip("a", skip.clone())
                .where_(is('a'))
                .not_followed_by("x")
                .where_(is('d'))
                .followed_by("b")
                .where_(is('b'))
                .times_range(1, 3)
                .greedy()
                .next("c")
                .where_(is('c')),
            Pattern::begin_with_skip("a", skip.clone())
                .where_(is('a'))
                .one_or_more()
                .consecutive()
                .followed_by("b")
                .where_(is('b'))
                .one_or_more()
                .until(is('c'))
                .not_followed_by("z")
                .where_(is('z')),
            Pattern::begin_with_skip("a", skip.clone())
                .where_(is('a'))
                .not_next("n")
                .where_(is('a'))
                .followed_by_any("b")
                .where_(is('b'))
                .times_or_more(2)
                .followed_by("c")
                .where_(is('c'))
                .within(Duration::from_millis(20), WithinType::PreviousAndCurrent),
            // The negated step and the loop both take `c`: the branch dies
            // with the node its loop took.
            Pattern::begin_with_skip("a", skip.clone())
                .where_(is('a'))
                .followed_by("b")
                .where_(|e: &char, _: &dyn Matched<char>| *e == 'b' || *e == 'c')
                .times_range(1, 2)
                .not_followed_by("no_c")
                .where_(is('c'))
                .within(Duration::from_millis(20), WithinType::PreviousAndCurrent),
        ];
        for p in list {
            all.push(
                p.within(w, WithinType::FirstAndLast)
                    .compile()
                    .expect("pattern compiles"),
            );
        }
    }
    all
}

#[test]
fn everything_is_freed_once_windows_close() {
    let alphabet = ['a', 'b', 'c', 'd', 'a', 'b', 'x'];
    for (i, nfa) in patterns().iter().enumerate() {
        let mut key = KeyState::new();
        let mut out = Outputs::new();
        let mut x: u32 = 7 + i as u32;
        for t in 0..400 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let e = alphabet[(x >> 24) as usize % alphabet.len()];
            key.process(nfa, e, t, &mut out);
            out.clear();
        }
        key.advance_time(nfa, 10_000, &mut out);
        assert!(key.counters().matches > 0, "pattern {i} matched");
        assert!(
            key.is_idle(),
            "pattern {i}: {} partial matches, {} events left",
            key.partial_matches(),
            key.buffered_events()
        );
    }
}
