//! Kafka plumbing shared by sources, sinks and the dead-letter queue: client
//! settings, a producer that remembers delivery failures, metadata, and the
//! deterministic-replay scan of what a sink topic already holds.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
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
    c
}

/// Producer context that keeps the first delivery failure: the task checks
/// it after each batch and at checkpoints, and restarts on failure (restore
/// then dedupes whatever did get written).
#[derive(Default)]
pub struct TrackingContext {
    first_error: Mutex<Option<String>>,
}

impl ClientContext for TrackingContext {}

impl ProducerContext for TrackingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if let Ok(mut slot) = self.first_error.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// A producer with a background poll thread and failure tracking.
pub struct TrackedProducer {
    inner: ThreadedProducer<TrackingContext>,
}

impl TrackedProducer {
    /// `transactional_id` switches on Kafka transactions (Apache Kafka, Redpanda).
    pub fn new(brokers: &str, transactional_id: Option<&str>) -> Result<Self, KafkaOpError> {
        let mut c = base_config(brokers);
        c.set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "200000")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("enable.idempotence", "true");
        if let Some(id) = transactional_id {
            c.set("transactional.id", id)
                .set("transaction.timeout.ms", "60000");
        }
        let inner = c
            .create_with_context(TrackingContext::default())
            .map_err(op_err("create producer"))?;
        Ok(Self { inner })
    }

    /// Enqueues a record, waiting (blocking) while the local queue is full.
    pub fn send(&self, mut rec: BaseRecord<'_, [u8], [u8]>) -> Result<(), KafkaOpError> {
        let start = Instant::now();
        loop {
            match self.inner.send(rec) {
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
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaOpError> {
        self.inner.flush(timeout).map_err(op_err("flush"))?;
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

    pub fn inner(&self) -> &ThreadedProducer<TrackingContext> {
        &self.inner
    }
}

/// A metadata-only client (blocking calls; run them off the executor).
pub fn admin_consumer(brokers: &str) -> Result<BaseConsumer, KafkaOpError> {
    base_config(brokers)
        .create()
        .map_err(op_err("create client"))
}

/// Partition ids of `topic` (blocking).
pub fn partitions_of(client: &BaseConsumer, topic: &str) -> Result<Vec<i32>, KafkaOpError> {
    let md = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
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
                .fetch_watermarks(topic, *p, Duration::from_secs(10))
                .map(|(_, hi)| (*p, hi))
                .map_err(op_err("watermarks"))
        })
        .collect()
}

/// Deterministic replay: reads `topic` from `from` (partition → offset) to
/// its current end and returns the ids of outputs already written whose
/// source position `wanted` accepts. `read_committed` is used for the
/// transactional path, so aborted outputs count as not written.
pub fn scan_written(
    brokers: &str,
    topic: &str,
    from: &BTreeMap<i32, i64>,
    read_committed: bool,
    wanted: &(dyn Fn(&OutputId) -> bool + Send + Sync),
) -> Result<HashSet<OutputId>, KafkaOpError> {
    let mut seen = HashSet::new();
    if from.is_empty() {
        return Ok(seen);
    }
    let consumer: BaseConsumer = base_config(brokers)
        .set("group.id", "weir-replay-scan")
        .set("enable.auto.commit", "false")
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
    let mut remaining = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (p, start) in from {
        let (_, hi) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .map_err(op_err("watermarks"))?;
        if hi > *start {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*start))
                .map_err(op_err("assign"))?;
            remaining.insert(*p, hi);
        }
    }
    if remaining.is_empty() {
        return Ok(seen);
    }
    consumer.assign(&tpl).map_err(op_err("assign"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(KafkaOpError {
                op: "replay scan",
                reason: format!("sink `{topic}` not read to its end within 120 s"),
            });
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // With read_committed, aborted tails may never be delivered:
            // stop once the position has passed the end.
            if read_committed {
                let pos = consumer.position().map_err(op_err("position"))?;
                remaining.retain(|p, hi| {
                    pos.find_partition(topic, *p)
                        .and_then(|e| e.offset().to_raw())
                        .is_none_or(|o| o < *hi)
                });
            }
            continue;
        };
        let msg = msg.map_err(op_err("replay fetch"))?;
        if let Some(hs) = msg.headers() {
            let id =
                output_id_from_headers(hs.iter().map(|h| (h.key, h.value.unwrap_or_default())));
            if let Some(id) = id.filter(|id| wanted(id)) {
                seen.insert(id);
            }
        }
        if let Some(hi) = remaining.get(&msg.partition()) {
            if msg.offset() + 1 >= *hi {
                remaining.remove(&msg.partition());
            }
        }
    }
    Ok(seen)
}

/// Shared handle so a blocking closure can own the producer.
pub type SharedProducer = Arc<TrackedProducer>;
