//! `weir cep run` on the worked examples in `docs/cep/`, bad rules under
//! `--check`, and bad events, with the engine natively and in Weir's stock
//! rule component (WASM). Needs no service: the engine runs in process.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::bin::weir;
use crate::support::guests;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cep")
}

fn run(args: &[&str]) -> Output {
    weir()
        .current_dir(docs())
        .args(["cep", "run"])
        .args(args)
        .output()
        .unwrap()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs an example natively and in Weir's stock rule component (WASM), and
/// compares each one's stdout with its `.expected.jsonl`, line by line, and
/// their stderr with each other.
fn example(name: &str, flags: &[&str]) -> Output {
    let rule = format!("{name}.yaml");
    let input = format!("{name}.jsonl");
    let component = guests::cep_rule_path();
    let expected = std::fs::read(docs().join(format!("{name}.expected.jsonl"))).unwrap();
    let mut outs = Vec::new();
    for engine in [None, component.to_str()] {
        let mut args = vec!["--rule", &rule, "--input", &input];
        args.extend_from_slice(flags);
        if let Some(c) = engine {
            args.extend_from_slice(&["--component", c]);
        }
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{engine:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines(&out.stdout), lines(&expected), "{name} {engine:?}");
        outs.push(out);
    }
    assert_eq!(lines(&outs[0].stderr), lines(&outs[1].stderr), "{name}");
    outs.swap_remove(0)
}

#[test]
fn a_file_that_is_not_the_rule_component_is_refused() {
    let not_wasm = docs().join("fraud.yaml");
    let uppercase = guests::path("uppercase");
    guests::guest("uppercase");
    for (file, problem) in [
        (&not_wasm, "not a WebAssembly"),
        (&uppercase, "does not export"),
    ] {
        let out = run(&[
            "--rule",
            "fraud.yaml",
            "--input",
            "fraud.jsonl",
            "--component",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the CEP rule component") || err.contains("not the CEP rule component"),
            "{err}"
        );
        assert!(err.contains(problem), "{err}");
    }
}

#[test]
fn fraud_three_failures_then_success() {
    let out = example("fraud", &["--key-field", "user", "--time-field", "ts"]);
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 4);
    assert!(
        got[0].contains(r#""emit":{"attempts":3,"user":"ann"}"#),
        "{}",
        got[0]
    );
    assert!(got[1..].iter().all(|l| l.contains(r#""timed_out":true"#)));
}

#[test]
fn price_rising_three_times() {
    let out = example(
        "price-rise",
        &[
            "--key-field",
            "symbol",
            "--time-field",
            "ts",
            "--out-of-orderness-ms",
            "5",
        ],
    );
    assert_eq!(lines(&out.stdout).len(), 1);
}

#[test]
fn order_without_payment_times_out_and_bad_events_are_reported() {
    let out = example(
        "order-unpaid",
        &[
            "--key-field",
            "order",
            "--time-field",
            "at",
            "--out-of-orderness-ms",
            "60000",
        ],
    );
    let got = lines(&out.stdout);
    assert!(got[1].contains(r#""key":"o-2""#) && got[1].contains(r#""timed_out":true"#));
    assert!(
        got[1].contains(r#""timeout_at":1796379360000"#),
        "{}",
        got[1]
    );
    assert!(got[2].contains(r#""late":true"#) && got[2].contains(r#""key":"o-4""#));
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(
        err[0].starts_with("order-unpaid.jsonl:6: not JSON: "),
        "{}",
        err[0]
    );
    assert_eq!(err[1], "order-unpaid.jsonl:7: no key field 'order'");
}

#[test]
fn missing_time_field_is_reported_and_the_run_goes_on() {
    let out = run(&[
        "--rule",
        "fraud.yaml",
        "--input",
        "fraud.jsonl",
        "--key-field",
        "user",
        "--time-field",
        "when",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 10);
    assert_eq!(err[0], "fraud.jsonl:1: no time field 'when'");
}

#[test]
fn check_accepts_the_examples() {
    for name in ["fraud", "price-rise", "order-unpaid"] {
        let rule = format!("{name}.yaml");
        let out = run(&["--rule", &rule, "--check"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(lines(&out.stdout), [format!("{rule}: ok")]);
    }
}

#[test]
fn check_rejects_bad_rules_with_located_problems() {
    let dir = std::env::temp_dir().join(format!("weir-cep-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "syntax",
            "name: r\nsteps:\n  - name: a\n    where: amount > \n",
            "syntax.yaml:4: steps[0].where: column 9: expected an expression, found end of input",
        ),
        (
            "yaml",
            "name: r\nsteps: [\n",
            "yaml.yaml:2: steps: unclosed bracket '['",
        ),
        (
            "unknown_step",
            "name: r\nsteps:\n  - name: a\n    where: \"true\"\n  - name: b\n    where: amount > last(z).amount\n",
            "unknown_step.yaml:6: steps[1].where: column 10: unknown step 'z'",
        ),
        (
            "negated_start",
            "name: r\nsteps:\n  - name: a\n    where: \"true\"\n    negated: true\n  - name: b\n    where: \"true\"\n",
            "negated_start.yaml:3: steps[0]: a pattern cannot start with a negated step",
        ),
        (
            "skip_unknown",
            "name: r\nskip:\n  strategy: skip_to_first\n  step: nope\nsteps:\n  - name: a\n    where: \"true\"\n",
            "skip_unknown.yaml:4: skip.step: no step named 'nope'",
        ),
        (
            "loop_negated",
            "name: r\nsteps:\n  - name: a\n    where: \"true\"\n    quantifier: { min: 1 }\n  - name: n\n    where: \"true\"\n    negated: true\n  - name: c\n    where: \"true\"\n",
            "loop_negated.yaml:6: steps[1]: a negated step after an unbounded loop needs within_ms",
        ),
        (
            "wrong_type",
            "name: r\nsteps:\n  - name: a\n    where: amount + 1\n",
            "wrong_type.yaml:4: steps[0].where: column 1: a condition must be a bool, found number",
        ),
    ];
    for (name, text, message) in cases {
        let file = format!("{name}.yaml");
        std::fs::write(dir.join(&file), text).unwrap();
        let out = weir()
            .current_dir(&dir)
            .args(["cep", "run", "--rule", &file, "--check"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(lines(&out.stderr), [format!("error: {message}")], "{name}");

        // The same rule in a job spec is refused by `weir job create`, at
        // the spec's `rule` line, with the rule's own line and problem.
        let spec = format!(
            "sources: [{{ topic: t.in }}]\noperators:\n  - {{ type: key_by, id: k, field: user }}\n  - type: cep\n    id: c\n    rule: {file}\nsinks: [{{ type: kafka, topic: t.out }}]\n"
        );
        std::fs::write(dir.join("job.yaml"), spec).unwrap();
        let out = weir()
            .current_dir(&dir)
            .args(["job", "create", "j", "--spec", "job.yaml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let (line, rest) = message
            .strip_prefix(&format!("{file}:"))
            .and_then(|m| m.split_once(": "))
            .unwrap();
        let want = format!("error: job.yaml:6: operators[1].rule: rule line {line}: {rest}");
        assert_eq!(lines(&out.stderr), [want], "{name}");
    }
    // Every problem is reported, each on its line.
    std::fs::write(
        dir.join("many.yaml"),
        "name: r\nsteps:\n  - name: a\n    where: contians(x, \"y\")\n    negated: true\n",
    )
    .unwrap();
    let out = weir()
        .current_dir(&dir)
        .args(["cep", "run", "--rule", "many.yaml", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        lines(&out.stderr),
        [
            "error: many.yaml:3: steps[0]: a pattern cannot start with a negated step",
            "many.yaml:4: steps[0].where: column 1: unknown function 'contians' (did you mean 'contains'?)",
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Weir's stock rule component, run directly through the WASM host.
/// `abc_rule`'s pattern (a, b, c within 60 s) as a YAML rule.
const ABC_TWIN: &str = "name: abc\nwithin_ms: 60000\nsteps:\n  - name: a\n    where: kind == \"a\"\n  - name: b\n    where: kind == \"b\"\n  - name: c\n    where: kind == \"c\"\n";

/// A random event for `abc_rule`: a key below `keys` and a kind of a, b, c
/// or x (xorshift, so runs repeat).
fn abc_event(seed: &mut u64, keys: u64) -> (u64, &'static str) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (
        (*seed >> 8) % keys,
        ["a", "b", "c", "x"][(*seed % 4) as usize],
    )
}

/// `weir cep run --component` with a rule built in (the Rust pattern API's
/// `abc_rule`) needs no rule file, and prints what its YAML twin prints
/// through the stock component; the stock component without a rule says so.
#[test]
fn a_rust_rule_component_runs_alone_and_matches_its_yaml_twin() {
    let dir = std::env::temp_dir().join(format!("weir-cep-twin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = dir.join("abc.yaml");
    std::fs::write(&yaml, ABC_TWIN).unwrap();
    let events = dir.join("events.jsonl");
    let mut seed = 11u64;
    let evs: Vec<String> = (0..3_000i64)
        .map(|i| {
            let (user, kind) = abc_event(&mut seed, 25);
            format!(
                r#"{{"user":"u{user}","kind":"{kind}","ts":{}}}"#,
                1_000 + i * 900
            )
        })
        .collect();
    std::fs::write(&events, evs.join("\n")).unwrap();
    let input = events.to_str().unwrap();
    let common = [
        "--input",
        input,
        "--key-field",
        "user",
        "--time-field",
        "ts",
    ];
    let stock = guests::cep_rule_path();
    let rust = guests::path("abc_rule");
    let mut twin = vec![
        "--rule",
        yaml.to_str().unwrap(),
        "--component",
        stock.to_str().unwrap(),
    ];
    twin.extend_from_slice(&common);
    let mut alone = vec!["--component", rust.to_str().unwrap()];
    alone.extend_from_slice(&common);
    let (twin, alone) = (run(&twin), run(&alone));
    for o in [&twin, &alone] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let out = lines(&alone.stdout);
    assert!(
        out.iter().filter(|l| l.contains("\"steps\"")).count() > 20,
        "matches and timeouts happen: {}",
        out.len()
    );
    assert_eq!(out, lines(&twin.stdout));

    let mut no_rule = vec!["--component", stock.to_str().unwrap()];
    no_rule.extend_from_slice(&common);
    let o = run(&no_rule);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds no rule"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

mod component {
    use weir::wasm::{
        BatchTime, Bytes, FailureReason, HostConfig, InputRecord, InstanceLabels, ModuleLimits,
        RecordResult, SourcePosition, UdfInstance, WasmHost,
    };
    use weir_cep::runner::{ComponentConfig, RunnerOptions};

    use super::guests;

    const RULE: &str = "name: ab\nwithin_ms: 1000\nsteps:\n  - name: a\n    where: kind == \"a\"\n  - name: b\n    where: kind == \"b\"\n";

    /// An instance of the stock component running `RULE`.
    fn instance(memory_bytes: usize) -> UdfInstance {
        let (rule, _) = weir::domain::cep_rule::parse_with_source(RULE).unwrap();
        instance_of(&guests::cep_rule_path(), Some(rule), memory_bytes)
    }

    /// An instance of the rule component at `path`, handed `rule` (the
    /// stock component's) and both side outputs in its config.
    fn instance_of(
        path: &std::path::Path,
        rule: Option<weir_cep::rule::Rule>,
        memory_bytes: usize,
    ) -> UdfInstance {
        let host = WasmHost::new(HostConfig::default()).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let module = host.load("rule", "test", &bytes).unwrap();
        assert!(module.holds_state());
        let config = ComponentConfig::new(
            rule,
            RunnerOptions::default(),
            "op:timed_out".into(),
            "op:late".into(),
        );
        let labels = InstanceLabels {
            job: "test".into(),
            operator: "op".into(),
            config: serde_json::to_string(&config).unwrap(),
        };
        let limits = ModuleLimits {
            memory_bytes,
            ..ModuleLimits::default()
        };
        module.instantiate(limits, labels).unwrap()
    }

    fn rec(key: Option<&str>, value: &str, ts: i64) -> InputRecord {
        InputRecord {
            key: key.map(|k| Bytes::from(k.to_owned())),
            value: Some(Bytes::from(value.to_owned())),
            timestamp: ts,
            headers: Vec::new(),
            source: SourcePosition::default(),
        }
    }

    fn ev(key: &str, kind: &str, ts: i64) -> InputRecord {
        rec(Some(key), &format!(r#"{{"kind":"{kind}"}}"#), ts)
    }

    #[test]
    fn bad_records_are_dead_lettered_alone_and_matches_carry_their_own_key() {
        let mut udf = instance(64 << 20);
        udf.restore_held(0, &[]).unwrap();
        let batch = [
            ev("k", "a", 10),
            rec(None, r#"{"kind":"b"}"#, 11),
            rec(Some("k"), "not json", 12),
            ev("k", "b", 13),
            ev("j", "x", 20),
        ];
        let results = udf.process_held(&batch, BatchTime::now()).unwrap();
        assert_eq!(results.len(), 5);
        let dead = |i: usize| match &results[i] {
            RecordResult::DeadLetter(d) => d.reason.to_string(),
            other => panic!("{i}: {other:?}"),
        };
        assert!(dead(1).contains("no key"), "{}", dead(1));
        assert!(dead(2).contains("not JSON"), "{}", dead(2));
        // j's record moves the watermark past k's `b`: k's match comes out
        // with it, keyed by k.
        let RecordResult::Outputs(outs) = &results[4] else {
            panic!("{:?}", results[4]);
        };
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(outs[0].timestamp, 13);
        let m: serde_json::Value =
            serde_json::from_slice(outs[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(m["steps"]["a"], serde_json::json!([{"kind": "a"}]));
        assert!(outs[0].headers.is_empty(), "a match is no side output");
        assert_eq!(udf.held_stats().unwrap()[0], 1, "one match counted");
    }

    /// The Rust pattern-API rule (`abc_rule`: a, b, c within 60 s) and the
    /// same rule in YAML through the stock component give the same outputs
    /// on the same events, batch for batch.
    #[test]
    fn a_rust_rule_component_matches_as_its_yaml_twin() {
        guests::guest("abc_rule");
        let yaml = super::ABC_TWIN;
        let (rule, _) = weir::domain::cep_rule::parse_with_source(yaml).unwrap();
        let run = |path: std::path::PathBuf, rule| {
            let mut udf = instance_of(&path, rule, 64 << 20);
            udf.restore_held(0, &[]).unwrap();
            let mut seed = 7u64;
            let mut outs = Vec::new();
            for batch in 0..40i64 {
                let recs: Vec<InputRecord> = (0..100i64)
                    .map(|i| {
                        let (key, kind) = super::abc_event(&mut seed, 20);
                        ev(&format!("k{key}"), kind, 1_000 + (batch * 100 + i) * 700)
                    })
                    .collect();
                for r in udf.process_held(&recs, BatchTime::now()).unwrap() {
                    outs.push(format!("{r:?}"));
                }
            }
            outs
        };
        let from_yaml = run(guests::cep_rule_path(), Some(rule));
        let from_rust = run(guests::path("abc_rule"), None);
        assert!(
            from_yaml.iter().filter(|o| o.contains("steps")).count() > 20,
            "matches and timeouts happen"
        );
        assert_eq!(from_yaml, from_rust);
    }

    #[test]
    fn a_snapshot_moves_partial_matches_to_a_new_instance() {
        let in_3 = |mut r: InputRecord| {
            r.source.partition = 3;
            r
        };
        let mut first = instance(64 << 20);
        first.restore_held(3, &[]).unwrap();
        first
            .process_held(
                &[in_3(ev("k", "a", 10)), in_3(ev("k", "x", 11))],
                BatchTime::now(),
            )
            .unwrap();
        let snapshot = first.snapshot_held(3).unwrap();
        drop(first);
        let mut second = instance(64 << 20);
        second.restore_held(3, &snapshot).unwrap();
        let batch = [in_3(ev("k", "b", 12)), in_3(ev("k", "x", 2_000))];
        let results = second.process_held(&batch, BatchTime::now()).unwrap();
        let RecordResult::Outputs(outs) = &results[1] else {
            panic!("{:?}", results[1]);
        };
        assert_eq!(
            outs.len(),
            1,
            "the match opened before the snapshot completes after it"
        );
    }

    #[test]
    fn a_corrupt_snapshot_is_refused_with_the_key_named() {
        let mut udf = instance(64 << 20);
        let mut snap = b"WCPR\x01\x00".to_vec();
        snap.extend_from_slice(&3u32.to_le_bytes());
        snap.extend_from_slice(b"ann");
        snap.extend_from_slice(&7u32.to_le_bytes());
        snap.extend_from_slice(b"garbage");
        let err = udf.restore_held(0, &snap).unwrap_err();
        assert_eq!(err.code(), "protocol");
        assert!(err.to_string().contains("key `ann`"), "{err}");
        assert!(
            udf.restore_held(0, b"WCPR\x09").is_err(),
            "an unknown version"
        );
    }

    #[test]
    fn partial_matches_past_the_memory_cap_fail_the_call_not_a_record() {
        let mut udf = instance(4 << 20);
        udf.restore_held(0, &[]).unwrap();
        // Every key opens a partial match that stays open (no `b`, window
        // not closed): the instance's memory grows with them.
        let mut failure = None;
        'feed: for round in 0..200 {
            let batch: Vec<InputRecord> = (0..1024)
                .map(|i| ev(&format!("key-{round}-{i}"), "a", 10_000 + round))
                .collect();
            if let Err(e) = udf.process_held(&batch, BatchTime::now()) {
                failure = Some(e);
                break 'feed;
            }
        }
        let failure = failure.expect("4 MiB cannot hold 200k open partial matches");
        assert!(
            matches!(failure, FailureReason::MemoryExceeded { .. }),
            "{failure}"
        );
        // The instance, and what it held, is gone: a new one starts empty.
        udf.restore_held(0, &[]).unwrap();
        assert_eq!(udf.held_stats().unwrap()[4], 0, "no partial match survives");
    }
}
