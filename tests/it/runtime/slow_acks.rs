//! Exactly-once without any crash: a broker that stores a batch but answers
//! after the producer's request timeout makes librdkafka send the batch
//! again. The sink producer is idempotent, so the broker keeps one copy.

use std::time::Duration;

use weir::runtime::control::{DeploymentControl, RestoreFrom};
use weir::runtime::{NativeModules, RuntimeConfig};

use crate::support::kafka;
use crate::support::proxy::Proxy;
use crate::support::runtime::{
    assert_exactly_once, read_topic, rig_with, test_config, user_records,
};
use crate::support::serve::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_acknowledgements_do_not_duplicate_outputs() {
    // The runtime reaches its own broker only through the proxy (the broker
    // advertises the proxy's port), so holding the proxy's answers back
    // delays every acknowledgement while the broker keeps storing.
    let broker_port = free_port();
    let proxy = Proxy::start(&format!("127.0.0.1:{broker_port}")).await;
    kafka::private_broker_behind(broker_port, proxy.port);
    let brokers = format!("127.0.0.1:{}", proxy.port);
    // The producer gives up waiting after 5 s and resends (60 s by default).
    let cfg = RuntimeConfig {
        producer_request_timeout: Duration::from_secs(5),
        ..test_config(brokers.clone())
    };
    let rig = rig_with(NativeModules::builtins(), cfg).await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&brokers, &input, 2).await;
    kafka::create_topic(&brokers, &output, 2).await;
    let n = 20_000;
    kafka::produce(
        &kafka::producer(&brokers),
        &input,
        &user_records(n, 10, 2, 0),
    )
    .await;

    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: udf, id: up, module: "upper@1", kind: map }}
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: 1000 }}
rate_limit: 2000
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(4_000, 120).await;
    let before = rig.status().await;
    proxy.stall_answers();
    // Real time, not a test clock: the producer's own request timeout must
    // pass for librdkafka to resend what the broker already stored.
    tokio::time::sleep(Duration::from_secs(12)).await;
    proxy.release();

    let outs = read_topic(&brokers, &output, 2, n).await;
    assert_exactly_once(&outs, n);
    // No task restored: the retries alone were deduplicated, not replayed.
    let st = rig.status().await;
    assert!(
        st.tasks.iter().all(|t| t.restarts == 0),
        "{before:?} {st:?}"
    );
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}
