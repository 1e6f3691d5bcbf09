//! Replays generated keyed JSON records through `RuleRunner` over several
//! rules and prints every output with the input that caused it, and each
//! partition's snapshot at a cut: to check a change of the engine record
//! for record against the code before it (run both, diff the output).
//!
//! `cargo run --release -p weir-cep --example runner_replay -- run [N]`
//! prints outputs and snapshots (as hashes) to stdout and writes the
//! snapshots taken at the cut to `$REPLAY_DIR` (default `/tmp`);
//! `... -- resume [N]` restores those snapshots at the cut instead of
//! replaying the first part, and prints what follows it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::json;
use weir_cep::rule::Rule;
use weir_cep::runner::{RuleRunner, RunnerOptions, RunnerOutput};

fn rules() -> Vec<(Rule, i64)> {
    let specs = [
        (
            json!({"name": "abc", "within_ms": 60,
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "b", "where": "kind == \"b\""},
                    {"name": "c", "where": "kind == \"c\""}]}),
            0,
        ),
        (
            json!({"name": "abc", "within_ms": 40,
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "b", "where": "kind == \"b\""},
                    {"name": "c", "where": "kind == \"c\""}]}),
            7,
        ),
        (
            json!({"name": "loop", "within_ms": 30, "skip": {"strategy": "skip_past_last_event"},
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "bs", "where": "kind == \"b\" && n > 3", "quantifier": {"min": 1, "max": 3}, "contiguity": "any"},
                    {"name": "c", "where": "kind == \"c\"", "contiguity": "strict"}],
                "emit": {"total": "last(c).n"}}),
            0,
        ),
        (
            json!({"name": "notc", "within_ms": 25, "within_type": "previous_and_current",
                "steps": [
                    {"name": "a", "where": "kind == \"a\""},
                    {"name": "b", "where": "kind == \"b\" || n == 1", "quantifier": {"min": 1, "max": 2}},
                    {"name": "no_c", "where": "kind == \"c\"", "negated": true}]}),
            3,
        ),
        (
            json!({"name": "capped", "within_ms": 50, "max_partial_matches_per_key": 2,
                "steps": [
                    {"name": "a", "where": "kind == \"a\" || kind == \"b\""},
                    {"name": "c", "where": "kind == \"c\"", "contiguity": "any"}]}),
            0,
        ),
    ];
    specs
        .into_iter()
        .map(|(v, ooo)| (serde_json::from_value(v).expect("rule"), ooo))
        .collect()
}

/// (partition, key, value, time): mostly in order, some out of order
/// within the out-of-orderness, some late, ties, a few gaps.
fn events(n: usize, seed: u64) -> Vec<(i32, Vec<u8>, Vec<u8>, i64)> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = 1_000i64;
    (0..n)
        .map(|_| {
            let r = next();
            if r % 4 == 0 {
                t += 1;
            }
            if r % 97 == 0 {
                t += 45;
            }
            let jitter = match (r >> 8) % 10 {
                0 => -(((r >> 12) % 9) as i64),
                1 => -(((r >> 12) % 70) as i64),
                _ => 0,
            };
            let key = format!("k{}", (r >> 20) % 23);
            let kind = ["a", "b", "c", "x"][((r >> 30) % 4) as usize];
            let value = json!({"kind": kind, "n": (r >> 40) % 9}).to_string();
            (
                (r >> 50) as i32 % 2,
                key.into_bytes(),
                value.into_bytes(),
                t + jitter,
            )
        })
        .collect()
}

fn line(i: usize, o: &RunnerOutput) -> String {
    format!(
        "{i} {:?} {} {} {}",
        o.kind,
        String::from_utf8_lossy(&o.key),
        o.time,
        String::from_utf8_lossy(&o.value)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("run", String::as_str).to_owned();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let dir = std::env::var("REPLAY_DIR").unwrap_or_else(|_| "/tmp".into());
    let cut = n / 2;
    let only: Option<usize> = std::env::var("REPLAY_RULE")
        .ok()
        .and_then(|v| v.parse().ok());
    let trace = std::env::var("REPLAY_TRACE").ok();
    for (r, (rule, ooo)) in rules().into_iter().enumerate() {
        if only.is_some_and(|o| o != r) {
            continue;
        }
        for timed_out in [true, false] {
            let opts = RunnerOptions {
                out_of_orderness_ms: ooo,
                timed_out,
                late: true,
                json_keys: false,
            };
            let checked = rule.check().expect("checks");
            let mut runner = RuleRunner::new(checked, opts).expect("compiles");
            let evs = events(n, 0x9e37_79b9 + r as u64);
            let mut start = 0;
            println!("rule {r} timed_out {timed_out}");
            if mode == "resume" {
                let mut failed = false;
                for p in 0..2 {
                    let path = format!("{dir}/replay-{r}-{timed_out}-{p}.snap");
                    let bytes = std::fs::read(&path).expect("snapshot file");
                    if let Err(e) = runner.restore(p, &bytes) {
                        println!("restore failed: {e}");
                        failed = true;
                    }
                }
                if failed {
                    continue;
                }
                start = cut;
            }
            for (i, (p, key, value, time)) in evs.iter().enumerate().skip(start) {
                if i == cut && mode == "run" {
                    for p in 0..2 {
                        let snap = runner.snapshot(p);
                        let mut h = DefaultHasher::new();
                        snap.hash(&mut h);
                        println!("snapshot {p} {} bytes, hash {:x}", snap.len(), h.finish());
                        let path = format!("{dir}/replay-{r}-{timed_out}-{p}.snap");
                        std::fs::write(&path, &snap).expect("writes");
                    }
                }
                // Reading ahead (the rule component and the operator do it
                // every `READ_AHEAD` records) must change nothing.
                if i % 64 == 0 {
                    for part in 0..2 {
                        let next = evs[i..].iter().take(64).filter(|e| e.0 == part);
                        runner.warm(part, next.map(|e| (&e.1[..], e.3)));
                    }
                }
                if trace.as_deref().is_some_and(|t| t.as_bytes() == &key[..]) {
                    println!("{i} push p{p} {} {time}", String::from_utf8_lossy(value));
                }
                let mut emitted = |o: RunnerOutput| {
                    if i >= cut || mode == "run" {
                        println!("{}", line(i, &o));
                    }
                };
                runner
                    .push_json(*p, key, value, *time, &mut emitted)
                    .expect("JSON");
            }
            for p in 0..2 {
                runner.finish(p, &mut |o| println!("{}", line(n, &o)));
            }
            println!("stats {:?}", runner.stats());
        }
    }
}
