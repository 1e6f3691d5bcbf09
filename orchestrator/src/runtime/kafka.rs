//! Kafka plumbing shared by sources, sinks and the dead-letter queue: client
//! settings, a producer that remembers delivery failures, metadata, and the
//! deterministic-replay scan of what a sink topic already holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::record::{output_id_from_headers, OutputId};

/// A Kafka call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kafka {op}: {reason}")]
pub struct KafkaOpError {
    pub op: &'static str,
    pub reason: String,
}

pub(crate) fn op_err(op: &'static str) -> impl Fn(KafkaError) -> KafkaOpError {
    move |e| KafkaOpError {
        op,
        reason: e.to_string(),
    }
}

/// Settings every client shares.
pub fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4");
    // librdkafka's own debug contexts (e.g. `broker,metadata,fetch`), for diagnosis.
    if let Ok(debug) = std::env::var("WEIR_KAFKA_DEBUG") {
        c.set("debug", debug).set("log_level", "7");
    }
    c
}

/// Consumer context of a source. Its group commits are for lag tools only,
/// so a commit that keeps failing (tansu may not find the group's
/// coordinator for a while after a restart) is warned about once, then
/// logged at debug: librdkafka would warn at every checkpoint.
#[derive(Default)]
pub struct SourceContext {
    commit_warned: AtomicBool,
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "COMMITFAIL" {
            if self.commit_warned.swap(true, Ordering::Relaxed) {
                tracing::debug!(fac, "librdkafka: {log_message}");
            } else {
                tracing::warn!(
                    fac,
                    "librdkafka: {log_message} (offsets for lag tools only; further failures at debug)"
                );
            }
            return;
        }
        DefaultClientContext.log(level, fac, log_message)
    }
}

impl ConsumerContext for SourceContext {}

/// Producer context that keeps the first delivery failure (the task checks
/// it after each batch and at checkpoints, and restarts on failure; restore
/// then dedupes whatever did get written), the highest delivered offset per
/// partition (a checkpoint's sink positions, with no broker round trip), and
/// which of the records sent so far have been settled (a checkpoint is
/// durable once every record sent before it is).
#[derive(Default)]
pub struct TrackingContext {
    first_error: Mutex<Option<String>>,
    /// One lock per delivery report for both.
    deliveries: Mutex<Deliveries>,
}

#[derive(Default)]
struct Deliveries {
    /// Highest acknowledged offset per (topic, partition).
    ends: HashMap<(String, i32), i64>,
    settled: SettledWindow,
}

impl ClientContext for TrackingContext {}

impl ProducerContext for TrackingContext {
    /// The record's send sequence number.
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        if let Err((e, _)) = result {
            if let Ok(mut slot) = self.first_error.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }
        if let Ok(mut d) = self.deliveries.lock() {
            if let Ok(m) = result {
                let top = d
                    .ends
                    .entry((m.topic().to_owned(), m.partition()))
                    .or_insert(-1);
                *top = (*top).max(m.offset());
            }
            d.settled.settle(seq as u64);
        }
    }
}

/// Which send sequence numbers are settled (acknowledged or failed): all
/// below `below`, and a bitmap of those just above it. Delivery reports come
/// nearly in send order, so the bitmap stays a few entries long.
#[derive(Debug, Default)]
pub struct SettledWindow {
    below: u64,
    above: std::collections::VecDeque<bool>,
}

impl SettledWindow {
    pub fn settle(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.below) else {
            return;
        };
        let i = i as usize;
        if self.above.len() <= i {
            self.above.resize(i + 1, false);
        }
        self.above[i] = true;
        while self.above.front() == Some(&true) {
            self.above.pop_front();
            self.below += 1;
        }
    }

    /// Every sequence number below this one is settled.
    pub fn settled_below(&self) -> u64 {
        self.below
    }
}

/// A producer with a background poll thread and failure tracking.
pub struct TrackedProducer {
    inner: ThreadedProducer<TrackingContext>,
    /// The next send's sequence number.
    next_seq: AtomicU64,
}

impl TrackedProducer {
    /// `transactional_id` switches on Kafka transactions (Apache Kafka, Redpanda).
    pub fn new(
        brokers: &str,
        transactional_id: Option<&str>,
        request_timeout: Duration,
    ) -> Result<Self, KafkaOpError> {
        let mut c = base_config(brokers);
        // Larger, less frequent batches: with `linger.ms` 5 and batches of
        // at most 10,000 records each producer's broker thread woke so
        // often that, on the 2-core setup the README installs, two task
        // producers took the CPU the broker needed (docs/runtime.md,
        // "Measured"). 50 ms is the most a record waits for its batch.
        c.set("linger.ms", "50")
            .set(
                "socket.timeout.ms",
                request_timeout.as_millis().clamp(10, 300_000).to_string(),
            )
            // A batch's bytes stay capped by `message.max.bytes` (1 MB).
            .set("batch.num.messages", "100000")
            .set("queue.buffering.max.messages", "200000")
            .set("acks", "all")
            .set("message.timeout.ms", "120000")
            // A batch the broker stored but acknowledged too late is sent
            // again by librdkafka; with idempotence the broker (tansu
            // included) recognises its producer id and sequence and keeps
            // one copy, so retries cannot duplicate outputs.
            .set("enable.idempotence", "true")
            // Connect to the brokers as soon as they are known: an idempotent
            // producer must get its producer id before its first write, and
            // with sparse connections no broker was up when it first asked,
            // so it waited for its 500 ms retry timer, often twice (a cold
            // start of ~1.1 s instead of ~0.25 s).
            .set("enable.sparse.connections", "false");
        if let Some(id) = transactional_id {
            c.set("transactional.id", id)
                .set("enable.idempotence", "true")
                .set("transaction.timeout.ms", "120000");
        }
        let inner = c
            .create_with_context(TrackingContext::default())
            .map_err(op_err("create producer"))?;
        Ok(Self {
            inner,
            next_seq: AtomicU64::new(0),
        })
    }

    /// Enqueues a record without waiting; on failure hands it back (for a
    /// retry when librdkafka's queue is full). Every record sent through
    /// the producer must come through here, so [`Self::barrier`] counts it.
    // The same shape as rdkafka's own `send`: the record comes back for a retry.
    #[allow(clippy::result_large_err)]
    pub fn try_send<'a, K, P>(
        &self,
        rec: BaseRecord<'a, K, P>,
    ) -> Result<(), (KafkaError, BaseRecord<'a, K, P>)>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let seq = self.next_seq.load(Ordering::Relaxed);
        let numbered = BaseRecord {
            topic: rec.topic,
            partition: rec.partition,
            payload: rec.payload,
            key: rec.key,
            timestamp: rec.timestamp,
            headers: rec.headers,
            delivery_opaque: seq as usize,
        };
        match self.inner.send(numbered) {
            Ok(()) => {
                self.next_seq.store(seq + 1, Ordering::Relaxed);
                Ok(())
            }
            Err((e, r)) => Err((
                e,
                BaseRecord {
                    topic: r.topic,
                    partition: r.partition,
                    payload: r.payload,
                    key: r.key,
                    timestamp: r.timestamp,
                    headers: r.headers,
                    delivery_opaque: (),
                },
            )),
        }
    }

    /// The sequence number of the next send: a checkpoint at a batch
    /// boundary is durable once every record below it is settled.
    pub fn barrier(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }

    /// Whether every record sent before `barrier` is settled (acknowledged
    /// or failed; [`Self::check`] tells which).
    pub fn settled(&self, barrier: u64) -> bool {
        self.inner
            .context()
            .deliveries
            .lock()
            .is_ok_and(|d| d.settled.settled_below() >= barrier)
    }

    /// Enqueues a record, waiting (blocking) while the local queue is full.
    pub fn send(&self, mut rec: BaseRecord<'_, [u8], [u8]>) -> Result<(), KafkaOpError> {
        let start = Instant::now();
        loop {
            match self.try_send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if start.elapsed() < Duration::from_secs(30) =>
                {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(op_err("produce")(e)),
            }
        }
    }

    /// Waits for every enqueued record's acknowledgement (blocking).
    ///
    /// Polls the queue length every millisecond rather than calling
    /// librdkafka's flush: with the background poll thread consuming the
    /// delivery reports, `ThreadedProducer::flush` sleeps in 100 ms steps,
    /// which would put 100 ms into every checkpoint and every cold start.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaOpError> {
        let deadline = Instant::now() + timeout;
        while self.inner.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(KafkaOpError {
                    op: "flush",
                    reason: format!(
                        "{} records not acknowledged within {timeout:?}",
                        self.inner.in_flight_count()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.check()
    }

    /// The first delivery failure so far, if any.
    pub fn check(&self) -> Result<(), KafkaOpError> {
        let err = self
            .inner
            .context()
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone());
        match err {
            Some(reason) => Err(KafkaOpError {
                op: "delivery",
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Per partition of `topic`, one past the highest offset delivered so far.
    pub fn delivered_ends(&self, topic: &str) -> BTreeMap<i32, i64> {
        self.inner
            .context()
            .deliveries
            .lock()
            .map(|d| {
                d.ends
                    .iter()
                    .filter(|((t, _), _)| t == topic)
                    .map(|((_, p), o)| (*p, o + 1))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn inner(&self) -> &ThreadedProducer<TrackingContext> {
        &self.inner
    }
}

/// How long metadata and offset queries may take. Generous: a broker
/// starved of CPU (tansu on a busy 2-core machine) answers in seconds.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A metadata-only client (blocking calls; run them off the executor).
pub fn admin_consumer(brokers: &str) -> Result<BaseConsumer, KafkaOpError> {
    base_config(brokers)
        .create()
        .map_err(op_err("create client"))
}

/// Partition ids of `topic` (blocking).
pub fn partitions_of(client: &BaseConsumer, topic: &str) -> Result<Vec<i32>, KafkaOpError> {
    let md = client
        .fetch_metadata(Some(topic), QUERY_TIMEOUT)
        .map_err(op_err("metadata"))?;
    let t = md.topics().first().ok_or_else(|| KafkaOpError {
        op: "metadata",
        reason: format!("topic `{topic}` not in metadata"),
    })?;
    if let Some(e) = t.error() {
        return Err(KafkaOpError {
            op: "metadata",
            reason: format!("topic `{topic}`: {:?}", RDKafkaErrorCode::from(e)),
        });
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort_unstable();
    if ps.is_empty() {
        return Err(KafkaOpError {
            op: "metadata",
            reason: format!("topic `{topic}` does not exist"),
        });
    }
    Ok(ps)
}

/// End offsets (high watermarks) of the given partitions (blocking).
pub fn end_offsets(
    client: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, KafkaOpError> {
    partitions
        .iter()
        .map(|p| {
            client
                .fetch_watermarks(topic, *p, QUERY_TIMEOUT)
                .map(|(_, hi)| (*p, hi))
                .map_err(op_err("watermarks"))
        })
        .collect()
}

/// Deterministic replay: reads `topic` from `from` (partition → offset) to
/// its end and returns the outputs already written whose source position
/// `wanted` accepts, each with where it lies (partition, offset). `read_committed` is used for the transactional
/// path, so aborted outputs count as not written.
///
/// "The end" is where the broker reports end-of-partition while fetching,
/// not ListOffsets: tansu 0.6 answers ListOffsets(latest) with the base
/// offset of the last batch + 1, which can be far below the real end (see
/// docs/kafka-on-tansu.md). Call it only once the previous writer is closed.
pub fn scan_written(
    brokers: &str,
    topic: &str,
    from: &BTreeMap<i32, i64>,
    read_committed: bool,
    wanted: &(dyn Fn(&OutputId) -> bool + Send + Sync),
) -> Result<HashMap<OutputId, (i32, i64)>, KafkaOpError> {
    let mut seen = HashMap::new();
    if from.is_empty() {
        return Ok(seen);
    }
    let consumer: BaseConsumer = base_config(brokers)
        .set("group.id", "weir-replay-scan")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "20")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        )
        .create()
        .map_err(op_err("create replay consumer"))?;
    let mut tpl = TopicPartitionList::new();
    for (p, start) in from {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*start))
            .map_err(op_err("assign"))?;
    }
    consumer.assign(&tpl).map_err(op_err("assign"))?;
    let mut remaining: HashSet<i32> = from.keys().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(KafkaOpError {
                op: "replay scan",
                reason: format!("sink `{topic}` not read to its end within 300 s"),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
            }
            Some(Err(e)) => return Err(op_err("replay fetch")(e)),
            Some(Ok(msg)) => {
                if let Some(hs) = msg.headers() {
                    let id = output_id_from_headers(
                        hs.iter().map(|h| (h.key, h.value.unwrap_or_default())),
                    );
                    if let Some(id) = id.filter(|id| wanted(id)) {
                        seen.insert(id, (msg.partition(), msg.offset()));
                    }
                }
            }
        }
    }
    Ok(seen)
}

/// Shared handle so a blocking closure can own the producer.
pub type SharedProducer = Arc<TrackedProducer>;

#[cfg(test)]
mod tests {
    use super::SettledWindow;

    #[test]
    fn a_barrier_is_settled_only_when_every_send_before_it_is() {
        let mut w = SettledWindow::default();
        assert_eq!(w.settled_below(), 0, "nothing sent, nothing to wait for");
        // Reports for other partitions overtake earlier sends.
        w.settle(2);
        w.settle(1);
        assert_eq!(w.settled_below(), 0, "send 0 is still in flight");
        w.settle(0);
        assert_eq!(w.settled_below(), 3);
        w.settle(5);
        w.settle(3);
        assert_eq!(w.settled_below(), 4, "4 in flight holds 5 back");
        w.settle(4);
        assert_eq!(w.settled_below(), 6);
        w.settle(1);
        assert_eq!(w.settled_below(), 6, "a report twice changes nothing");
    }
}
