//! Checkpoints: restore mid-match and continue exactly as uninterrupted;
//! refuse bad bytes without panicking.

use std::time::Duration;

use weir_cep::checkpoint::{BytesCodec, JsonCodec};
use weir_cep::{
    AfterMatchSkip, CheckpointError, EventCodec, EventTimeState, KeyState, Match, Nfa, Outputs,
    Pattern, TimedOut, WithinType,
};

#[derive(Clone, Debug, PartialEq)]
struct E {
    id: u32,
    kind: u8,
    price: i32,
}

struct Codec;

impl EventCodec<E> for Codec {
    fn encode(&self, e: &E, out: &mut Vec<u8>) {
        out.extend_from_slice(&e.id.to_le_bytes());
        out.push(e.kind);
        out.extend_from_slice(&e.price.to_le_bytes());
    }

    fn decode(&self, b: &[u8]) -> Result<E, String> {
        if b.len() != 9 {
            return Err(format!("{} bytes", b.len()));
        }
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Ok(E {
            id: u32::from_le_bytes(word(0)),
            kind: b[4],
            price: i32::from_le_bytes(word(5)),
        })
    }
}

fn kind(k: u8) -> impl Fn(&E, &dyn weir_cep::Matched<E>) -> bool {
    move |e, _| e.kind == k
}

/// Branching, looping, an iterative condition, a window and a skip strategy
/// that holds matches: every part of the state is exercised.
fn pattern(skip: AfterMatchSkip) -> Nfa<E> {
    Pattern::begin_with_skip("a", skip)
        .where_(kind(0))
        .followed_by_any("b")
        .where_(kind(1))
        .one_or_more()
        .allow_combinations()
        .followed_by("c")
        .where_(|e: &E, m: &dyn weir_cep::Matched<E>| {
            let mut total = 0;
            m.visit("b", &mut |b| total += b.price);
            e.kind == 2 && e.price <= total
        })
        .within(Duration::from_millis(40), WithinType::FirstAndLast)
        .compile()
        .expect("pattern compiles")
}

fn stream(n: u32) -> Vec<(E, i64)> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let e = E {
                id: i,
                kind: ((x >> 16) % 4) as u8,
                price: ((x >> 8) % 7) as i32,
            };
            (e, i64::from(i) * 3)
        })
        .collect()
}

type Log = (Vec<Match<E>>, Vec<TimedOut<E>>);

fn run_from(
    nfa: &Nfa<E>,
    mut key: KeyState<E>,
    events: &[(E, i64)],
    end: i64,
) -> (Log, KeyState<E>) {
    let mut out = Outputs::new();
    for (e, ts) in events {
        key.process(nfa, e.clone(), *ts, &mut out);
    }
    key.advance_time(nfa, end, &mut out);
    ((out.matches, out.timeouts), key)
}

#[test]
fn restore_mid_match_continues_as_if_uninterrupted() {
    for skip in [
        AfterMatchSkip::NoSkip,
        AfterMatchSkip::SkipPastLastEvent,
        AfterMatchSkip::SkipToFirst("b".into()),
    ] {
        let nfa = pattern(skip);
        let events = stream(60);
        let end = 1_000;
        let (whole, final_state) = run_from(&nfa, KeyState::new(), &events, end);
        assert!(!whole.0.is_empty(), "the stream produces matches");
        let mut saw_partials = false;
        for cut in 0..events.len() {
            let (mut before, key) = run_from(&nfa, KeyState::new(), &events[..cut], i64::MIN);
            saw_partials |= key.partial_matches() > 0;
            let mut bytes = Vec::new();
            key.encode(&nfa, &Codec, &mut bytes);
            let restored = KeyState::decode(&nfa, &Codec, &bytes).unwrap();
            assert_eq!(restored.partial_matches(), key.partial_matches());
            assert_eq!(restored.buffered_events(), key.buffered_events());
            // Encoding the restored state gives the same bytes.
            let mut again = Vec::new();
            restored.encode(&nfa, &Codec, &mut again);
            assert_eq!(bytes, again);
            let (after, resumed) = run_from(&nfa, restored, &events[cut..], end);
            before.0.extend(after.0);
            before.1.extend(after.1);
            assert_eq!(before, whole, "cut at {cut}");
            assert_eq!(resumed.counters(), final_state.counters());
        }
        assert!(saw_partials);
    }
}

#[test]
fn event_time_state_roundtrip_keeps_waiting_records_and_watermark() {
    let nfa = pattern(AfterMatchSkip::NoSkip);
    let events = stream(40);
    let feed = |key: &mut EventTimeState<E>, out: &mut Outputs<E>, part: &[(E, i64)]| {
        for (e, ts) in part {
            // Out of order within a few ms, watermark 10 ms behind.
            key.push(e.clone(), *ts - i64::from(e.id % 3) * 2, out);
            key.advance_watermark(&nfa, *ts - 10, out);
        }
    };
    let mut whole = EventTimeState::new();
    let mut out_whole = Outputs::new();
    feed(&mut whole, &mut out_whole, &events);
    whole.advance_watermark(&nfa, 10_000, &mut out_whole);

    let mut first = EventTimeState::new();
    let mut out = Outputs::new();
    feed(&mut first, &mut out, &events[..20]);
    assert!(first.buffered_events() > 0);
    let mut bytes = Vec::new();
    first.encode(&nfa, &Codec, &mut bytes);
    let mut second = EventTimeState::decode(&nfa, &Codec, &bytes).unwrap();
    assert_eq!(second.watermark(), first.watermark());
    feed(&mut second, &mut out, &events[20..]);
    second.advance_watermark(&nfa, 10_000, &mut out);
    assert_eq!(out.matches, out_whole.matches);
    assert_eq!(out.timeouts, out_whole.timeouts);
    assert_eq!(out.late, out_whole.late);
    assert_eq!(second.counters(), whole.counters());
}

fn some_checkpoint(nfa: &Nfa<E>) -> Vec<u8> {
    let (_, key) = run_from(nfa, KeyState::new(), &stream(25), i64::MIN);
    assert!(key.partial_matches() > 0);
    let mut bytes = Vec::new();
    key.encode(nfa, &Codec, &mut bytes);
    bytes
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    let nfa = pattern(AfterMatchSkip::NoSkip);
    let bytes = some_checkpoint(&nfa);
    assert_eq!(
        KeyState::decode(&nfa, &Codec, &[]).unwrap_err(),
        CheckpointError::BadMagic
    );
    assert_eq!(
        KeyState::decode(&nfa, &Codec, b"nope-nope-nope").unwrap_err(),
        CheckpointError::BadMagic
    );
    let mut v = bytes.clone();
    v[4] = 99;
    assert_eq!(
        KeyState::decode(&nfa, &Codec, &v).unwrap_err(),
        CheckpointError::Version(99)
    );
    let mut v = bytes.clone();
    v[5] = 1;
    assert_eq!(
        KeyState::decode(&nfa, &Codec, &v).unwrap_err(),
        CheckpointError::WrongKind
    );
    let mut v = bytes.clone();
    v.push(0);
    assert_eq!(
        KeyState::decode(&nfa, &Codec, &v).unwrap_err(),
        CheckpointError::Trailing(1)
    );
    // Every truncation fails cleanly.
    for len in 0..bytes.len() {
        assert!(
            KeyState::decode(&nfa, &Codec, &bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    // Flipped bytes never panic (some flips still decode: a changed price).
    for i in 6..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut v = bytes.clone();
            v[i] ^= flip;
            let _ = KeyState::decode(&nfa, &Codec, &v);
        }
    }
    // An event the codec refuses.
    struct Refuse;
    impl EventCodec<E> for Refuse {
        fn encode(&self, e: &E, out: &mut Vec<u8>) {
            Codec.encode(e, out)
        }
        fn decode(&self, _: &[u8]) -> Result<E, String> {
            Err("no".into())
        }
    }
    assert_eq!(
        KeyState::decode(&nfa, &Refuse, &bytes).unwrap_err(),
        CheckpointError::Event("no".into())
    );
}

#[test]
fn checkpoint_of_another_pattern_is_refused() {
    let nfa = pattern(AfterMatchSkip::NoSkip);
    let bytes = some_checkpoint(&nfa);
    let other = pattern(AfterMatchSkip::SkipToNext);
    assert_eq!(
        KeyState::decode(&other, &Codec, &bytes).unwrap_err(),
        CheckpointError::PatternMismatch
    );
}

#[test]
fn json_and_bytes_codecs_roundtrip() {
    let v = serde_json::json!({"kind": "a", "n": [1, 2.5, null]});
    let mut b = Vec::new();
    JsonCodec.encode(&v, &mut b);
    assert_eq!(JsonCodec.decode(&b).unwrap(), v);
    assert!(JsonCodec.decode(b"{").is_err());
    let mut b = Vec::new();
    BytesCodec.encode(&vec![1, 2, 3], &mut b);
    assert_eq!(BytesCodec.decode(&b).unwrap(), vec![1, 2, 3]);
}
