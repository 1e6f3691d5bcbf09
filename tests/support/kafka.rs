//! Kafka helpers for integration tests against the broker on 127.0.0.1:9092
//! (tansu, started by `scripts/services.sh kafka`).
//!
//! Every test creates its own topics with a random suffix, so tests run in
//! parallel and reruns start clean.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir::runtime::record::{output_id_from_headers, OutputId};

/// The shared broker, overridable with `WEIR_KAFKA_BROKERS`.
pub fn brokers() -> String {
    std::env::var("WEIR_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name unique to this test run: `acme.<prefix>-<random>`, in the
/// namespace of tenant acme, the only topics its jobs may use with
/// authentication on.
pub fn unique_topic(prefix: &str) -> String {
    format!(
        "{}.{prefix}-{}",
        super::TENANT,
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates `name` with `partitions` partitions through the admin API.
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// A producer that waits for the broker's acknowledgement of every record.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "false")
        .create()
        .expect("producer")
}

/// Produces `(partition, key, value)` records and waits for all of them.
pub async fn produce(producer: &FutureProducer, topic: &str, records: &[(i32, String, String)]) {
    let futures: Vec<_> = records
        .iter()
        .map(|(p, k, v)| {
            producer
                .send_result(
                    FutureRecord::to(topic)
                        .partition(*p)
                        .key(k.as_bytes())
                        .payload(v.as_bytes()),
                )
                .expect("enqueue")
        })
        .collect();
    for f in futures {
        f.await
            .expect("delivery canceled")
            .expect("delivery failed");
    }
}

/// Produces one record with headers and a timestamp.
pub async fn produce_with_headers(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: &str,
    headers: &[(&str, &[u8])],
    timestamp_ms: Option<i64>,
) -> (i32, i64) {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    let mut rec = FutureRecord::<(), _>::to(topic)
        .partition(partition)
        .payload(value.as_bytes())
        .headers(h);
    if let Some(ts) = timestamp_ms {
        rec = rec.timestamp(ts);
    }
    let d = producer
        .send(rec, Duration::from_secs(10))
        .await
        .expect("delivery failed");
    (d.partition, d.offset)
}

/// One record as read back by [`read_all`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: HashMap<String, String>,
    pub timestamp: Option<i64>,
    /// The output identity its headers carry, read as Weir's replay reads it.
    pub id: Option<OutputId>,
}

impl ReadRecord {
    /// An output's identity, `(source topic tag, partition, offset, seq)`,
    /// from its `weir-id` header; panics without one.
    pub fn origin(&self) -> OutputId {
        self.id
            .unwrap_or_else(|| panic!("no readable weir-id header: {self:?}"))
    }
}

/// Parses a `weir-origin` header value (the text form NATS outputs carry),
/// as Weir's replay does.
pub fn origin_of(v: &str) -> OutputId {
    let id = output_id_from_headers([("weir-origin", v.as_bytes())].into_iter());
    id.unwrap_or_else(|| panic!("weir-origin `{v}` is not <topic>/<partition>/<offset>/<seq>"))
}

/// A consumer with explicit assignment (no group membership).
pub fn assigned_consumer(brokers: &str, topic: &str, partitions: i32) -> BaseConsumer {
    assigned_consumer_with(brokers, topic, partitions, "read_uncommitted")
}

fn assigned_consumer_with(
    brokers: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("isolation.level", isolation)
        .set(
            "group.id",
            format!("weir-test-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Reads records until at least `expected` have arrived and nothing more
/// arrives for `quiet`, or `deadline` passes. Returns what was read.
pub fn read_until(
    consumer: &BaseConsumer,
    expected: usize,
    quiet: Duration,
    deadline: Duration,
) -> Vec<ReadRecord> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut last = Instant::now();
    while start.elapsed() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let mut headers = HashMap::new();
                let id = m.headers().and_then(|hs| {
                    output_id_from_headers(hs.iter().map(|h| (h.key, h.value.unwrap_or_default())))
                });
                if let Some(hs) = m.headers() {
                    for h in hs.iter() {
                        headers.insert(
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        );
                    }
                }
                out.push(ReadRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    headers,
                    timestamp: m.timestamp().to_millis(),
                    id,
                });
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {
                if out.len() >= expected && last.elapsed() >= quiet {
                    break;
                }
            }
        }
    }
    out
}

/// Reads every record of `topic` (all `partitions`), waiting for at least
/// `expected` and then a quiet period of two seconds.
pub fn read_all(brokers: &str, topic: &str, partitions: i32, expected: usize) -> Vec<ReadRecord> {
    let c = assigned_consumer(brokers, topic, partitions);
    // Returns once `expected` records are in; the deadline only bounds a
    // failing test. It is long because a restore's replay scan on the shared
    // sqlite broker took up to a minute while the whole suite ran.
    read_until(
        &c,
        expected,
        Duration::from_secs(1),
        Duration::from_secs(180),
    )
}

/// Like [`read_all`], but only committed records (read_committed).
pub fn read_all_committed(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<ReadRecord> {
    let c = assigned_consumer_with(brokers, topic, partitions, "read_committed");
    read_until(
        &c,
        expected,
        Duration::from_secs(2),
        Duration::from_secs(180),
    )
}

/// A private tansu broker with the sqlite storage engine (the one
/// `scripts/services.sh` runs) on a fresh database, started once per test
/// process and stopped when the process exits (a shell watchdog polls the
/// test's pid). Runtime tests use it unless `WEIR_KAFKA_BROKERS` names a
/// broker: the shared broker slows down as other tests fill its database
/// (round trips of seconds were measured on a busy 2-core machine).
pub fn private_broker() -> String {
    static BROKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BROKER
        .get_or_init(|| start_tansu("sqlite://tansu.db"))
        .clone()
}

/// A private tansu with the memory engine, for probing its differences.
pub fn private_memory_broker() -> String {
    static BROKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BROKER
        .get_or_init(|| start_tansu("memory://tansu/"))
        .clone()
}

fn start_tansu(engine: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    start_tansu_at(engine, port, port)
}

/// A private sqlite tansu of its own on `port` that tells clients to reach
/// it on `advertised` (a test proxy in front of it), so every connection a
/// client makes after bootstrap goes through the proxy.
pub fn private_broker_behind(port: u16, advertised: u16) -> String {
    start_tansu_at("sqlite://tansu.db", port, advertised)
}

/// The broker scripts/services.sh built (with Weir's storage patch), else
/// whatever tansu is installed.
fn tansu_bin() -> String {
    std::env::var("HOME")
        .ok()
        .into_iter()
        .flat_map(|h| {
            [
                format!("{h}/.local/share/weir/bin/tansu"),
                format!("{h}/.cargo/bin/tansu"),
            ]
        })
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| "tansu".into())
}

fn wait_for_port(addr: &str, dir: &std::path::Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "private tansu did not start; see {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_tansu_at(engine: &str, port: u16, advertised: u16) -> String {
    let dir = std::env::temp_dir().join(format!("weir-tansu-{port}"));
    std::fs::create_dir_all(&dir).expect("tansu dir");
    let tansu = tansu_bin();
    // The sqlite path must be relative: tansu prefixes the working directory.
    let script = format!(
        "{tansu} broker --listener-url tcp://127.0.0.1:{port} \
         --advertised-listener-url tcp://127.0.0.1:{advertised} \
         --storage-engine {engine} >broker.log 2>&1 & T=$!; \
         while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill $T",
        pid = std::process::id()
    );
    let watchdog = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start a private tansu (is tansu installed? scripts/services.sh kafka)");
    // The watchdog outlives this call by design; reap it from a thread.
    std::thread::spawn(move || {
        let mut w = watchdog;
        let _ = w.wait();
    });
    let addr = format!("127.0.0.1:{port}");
    wait_for_port(&addr, &dir);
    addr
}

/// A private sqlite tansu the test can crash and start again on the same
/// database and port. Killed on drop.
pub struct RestartableBroker {
    pub addr: String,
    port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl RestartableBroker {
    pub fn start() -> RestartableBroker {
        let dir = tempfile::tempdir().expect("tansu dir");
        let port = super::serve::free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Self::spawn(dir.path(), port);
        wait_for_port(&addr, dir.path());
        RestartableBroker {
            addr,
            port,
            dir,
            child,
        }
    }

    fn spawn(dir: &std::path::Path, port: u16) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("broker.log"))
            .expect("broker.log");
        // The sqlite path must be relative: tansu prefixes the working directory.
        std::process::Command::new(tansu_bin())
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start a private tansu (is tansu installed? scripts/services.sh kafka)")
    }

    /// SIGKILL, then the same broker again: on the same database, or with
    /// `lose_storage` on an empty one (a broker replaced, or its disk lost).
    pub fn crash_and_restart(&mut self, lose_storage: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if lose_storage {
            for entry in std::fs::read_dir(self.dir.path())
                .expect("tansu dir")
                .flatten()
            {
                if entry.file_name().to_string_lossy().starts_with("tansu.db") {
                    std::fs::remove_file(entry.path()).expect("remove the broker's database");
                }
            }
        }
        // The port may linger a moment after the kill.
        let start = Instant::now();
        while std::net::TcpStream::connect(&self.addr).is_ok()
            && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(self.dir.path(), self.port);
        wait_for_port(&self.addr, self.dir.path());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

impl Drop for RestartableBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker runtime tests use: `WEIR_KAFKA_BROKERS` if set, else [`private_broker`].
pub fn runtime_brokers() -> String {
    std::env::var("WEIR_KAFKA_BROKERS").unwrap_or_else(|_| private_broker())
}
