//! The product path, end to end, as a user drives it: upload a WASM UDF,
//! create and deploy a job with published commands, and watch records flow
//! Kafka → WASM UDF → Kafka through the embedded runtime, deployed by the
//! deploy workflow. This is what `scripts/demo.sh` shows.

use std::time::Duration;

use serde_json::json;
use weir::runtime::sinks::{Guarantee, SinkGuarantee};

use crate::support::kafka::{brokers, create_topic, produce, read_all, unique_topic};
use crate::support::serve::{Serve, ServeOpts};
use crate::support::{eventually, nats, send, Isolation, NATS_URL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_job_runs_records_through_a_wasm_udf() {
    let iso = Isolation::new();
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: vec![("WEIR_RUNTIME".into(), "embedded".into())],
            ..Default::default()
        },
    )
    .await;
    let (input, output) = (unique_topic("e2e-in"), unique_topic("e2e-out"));
    create_topic(&brokers(), &input, 2).await;
    create_topic(&brokers(), &output, 2).await;

    // Upload through the CLI, as a user would.
    crate::support::upload_udf(&serve, "uppercase", "upper");

    let nc = nats(NATS_URL).await;
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "operators": [{"type": "udf", "id": "up", "module": "upper@1.0.0", "kind": "map"}],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 2,
        "checkpoint": {"interval_ms": 500}
    });
    assert!(send(
        &nc,
        &iso,
        "acme",
        "job.create",
        "e2e",
        json!({"spec": spec})
    )
    .await
    .is_accepted());
    assert!(send(&nc, &iso, "acme", "job.deploy", "e2e", json!({}))
        .await
        .is_accepted());

    // The deploy workflow compiles, starts the runtime and marks the job running.
    eventually(Duration::from_secs(60), "job running", || async {
        let (_, job) = serve.get_json("/v1/tenants/acme/jobs/e2e").await;
        assert_ne!(job["phase"], "failed", "{job}");
        (job["phase"] == "running").then_some(())
    })
    .await;

    let records: Vec<(i32, String, String)> = (0..50)
        .map(|i| (i % 2, format!("k{i}"), format!("order-{i}")))
        .collect();
    produce(
        &crate::support::kafka::producer(&brokers()),
        &input,
        &records,
    )
    .await;
    let out = tokio::task::spawn_blocking(move || read_all(&brokers(), &output, 2, 50))
        .await
        .unwrap();
    let mut values: Vec<String> = out.iter().map(|r| r.value.clone()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("ORDER-{i}")).collect();
    expected.sort();
    assert_eq!(
        values, expected,
        "each record exactly once, uppercased by the UDF"
    );

    // The data plane is visible through the API: tasks, records, the guarantee.
    let (code, rt) = serve.get_json("/v1/tenants/acme/jobs/e2e/runtime").await;
    assert_eq!(code, 200, "{rt}");
    assert_eq!(rt["tasks"].as_array().map(Vec::len), Some(2), "{rt}");
    let stated =
        SinkGuarantee::parse_all(rt["guarantee"].as_str().unwrap_or("")).expect("a guarantee");
    assert_eq!(
        stated.iter().map(|s| s.guarantee).collect::<Vec<_>>(),
        [Guarantee::DeterministicReplay],
        "{rt}"
    );
    let records_in: u64 = rt["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["records_in"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(records_in, 50, "{rt}");
    // A checkpoint on demand, then listed.
    let taken: serde_json::Value = reqwest::Client::new()
        .post(serve.url("/v1/tenants/acme/jobs/e2e/checkpoints"))
        .bearer_auth(serve.iso.token("acme"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = taken["id"].as_str().expect("checkpoint id").to_owned();
    let (_, list) = serve
        .get_json("/v1/tenants/acme/jobs/e2e/checkpoints")
        .await;
    // Listed newest first; a periodic checkpoint may complete right after it.
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{list}");
    // Another tenant sees no such deployment.
    serve.create_tenant("other").await;
    let (code, _) = serve.get_json("/v1/tenants/other/jobs/e2e/runtime").await;
    assert_eq!(code, 404);
}
