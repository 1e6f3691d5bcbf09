//! WASM UDF overhead: per-record cost of the same logic as a sandboxed
//! component (through the real host: encode, call, decode, results) and as
//! native Rust producing the same `RecordResult`s, at batch sizes 1, 64 and
//! 1024; plus instantiation time from the `InstancePre`.
//!
//! Target (docs/architecture.md#targets): a trivial map at batch 1024 adds ≤ 15 ns per record.
//! Run: `cargo bench -p weir --bench wasm` (builds the example UDFs first).

#[path = "../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;

use std::hint::black_box;
use std::time::Duration;

use weir::wasm::{
    Bytes, HostConfig, InputRecord, InstanceLabels, KeyedState, ModuleLimits, OutputRecord,
    RecordResult, SourcePosition, WasmHost,
};

const BATCHES: [usize; 3] = [1, 64, 1024];
const TARGET_NS: f64 = 15.0;
/// Alternating measurement rounds per figure (the best of each side counts);
/// `WEIR_BENCH_ROUNDS` overrides it.
const ROUNDS: u32 = 21;

fn records(n: usize) -> Vec<InputRecord> {
    // Records of one source partition share their topic, as a source makes them.
    let topic: std::sync::Arc<str> = "in".into();
    (0..n)
        .map(|i| {
            let level = if i % 2 == 0 { "error" } else { "info" };
            // About 45 bytes, the record size docs/udf-abi.md measures.
            let value = format!(
                r#"{{"id":{},"level":"{level}","msg":"abcdefg"}}"#,
                10_000 + i % 90_000
            );
            InputRecord {
                key: Some(Bytes::from(format!("k{}", i % 97))),
                value: Some(Bytes::from(value)),
                timestamp: 1_700_000_000_000 + i as i64,
                headers: Vec::new(),
                source: SourcePosition {
                    topic: Some(topic.clone()),
                    partition: 0,
                    offset: i as i64,
                },
            }
        })
        .collect()
}

/// A native version of a UDF.
type Native = fn(&[InputRecord]) -> Vec<RecordResult>;

/// Native versions producing exactly what the host returns for the UDFs.
fn native_identity(input: &[InputRecord]) -> Vec<RecordResult> {
    input
        .iter()
        .map(|r| {
            RecordResult::Outputs(vec![OutputRecord {
                key: r.key.clone(),
                // The cheapest native identity: share the input's bytes.
                value: r.value.clone(),
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            }])
        })
        .collect()
}

fn native_uppercase(input: &[InputRecord]) -> Vec<RecordResult> {
    input
        .iter()
        .map(|r| {
            RecordResult::Outputs(vec![OutputRecord {
                key: r.key.clone(),
                value: Some(Bytes::from(
                    r.value.as_deref().unwrap_or_default().to_ascii_uppercase(),
                )),
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            }])
        })
        .collect()
}

fn native_json_filter(input: &[InputRecord]) -> Vec<RecordResult> {
    input
        .iter()
        .map(|r| {
            let doc: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().unwrap_or_default()).unwrap_or_default();
            if doc.get("level").and_then(|l| l.as_str()) == Some("error") {
                RecordResult::Outputs(vec![OutputRecord::from_input(r)])
            } else {
                RecordResult::Outputs(Vec::new())
            }
        })
        .collect()
}

/// CPU time of the calling thread. The figures are CPU time, not wall time,
/// so other work on the machine does not inflate them (the UDF runs on this
/// thread; the epoch ticker only sleeps).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Mean CPU ns per record of `f` over batches of `n`, run for about `budget`
/// of CPU time.
fn per_record(
    n: usize,
    budget: Duration,
    mut f: impl FnMut(&[InputRecord]) -> Vec<RecordResult>,
) -> f64 {
    let input = records(n);
    // Warm up.
    for _ in 0..(2048 / n).max(3) {
        black_box(f(&input));
    }
    let started = thread_cpu();
    let mut done = 0usize;
    // `WEIR_BENCH_BATCHES=k` runs exactly k batches instead (for counting
    // instructions with `perf stat`, which a busy machine does not skew).
    if let Some(k) = std::env::var("WEIR_BENCH_BATCHES")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        for _ in 0..k {
            black_box(f(black_box(&input)));
            done += n;
        }
        return (thread_cpu() - started).as_nanos() as f64 / done.max(1) as f64;
    }
    while thread_cpu() - started < budget {
        for _ in 0..(4096 / n).max(1) {
            black_box(f(black_box(&input)));
            done += n;
        }
    }
    (thread_cpu() - started).as_nanos() as f64 / done as f64
}

fn main() {
    // `WEIR_BENCH_INSTANCES=2` shrinks the pool's address-space reservation
    // (so the bench runs under valgrind); code generation is the same.
    let mut cfg = HostConfig::default();
    if let Some(n) = std::env::var("WEIR_BENCH_INSTANCES")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        cfg.max_instances = n;
    }
    // `WEIR_BENCH_CACHE=dir` keeps the precompiled guests (to read their code).
    cfg.cache_dir = std::env::var_os("WEIR_BENCH_CACHE").map(Into::into);
    let host = WasmHost::new(cfg).expect("host");
    let budget = Duration::from_millis(
        std::env::var("WEIR_BENCH_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2100),
    );
    let rounds: u32 = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROUNDS)
        .max(1);
    let load = |name: &str| {
        host.load(name, "bench", &guests::guest(name))
            .expect("load")
    };
    let labels = || InstanceLabels {
        job: "bench".into(),
        operator: "op".into(),
        ..Default::default()
    };

    println!(
        "WASM UDF overhead (thread CPU ns per record, best of {rounds} alternating rounds; records of ~45 bytes; {budget:?} per figure)"
    );
    println!(
        "{:<14} {:>6} {:>10} {:>10} {:>10}",
        "udf", "batch", "native", "wasm", "overhead"
    );
    let mut verdict = None;
    #[allow(clippy::type_complexity)] // a table of named functions; an alias would hide it
    let cases: [(&str, Native); 3] = [
        ("identity", native_identity),
        ("json_filter", native_json_filter),
        ("uppercase", native_uppercase),
    ];
    // `WEIR_BENCH_ONLY=identity` runs one case (for profiling).
    let only = std::env::var("WEIR_BENCH_ONLY").ok();
    // `WEIR_BENCH_BATCH=1024` runs one batch size.
    let only_batch: Option<usize> = std::env::var("WEIR_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok());
    // `WEIR_BENCH_SIDE=wasm|native` measures one side only (for profiling).
    let side = std::env::var("WEIR_BENCH_SIDE").ok();
    let side = side.as_deref();
    for (name, native) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let module = load(name);
        let mut udf = module
            .instantiate(ModuleLimits::default(), labels())
            .expect("instance");
        let mut state = KeyedState::new();
        // Same results both ways, or the comparison means nothing.
        let sample = records(64);
        assert_eq!(
            udf.process_batch(&sample, &mut state),
            native(&sample),
            "{name}: wasm and native differ"
        );
        for n in BATCHES {
            if only_batch.is_some_and(|b| b != n) {
                continue;
            }
            // Short alternating rounds, keeping each side's best: this VM's
            // speed drifts by tens of percent from second to second, and the
            // minimum is what the code costs when nothing else interferes.
            let (mut nat, mut wasm) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..rounds {
                if side != Some("wasm") {
                    nat = nat.min(per_record(n, budget / rounds, native));
                }
                if side != Some("native") {
                    wasm = wasm.min(per_record(n, budget / rounds, |b| {
                        udf.process_batch(b, &mut state)
                    }));
                }
            }
            let (nat, wasm) = (
                if nat.is_finite() { nat } else { 0.0 },
                if wasm.is_finite() { wasm } else { 0.0 },
            );
            println!(
                "{name:<14} {n:>6} {nat:>10.1} {wasm:>10.1} {:>10.1}",
                wasm - nat
            );
            if name == "identity" && n == 1024 {
                verdict = Some(wasm - nat);
            }
        }
    }

    let module = load("identity");
    for _ in 0..50 {
        black_box(
            module
                .instantiate(ModuleLimits::default(), labels())
                .expect("instance"),
        );
    }
    // Fewer rounds when counting instructions (under valgrind).
    let rounds = if std::env::var_os("WEIR_BENCH_BATCHES").is_some() {
        10
    } else {
        2000
    };
    let started = thread_cpu();
    for _ in 0..rounds {
        black_box(
            module
                .instantiate(ModuleLimits::default(), labels())
                .expect("instance"),
        );
    }
    let us = (thread_cpu() - started).as_secs_f64() * 1e6 / rounds as f64;
    println!("instantiation from InstancePre (store + sandbox + instance): {us:.1} µs");

    if let Some(o) = verdict {
        let ok = o <= TARGET_NS;
        println!(
            "trivial map at batch 1024 adds {o:.1} ns/record over native; target ≤ {TARGET_NS} ns: {}",
            if ok { "met" } else { "NOT met" }
        );
    }
}
