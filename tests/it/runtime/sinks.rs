//! PostgreSQL, HTTP and NATS sinks, the metrics published on NATS, and the
//! Kafka-transactions path on librdkafka's mock cluster.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use futures::StreamExt;
use rdkafka::mocking::MockCluster;
use weir::runtime::control::{DeploymentControl, RestoreFrom};
use weir::runtime::operator::RecordResult;
use weir::runtime::record::topic_tag;
use weir::runtime::sinks::Guarantee;
use weir::runtime::NativeModules;

use crate::support::runtime::{
    assert_exactly_once, guarantees, rig, rig_on, rig_with, test_config, user_records, Rig,
};
use crate::support::{eventually_ok, kafka, Isolation, NATS_URL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upserts_are_idempotent_across_a_restore() {
    let rig = rig().await;
    let input = kafka::unique_topic("in");
    kafka::create_topic(&rig.brokers, &input, 2).await;
    let table = crate::support::tenant_table(
        &rig.pool,
        &rig.key.tenant,
        "user_counts",
        "key text PRIMARY KEY, count bigint NOT NULL",
    )
    .await;
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
    // (Every task: both stages of the repartitioned job.)
    for t in rig.status().await.tasks {
        rig.runtime.kill_task(&rig.key, t.task).unwrap();
    }
    eventually_ok(Duration::from_secs(120), "counts to converge", || async {
        let rows: Vec<(String, i64)> =
            sqlx::query_as(&format!("SELECT key, count FROM {table} ORDER BY key"))
                .fetch_all(&rig.pool)
                .await
                .unwrap();
        let done = rows.len() == users && rows.iter().all(|(_, c)| *c == (n / users) as i64);
        if done {
            Ok(())
        } else {
            Err(rows)
        }
    })
    .await;
    let st = rig.status().await;
    assert!(st.tasks.iter().all(|t| t.restarts == 1), "{st:?}");
    assert_eq!(guarantees(&st), [Guarantee::IdempotentUpsert]);
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
    let seen = eventually_ok(
        Duration::from_secs(120),
        "every output delivered",
        || async {
            let seen: HashSet<i64> = received
                .lock()
                .unwrap()
                .1
                .iter()
                .map(|v| v["n"].as_i64().unwrap())
                .collect();
            if seen.len() == n {
                Ok(seen)
            } else {
                Err(format!("only {} of {n} delivered", seen.len()))
            }
        },
    )
    .await;
    assert!(seen.iter().all(|i| (0..n as i64).contains(i)));
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
    assert_eq!(
        guarantees(&rig.status().await),
        [Guarantee::KafkaTransactions]
    );
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

/// A rig whose runtime has a NATS client (NATS sinks, metrics), publishing
/// metrics every 200 ms under the test's own subject prefix.
async fn nats_rig(modules: NativeModules) -> (Rig, async_nats::Client) {
    let iso = Isolation::new();
    let mut cfg = test_config(kafka::runtime_brokers());
    cfg.subject_prefix = iso.prefix.clone();
    cfg.metrics_interval = Duration::from_millis(200);
    let nats = crate::support::nats(NATS_URL).await;
    let rig = rig_on(Arc::new(modules), iso, cfg, Some(nats.clone())).await;
    (rig, nats)
}

/// What docs/job-spec.md promises for `nats` sinks: one message per output
/// on the subject, the output value as payload, the output's headers, and
/// the source position (`weir-origin`: topic, partition, offset and seq) for
/// consumers to dedupe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_sink_publishes_every_output_with_its_source_position() {
    let mut modules = NativeModules::builtins();
    modules.register("tag@1", |r, _| {
        let mut out = r.clone();
        out.headers
            .push(("x-tag".into(), b"tagged".as_slice().into()));
        RecordResult::Emit(vec![out])
    });
    let (rig, nats) = nats_rig(modules).await;
    let input = kafka::unique_topic("in");
    kafka::create_topic(&rig.brokers, &input, 2).await;
    let n = 500;
    let users = 5;
    let records = user_records(n, users, 2, 0);
    kafka::produce(&kafka::producer(&rig.brokers), &input, &records).await;
    // A subject of its own, outside Weir's (`<prefix>.…` is refused).
    let subject = format!("{}-sink.out", rig.iso.prefix);
    let mut sub = nats.subscribe(subject.clone()).await.unwrap();
    nats.flush().await.unwrap();
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators: [{{ type: udf, id: tag, module: "tag@1", kind: map }}]
sinks: [{{ type: nats, subject: "{subject}" }}]
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    assert_eq!(guarantees(&rig.status().await), [Guarantee::AtLeastOnce]);

    let mut by_pos: HashMap<(i32, i64), serde_json::Value> = HashMap::new();
    let mut messages = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while by_pos.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} outputs arrived", by_pos.len()))
            .expect("subscription open");
        messages += 1;
        let headers = msg.headers.expect("headers");
        let h = |k: &str| {
            headers
                .get(k)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_else(|| panic!("header {k} missing"))
        };
        let (topic, partition, offset, seq) = crate::support::kafka::origin_of(&h("weir-origin"));
        assert_eq!((topic, seq), (topic_tag(&input), 0));
        assert_eq!(h("x-tag"), "tagged");
        let value: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        // The record of user u was produced to partition u % 2.
        let user = value["user"].as_str().unwrap();
        let u: i32 = user[1..].parse().unwrap();
        assert_eq!(partition, u % 2, "{value}");
        if let Some(before) = by_pos.insert((partition, offset), value.clone()) {
            // At-least-once allows a repeat; it must be the same output.
            assert_eq!(before, value);
        }
    }
    // Nothing failed, so nothing was published twice.
    assert_eq!(messages, n);
    let expected: HashSet<String> = records.iter().map(|(_, _, v)| v.clone()).collect();
    let got: HashSet<String> = by_pos.values().map(|v| v.to_string()).collect();
    assert_eq!(got, expected, "payloads are the outputs' values");
    // Offsets are dense per partition: every source record is accounted for.
    for p in 0..2 {
        let mut offs: Vec<i64> = by_pos.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        offs.sort_unstable();
        assert_eq!(offs, (0..offs.len() as i64).collect::<Vec<_>>());
    }
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

/// Per-task metrics on `<prefix>.metrics.<tenant>.<job>` every
/// `metrics_interval`, with the fields docs/metrics.md lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_metrics_are_published_on_nats_with_the_documented_fields() {
    let (rig, nats) = nats_rig(NativeModules::builtins()).await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    let n = 300;
    let mut records = user_records(n, 4, 2, 0);
    // One record that is not JSON: dead-lettered at decode.
    records.push((1, "bad".into(), "not json".into()));
    kafka::produce(&kafka::producer(&rig.brokers), &input, &records).await;
    let size = |(_, k, v): &(i32, String, String)| (k.len() + v.len()) as u64;
    let bytes_all: u64 = records.iter().map(size).sum();
    let bytes_good: u64 = records[..n].iter().map(size).sum();

    let subject = format!("{}.metrics.acme.{}", rig.iso.prefix, rig.key.job);
    let mut sub = nats.subscribe(subject).await.unwrap();
    nats.flush().await.unwrap();
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators: [{{ type: udf, id: id, module: "identity@1", kind: map }}]
sinks: [{{ type: kafka, topic: {output} }}]
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;

    // Wait for a report that has seen everything, lag included (measured every 3 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reports = 0;
    let report = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, sub.next())
            .await
            .expect("a complete metrics report within 60 s")
            .expect("subscription open");
        reports += 1;
        let r: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let tasks = r["tasks"].as_array().unwrap();
        let sum = |f: &str| tasks.iter().map(|t| t[f].as_u64().unwrap()).sum::<u64>();
        let lag: BTreeMap<String, i64> = tasks
            .iter()
            .flat_map(|t| t["lag"].as_object().unwrap().clone())
            .map(|(k, v)| (k, v.as_i64().unwrap()))
            .collect();
        if sum("records_in") == n as u64 + 1 && sum("records_out") == n as u64 && lag.len() == 2 {
            assert_eq!(
                lag,
                BTreeMap::from([(format!("{input}/0"), 0), (format!("{input}/1"), 0)])
            );
            assert_eq!(sum("bytes_in"), bytes_all, "key and value bytes read");
            assert_eq!(sum("bytes_out"), bytes_good, "key and value bytes written");
            assert_eq!(sum("dead_lettered"), 1);
            assert_eq!(sum("errors"), 0);
            assert_eq!(sum("restarts"), 0);
            break r;
        }
    };
    assert!(reports >= 2, "published every interval: {reports}");
    assert_eq!(report["tenant"], "acme");
    assert_eq!(report["job"], rig.key.job.as_str());
    assert_eq!(report["version"], 1);
    assert_eq!(report["generation"], 1);
    assert_eq!(report["parallelism"], 2);
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(report["at"].clone()).expect("`at` is an RFC 3339 time");
    assert!((chrono::Utc::now() - at).num_seconds().abs() < 30);
    let tasks = report["tasks"].as_array().unwrap();
    let ids: Vec<u64> = tasks.iter().map(|t| t["task"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 1]);
    for t in tasks {
        let fields: BTreeMap<&str, &serde_json::Value> = t
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            [
                "busy_ms",
                "bytes_in",
                "bytes_out",
                "checkpoint_failures_in_row",
                "checkpoints_failed",
                "dead_lettered",
                "errors",
                "idle_ms",
                "lag",
                "operator_ns_per_record",
                "records_in",
                "records_out",
                "restarts",
                "stage",
                "task",
                "watermark_ms"
            ]
        );
        assert!(t["records_in"].as_u64().unwrap() > 0, "{t}");
        assert!(t["operator_ns_per_record"].as_f64().unwrap() > 0.0, "{t}");
        assert!(t["idle_ms"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["stage"], 0, "{t}");
        assert!(t["watermark_ms"].as_i64().unwrap() > 0, "{t}");
    }
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

/// A tenant's PostgreSQL sink resolves tables in the tenant's own schema and
/// writes as the tenant's role, which has no rights on Weir's schema: a sink
/// naming Weir's own table finds nothing, and a schema-qualified name is
/// refused with the spec.
#[tokio::test]
async fn a_postgres_sink_cannot_reach_weir_s_tables() {
    use weir::runtime::sinks::{PgSink, TenantSpace};
    let iso = Isolation::new();
    let store = weir::store::postgres::PgStore::connect(crate::support::DATABASE_URL, &iso.schema)
        .await
        .unwrap();
    let pool = store.pool().clone();

    let e = PgSink::connect(pool.clone(), "mallory", "outbox_cursors", &["relay".into()])
        .await
        .err()
        .expect("Weir's table is not the tenant's");
    assert!(e.reason.contains("table not found"), "{e:?}");
    let e = PgSink::connect(
        pool.clone(),
        "mallory",
        &format!("{}.outbox_cursors", iso.schema),
        &["relay".into()],
    )
    .await
    .err()
    .expect("a schema-qualified name is refused");
    assert!(e.reason.contains("without a schema"), "{e:?}");
    let spec = weir::domain::job::JobSpec::parse(&format!(
        "sources: [{{topic: a}}]\nsinks: [{{type: postgres, table: {}.outbox_cursors, key_columns: [relay]}}]\n",
        iso.schema
    ));
    assert!(
        format!("{:?}", spec.expect_err("refused")).contains("sinks[0].table"),
        "named by field"
    );
    let spec = weir::domain::job::JobSpec::parse(
        "sources: [{topic: a}]\nsinks: [{type: nats, subject: weir.cmd.victim.job.delete}]\n",
    );
    assert!(
        format!("{:?}", spec.expect_err("refused")).contains("Weir's own"),
        "a NATS sink on Weir's command subjects is refused"
    );

    // The tenant's own table works; its role cannot read Weir's tables.
    let table =
        crate::support::tenant_table(&pool, "mallory", "hits", "k text PRIMARY KEY, n bigint")
            .await;
    PgSink::connect(pool.clone(), "mallory", "hits", &["k".into()])
        .await
        .expect("the tenant's table");
    let space = TenantSpace::of(&iso.schema, "mallory");
    assert!(table.contains(&space.schema));
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("SET LOCAL ROLE \"{}\"", space.role))
        .execute(&mut *tx)
        .await
        .unwrap();
    let denied = sqlx::query(&format!("SELECT * FROM \"{}\".outbox_cursors", iso.schema))
        .execute(&mut *tx)
        .await
        .expect_err("no rights on Weir's schema");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
}
