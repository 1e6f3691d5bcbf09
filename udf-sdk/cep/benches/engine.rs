//! Throughput and memory of the engine for the reference workload: a 3-step
//! keyed pattern (a, then b, then c, relaxed contiguity, within 60 s) over
//! 100,000 keys with ~60-byte events, one core.
//!
//! `cargo bench -p weir-cep` (release). Sizes: CEP_BENCH_EVENTS (default 4M).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_cep::rule::Rule;
use weir_cep::runner::{RuleRunner, RunnerOptions, READ_AHEAD};
use weir_cep::{EventTimeState, KeyState, Matched, Nfa, Outputs, Pattern, WithinType};

/// A small event: 8 + 8 + 8 + 32 + 1 bytes of fields (64 with padding).
/// `value` and `tag` are never read: they give the event its size.
#[derive(Clone, Debug)]
#[allow(dead_code)]
struct Ev {
    key: u64,
    ts: i64,
    value: f64,
    tag: [u8; 32],
    kind: u8,
}

const KEYS: u64 = 100_000;
/// Event time advances 0.1 ms per event: ~6 events per key per 60 s window.
const EVENTS_PER_MS: i64 = 10;

fn kind(k: u8) -> impl Fn(&Ev, &dyn Matched<Ev>) -> bool {
    move |e, _| e.kind == k
}

fn nfa() -> Nfa<Ev> {
    Pattern::begin("a")
        .where_(kind(0))
        .followed_by("b")
        .where_(kind(1))
        .followed_by("c")
        .where_(kind(2))
        .within(Duration::from_secs(60), WithinType::FirstAndLast)
        .compile()
        .expect("pattern compiles")
}

/// Deterministic events: uniform keys, kinds a/b/c/other a quarter each.
struct Gen {
    x: u64,
    i: i64,
}

impl Gen {
    fn next(&mut self) -> Ev {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        let ts = self.i / EVENTS_PER_MS;
        self.i += 1;
        Ev {
            key: (self.x >> 8) % KEYS,
            ts,
            value: (self.x & 0xff) as f64,
            tag: [self.x as u8; 32],
            kind: (self.x >> 60) as u8 & 3,
        }
    }
}

#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Map<S> = HashMap<u64, S, BuildHasherDefault<Fx>>;

/// CPU seconds this thread has run (user + system), from /proc: on a
/// shared machine, wall time also counts the time other work had the core.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = s.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Prints events/s by wall time and by CPU time.
fn rate(label: &str, n: usize, wall: f64, cpu: Option<f64>) {
    print!("  {label:<24}{:.0} (wall)", n as f64 / wall);
    if let Some(c) = cpu.filter(|c| *c > 0.0) {
        print!(
            ", {:.0} (CPU time), {:.0} ns per event (CPU)",
            n as f64 / c,
            c * 1e9 / n as f64
        );
    }
    println!();
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn processing_time(nfa: &Nfa<Ev>, n: usize) {
    let mut keys: Map<KeyState<Ev>> = Map::default();
    let mut out = Outputs::new();
    let mut gen = Gen {
        x: 0x9e37_79b9_7f4a_7c15,
        i: 0,
    };
    let (mut matches, mut timeouts) = (0u64, 0u64);
    let mut feed = |count: usize, keys: &mut Map<KeyState<Ev>>| {
        for _ in 0..count {
            let e = gen.next();
            let (k, ts) = (e.key, e.ts);
            keys.entry(k).or_default().process(nfa, e, ts, &mut out);
            matches += out.matches.len() as u64;
            timeouts += out.timeouts.len() as u64;
            out.clear();
        }
    };
    let rss0 = rss_bytes();
    // Warm up: every key gets state and the windows fill.
    feed(n / 4, &mut keys);
    let cpu0 = cpu_secs();
    let started = Instant::now();
    feed(n, &mut keys);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    let partials: usize = keys.values().map(KeyState::partial_matches).sum();
    let buffered: usize = keys.values().map(KeyState::buffered_events).sum();
    let heap: usize = keys.values().map(KeyState::heap_bytes).sum();
    let per_key = std::mem::size_of::<KeyState<Ev>>() + std::mem::size_of::<u64>();
    let with_keys = heap + keys.len() * per_key;
    println!("processing time, KeyState::process per event:");
    println!(
        "  events                  {n} (+{} warm-up) over {} keys",
        n / 4,
        keys.len()
    );
    rate("events/s per core", n, secs, cpu);
    println!("  matches / timeouts      {matches} / {timeouts}");
    println!("  open partial matches    {partials} ({buffered} events buffered)");
    println!(
        "  bytes per open partial  {:.0} (engine heap) / {:.0} (with per-key state)",
        heap as f64 / partials.max(1) as f64,
        with_keys as f64 / partials.max(1) as f64
    );
    if let (Some(a), Some(b)) = (rss0, rss_bytes()) {
        println!("  RSS growth              {:.1} MiB ({:.0} bytes per open partial, map and allocator included)",
            (b.saturating_sub(a)) as f64 / 1048576.0,
            b.saturating_sub(a) as f64 / partials.max(1) as f64);
    }
}

/// The floor: the same key lookups and event generation, no matching.
fn lookup_only(n: usize) {
    let mut keys: Map<KeyState<Ev>> = Map::default();
    let mut gen = Gen {
        x: 0x9e37_79b9_7f4a_7c15,
        i: 0,
    };
    let mut sink = 0u64;
    for _ in 0..n / 4 {
        let e = gen.next();
        keys.entry(e.key).or_default();
    }
    let started = Instant::now();
    for _ in 0..n {
        let e = gen.next();
        sink += keys.entry(e.key).or_default().counters().matches + u64::from(e.kind);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "floor (key lookup + event generation only): {:.1} ns per event ({sink})",
        secs * 1e9 / n as f64
    );
}

fn event_time(nfa: &Nfa<Ev>, n: usize) {
    let mut keys: Map<EventTimeState<Ev>> = Map::default();
    let mut out = Outputs::new();
    let mut gen = Gen {
        x: 0x1234_5678_9abc_def1,
        i: 0,
    };
    let mut matches = 0u64;
    let cpu0 = cpu_secs();
    let started = Instant::now();
    // Watermarks are per key here (as a keyed operator sees them on its
    // timer); each key's advances 1 s behind its newest record.
    for _ in 0..n {
        let e = gen.next();
        let (k, ts) = (e.key, e.ts);
        let key = keys.entry(k).or_default();
        key.push(e, ts, &mut out);
        key.advance_watermark(nfa, ts - 1_000, &mut out);
        matches += out.matches.len() as u64;
        out.clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    println!("event time, EventTimeState::push + advance_watermark per event ({matches} matches):");
    rate("events/s per core", n, secs, cpu);
}

/// The same pattern as a declarative rule, compiled by the rule glue.
fn rule_nfa() -> Nfa<Value> {
    let rule: Rule = serde_json::from_value(json!({
        "name": "abc", "within_ms": 60000,
        "steps": [
            {"name": "a", "where": "kind == \"a\""},
            {"name": "b", "where": "kind == \"b\""},
            {"name": "c", "where": "kind == \"c\""}
        ]
    }))
    .expect("rule parses");
    rule.check()
        .expect("rule checks")
        .compile()
        .expect("rule compiles")
}

/// The same pattern with the Rust API over the same JSON events.
fn api_json_nfa() -> Nfa<Value> {
    let kind = |k: &'static str| move |e: &Value, _: &dyn Matched<Value>| e["kind"] == k;
    Pattern::begin("a")
        .where_(kind("a"))
        .followed_by("b")
        .where_(kind("b"))
        .followed_by("c")
        .where_(kind("c"))
        .within(Duration::from_secs(60), WithinType::FirstAndLast)
        .compile()
        .expect("pattern compiles")
}

/// A ~60-byte JSON event (`{"key":..,"ts":..,"kind":"a","value":..,"tag":..}`).
fn json_event(e: &Ev) -> Value {
    let kind = ["a", "b", "c", "x"][usize::from(e.kind & 3)];
    json!({"key": e.key, "ts": e.ts, "kind": kind, "value": e.value, "tag": "t-01234"})
}

/// JSON events through `nfa`, events built before timing (decoding is not
/// the engine's cost).
fn json_events(label: &str, nfa: &Nfa<Value>, events: &[(u64, i64, Value)]) {
    let mut keys: Map<KeyState<Value>> = Map::default();
    let mut out = Outputs::new();
    let mut matches = 0u64;
    let cpu0 = cpu_secs();
    let started = Instant::now();
    for (k, ts, e) in events {
        keys.entry(*k)
            .or_default()
            .process(nfa, e.clone(), *ts, &mut out);
        matches += out.matches.len() as u64;
        out.clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    println!("  {label} ({matches} matches):");
    rate("events/s per core", events.len(), secs, cpu);
}

fn json_side_by_side(n: usize) {
    let mut gen = Gen {
        x: 0x9e37_79b9_7f4a_7c15,
        i: 0,
    };
    let events: Vec<(u64, i64, Value)> = (0..n)
        .map(|_| {
            let e = gen.next();
            (e.key, e.ts, json_event(&e))
        })
        .collect();
    let size = events.first().map_or(0, |(_, _, e)| e.to_string().len());
    println!("JSON events (~{size} bytes as text), KeyState::process per event, native; each event cloned in:");
    json_events("YAML rule (expressions)", &rule_nfa(), &events);
    json_events("Rust API (closures)", &api_json_nfa(), &events);
}

/// The reference workload as a `cep` operator runs it natively: ~60-byte
/// JSON texts through `RuleRunner::push_json` (parse included) behind the
/// partition's watermark, match records written out; the events as
/// `cargo bench -p weir --bench cep` makes them.
fn runner_json(n: usize) {
    let rule: Rule = serde_json::from_value(json!({
        "name": "abc", "within_ms": 60000,
        "steps": [
            {"name": "a", "where": "kind == \"a\""},
            {"name": "b", "where": "kind == \"b\""},
            {"name": "c", "where": "kind == \"c\""},
        ]
    }))
    .expect("rule");
    let opts = RunnerOptions {
        timed_out: false,
        late: false,
        ..RunnerOptions::default()
    };
    let mut runner = RuleRunner::new(rule.check().expect("checks"), opts).expect("compiles");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let events: Vec<(Vec<u8>, i64, Vec<u8>)> = (0..n + n / 4)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = 1_700_000_000_000 + (i as i64 / EVENTS_PER_MS);
            let key = (x >> 8) % KEYS;
            let kind = ["a", "b", "c", "x"][(x >> 60) as usize & 3];
            let amount = x & 0xffff;
            let value =
                format!(r#"{{"user":"u{key:06}","kind":"{kind}","amount":{amount},"ts":{ts}}}"#);
            (format!("u{key:06}").into_bytes(), ts, value.into_bytes())
        })
        .collect();
    let (warm, measured) = events.split_at(n / 4);
    let mut bytes = 0usize;
    let mut feed = |runner: &mut RuleRunner, evs: &[(Vec<u8>, i64, Vec<u8>)]| {
        // As the rule component does: keyed state read ahead.
        let warm = std::env::var("CEP_BENCH_WARM").map_or(true, |v| v != "0");
        for chunk in evs.chunks(READ_AHEAD) {
            if warm {
                runner.warm(0, chunk.iter().map(|(k, t, _)| (&k[..], *t)));
            }
            for (k, ts, v) in chunk {
                runner
                    .push_json(0, k, v, *ts, &mut |o| bytes += o.value.len())
                    .expect("JSON");
            }
        }
    };
    feed(&mut runner, warm);
    let cpu0 = cpu_secs();
    let started = Instant::now();
    feed(&mut runner, measured);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    let stats = runner.stats();
    println!(
        "RuleRunner over JSON text (the operator's path natively; {} matches, {} open partial matches, {bytes} bytes out):",
        stats.matches, stats.partial_matches
    );
    rate("events/s per core", measured.len(), secs, cpu);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not need figures.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: usize = std::env::var("CEP_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    if std::env::var("CEP_BENCH_ONLY").is_ok_and(|v| v == "runner") {
        runner_json(n / 2);
        return;
    }
    let nfa = nfa();
    println!(
        "pattern: a -> b -> c (followedBy), within 60 s; {KEYS} keys; event size {} bytes",
        std::mem::size_of::<Ev>()
    );
    lookup_only(n);
    processing_time(&nfa, n);
    event_time(&nfa, n);
    json_side_by_side(n / 4);
    runner_json(n / 2);
}
