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
