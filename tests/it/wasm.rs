//! The WASM host with real guest components (udf-sdk examples built to
//! wasm32-wasip2): each example does what it says, and each misbehaving one
//! is contained while the next batch still runs.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weir::wasm::{
    BatchTime, Bytes, FailureReason, HostConfig, InputRecord, InstanceLabels, KeyedState,
    LoadedModule, ModuleLimits, OutputRecord, RecordResult, SourcePosition, UdfInstance, UdfKind,
    WasmError, WasmHost,
};

use crate::support::guests::guest;

fn host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| {
        WasmHost::new(HostConfig {
            max_instances: 32,
            ..Default::default()
        })
        .unwrap()
    })
}

fn load(name: &str) -> Arc<LoadedModule> {
    host().load(name, "1", &guest(name)).unwrap()
}

fn instance(name: &str, limits: ModuleLimits) -> UdfInstance {
    load(name)
        .instantiate(
            limits,
            InstanceLabels {
                job: "test".into(),
                operator: "op".into(),
                ..Default::default()
            },
        )
        .unwrap()
}

fn rec(key: &str, value: &str, offset: i64) -> InputRecord {
    InputRecord {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        timestamp: 1_000 + offset,
        headers: vec![("trace".into(), Bytes::from_static(b"t1"))],
        source: SourcePosition {
            topic: Some("in".into()),
            partition: 0,
            offset,
        },
    }
}

fn batch(values: &[&str]) -> Vec<InputRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| rec("k", v, i as i64))
        .collect()
}

fn values(r: &RecordResult) -> Vec<String> {
    match r {
        RecordResult::Outputs(o) => o
            .iter()
            .map(|o| String::from_utf8_lossy(o.value.as_deref().unwrap_or_default()).into_owned())
            .collect(),
        RecordResult::DeadLetter(d) => panic!("unexpected dead letter: {d:?}"),
    }
}

fn reason(r: &RecordResult) -> &FailureReason {
    match r {
        RecordResult::DeadLetter(d) => &d.reason,
        other => panic!("expected a dead letter, got {other:?}"),
    }
}

#[test]
fn uppercase_maps_each_value_and_keeps_key_time_and_headers() {
    let mut udf = instance("uppercase", ModuleLimits::default());
    assert_eq!(udf.module().info.kind, UdfKind::Map);
    let input = batch(&["hello", "Wörld", ""]);
    let out = udf.process_batch(&input, &mut KeyedState::new());
    assert_eq!(out.len(), 3);
    assert_eq!(values(&out[0]), ["HELLO"]);
    assert_eq!(values(&out[1]), ["WöRLD"]);
    assert_eq!(values(&out[2]), [""]);
    let RecordResult::Outputs(o) = &out[0] else {
        unreachable!()
    };
    assert_eq!(
        o[0],
        OutputRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"HELLO")),
            timestamp: 1_000,
            headers: vec![("trace".into(), Bytes::from_static(b"t1"))],
        }
    );
    assert!(udf.process_batch(&[], &mut KeyedState::new()).is_empty());
}

#[test]
fn json_filter_keeps_errors_drops_the_rest_and_dead_letters_bad_json() {
    let mut udf = instance("json_filter", ModuleLimits::default());
    assert_eq!(udf.module().info.kind, UdfKind::Filter);
    let input = batch(&[
        r#"{"level":"error","msg":"disk"}"#,
        r#"{"level":"info"}"#,
        "not json",
        r#"{"level":"error"}"#,
    ]);
    let out = udf.process_batch(&input, &mut KeyedState::new());
    assert_eq!(values(&out[0]), [r#"{"level":"error","msg":"disk"}"#]);
    assert_eq!(
        out[0],
        RecordResult::Outputs(vec![OutputRecord::from_input(&input[0])])
    );
    assert!(values(&out[1]).is_empty());
    match reason(&out[2]) {
        FailureReason::UdfError { message } => assert!(message.contains("expected"), "{message}"),
        other => panic!("{other:?}"),
    }
    let RecordResult::DeadLetter(d) = &out[2] else {
        unreachable!()
    };
    assert_eq!(d.module, "json_filter");
    assert!(d.digest.starts_with("sha256:"));
    assert_eq!(values(&out[3]), [r#"{"level":"error"}"#]);
    // A user error is not a trap: the instance lives on.
    assert_eq!(udf.stats().instantiations, 1);
}

#[test]
fn splitter_emits_one_keyed_output_per_word() {
    let mut udf = instance("splitter", ModuleLimits::default());
    let out = udf.process_batch(&batch(&["to be  or", "", "x"]), &mut KeyedState::new());
    assert_eq!(values(&out[0]), ["to", "be", "or"]);
    let RecordResult::Outputs(o) = &out[0] else {
        unreachable!()
    };
    assert_eq!(o[1].key.as_deref(), Some(&b"be"[..]));
    assert!(values(&out[1]).is_empty());
    assert_eq!(values(&out[2]), ["x"]);
}

#[test]
fn running_count_keeps_state_in_the_host_across_instances_and_fires_timers() {
    let labels = || InstanceLabels {
        job: "j".into(),
        operator: "counter".into(),
        ..Default::default()
    };
    let module = load("running_count");
    assert_eq!(module.info.kind, UdfKind::Process);
    let mut udf = module
        .instantiate(ModuleLimits::default(), labels())
        .unwrap();
    let mut state = KeyedState::new();
    let input = vec![rec("a", "x", 0), rec("b", "x", 1), rec("a", "x", 2)];
    let out = udf.process_batch(&input, &mut state);
    assert_eq!(
        out.iter().map(|r| values(r)[0].clone()).collect::<Vec<_>>(),
        ["1", "1", "2"]
    );
    assert_eq!(
        state.get("counter", b"a", "count"),
        Some(&2u64.to_le_bytes()[..])
    );
    assert_eq!(udf.counters().get("records_counted"), Some(&3));

    // The state survives a snapshot, a restore and a brand-new instance.
    let mut restored = KeyedState::restore(&state.snapshot()).unwrap();
    let mut fresh = module
        .instantiate(ModuleLimits::default(), labels())
        .unwrap();
    let out = fresh.process_batch(&[rec("a", "x", 3)], &mut restored);
    assert_eq!(values(&out[0]), ["3"]);

    // One event-time timer per key, at the first record's time + 1 s.
    assert_eq!(restored.pending_timers("counter").len(), 2);
    let due = restored.take_due_timers("counter", Some(2_000), 0);
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!((due[0].key.as_slice(), due[0].at), (&b"a"[..], 2_000));
    let time = BatchTime {
        watermark: Some(2_000),
        processing_time: 0,
    };
    let fired = fresh.on_timer(&due, &mut restored, time);
    assert_eq!(values(&fired[0]), ["total=3"]);
    let RecordResult::Outputs(o) = &fired[0] else {
        unreachable!()
    };
    assert_eq!(
        (o[0].key.as_deref(), o[0].timestamp),
        (Some(&b"a"[..]), 2_000)
    );
    assert_eq!(restored.get("counter", b"a", "count"), None);
    assert_eq!(
        restored.get("counter", b"b", "count"),
        Some(&1u64.to_le_bytes()[..])
    );
}

#[test]
fn infinite_loop_is_stopped_at_its_deadline_and_the_next_batch_runs() {
    let deadline = Duration::from_millis(100);
    let mut udf = instance(
        "infinite_loop",
        ModuleLimits {
            deadline,
            ..Default::default()
        },
    );
    let input = batch(&["a", "b", "spin", "c"]);
    let started = Instant::now();
    let out = udf.process_batch(&input, &mut KeyedState::new());
    let took = started.elapsed();
    assert_eq!(values(&out[0]), ["a"]);
    assert_eq!(values(&out[1]), ["b"]);
    assert_eq!(
        reason(&out[2]),
        &FailureReason::DeadlineExceeded { deadline_ms: 100 }
    );
    assert_eq!(values(&out[3]), ["c"]);
    // Bisecting 4 records: the spinning call times out at each of 3 levels.
    assert!(
        took < deadline * 3 + Duration::from_secs(2),
        "took {took:?}"
    );
    let next = udf.process_batch(&batch(&["d"]), &mut KeyedState::new());
    assert_eq!(values(&next[0]), ["d"]);
}

#[test]
fn memory_bomb_is_refused_at_the_cap_and_the_next_batch_runs() {
    let mut udf = instance(
        "memory_bomb",
        ModuleLimits {
            memory_bytes: 16 << 20,
            ..Default::default()
        },
    );
    let out = udf.process_batch(&batch(&["a", "bomb", "b"]), &mut KeyedState::new());
    assert_eq!(values(&out[0]), ["a"]);
    assert_eq!(
        reason(&out[1]),
        &FailureReason::MemoryExceeded {
            limit_bytes: 16 << 20
        }
    );
    assert_eq!(values(&out[2]), ["b"]);
    let next = udf.process_batch(&batch(&["c"]), &mut KeyedState::new());
    assert_eq!(values(&next[0]), ["c"]);
    // The peak is what was granted, never the growth that was refused; it
    // outlives the instance the bomb discarded.
    let peak = udf.stats().peak_memory_bytes;
    assert!(peak > 0 && peak <= 16 << 20, "peak {peak}");
}

#[test]
fn a_trap_dead_letters_only_the_bad_record_and_every_other_record_runs_once() {
    let mut udf = instance("trap_on_poison", ModuleLimits::default());
    let mut values_in: Vec<String> = (0..64).map(|i| format!("v{i}")).collect();
    values_in[17] = "poison".into();
    values_in[50] = "poison".into();
    let refs: Vec<&str> = values_in.iter().map(String::as_str).collect();
    let out = udf.process_batch(&batch(&refs), &mut KeyedState::new());
    assert_eq!(out.len(), 64);
    for (i, r) in out.iter().enumerate() {
        if i == 17 || i == 50 {
            match reason(r) {
                FailureReason::Trap { message } => {
                    assert!(
                        message.contains(&format!("poisoned record at offset {i}")),
                        "{message}"
                    )
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(values(r), [format!("V{i}")], "record {i}");
        }
    }
    // Each trap discarded the instance; fresh ones were made.
    assert!(udf.stats().instantiations >= 3, "{:?}", udf.stats());
    let next = udf.process_batch(&batch(&["ok"]), &mut KeyedState::new());
    assert_eq!(values(&next[0]), ["OK"]);
}

#[test]
fn huge_output_is_bounded_with_a_clear_reason() {
    let mut udf = instance(
        "huge_output",
        ModuleLimits {
            max_output_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let out = udf.process_batch(&batch(&["a", "huge", "b"]), &mut KeyedState::new());
    assert_eq!(values(&out[0]), ["a"]);
    match reason(&out[1]) {
        FailureReason::OutputTooLarge { bytes, limit_bytes } => {
            assert!(*bytes > 6_000_000, "{bytes}");
            assert_eq!(*limit_bytes, 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(values(&out[2]), ["b"]);

    // With room for the bytes, the per-record output count still caps it.
    let mut udf = instance(
        "huge_output",
        ModuleLimits {
            max_outputs_per_record: 1000,
            ..Default::default()
        },
    );
    let out = udf.process_batch(&batch(&["huge", "c"]), &mut KeyedState::new());
    assert_eq!(
        reason(&out[0]),
        &FailureReason::TooManyOutputs {
            count: 200_000,
            limit: 1000
        }
    );
    assert_eq!(values(&out[1]), ["c"]);
}

#[test]
fn a_component_for_another_wit_version_is_refused_by_name() {
    let mut bytes = guest("uppercase");
    let from = b"weir:udf/guest@0.1.0";
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(from.len()) {
        if &bytes[i..i + from.len()] == from {
            bytes[i + from.len() - 3..i + from.len()].copy_from_slice(b"9.0");
            patched += 1;
        }
    }
    assert!(patched > 0);
    let err = host().validate(&bytes).unwrap_err();
    assert!(
        matches!(&err, WasmError::UnsupportedVersion { found, .. } if found == "0.9.0"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the component targets weir:udf@0.9.0; this host supports weir:udf@0.1.0"
    );
}

#[test]
fn precompiled_artifacts_are_reused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || HostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 4,
        ..Default::default()
    };
    let bytes = guest("identity");
    let first = WasmHost::new(cfg()).unwrap();
    first.load("identity", "1", &bytes).unwrap();
    assert_eq!(
        (first.cache_stats().compiles, first.cache_stats().hits),
        (1, 0)
    );
    let path = first.artifact_path(&weir::wasm::digest_of(&bytes)).unwrap();
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    drop(first);

    let second = WasmHost::new(cfg()).unwrap();
    let m = second.load("identity", "1", &bytes).unwrap();
    assert_eq!(
        (second.cache_stats().compiles, second.cache_stats().hits),
        (0, 1)
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        written
    );
    let mut udf = m
        .instantiate(ModuleLimits::default(), InstanceLabels::default())
        .unwrap();
    assert_eq!(
        values(&udf.process_batch(&batch(&["x"]), &mut KeyedState::new())[0]),
        ["x"]
    );

    // A corrupt artifact is not trusted: it is compiled again.
    drop((udf, m, second));
    std::fs::write(&path, b"garbage").unwrap();
    let third = WasmHost::new(cfg()).unwrap();
    third.load("identity", "1", &bytes).unwrap();
    assert_eq!(
        (third.cache_stats().rejected, third.cache_stats().compiles),
        (1, 1)
    );
}

#[test]
fn failed_records_leave_no_state_and_the_rest_count_exactly_once() {
    let mut udf = instance("stateful_poison", ModuleLimits::default());
    let mut state = KeyedState::new();
    let mut vals = vec!["x"; 12];
    vals[3] = "poison";
    vals[6] = "reject";
    vals[10] = "poison";
    let out = udf.process_batch(&batch(&vals), &mut state);
    let mut expected = 0;
    for (i, r) in out.iter().enumerate() {
        match vals[i] {
            "poison" => assert_eq!(reason(r).code(), "trap", "{r:?}"),
            "reject" => assert_eq!(reason(r).code(), "udf_error", "{r:?}"),
            _ => {
                expected += 1;
                assert_eq!(values(r), [expected.to_string()], "record {i}");
            }
        }
    }
    assert_eq!(
        state.get("op", b"k", "count"),
        Some(&9u64.to_le_bytes()[..])
    );
    let next = udf.process_batch(&batch(&["x"]), &mut state);
    assert_eq!(values(&next[0]), ["10"]);
}

/// Every output of a run of `running_count` as `(input index, value)`, a
/// fired timer's outputs under the record it fired after; batches cut at
/// `cuts`, the state snapshotted and restored into a new instance between
/// batches, as a task's restore does.
fn timed_run(
    input: &[InputRecord],
    marks: &[Option<i64>],
    cuts: &[usize],
) -> (Vec<(usize, String)>, KeyedState) {
    let module = load("running_count");
    let labels = || InstanceLabels {
        job: "j".into(),
        operator: "counter".into(),
        ..Default::default()
    };
    let mut state = KeyedState::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([input.len()].iter()) {
        let mut udf = module
            .instantiate(ModuleLimits::default(), labels())
            .unwrap();
        state = KeyedState::restore(&state.snapshot()).unwrap();
        let (results, fired) = weir::wasm::run_with_timers(
            &mut udf,
            "counter",
            &input[start..end],
            &marks[start..end],
            &mut state,
            0,
        );
        let mut per_record: Vec<Vec<String>> = results.iter().map(values).collect();
        for f in fired {
            for r in &f.results {
                per_record[f.after].extend(values(r));
            }
        }
        for (i, vs) in per_record.into_iter().enumerate() {
            out.extend(vs.into_iter().map(|v| (start + i, v)));
        }
        start = end;
    }
    (out, state)
}

#[test]
fn event_time_timers_fire_at_the_same_record_however_batches_are_cut() {
    // Three keys; event time mostly steps 7 ms a record, with jumps of
    // several seconds, so timers (first record of a key + 1 s) come due in
    // the middle of batches, some registered inside the very call they
    // come due in.
    let input: Vec<InputRecord> = (0..1_500i64)
        .map(|i| {
            let mut r = rec(["a", "b", "c"][(i % 3) as usize], "x", i);
            r.timestamp = i * 7 + (i / 400) * 5_000;
            r
        })
        .collect();
    let marks: Vec<Option<i64>> = input
        .iter()
        .scan(i64::MIN, |m, r| {
            *m = (*m).max(r.timestamp - 50);
            Some(Some(*m))
        })
        .collect();
    let (whole, state) = timed_run(&input, &marks, &[]);
    let totals: Vec<u64> = whole
        .iter()
        .filter_map(|(_, v)| v.strip_prefix("total=")?.parse().ok())
        .collect();
    assert!(totals.len() > 20, "timers fired: {}", totals.len());
    // Every record is counted once: in a fired total, or still open.
    let open: u64 = ["a", "b", "c"]
        .iter()
        .filter_map(|k| state.get("counter", k.as_bytes(), "count"))
        .map(|v| u64::from_le_bytes(v.try_into().unwrap()))
        .sum();
    assert_eq!(totals.iter().sum::<u64>() + open, 1_500);
    // A timer fires after the first record whose watermark reaches it.
    let fired_at: Vec<usize> = whole
        .iter()
        .filter(|(_, v)| v.starts_with("total="))
        .map(|(i, _)| *i)
        .collect();
    for &i in &fired_at {
        assert!(
            i == 0 || marks[i - 1] < marks[i],
            "fired at {i} without a watermark step"
        );
    }

    for cuts in [
        vec![1, 2, 3, 500, 501, 1_000],
        (1..1_500).step_by(97).collect::<Vec<_>>(),
        (1..1_500).step_by(13).collect::<Vec<_>>(),
    ] {
        assert_eq!(
            timed_run(&input, &marks, &cuts).0,
            whole,
            "batches cut at {cuts:?}"
        );
    }

    // What this prevents: timers fired after each whole batch land on other
    // records (and other counts) when the batches are cut elsewhere.
    let batch_end = |cuts: &[usize]| {
        let module = load("running_count");
        let labels = InstanceLabels {
            job: "j".into(),
            operator: "counter".into(),
            ..Default::default()
        };
        let mut udf = module.instantiate(ModuleLimits::default(), labels).unwrap();
        let mut state = KeyedState::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([input.len()].iter()) {
            let time = BatchTime {
                watermark: marks[end - 1],
                processing_time: 0,
            };
            let results = udf.process_batch_at(&input[start..end], &mut state, time);
            out.extend(
                results
                    .iter()
                    .enumerate()
                    .flat_map(|(i, r)| values(r).into_iter().map(move |v| (start + i, v))),
            );
            let due = state.take_due_timers("counter", marks[end - 1], 0);
            for r in udf.on_timer(&due, &mut state, time) {
                out.extend(values(&r).into_iter().map(|v| (end - 1, v)));
            }
            start = end;
        }
        out
    };
    assert_ne!(
        batch_end(&[700]),
        batch_end(&(1..1_500).step_by(97).collect::<Vec<_>>())
    );
}
