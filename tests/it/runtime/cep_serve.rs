//! A CEP job run as a user runs it: created and deployed with published
//! commands in a real `weir serve`, which dies with SIGKILL mid-stream while
//! partial matches are open. Started again, it restores them from the last
//! checkpoint: every match is found exactly once, those spanning the kill
//! included, and every timed-out partial match reaches its side topic once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::cep::{base, complete, event, RULE};
use super::cluster::{deploy_spec, read_outputs, serve_opts, wait_written, TURN};
use crate::support::kafka::{self, brokers, create_topic, unique_topic};
use crate::support::runtime::assert_exactly_once;
use crate::support::serve::Serve;
use crate::support::Isolation;

const USERS: usize = 20;
const CYCLES: usize = 40;
const EVENTS: usize = USERS * CYCLES * 4;

/// Every user's cycles, four events 200 ms apart from `cycle * 2000`, in
/// event-time order on the one input partition.
fn events() -> Vec<(i32, String, String)> {
    let mut out = Vec::with_capacity(EVENTS);
    for c in 0..CYCLES {
        for j in 0..4 {
            for u in 0..USERS {
                out.push((0, format!("u{u}"), event(u, c, j)));
            }
        }
    }
    out
}

/// Records far in the future on enough keys to reach every repartition
/// partition, so the last cycles' matches and timeouts come out.
fn flush() -> Vec<(i32, String, String)> {
    (0..64)
        .map(|k| {
            let v =
                json!({"user": format!("flush{k}"), "status": "flush", "ts": base() + 3_000_000});
            (0, format!("flush{k}"), v.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cep_partial_matches_survive_a_sigkill_of_serve() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    // The rule runs in Weir's stock rule component, in the WASM sandbox.
    let component = crate::support::guests::cep_rule_path();
    let component = component.to_str().expect("a UTF-8 path");
    let opts = || serve_opts(&[("WEIR_CEP_COMPONENT", component)]);
    let mut serve = Serve::start_with(&iso, opts()).await;
    let (input, output, timeouts) = (
        unique_topic("cep-in"),
        unique_topic("cep-out"),
        unique_topic("cep-timeouts"),
    );
    create_topic(&brokers(), &input, 1).await;
    create_topic(&brokers(), &output, 2).await;
    create_topic(&brokers(), &timeouts, 2).await;
    kafka::produce(&kafka::producer(&brokers()), &input, &events()).await;

    let matches = (0..CYCLES)
        .flat_map(|c| (0..USERS).map(move |u| (u, c)))
        .filter(|&(u, c)| complete(u, c))
        .count();
    // Matches are the second stage's outputs; the rate limit applies there,
    // so the kill lands with cycles half-matched in the NFA.
    let spec = json!({
        "sources": [{"topic": input, "event_time_field": "ts", "max_out_of_orderness": "1s"}],
        "operators": [
            {"type": "key_by", "id": "by-user", "field": "user"},
            {"type": "cep", "id": "fraud", "rule": RULE, "timed_out_topic": timeouts}
        ],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 2,
        "rate_limit": 40,
        "checkpoint": {"interval_ms": 300}
    });
    deploy_spec(&serve, "fraud", spec).await;

    // Every event repartitioned, and some of the matches written.
    let at_kill = wait_written(&serve, "fraud", (EVENTS + matches / 5) as u64).await;
    serve.kill().await; // SIGKILL: no final checkpoint, no goodbye
    assert!(
        at_kill < (EVENTS + matches * 4 / 5) as u64,
        "the kill came too late to prove anything ({at_kill})"
    );

    let _serve = Serve::start_with(&iso, opts()).await;
    kafka::produce(&kafka::producer(&brokers()), &input, &flush()).await;

    let outs = read_outputs(&output, matches).await;
    assert_exactly_once(&outs, matches);
    let mut got = BTreeSet::new();
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        let user = m["key"].as_str().unwrap().to_owned();
        let fails = m["steps"]["fail"].as_array().unwrap();
        let c = fails[0]["c"].as_u64().unwrap();
        let js: Vec<_> = fails.iter().map(|e| e["j"].as_u64().unwrap()).collect();
        assert_eq!(js, [0, 1, 2], "{m}");
        assert!(fails.iter().all(|e| e["c"] == c), "{m}");
        assert_eq!(m["steps"]["ok"][0]["c"], c, "{m}");
        assert!(complete(user[1..].parse().unwrap(), c as usize), "{m}");
        assert!(got.insert((user, c)), "matched twice: {m}");
    }
    assert_eq!(got.len(), matches);

    // Each incomplete cycle timed out twice (from its first and its second
    // failure), once each.
    let incomplete = USERS * CYCLES - matches;
    let outs = read_outputs(&timeouts, 2 * incomplete).await;
    assert_exactly_once(&outs, 2 * incomplete);
    let mut per: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        let first = &m["steps"]["fail"][0];
        *per.entry((
            m["key"].as_str().unwrap().into(),
            first["c"].as_u64().unwrap(),
        ))
        .or_default() += 1;
    }
    assert_eq!(per.len(), incomplete);
    assert!(per.values().all(|n| *n == 2), "{per:?}");
}

/// A rule written with the Rust pattern API (`abc_rule`: `a`, then `b`,
/// then `c` within 60 s), uploaded like a UDF and named `abc@1.0.0` by the
/// job's `cep` operator, finds every user's match once; a module that is
/// not a rule component fails the job with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_rule_uploaded_as_a_module_runs_in_a_job() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let serve = Serve::start_with(&iso, serve_opts(&[])).await;
    crate::support::upload_udf(&serve, "abc_rule", "abc");
    crate::support::upload_udf(&serve, "running_count", "count");
    let (input, output) = (unique_topic("rust-rule-in"), unique_topic("rust-rule-out"));
    create_topic(&brokers(), &input, 1).await;
    create_topic(&brokers(), &output, 2).await;

    // Each user: a, b, c (one match), then an unrelated `x`.
    let users = 12;
    let events = kinds_per_user(users, &["a", "b", "c", "x"]);
    kafka::produce(&kafka::producer(&brokers()), &input, &events).await;

    let spec = |rule: &str| {
        keyed_cep_spec(
            &input,
            &output,
            json!({"type": "cep", "id": "abc", "rule": rule}),
        )
    };
    deploy_spec(&serve, "rust-rule", spec("abc@1.0.0")).await;
    let outs = read_outputs(&output, users).await;
    assert_exactly_once(&outs, users);
    let mut seen = BTreeSet::new();
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        assert_eq!(m["rule"], "abc", "{m}");
        for step in ["a", "b", "c"] {
            assert_eq!(m["steps"][step][0]["kind"], step, "{m}");
        }
        assert_eq!(r.key.as_deref(), m["key"].as_str(), "keyed by its key");
        assert!(seen.insert(m["key"].as_str().unwrap().to_owned()), "{m}");
    }
    assert_eq!(seen.len(), users);

    // A `process` UDF that is not a rule component, named as a rule, is
    // refused when the deployment starts, and the job says why.
    deploy_fails_saying(
        &serve,
        "not-a-rule",
        spec("count@1.0.0"),
        "not a CEP rule component",
    )
    .await;
}

/// Events of `users` users on one partition: each user's `kinds` in turn,
/// 200 ms apart, then far later records on enough keys to move every
/// repartition partition's watermark past them.
fn kinds_per_user(users: usize, kinds: &[&str]) -> Vec<(i32, String, String)> {
    let mut events = Vec::new();
    for (j, kind) in kinds.iter().enumerate() {
        for u in 0..users {
            let ts = base() + (j * 200) as i64;
            let v = json!({"user": format!("u{u}"), "kind": kind, "ts": ts});
            events.push((0, format!("u{u}"), v.to_string()));
        }
    }
    for k in 0..64 {
        let v = json!({"user": format!("flush{k}"), "kind": "x", "ts": base() + 600_000});
        events.push((0, format!("flush{k}"), v.to_string()));
    }
    events
}

/// `input` keyed by user into the `cep` operator `cep`, into `output`.
fn keyed_cep_spec(input: &str, output: &str, cep: Value) -> Value {
    json!({
        "sources": [{"topic": input, "event_time_field": "ts", "max_out_of_orderness": "1s"}],
        "operators": [{"type": "key_by", "id": "by-user", "field": "user"}, cep],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 1,
        "checkpoint": {"interval_ms": 300}
    })
}

/// Creates and deploys `job` with `spec`, both accepted; the deploy then
/// fails and the job's view says `reason`.
async fn deploy_fails_saying(serve: &Serve, job: &str, spec: Value, reason: &str) {
    let nc = crate::support::nats(crate::support::NATS_URL).await;
    let created = crate::support::send(
        &nc,
        &serve.iso,
        "acme",
        "job.create",
        job,
        json!({ "spec": spec }),
    )
    .await;
    assert!(created.is_accepted(), "{created:?}");
    let deployed =
        crate::support::send(&nc, &serve.iso, "acme", "job.deploy", job, json!({})).await;
    assert!(deployed.is_accepted(), "{deployed:?}");
    let path = format!("/v1/tenants/acme/jobs/{job}");
    let failed = crate::support::eventually(
        std::time::Duration::from_secs(90),
        "the deploy fails",
        || async {
            let (_, j) = serve.get_json(&path).await;
            (j["phase"] == "failed").then_some(j)
        },
    )
    .await;
    assert!(failed.to_string().contains(reason), "{failed}");
}

/// `weir cep upload` puts Weir's stock rule component into the tenant's
/// registry; a YAML rule whose operator names it (`component:`) runs in it,
/// in the WASM sandbox, on a `weir serve` given no component of its own.
/// A file that is not a rule component is refused before it goes up, and
/// an operator naming a component the tenant never uploaded fails its
/// deploy with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_rule_runs_in_the_stock_component_the_tenant_uploaded() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let serve = Serve::start_with(&iso, serve_opts(&[])).await;
    let component = crate::support::guests::cep_rule_path();
    let up = serve
        .cli_command()
        .args(["cep", "upload", "--version", "1.0.0", "--component"])
        .arg(&component)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(said.contains("weir-cep-rule@1.0.0"), "{said}");

    let not_a_rule = std::env::temp_dir().join(format!("{}-uppercase.wasm", iso.prefix));
    std::fs::write(&not_a_rule, crate::support::guests::guest("uppercase")).unwrap();
    let refused = serve
        .cli_command()
        .args(["cep", "upload", "--component"])
        .arg(&not_a_rule)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains("is not the CEP rule component"), "{err}");

    let (input, output) = (unique_topic("stock-in"), unique_topic("stock-out"));
    create_topic(&brokers(), &input, 1).await;
    create_topic(&brokers(), &output, 2).await;
    let users = 10;
    let events = kinds_per_user(users, &["a", "b", "c"]);
    kafka::produce(&kafka::producer(&brokers()), &input, &events).await;
    let rule = "name: abc\nsteps:\n  - { name: a, where: kind == \"a\" }\n  - { name: b, where: kind == \"b\" }\n  - { name: c, where: kind == \"c\" }\n";
    let spec = |component: &str| {
        keyed_cep_spec(
            &input,
            &output,
            json!({"type": "cep", "id": "abc", "rule": rule, "component": component}),
        )
    };
    deploy_spec(&serve, "stock", spec("weir-cep-rule@1.0.0")).await;
    let outs = read_outputs(&output, users).await;
    assert_exactly_once(&outs, users);
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        assert_eq!(m["rule"], "abc", "{m}");
        assert_eq!(m["steps"]["c"][0]["kind"], "c", "{m}");
    }
    // The operator ran in a WASM instance: only a component reports its
    // memory. The figures of the last batch show once the input is quiet.
    crate::support::eventually(
        std::time::Duration::from_secs(30),
        "the component's memory in /metrics",
        || async {
            let metrics = reqwest::get(serve.url("/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("weir_udf_peak_memory_bytes{")
                        && l.contains("job=\"stock\"")
                        && l.contains("operator=\"abc\"")
                })
                .then_some(())
        },
    )
    .await;

    // A component the tenant never uploaded: the deploy fails, saying which.
    deploy_fails_saying(
        &serve,
        "no-stock",
        spec("weir-cep-rule@9.9.9"),
        "weir-cep-rule",
    )
    .await;
}
