//! Topic tools: create a topic, produce lines, describe and read a
//! partition. `weir topic` runs them against the broker itself (operators,
//! laptops); `weir serve` runs them for tenants behind the HTTP API, after
//! checking the topic is in the tenant's namespace, so a tenant needs no
//! access to the broker.
//!
//! The produce and read functions block: call them from a blocking thread.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kafka::base_config;

/// A broker that did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Kafka at {brokers} is unreachable or refused `{op}`: {reason}")]
    Broker {
        brokers: String,
        op: &'static str,
        reason: String,
    },
    #[error("topic `{0}` does not exist or has no partitions")]
    NoSuchTopic(String),
    #[error("topic `{topic}` has no partition {partition}")]
    NoSuchPartition { topic: String, partition: i32 },
}

/// Maps a client error of `op` against `brokers`.
pub(crate) fn broker(
    brokers: &str,
    op: &'static str,
) -> impl Fn(rdkafka::error::KafkaError) -> TopicError {
    let brokers = brokers.to_owned();
    move |e| TopicError::Broker {
        brokers: brokers.clone(),
        op,
        reason: e.to_string(),
    }
}

/// One record of a topic, as `weir topic tail` and the API show it. Keys,
/// values and headers are shown as UTF-8 (invalid bytes replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopicRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    /// The record's timestamp (ms since the Unix epoch), if it has one.
    pub timestamp_ms: Option<i64>,
    pub headers: BTreeMap<String, String>,
}

impl TopicRecord {
    pub fn of<M: Message>(m: &M) -> Self {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        TopicRecord {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(text),
            value: m.payload().map(text).unwrap_or_default(),
            timestamp_ms: m.timestamp().to_millis(),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(text).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A partition's offsets: records are at `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PartitionRange {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// Creates `topic`; false if it already existed. Records older than
/// `retention` are deleted by the broker, so its storage stays bounded.
pub async fn create(
    brokers: &str,
    topic: &str,
    partitions: i32,
    retention: Duration,
) -> Result<bool, TopicError> {
    let admin: AdminClient<DefaultClientContext> = base_config(brokers)
        .create()
        .map_err(broker(brokers, "create a client"))?;
    let retention_ms = retention.as_millis().to_string();
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", &retention_ms);
    let results = admin
        .create_topics(
            [&t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(broker(brokers, "create topic"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(TopicError::Broker {
            brokers: brokers.to_owned(),
            op: "create topic",
            reason: code.to_string(),
        }),
        None => Ok(false),
    }
}

/// The key of a line: the top-level JSON field `field` (strings as they
/// are, anything else as JSON); none if the line is not a JSON object
/// with that field.
pub fn key_of(line: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let k = v.get(field)?;
    Some(
        k.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| k.to_string()),
    )
}

/// Produces one record per non-blank line, keyed by `key_field` if given,
/// and waits until the broker acknowledged them all. Returns how many.
pub fn produce_lines<'a>(
    brokers: &str,
    topic: &str,
    lines: impl IntoIterator<Item = &'a str>,
    key_field: Option<&str>,
) -> Result<usize, TopicError> {
    let producer: ThreadedProducer<DefaultProducerContext> = base_config(brokers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(broker(brokers, "create a producer"))?;
    let mut n = 0;
    for line in lines.into_iter().filter(|l| !l.trim().is_empty()) {
        let key = key_field.and_then(|f| key_of(line, f));
        let mut pending = BaseRecord::<str, str>::to(topic).payload(line);
        if let Some(k) = key.as_deref() {
            pending = pending.key(k);
        }
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    producer.poll(Duration::from_millis(50));
                    pending = r;
                }
                Err((e, _)) => return Err(broker(brokers, "produce")(e)),
            }
        }
        n += 1;
    }
    producer
        .flush(Duration::from_secs(15))
        .map_err(broker(brokers, "produce"))?;
    Ok(n)
}

/// A consumer for reading by assignment, committing nothing.
pub(crate) fn reader(brokers: &str) -> Result<BaseConsumer, TopicError> {
    base_config(brokers)
        .set("group.id", "weir-topic-read")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(broker(brokers, "create a consumer"))
}

/// Every partition of `topic` with its offsets.
pub fn describe(brokers: &str, topic: &str) -> Result<Vec<PartitionRange>, TopicError> {
    let consumer = reader(brokers)?;
    let timeout = Duration::from_secs(10);
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(broker(brokers, "read metadata"))?;
    let ids: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if ids.is_empty() {
        return Err(TopicError::NoSuchTopic(topic.to_owned()));
    }
    ids.into_iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .map_err(broker(brokers, "read offsets"))?;
            Ok(PartitionRange {
                partition,
                low,
                high,
            })
        })
        .collect()
}

/// Up to `limit` records of `topic`'s `partition` from `offset` on, waiting
/// at most `wait` for the first (less if the partition's end is reached).
pub fn read(
    brokers: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    limit: usize,
    wait: Duration,
) -> Result<Vec<TopicRecord>, TopicError> {
    let consumer = reader(brokers)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| match e {
            rdkafka::error::KafkaError::MetadataFetch(_) => TopicError::NoSuchPartition {
                topic: topic.to_owned(),
                partition,
            },
            e => broker(brokers, "read offsets")(e),
        })?;
    let from = offset.max(low);
    let mut out = Vec::new();
    if limit == 0 || (from >= high && wait.is_zero()) {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))
        .map_err(broker(brokers, "assign"))?;
    consumer.assign(&tpl).map_err(broker(brokers, "assign"))?;
    // Records that are there come as soon as the consumer has connected
    // (a fresh one takes a few hundred ms); only waiting for new ones is
    // bounded by `wait`.
    let floor = if from < high {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(200)
    };
    let deadline = Instant::now() + wait.max(floor);
    while out.len() < limit {
        // Once what was there when asked is read, return it at once.
        if out
            .last()
            .is_some_and(|r: &TopicRecord| r.offset + 1 >= high)
        {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(m)) => out.push(TopicRecord::of(&m)),
            Some(Err(e)) => return Err(broker(brokers, "read")(e)),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_a_top_level_field_as_text() {
        assert_eq!(key_of(r#"{"c":"ann","n":1}"#, "c").as_deref(), Some("ann"));
        assert_eq!(key_of(r#"{"c":7}"#, "c").as_deref(), Some("7"));
        assert_eq!(
            key_of(r#"{"c":{"x":1}}"#, "c").as_deref(),
            Some(r#"{"x":1}"#)
        );
        assert_eq!(key_of(r#"{"d":1}"#, "c"), None);
        assert_eq!(key_of("not json", "c"), None);
    }
}
