//! Many keys under one watermark.

use std::time::Duration;

use weir_cep::{KeyedEventTime, Matched, Outputs, Pattern, WithinType};

type Ev = (u32, char);

fn is(c: char) -> impl Fn(&Ev, &dyn Matched<Ev>) -> bool {
    move |e, _| e.1 == c
}

fn nfa() -> weir_cep::Nfa<Ev> {
    Pattern::begin("a")
        .where_(is('a'))
        .followed_by("b")
        .where_(is('b'))
        .within(Duration::from_millis(100), WithinType::FirstAndLast)
        .compile()
        .expect("compiles")
}

#[test]
fn keys_match_independently_and_idle_keys_are_dropped() {
    let nfa = nfa();
    let mut eng = KeyedEventTime::new();
    let mut out = Outputs::new();
    // Key 1: a then b. Key 2: b then a (no match), then its a times out.
    eng.push(1u32, (1, 'a'), 10, &mut out);
    eng.push(2u32, (2, 'b'), 11, &mut out);
    eng.push(2u32, (2, 'a'), 12, &mut out);
    eng.push(1u32, (1, 'b'), 13, &mut out);
    assert_eq!(eng.key_count(), 2);
    eng.advance_watermark(&nfa, 20, &mut out);
    let got: Vec<Vec<Ev>> = out
        .matches
        .iter()
        .map(|m| m.events().copied().collect())
        .collect();
    assert_eq!(got, vec![vec![(1, 'a'), (1, 'b')]]);
    // Key 1 is done and dropped; key 2 waits for its window.
    assert_eq!(eng.key_count(), 1);
    assert_eq!(eng.partial_matches(), 1);
    eng.advance_watermark(&nfa, 111, &mut out);
    assert!(out.timeouts.is_empty());
    eng.advance_watermark(&nfa, 112, &mut out);
    assert_eq!(out.timeouts.len(), 1);
    assert_eq!(out.timeouts[0].timeout_at, 112);
    assert_eq!(eng.key_count(), 0);
    let c = eng.counters();
    assert_eq!((c.matches, c.timeouts, c.late), (1, 1, 0));
}

#[test]
fn late_records_and_restore() {
    let nfa = nfa();
    let mut eng = KeyedEventTime::new();
    let mut out = Outputs::new();
    eng.push("k".to_string(), (1, 'a'), 10, &mut out);
    eng.advance_watermark(&nfa, 50, &mut out);
    eng.push("k".to_string(), (1, 'b'), 50, &mut out);
    assert_eq!(out.late.len(), 1);
    assert_eq!(eng.counters().late, 1);
    // Checkpoint key by key, restore into a fresh engine, continue.
    struct C;
    impl weir_cep::EventCodec<Ev> for C {
        fn encode(&self, e: &Ev, out: &mut Vec<u8>) {
            out.extend_from_slice(&e.0.to_le_bytes());
            out.push(e.1 as u8);
        }
        fn decode(&self, b: &[u8]) -> Result<Ev, String> {
            match b {
                [a, b2, c, d, k] => Ok((u32::from_le_bytes([*a, *b2, *c, *d]), char::from(*k))),
                _ => Err("length".into()),
            }
        }
    }
    let saved: Vec<(String, Vec<u8>)> = eng
        .states()
        .map(|(k, s)| {
            let mut b = Vec::new();
            s.encode(&nfa, &C, &mut b);
            (k.clone(), b)
        })
        .collect();
    let mut again = KeyedEventTime::new();
    for (k, b) in saved {
        again.restore(
            k,
            weir_cep::EventTimeState::decode(&nfa, &C, &b).expect("decodes"),
        );
    }
    assert_eq!(again.watermark(), 50);
    let mut out = Outputs::new();
    again.push("k".to_string(), (1, 'b'), 60, &mut out);
    again.advance_watermark(&nfa, 60, &mut out);
    assert_eq!(out.matches.len(), 1);
}

#[test]
fn in_order_records_that_start_nothing_hold_no_key_and_keep_numbering() {
    let nfa = Pattern::begin("a")
        .where_(is('a'))
        .compile()
        .expect("compiles");
    let mut eng: KeyedEventTime<u32, Ev> = KeyedEventTime::new();
    let mut out = Outputs::new();
    // Each record is the next watermark + 1: processed ahead.
    let push = |eng: &mut KeyedEventTime<u32, Ev>, out: &mut Outputs<Ev>, k, c, t| {
        eng.push_ahead(&nfa, &k, (k, c), t, t - 1, out, |k| *k);
        eng.advance_watermark(&nfa, t - 1, out);
    };
    push(&mut eng, &mut out, 1, 'x', 10);
    assert_eq!(
        eng.key_count(),
        0,
        "an `x` starts nothing: key 1 is not held"
    );
    // A match is held (with its key) until the watermark passes it.
    push(&mut eng, &mut out, 2, 'a', 11);
    assert_eq!((eng.key_count(), out.matches.len()), (1, 0));
    eng.advance_watermark(&nfa, 11, &mut out);
    assert_eq!((eng.key_count(), out.matches.len()), (0, 1));
    assert_eq!(eng.counters().matches, 1);
    // Keys not held took no number: the others are numbered in order.
    let two = Pattern::begin("a")
        .where_(is('a'))
        .followed_by("b")
        .where_(is('b'))
        .compile()
        .expect("compiles");
    let mut eng: KeyedEventTime<u32, Ev> = KeyedEventTime::new();
    for (t, (k, c)) in [
        (20, (5, 'x')),
        (21, (6, 'a')),
        (22, (7, 'x')),
        (23, (8, 'a')),
    ] {
        eng.push_ahead(&two, &k, (k, c), t, t - 1, &mut out, |k| *k);
        eng.advance_watermark(&two, t - 1, &mut out);
    }
    let keys: Vec<u32> = eng.states().map(|(k, _)| *k).collect();
    assert_eq!(keys, [6, 8]);
}
