//! A WASM UDF's host-owned keyed state in the runtime: it reaches
//! checkpoints (the adapter writes it in only when a checkpoint asks), so it
//! survives a task crash and moves with its partitions on a rescale.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir::domain::job::spec::{OperatorSpec, UdfKind};
use weir::registry::resolver::WasmFactory;
use weir::runtime::control::{DeploymentControl, RestoreFrom};
use weir::runtime::operator::{OperatorFactory, ResolveError};
use weir::runtime::ModuleResolver;
use weir::wasm::{HostConfig, WasmHost};

use crate::support::runtime::{assert_exactly_once, read_topic, rig_with_resolver, test_config};
use crate::support::{guests, kafka};

/// Resolves `name@version` to the udf-sdk example `name`, loaded into a real
/// host (the registry's role, without the upload).
struct Examples(Arc<WasmHost>);

impl ModuleResolver for Examples {
    fn resolve(
        &self,
        spec: &OperatorSpec,
        module: &str,
        _kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError> {
        let name = module.split('@').next().unwrap_or(module);
        let loaded = self
            .0
            .load(name, "1", &guests::guest(name))
            .map_err(|e| ResolveError {
                module: module.to_owned(),
                reason: e.to_string(),
                retryable: false,
            })?;
        Ok(Arc::new(WasmFactory::for_operator(loaded, spec, module)))
    }
}

/// Records `{"user":"u<k>","n":i,"ts":T}` keyed by user, each user on one
/// partition. One event time for all, so the UDF's one-second event-time
/// timer (which resets a count) never fires: counts only grow.
fn records(count: usize, users: usize, partitions: i32, from: usize) -> Vec<(i32, String, String)> {
    (from..from + count)
        .map(|i| {
            let u = i % users;
            let value =
                serde_json::json!({"user": format!("u{u}"), "n": i, "ts": 1_700_000_000_000i64});
            ((u as i32) % partitions, format!("u{u}"), value.to_string())
        })
        .collect()
}

/// Every count each user reached, in the order written per sink partition.
fn counts(outs: &[kafka::ReadRecord]) -> BTreeMap<String, Vec<u64>> {
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in outs {
        let n: u64 = r
            .value
            .parse()
            .unwrap_or_else(|_| panic!("a count, not {:?}", r.value));
        m.entry(r.key.clone().unwrap_or_default())
            .or_default()
            .push(n);
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_keyed_counts_survive_a_task_kill_and_a_rescale() {
    let host = Arc::new(WasmHost::new(HostConfig::default()).expect("wasm host"));
    let rig = rig_with_resolver(
        Arc::new(Examples(host)),
        test_config(kafka::runtime_brokers()),
    )
    .await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 4).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    let p = kafka::producer(&rig.brokers);
    let spec = format!(
        r#"
sources: [{{ topic: {input}, event_time_field: ts }}]
operators:
  - {{ type: udf, id: count, module: "running_count@1", kind: process }}
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: 300, retain: 2 }}
"#
    );
    let users = 8;

    // Parallelism 2, one task crashed mid-stream: it restores the state of
    // its last checkpoint and replays from there.
    kafka::produce(&p, &input, &records(800, users, 4, 0)).await;
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(400, 120).await;
    rig.runtime.kill_task(&rig.key, 1).unwrap();
    read_topic(&rig.brokers, &output, 2, 800).await;
    rig.runtime.stop(&rig.key, 1, true).await.unwrap();

    // Parallelism 1: every partition, with its state, on one task.
    kafka::produce(&p, &input, &records(800, users, 4, 800)).await;
    rig.start(&spec, 2, 1, RestoreFrom::Latest).await;
    let outs = read_topic(&rig.brokers, &output, 2, 1_600).await;
    assert_exactly_once(&outs, 1_600);
    let per_user = 1_600 / users as u64;
    let counts = counts(&outs);
    assert_eq!(counts.len(), users);
    for (user, seen) in &counts {
        // Each count exactly once: no state lost (a restart at 0) and none
        // counted twice.
        assert_eq!(
            seen,
            &(1..=per_user).collect::<Vec<_>>(),
            "counts of {user}"
        );
    }
    rig.runtime.stop(&rig.key, 2, false).await.unwrap();
}
