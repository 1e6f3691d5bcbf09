//! A runner snapshot taken at any point of a stream restores into a fresh
//! runner that then emits exactly what the uninterrupted runner emits,
//! record for record and after the same inputs: every cut of small random
//! streams, over rule shapes that leave different state behind (trailing,
//! leading and middle negation, loops with `until`, skip strategies, caps).

use serde_json::{json, Value};
use weir_cep::rule::Rule;
use weir_cep::runner::{OutputKind, RuleRunner, RunnerOptions, RunnerOutput};

/// The rule of the reported bug: a trailing `notFollowedBy` under a
/// previous-and-current window, whose condition overlaps the loop's.
fn notc() -> Value {
    json!({"name": "notc", "within_ms": 25, "within_type": "previous_and_current",
        "steps": [
            {"name": "a", "where": "kind == \"a\""},
            {"name": "b", "where": "kind == \"b\" || n == 1", "quantifier": {"min": 1, "max": 2}},
            {"name": "no_c", "where": "kind == \"c\"", "negated": true}]})
}

/// Rule shapes, each with the out-of-orderness it runs under.
fn rules() -> Vec<(Value, i64)> {
    vec![
        (notc(), 0),
        (notc(), 3),
        (
            json!({"name": "trail_first_last", "within_ms": 20,
                "skip": {"strategy": "skip_past_last_event"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\" || n == 2"},
                    {"name": "b", "where": "kind == \"b\"", "quantifier": {"min": 1}, "loop_contiguity": "any"},
                    {"name": "no_c", "where": "kind == \"c\" || n == 0", "negated": true}]}),
            2,
        ),
        (
            json!({"name": "trail_strict", "within_ms": 15,
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "no_x", "where": "kind == \"x\" || n == 1", "negated": true, "contiguity": "strict"}]}),
            1,
        ),
        (
            json!({"name": "leading_not_next", "within_ms": 30,
                "steps": [
                    {"name": "a", "where": "kind == \"a\" || n == 1"},
                    {"name": "no_b", "where": "kind == \"b\"", "negated": true, "contiguity": "strict"},
                    {"name": "c", "where": "kind == \"c\" || n == 2", "quantifier": {"min": 1, "max": 2}}]}),
            2,
        ),
        (
            json!({"name": "middle_not_followed", "within_ms": 30,
                "skip": {"strategy": "skip_to_first", "step": "b"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "b", "where": "kind == \"b\" || n == 1", "quantifier": {"min": 1, "max": 3}, "loop_contiguity": "any"},
                    {"name": "no_x", "where": "kind == \"x\" || n == 2", "negated": true},
                    {"name": "c", "where": "kind == \"c\" || n == 1"}]}),
            3,
        ),
        (
            json!({"name": "until_loop", "within_ms": 40,
                "skip": {"strategy": "skip_to_last", "step": "bs"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "bs", "where": "kind == \"b\" || n == 2", "quantifier": {"min": 1}, "until": "kind == \"x\""},
                    {"name": "c", "where": "kind == \"c\""}]}),
            2,
        ),
        (
            json!({"name": "greedy_optional", "within_ms": 25,
                "skip": {"strategy": "skip_to_next"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\"", "quantifier": {"min": 1, "max": 2}, "optional": true},
                    {"name": "bs", "where": "kind == \"b\" || n == 0", "quantifier": {"min": 1}, "greedy": true, "until": "kind == \"x\""},
                    {"name": "c", "where": "kind == \"c\"", "contiguity": "strict"}]}),
            0,
        ),
        (
            json!({"name": "capped_any", "within_ms": 30, "max_partial_matches_per_key": 3,
                "steps": [
                    {"name": "a", "where": "kind == \"a\" || kind == \"b\""},
                    {"name": "b", "where": "kind == \"b\"", "contiguity": "any"},
                    {"name": "no_c", "where": "kind == \"c\"", "negated": true}]}),
            1,
        ),
        (
            json!({"name": "unwindowed",
                "skip": {"strategy": "skip_past_last_event"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "no_x", "where": "kind == \"x\" && n == 2", "negated": true},
                    {"name": "b", "where": "kind == \"b\" || n == 0", "quantifier": {"min": 1, "max": 3}},
                    {"name": "c", "where": "kind == \"c\""}]}),
            0,
        ),
    ]
}

/// (partition, key, value, time): small, mostly in order, with ties, some
/// out of order within and beyond the out-of-orderness (late), and gaps
/// that close windows.
type Input = (i32, Vec<u8>, Value, i64);

fn stream(n: usize, seed: u64) -> Vec<Input> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = 100i64;
    (0..n)
        .map(|_| {
            let r = next();
            t += [0, 1, 1, 2, 3, 5][(r % 6) as usize];
            if r % 23 == 0 {
                t += 30;
            }
            let jitter = match (r >> 8) % 8 {
                0 => -(((r >> 12) % 4) as i64),
                1 => -(((r >> 12) % 12) as i64),
                _ => 0,
            };
            let kind = ["a", "b", "c", "x"][((r >> 20) % 4) as usize];
            let key = format!("k{}", (r >> 24) % 3);
            let value = json!({"kind": kind, "n": (r >> 30) % 3});
            (((r >> 40) % 2) as i32, key.into_bytes(), value, t + jitter)
        })
        .collect()
}

/// An output with the number of inputs fed before it.
type Logged = (usize, OutputKind, String, i64, String);

fn log(at: usize, o: RunnerOutput) -> Logged {
    (
        at,
        o.kind,
        String::from_utf8_lossy(&o.key).into_owned(),
        o.time,
        String::from_utf8_lossy(&o.value).into_owned(),
    )
}

const PARTITIONS: [i32; 2] = [0, 1];

fn runner(rule: &Value, ooo: i64, timed_out: bool) -> RuleRunner {
    let rule: Rule = serde_json::from_value(rule.clone()).expect("rule");
    let opts = RunnerOptions {
        out_of_orderness_ms: ooo,
        timed_out,
        late: true,
        json_keys: false,
    };
    RuleRunner::new(rule.check().expect("rule checks"), opts).expect("compiles")
}

fn feed(r: &mut RuleRunner, inputs: &[Input], from: usize, logged: &mut Vec<Logged>) {
    for (i, (p, key, value, time)) in inputs.iter().enumerate() {
        r.push(*p, key, value.clone(), *time, &mut |o| {
            logged.push(log(from + i + 1, o))
        });
    }
}

fn finish(r: &mut RuleRunner, at: usize, logged: &mut Vec<Logged>) {
    for p in PARTITIONS {
        r.finish(p, &mut |o| logged.push(log(at, o)));
    }
}

/// A fresh runner holding `from`'s partitions, through their snapshots.
fn moved(from: &RuleRunner, rule: &Value, ooo: i64, timed_out: bool, what: &str) -> RuleRunner {
    let mut to = runner(rule, ooo, timed_out);
    for p in PARTITIONS {
        let snap = from.snapshot(p);
        if snap.is_empty() {
            continue;
        }
        if let Err(e) = to.restore(p, &snap) {
            panic!("{what}: partition {p} does not restore: {e}");
        }
        assert_eq!(to.snapshot(p), snap, "{what}: partition {p} re-snapshots");
    }
    to
}

#[test]
fn a_snapshot_at_any_input_restores_and_continues_as_uninterrupted() {
    for (r, (rule, ooo)) in rules().iter().enumerate() {
        let mut kinds = Vec::new();
        for seed in 1..=4u64 {
            let inputs = stream(48, seed * 31 + r as u64);
            for timed_out in [true, false] {
                let mut whole = Vec::new();
                let mut uncut = runner(rule, *ooo, timed_out);
                feed(&mut uncut, &inputs, 0, &mut whole);
                finish(&mut uncut, inputs.len(), &mut whole);
                kinds.extend(whole.iter().map(|l| l.1));
                let mut open_at_some_cut = false;
                for cut in 0..=inputs.len() {
                    let what = format!("rule {r} seed {seed} timed_out {timed_out} cut {cut}");
                    let mut got = Vec::new();
                    let mut first = runner(rule, *ooo, timed_out);
                    feed(&mut first, &inputs[..cut], 0, &mut got);
                    open_at_some_cut |= first.stats().partial_matches > 0;
                    let mut second = moved(&first, rule, *ooo, timed_out, &what);
                    let (a, b) = (second.stats(), first.stats());
                    assert_eq!(
                        (a.partial_matches, a.buffered_events),
                        (b.partial_matches, b.buffered_events),
                        "{what}"
                    );
                    // Cut again a few inputs later: a restored runner's
                    // snapshot restores too.
                    let again = (cut + 5).min(inputs.len());
                    feed(&mut second, &inputs[cut..again], cut, &mut got);
                    let mut third = moved(&second, rule, *ooo, timed_out, &what);
                    feed(&mut third, &inputs[again..], again, &mut got);
                    finish(&mut third, inputs.len(), &mut got);
                    assert_eq!(got, whole, "{what}");
                    // (Counts of keys dropped before the cut are not in a
                    // snapshot: compare what is held.)
                    let (a, b) = (third.stats(), uncut.stats());
                    assert_eq!(
                        (a.partial_matches, a.buffered_events),
                        (b.partial_matches, b.buffered_events),
                        "{what}"
                    );
                }
                assert!(
                    open_at_some_cut,
                    "rule {r} seed {seed}: some cut is mid-match"
                );
            }
        }
        for kind in [OutputKind::Match, OutputKind::TimedOut, OutputKind::Late] {
            let windowed = rule.get("within_ms").is_some();
            if kind != OutputKind::TimedOut || windowed {
                assert!(kinds.contains(&kind), "rule {r} gives some {kind:?}");
            }
        }
    }
}

/// `a b`, a `c` that both continues the loop and meets the negation (the
/// branch is killed), then a second `a b` whose trailing negation waits for
/// its window to close.
fn killed_branch_then_waiting_negation() -> Vec<Input> {
    [
        ("a", 0, 10),
        ("b", 0, 12),
        ("c", 1, 14),
        ("a", 0, 20),
        ("b", 0, 22),
        ("x", 0, 23),
        ("x", 0, 60),
    ]
    .into_iter()
    .map(|(kind, n, t)| (0, b"k".to_vec(), json!({"kind": kind, "n": n}), t))
    .collect()
}

/// The outputs of `inputs` run through one runner, and that runner.
fn uninterrupted(rule: &Value, inputs: &[Input]) -> (Vec<Logged>, RuleRunner) {
    let mut whole = Vec::new();
    let mut uncut = runner(rule, 0, true);
    feed(&mut uncut, inputs, 0, &mut whole);
    finish(&mut uncut, inputs.len(), &mut whole);
    (whole, uncut)
}

/// The reported case, by hand: `a b` meets an event both the loop and the
/// negated step take (`c` with `n == 1`), which kills that branch (and
/// left the node the loop took behind, unreferenced); a later `a b` then
/// waits for its negation's window to close, a timer pending.
#[test]
fn trailing_negation_waiting_for_its_window_restores() {
    let rule = notc();
    let inputs = killed_branch_then_waiting_negation();
    let (whole, uncut) = uninterrupted(&rule, &inputs);
    let matches: Vec<_> = whole.iter().filter(|l| l.1 == OutputKind::Match).collect();
    assert_eq!(matches.len(), 1, "{whole:?}");
    assert_eq!(
        (matches[0].0, matches[0].3),
        (7, 22),
        "the second a b, once its window closed"
    );
    assert_eq!(
        uncut.stats().buffered_events,
        0,
        "the killed branch is freed"
    );
    for cut in 0..=inputs.len() {
        let what = format!("cut {cut}");
        let mut got = Vec::new();
        let mut first = runner(&rule, 0, true);
        feed(&mut first, &inputs[..cut], 0, &mut got);
        let mut second = moved(&first, &rule, 0, true, &what);
        feed(&mut second, &inputs[cut..], cut, &mut got);
        finish(&mut second, inputs.len(), &mut got);
        assert_eq!(got, whole, "{what}");
    }
}

/// A snapshot the engine wrote before it freed a killed branch's nodes,
/// after `a b`, the `c` that kills it, and another `a` (processed ahead,
/// so per-key version 2): it holds the killed branch's nodes, referenced
/// by nothing. It restores, without them, and continues as uninterrupted.
#[test]
fn an_older_engine_s_snapshot_with_a_killed_branch_left_behind_restores() {
    const OLD: &str = "5743505201011400000000000000010000006b8900000057434550020119cdf3e2a4\
        5544920400000000041400127b226b696e64223a2261222c226e223a307d1801127b226b696e64223a\
        2262222c226e223a307d1c02127b226b696e64223a2263222c226e223a317d2803127b226b696e6422\
        3a2261222c226e223a307d0400000001010102010203000001050428032800ffffffffffffffffff01\
        002800";
    let old: Vec<u8> = (0..OLD.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&OLD[i..i + 2], 16).expect("hex"))
        .collect();
    let rule = notc();
    let inputs = killed_branch_then_waiting_negation();
    let (whole, _) = uninterrupted(&rule, &inputs);

    let mut resumed = runner(&rule, 0, true);
    resumed.restore(0, &old).expect("the old snapshot restores");
    assert_eq!(resumed.stats().partial_matches, 1, "the second a");
    assert_eq!(
        resumed.stats().buffered_events,
        1,
        "the killed branch is gone"
    );
    let mut got: Vec<Logged> = whole.iter().filter(|l| l.0 <= 4).cloned().collect();
    assert!(got.is_empty());
    feed(&mut resumed, &inputs[4..], 4, &mut got);
    finish(&mut resumed, inputs.len(), &mut got);
    assert_eq!(got, whole);
}
