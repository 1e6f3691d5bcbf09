//! The Kafka sink. Every output carries its source position in headers.
//! After a restore, outputs that the scan found already written (see
//! [`crate::runtime::kafka::scan_written`]) are skipped instead of written
//! again: deterministic replay, exactly-once without broker transactions.
//! A checkpoint taken before every such output has come round again
//! records, per partition, no offset past the first one still pending, so a
//! second restore scans from there and still finds them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::SinkError;
use crate::runtime::kafka::{end_offsets, SharedProducer};
use crate::runtime::record::{encode_id, Output, OutputId, TopicTags, H_ID};

pub struct KafkaSink {
    topic: String,
    producer: SharedProducer,
    partitions: Vec<i32>,
    /// Outputs already on the topic from before the restore, with where
    /// they lie (partition, offset); each is removed when replay reaches it.
    already_written: HashMap<OutputId, (i32, i64)>,
    /// Per partition, an offset at or below which every future output of
    /// this task lands: from the restored checkpoint or measured at setup.
    floor: BTreeMap<i32, i64>,
    meta: Arc<BaseConsumer>,
    tags: TopicTags,
    /// The `weir-id` value being written, reused from output to output.
    id_buf: Vec<u8>,
}

impl KafkaSink {
    pub fn new(
        topic: String,
        producer: SharedProducer,
        partitions: Vec<i32>,
        meta: Arc<BaseConsumer>,
    ) -> Self {
        Self {
            topic,
            producer,
            partitions,
            already_written: HashMap::new(),
            floor: BTreeMap::new(),
            meta,
            tags: TopicTags::default(),
            id_buf: Vec::with_capacity(32),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// Installs the replay set found by the restore scan.
    pub fn skip_already_written(&mut self, ids: HashMap<OutputId, (i32, i64)>) {
        self.already_written = ids;
    }

    /// How many replayed outputs are still expected (and will be skipped).
    pub fn pending_skips(&self) -> usize {
        self.already_written.len()
    }

    fn err(&self, reason: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: format!("kafka:{}", self.topic),
            reason: reason.to_string(),
        }
    }

    pub async fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        self.producer.check().map_err(|e| self.err(e))?;
        for out in outputs {
            let id = self.tags.id(out);
            if !self.already_written.is_empty() && self.already_written.remove(&id).is_some() {
                continue;
            }
            self.id_buf.clear();
            encode_id(&id, &mut self.id_buf);
            loop {
                let mut headers = OwnedHeaders::new_with_capacity(out.record.headers.len() + 1);
                for (k, v) in &out.record.headers {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(&v[..]),
                    });
                }
                headers = headers.insert(Header {
                    key: H_ID,
                    value: Some(&self.id_buf[..]),
                });
                let mut rec = BaseRecord::to(&self.topic)
                    .payload(&out.record.value[..])
                    .headers(headers)
                    .timestamp(out.record.timestamp_ms);
                if let Some(k) = &out.record.key {
                    rec = rec.key(&k[..]);
                }
                match self.producer.try_send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // Back-pressure: librdkafka's queue drains as the broker acks.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(self.err(e)),
                }
            }
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(60)))
            .await
            .map_err(|e| self.err(e))?
            .map_err(|e| self.err(e))
    }

    /// Sets the floor from a restored checkpoint, or (fresh start, before
    /// anything is written) from the topic's current end offsets.
    pub async fn init_floor(
        &mut self,
        restored: Option<BTreeMap<i32, i64>>,
    ) -> Result<(), SinkError> {
        self.floor = match restored {
            Some(f) => f,
            None => {
                let (meta, topic, parts) = (
                    self.meta.clone(),
                    self.topic.clone(),
                    self.partitions.clone(),
                );
                tokio::task::spawn_blocking(move || end_offsets(&meta, &topic, &parts))
                    .await
                    .map_err(|e| self.err(e))?
                    .map_err(|e| self.err(e))?
            }
        };
        Ok(())
    }

    /// After a flush: per partition, the offset a restore from this
    /// checkpoint scans from. Needs no broker round trip.
    pub fn end_offsets(&self) -> BTreeMap<i32, i64> {
        checkpoint_ends(
            &self.floor,
            self.producer.delivered_ends(&self.topic),
            self.already_written.values().copied(),
        )
    }
}

/// Per partition: where this task's next output lands at the earliest (past
/// its last delivered output, never below the floor), but no later than the
/// first output still `pending` a skip. Outputs of different source
/// partitions interleave differently on replay, so new outputs can be
/// written past already-written ones that replay has not reached yet; a
/// scan from beyond those would miss them and a second restore would write
/// them twice.
fn checkpoint_ends(
    floor: &BTreeMap<i32, i64>,
    delivered: BTreeMap<i32, i64>,
    pending: impl Iterator<Item = (i32, i64)>,
) -> BTreeMap<i32, i64> {
    let mut ends = floor.clone();
    for (p, o) in delivered {
        let e = ends.entry(p).or_insert(o);
        *e = (*e).max(o);
    }
    for (p, o) in pending {
        let e = ends.entry(p).or_insert(o);
        *e = (*e).min(o);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn ends_are_past_the_deliveries_and_never_below_the_floor() {
        let floor = map(&[(0, 10), (1, 20)]);
        let ends = checkpoint_ends(&floor, map(&[(0, 15), (2, 3)]), std::iter::empty());
        assert_eq!(ends, map(&[(0, 15), (1, 20), (2, 3)]));
    }

    #[test]
    fn a_pending_skip_holds_its_partition_back_to_its_offset() {
        // Replay wrote new outputs up to offset 40 on partition 0 while
        // outputs at 12 and 17 (from another source partition) still wait.
        let floor = map(&[(0, 10), (1, 20)]);
        let pending = [(0, 17), (0, 12), (1, 25)];
        let ends = checkpoint_ends(&floor, map(&[(0, 40)]), pending.into_iter());
        assert_eq!(ends, map(&[(0, 12), (1, 20)]));
    }

    #[test]
    fn a_pending_skip_below_a_measured_floor_still_counts() {
        // A partition not restored measures its floor at the topic's end;
        // an output found by the scan below it must still be scanned again.
        let ends = checkpoint_ends(&map(&[(0, 50)]), BTreeMap::new(), [(0, 44)].into_iter());
        assert_eq!(ends, map(&[(0, 44)]));
    }
}
