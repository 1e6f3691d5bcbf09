//! PostgreSQL and HTTP sinks, and the Kafka-transactions path on librdkafka's
//! mock cluster.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use rdkafka::mocking::MockCluster;
use weir::runtime::control::{DeploymentControl, RestoreFrom};
use weir::runtime::NativeModules;

use super::{assert_exactly_once, rig, rig_with, test_config, user_records};
use crate::support::kafka;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upserts_are_idempotent_across_a_restore() {
    let rig = rig().await;
    let input = kafka::unique_topic("in");
    kafka::create_topic(&rig.brokers, &input, 2).await;
    sqlx::query("CREATE TABLE user_counts (key text PRIMARY KEY, count bigint NOT NULL)")
        .execute(&rig.pool)
        .await
        .unwrap();
    let n = 4_000;
    let users = 8;
    kafka::produce(
        &kafka::producer(&rig.brokers),
        &input,
        &user_records(n, users, 2, 0),
    )
    .await;
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: key_by, id: by-user, field: user }}
  - {{ type: udf, id: count, module: "count@1", kind: process }}
sinks: [{{ type: postgres, table: user_counts, key_columns: [key] }}]
checkpoint: {{ interval_ms: 300 }}
rate_limit: 2000
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(2_500, 120).await;
    // Rows written after the last checkpoint are written again on replay.
    rig.runtime.kill_task(&rig.key, 0).unwrap();
    rig.runtime.kill_task(&rig.key, 1).unwrap();
    let start = std::time::Instant::now();
    loop {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, count FROM user_counts ORDER BY key")
                .fetch_all(&rig.pool)
                .await
                .unwrap();
        let done = rows.len() == users && rows.iter().all(|(_, c)| *c == (n / users) as i64);
        if done {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "counts never converged: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let st = rig.status().await;
    assert!(st.tasks.iter().all(|t| t.restarts == 1), "{st:?}");
    assert!(
        st.guarantee.contains("idempotent upsert"),
        "{}",
        st.guarantee
    );
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_sink_retries_a_failing_endpoint_and_loses_nothing() {
    let rig = rig().await;
    let input = kafka::unique_topic("in");
    kafka::create_topic(&rig.brokers, &input, 2).await;
    let n = 1_000;
    kafka::produce(
        &kafka::producer(&rig.brokers),
        &input,
        &user_records(n, 5, 2, 0),
    )
    .await;

    // Fails the first 4 requests with 503, then accepts.
    let received: Arc<Mutex<(u32, Vec<serde_json::Value>)>> = Arc::default();
    let state = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(batch): Json<Vec<serde_json::Value>>| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                s.0 += 1;
                if s.0 <= 4 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                s.1.extend(batch);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators: [{{ type: udf, id: id, module: "identity@1", kind: map }}]
sinks: [{{ type: http, url: "{url}", max_attempts: 10 }}]
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    let start = std::time::Instant::now();
    loop {
        let seen: std::collections::HashSet<i64> = received
            .lock()
            .unwrap()
            .1
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .collect();
        if seen.len() == n {
            assert!(seen.iter().all(|i| (0..n as i64).contains(i)));
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "only {} of {n} delivered",
            seen.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        received.lock().unwrap().0 > 4,
        "the failing requests were retried"
    );
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
    server.abort();
}

/// The transactional path (Apache Kafka, Redpanda) against librdkafka's mock
/// cluster, which implements transactions: outputs become visible to
/// read_committed consumers at checkpoints, and a killed task's open
/// transaction is fenced and aborted by its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_transactions_give_exactly_once_on_a_mock_cluster() {
    let mock = MockCluster::new(1).unwrap();
    let brokers = mock.bootstrap_servers();
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    mock.create_topic(&input, 2, 1).unwrap();
    mock.create_topic(&output, 2, 1).unwrap();
    let mut cfg = test_config(brokers.clone());
    cfg.transactional = true;
    let rig = rig_with(NativeModules::builtins(), cfg).await;
    let n = 3_000;
    kafka::produce(
        &kafka::producer(&brokers),
        &input,
        &user_records(n, 6, 2, 0),
    )
    .await;
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators: [{{ type: udf, id: up, module: "upper@1", kind: map }}]
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: 200 }}
rate_limit: 3000
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    assert!(rig.status().await.guarantee.contains("Kafka transactions"));
    rig.wait_records_in(1_500, 120).await;
    rig.runtime.kill_task(&rig.key, 0).unwrap();
    let (b, t) = (brokers.clone(), output.clone());
    let outs = tokio::task::spawn_blocking(move || kafka::read_all_committed(&b, &t, 2, n))
        .await
        .unwrap();
    assert_exactly_once(&outs, n);
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
    drop(mock);
}
