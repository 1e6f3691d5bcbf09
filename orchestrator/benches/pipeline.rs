//! Pipeline throughput and cold start, on one Kafka broker in one run.
//!
//! 1. **Throughput**: N records through Kafka → trivial map → Kafka with the
//!    Weir runtime, against a bare rdkafka consume → produce passthrough on the
//!    same broker; prints records/s of each and the ratio (target ≥ 0.8).
//! 2. **Cold start**: from the `start()` call to the first output record on
//!    the sink topic, over several fresh deployments; prints p50 and max
//!    (target p50 < 500 ms).
//!
//! `cargo bench -p weir --bench pipeline`. Needs PostgreSQL and a broker:
//! `WEIR_KAFKA_BROKERS` (default 127.0.0.1:9092), `WEIR_BENCH_RECORDS`
//! (default 100000). The map is a native module; the WASM host's own
//! per-record overhead is measured by `--bench wasm`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir::domain::job::JobSpec;
use weir::runtime::control::{DeploymentControl, DeploymentKey, DeploymentRequest, RestoreFrom};
use weir::runtime::kafka::TrackedProducer;
use weir::runtime::{EmbeddedRuntime, NativeModules, RuntimeConfig};

const PARTITIONS: i32 = 4;

fn topic(prefix: &str) -> String {
    format!("bench-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn create(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .expect("create")
    {
        r.expect("topic created");
    }
}

fn fill(brokers: &str, name: &str, n: usize, partitions: i32) {
    let p = TrackedProducer::new(brokers, None).expect("producer");
    for i in 0..n {
        let v = format!(r#"{{"user":"u{}","n":{i},"pad":"abcdefghij"}}"#, i % 100);
        let k = format!("u{}", i % 100);
        p.send(
            BaseRecord::to(name)
                .partition((i % partitions as usize) as i32)
                .key(k.as_bytes())
                .payload(v.as_bytes()),
        )
        .expect("send");
    }
    p.flush(Duration::from_secs(300)).expect("flush");
}

fn consumer(brokers: &str, name: &str, partitions: i32) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("bench-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(name, p, Offset::Offset(0))
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    c
}

/// Counts records arriving on `name` until `n`, returning when the last arrived.
fn wait_for(
    brokers: &str,
    name: &str,
    partitions: i32,
    n: usize,
    limit: Duration,
) -> Option<Instant> {
    let c = consumer(brokers, name, partitions);
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < limit {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(50)) {
            seen += 1;
            if seen >= n {
                return Some(Instant::now());
            }
        }
    }
    None
}

/// Bare rdkafka: consume everything, produce each record unchanged.
fn passthrough(brokers: &str, input: &str, output: &str, n: usize) -> Duration {
    let c = consumer(brokers, input, PARTITIONS);
    let p = TrackedProducer::new(brokers, None).expect("producer");
    let start = Instant::now();
    let mut seen = 0;
    while seen < n {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            let mut rec = BaseRecord::to(output).payload(m.payload().unwrap_or_default());
            if let Some(k) = m.key() {
                rec = rec.key(k);
            }
            p.send(rec).expect("send");
            seen += 1;
        }
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    start.elapsed()
}

fn runtime(brokers: &str, pool: sqlx::PgPool) -> EmbeddedRuntime {
    EmbeddedRuntime::new(
        RuntimeConfig {
            brokers: brokers.to_owned(),
            ..RuntimeConfig::default()
        },
        pool,
        Arc::new(NativeModules::builtins()),
        None,
    )
}

fn spec(input: &str, output: &str) -> JobSpec {
    JobSpec::parse(&format!(
        r#"
sources: [{{ topic: {input} }}]
operators: [{{ type: udf, id: up, module: "upper@1", kind: map }}]
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: 5000 }}
"#
    ))
    .expect("spec")
}

fn request(job: &str, spec: JobSpec, parallelism: u32) -> DeploymentRequest {
    DeploymentRequest {
        key: DeploymentKey {
            tenant: "bench".into(),
            job: job.into(),
        },
        version: 1,
        generation: 1,
        parallelism,
        spec,
        restore: RestoreFrom::Nothing,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // RUST_LOG=weir=info shows where start-up time goes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let brokers = std::env::var("WEIR_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let n: usize = std::env::var("WEIR_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let schema = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let store = weir::store::postgres::PgStore::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        &schema,
    )
    .await
    .expect("PostgreSQL");
    let pool = store.pool().clone();
    println!("broker {brokers}, {n} records of ~45 bytes, {PARTITIONS} partitions");

    // --- throughput ---
    let input = topic("in");
    create(&brokers, &input, PARTITIONS).await;
    let (b, t) = (brokers.clone(), input.clone());
    tokio::task::spawn_blocking(move || fill(&b, &t, n, PARTITIONS))
        .await
        .expect("fill");

    let bare_out = topic("bare");
    create(&brokers, &bare_out, PARTITIONS).await;
    let (b, i, o) = (brokers.clone(), input.clone(), bare_out.clone());
    let bare = tokio::task::spawn_blocking(move || passthrough(&b, &i, &o, n))
        .await
        .expect("passthrough");
    let bare_rate = n as f64 / bare.as_secs_f64();
    println!("bare rdkafka passthrough: {bare:?} → {bare_rate:.0} records/s");

    let weir_out = topic("weir");
    create(&brokers, &weir_out, PARTITIONS).await;
    let rt = runtime(&brokers, pool.clone());
    let (b, o) = (brokers.clone(), weir_out.clone());
    let waiter = tokio::task::spawn_blocking(move || {
        wait_for(&b, &o, PARTITIONS, n, Duration::from_secs(600))
    });
    let started = Instant::now();
    rt.start(request("throughput", spec(&input, &weir_out), 2))
        .await
        .expect("start");
    let done = waiter.await.expect("waiter").expect("all records arrived");
    let took = done - started;
    let weir_rate = n as f64 / took.as_secs_f64();
    println!(
        "weir map pipeline (parallelism 2, start included): {took:?} → {weir_rate:.0} records/s"
    );
    println!(
        "ratio weir / bare: {:.2} (target ≥ 0.80)",
        weir_rate / bare_rate
    );
    let st = rt
        .status(&request("throughput", spec(&input, &weir_out), 2).key)
        .await
        .expect("status");
    println!("guarantee: {}", st.guarantee);
    let _ = rt.stop(&st.key, 1, false).await;

    // --- cold start ---
    let small = topic("cold-in");
    create(&brokers, &small, 1).await;
    let (b, t) = (brokers.clone(), small.clone());
    tokio::task::spawn_blocking(move || fill(&b, &t, 10, 1))
        .await
        .expect("fill");
    let mut samples = Vec::new();
    for i in 0..9 {
        let out = topic("cold-out");
        create(&brokers, &out, 1).await;
        let (b, o) = (brokers.clone(), out.clone());
        let waiter =
            tokio::task::spawn_blocking(move || wait_for(&b, &o, 1, 1, Duration::from_secs(60)));
        // Let the waiting consumer connect and assign first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let job = format!("cold-{i}");
        let started = Instant::now();
        tracing::info!(job, "cold start: start() called");
        rt.start(request(&job, spec(&small, &out), 1))
            .await
            .expect("start");
        tracing::info!(job, "cold start: start() returned");
        let first = waiter.await.expect("waiter").expect("first record");
        tracing::info!(
            job,
            ms = (first - started).as_millis() as u64,
            "cold start: first output"
        );
        samples.push(first - started);
        let _ = rt
            .stop(
                &DeploymentKey {
                    tenant: "bench".into(),
                    job,
                },
                1,
                false,
            )
            .await;
    }
    samples.sort();
    println!(
        "cold start (start() → first output), {} runs: p50 {:?}, min {:?}, max {:?} (target p50 < 500 ms)",
        samples.len(),
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
    let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await;
}
