//! CEP rule throughput, the way a job runs a rule: the reference workload
//! (a 3-step keyed pattern, `a` then `b` then `c`, relaxed contiguity,
//! `within` 60 s, over 100,000 keys, JSON events of about 60 bytes) as a
//! declarative YAML rule, in event-time order behind a per-partition
//! watermark, through
//! - the matching code natively (`weir_cep::runner::RuleRunner`, what a
//!   `cep` operator runs without a rule component), and
//! - Weir's stock rule component in the WASM sandbox (what it runs with
//!   `--cep-component`): batches of 1,024 records through the real host
//!   (encode, call, JSON parse in the guest, match, encode the outputs);
//! - the same pattern written with the Rust API, in its own component
//!   (`udf-sdk/cep-rule/examples/abc_rule.rs`).
//!
//! It prints events/s per core (by this thread's CPU time) and memory per
//! open partial match. Target (issue 16): ≥ 1,000,000 events/s per core in
//! WASM. Run: `cargo bench -p weir --bench cep`; `CEP_BENCH_EVENTS` sets
//! the measured events (default 2,000,000, after a quarter as warm-up),
//! `CEP_BENCH_KEYS` the keys (default 100,000).

#[path = "../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;

use std::time::Instant;

use weir::domain::cep_rule;
use weir::wasm::{
    BatchTime, Bytes, HostConfig, InputRecord, InstanceLabels, ModuleLimits, RecordResult,
    SourcePosition, WasmHost,
};
use weir_cep::runner::{ComponentConfig, RuleRunner, RunnerOptions, RunnerStats, READ_AHEAD};

const RULE: &str = r#"
name: abc
within_ms: 60000
steps:
  - name: a
    where: kind == "a"
  - name: b
    where: kind == "b"
  - name: c
    where: kind == "c"
"#;

const KEYS: u64 = 100_000;

/// The keys: [`KEYS`] unless `CEP_BENCH_KEYS` sets another number (to see
/// how much of the time is waiting on memory: with few keys their state
/// stays in cache).
fn keys() -> u64 {
    std::env::var("CEP_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|k| *k > 0)
        .unwrap_or(KEYS)
}
const BATCH: usize = 1024;

/// Deterministic events: uniform keys; kinds a, b, c and x a quarter each.
struct Gen {
    x: u64,
    i: u64,
    keys: u64,
}

impl Gen {
    fn new() -> Self {
        Self {
            x: 0x9e37_79b9_7f4a_7c15,
            i: 0,
            keys: keys(),
        }
    }

    /// (key, event time, JSON value) of the next event, ~60 bytes of JSON.
    fn next(&mut self) -> (Bytes, i64, Bytes) {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        // Event time advances so each key sees about 6 events per 60 s
        // window: 0.1 ms per event at 100,000 keys.
        let ts = 1_700_000_000_000 + (self.i * 10_000 / self.keys) as i64;
        self.i += 1;
        let key = (self.x >> 8) % self.keys;
        let kind = ["a", "b", "c", "x"][(self.x >> 60) as usize & 3];
        let amount = self.x & 0xffff;
        let value =
            format!(r#"{{"user":"u{key:06}","kind":"{kind}","amount":{amount},"ts":{ts}}}"#);
        (Bytes::from(format!("u{key:06}")), ts, Bytes::from(value))
    }
}

/// CPU seconds this thread has run (user + system), from /proc.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = s.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn report(label: &str, n: usize, wall: f64, cpu: Option<f64>, stats: RunnerStats) -> f64 {
    let per_core = n as f64 / cpu.filter(|c| *c > 0.0).unwrap_or(wall);
    println!("{label}:");
    println!(
        "  events/s per core       {per_core:.0} (CPU time); {:.0} by wall time",
        n as f64 / wall
    );
    println!("  ns per event            {:.0}", 1e9 / per_core);
    println!(
        "  matches / timeouts      {} / {}",
        stats.matches, stats.timeouts
    );
    println!(
        "  open partial matches    {} ({} events buffered)",
        stats.partial_matches, stats.buffered_events
    );
    per_core
}

fn batches(n: usize, gen: &mut Gen) -> Vec<Vec<InputRecord>> {
    let mut out = Vec::with_capacity(n / BATCH + 1);
    let mut left = n;
    while left > 0 {
        let size = left.min(BATCH);
        left -= size;
        out.push(
            (0..size)
                .map(|_| {
                    let (key, ts, value) = gen.next();
                    InputRecord {
                        key: Some(key),
                        value: Some(value),
                        timestamp: ts,
                        headers: Vec::new(),
                        source: SourcePosition::default(),
                    }
                })
                .collect(),
        );
    }
    out
}

/// As a `cep` operator runs without side topics: timed-out partial matches
/// and late records are counted, not produced. `CEP_BENCH_TIMEOUTS=1`
/// produces timed-out partial matches too.
fn options() -> RunnerOptions {
    let timeouts = std::env::var("CEP_BENCH_TIMEOUTS").is_ok_and(|v| v == "1");
    RunnerOptions {
        timed_out: timeouts,
        late: false,
        ..RunnerOptions::default()
    }
}

fn native(warm: &[Vec<InputRecord>], measured: &[Vec<InputRecord>], n: usize) -> f64 {
    let rule = cep_rule::parse(RULE).expect("the bench rule checks");
    let mut runner = RuleRunner::new(rule, options()).expect("compiles");
    let mut outputs = 0u64;
    let mut feed = |runner: &mut RuleRunner, batches: &[Vec<InputRecord>]| {
        for chunk in batches.iter().flat_map(|b| b.chunks(READ_AHEAD)) {
            // As the operator does: keyed state read ahead.
            let keyed = chunk
                .iter()
                .filter_map(|r| Some((r.key.as_deref()?, r.timestamp)));
            runner.warm(0, keyed);
            for r in chunk {
                // The operator hands each value over as text, as the
                // component does: the runner reads the fields the rule reads.
                let key = r.key.as_deref().unwrap_or_default();
                let value = r.value.as_deref().unwrap_or_default();
                runner
                    .push_json(0, key, value, r.timestamp, &mut |o| {
                        outputs += o.value.len() as u64
                    })
                    .expect("bench events are JSON");
            }
        }
    };
    feed(&mut runner, warm);
    let cpu0 = cpu_secs();
    let t = Instant::now();
    feed(&mut runner, measured);
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    report(
        "native (RuleRunner, JSON parse included)",
        n,
        wall,
        cpu,
        runner.stats(),
    )
}

/// Where part of the time goes: parsing each event into a JSON value (and
/// dropping it), with no matching at all.
fn json_floor(measured: &[Vec<InputRecord>], n: usize) {
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let mut fields = 0usize;
    for b in measured {
        for r in b {
            let v: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().unwrap_or_default())
                    .expect("bench events are JSON");
            fields += v.as_object().map_or(0, serde_json::Map::len);
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let secs = cpu_secs().zip(cpu0).map_or(wall, |(b, a)| b - a);
    println!(
        "floor: JSON parse of each event alone, natively: {:.0} ns per event ({fields} fields)",
        secs * 1e9 / n as f64
    );
}

/// Which component runs the rule: the stock one with the YAML rule as its
/// config, or the Rust pattern-API rule (`abc_rule`), which brings its own.
#[derive(Clone, Copy, PartialEq)]
enum Rule {
    Yaml,
    Rust,
}

fn component(
    which: Rule,
    warm: &[Vec<InputRecord>],
    measured: &[Vec<InputRecord>],
    n: usize,
) -> f64 {
    let (source, _) = cep_rule::parse_with_source(RULE).expect("the bench rule checks");
    // One instance at a time: a small address-space reservation, so the
    // bench also runs under valgrind (`callgrind` counts the guest's
    // instructions too, repeatably, where timings are noisy).
    let host = WasmHost::new(HostConfig {
        max_instances: 1,
        ..HostConfig::default()
    })
    .expect("WASM host");
    let path = match which {
        Rule::Yaml => guests::cep_rule_path(),
        Rule::Rust => guests::path("abc_rule"),
    };
    let bytes = std::fs::read(path).expect("the rule component");
    let module = host
        .load("weir-cep-rule", "bench", &bytes)
        .expect("the rule component loads");
    let config = ComponentConfig::new(
        (which == Rule::Yaml).then_some(source),
        options(),
        "op:timed_out".into(),
        "op:late".into(),
    );
    let labels = InstanceLabels {
        job: "bench".into(),
        operator: "op".into(),
        config: serde_json::to_string(&config).expect("config"),
    };
    let limits = ModuleLimits {
        memory_bytes: module.max_memory_bytes(),
        ..ModuleLimits::default()
    };
    let mut udf = module.instantiate(limits, labels).expect("instantiates");
    udf.restore_held(0, &[]).expect("empty state");
    let mut outputs = 0usize;
    let mut feed = |batches: &[Vec<InputRecord>]| {
        for b in batches {
            let results = udf.process_held(b, BatchTime::now()).expect("batch runs");
            for r in results {
                match r {
                    RecordResult::Outputs(o) => outputs += o.len(),
                    RecordResult::DeadLetter(d) => panic!("dead letter: {}", d.reason),
                }
            }
        }
    };
    feed(warm);
    let cpu0 = cpu_secs();
    let t = Instant::now();
    feed(measured);
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    let stats = RunnerStats::from_slice(&udf.held_stats().expect("stats"));
    let label = match which {
        Rule::Yaml => "WASM, YAML rule (stock rule component, batches of 1,024)",
        Rule::Rust => "WASM, Rust rule (pattern API, its own component, batches of 1,024)",
    };
    let rate = report(label, n, wall, cpu, stats);
    let memory = udf.stats().peak_memory_bytes;
    let snapshot = udf.snapshot_held(0).expect("snapshot").len();
    println!(
        "  instance memory         {:.1} MiB peak: {:.0} bytes per open partial match (buffered events, keys and allocator included)",
        memory as f64 / 1048576.0,
        memory as f64 / stats.partial_matches.max(1) as f64
    );
    println!(
        "  checkpoint snapshot     {:.1} MiB ({:.0} bytes per open partial match)",
        snapshot as f64 / 1048576.0,
        snapshot as f64 / stats.partial_matches.max(1) as f64
    );
    rate
}

fn main() {
    let n: usize = std::env::var("CEP_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let mut gen = Gen::new();
    let warm = batches(n / 4, &mut gen);
    let measured = batches(n, &mut gen);
    println!(
        "CEP: a, then b, then c (relaxed), within 60 s; {} keys; {n} events (+{} warm-up), ~60-byte JSON; timed-out partial matches {}\n",
        keys(),
        n / 4,
        if options().timed_out { "produced" } else { "counted, not produced" }
    );
    // `CEP_BENCH_ONLY=native|wasm|yaml` runs one side (to profile it
    // alone); `yaml` is the stock rule component only.
    let only = std::env::var("CEP_BENCH_ONLY").unwrap_or_default();
    json_floor(&measured, n);
    let native_rate = if only == "wasm" || only == "yaml" {
        f64::NAN
    } else {
        native(&warm, &measured, n)
    };
    let wasm_rate = if only == "native" {
        f64::NAN
    } else {
        component(Rule::Yaml, &warm, &measured, n)
    };
    let rust_rate = if only == "native" || only == "yaml" {
        f64::NAN
    } else {
        component(Rule::Rust, &warm, &measured, n)
    };
    let best = wasm_rate.max(rust_rate);
    println!(
        "\nWASM / native: {:.2} (YAML), {:.2} (Rust); target ≥ 1,000,000 events/s per core in WASM: {}",
        wasm_rate / native_rate,
        rust_rate / native_rate,
        if best >= 1_000_000.0 { "met" } else { "MISSED" }
    );
}
