//! One batch: decode, run the operators on a blocking thread, wait out the
//! rate limit, write the sinks, send dead letters, then advance the offsets
//! past everything read.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::{Task, TaskError};
use crate::runtime::kafka;
use crate::runtime::metrics::BatchCounts;
use crate::runtime::operator::BatchContext;
use crate::runtime::record::{
    DeadLetter, Output, SourcePos, SourceRecord, H_DLQ_MODULE, H_DLQ_REASON, H_SIDE_OUTPUT,
    H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC,
};
use crate::runtime::topology::TopicPartition;

impl Task {
    /// Decodes, processes and writes one batch.
    pub(super) async fn process(
        &mut self,
        batch: Vec<BorrowedMessage<'_>>,
    ) -> Result<BatchCounts, TaskError> {
        let mut counts = BatchCounts::default();
        // Per partition: its records, and its watermark right after each.
        let mut groups: BTreeMap<TopicPartition, (Vec<SourceRecord>, Vec<Option<i64>>)> =
            BTreeMap::new();
        let mut dead: Vec<DeadLetter> = Vec::new();
        // A repartition topic's records carry their original source position;
        // dead letters name that, not the internal topic.
        let mut original: HashMap<(i32, i64), SourcePos> = HashMap::new();
        for m in &batch {
            let decoded = self.decoder.decode(m);
            counts.records_in += 1;
            counts.bytes_in += decoded.record.size() as u64;
            let (pos, record) = (decoded.pos, decoded.record);
            if let Some(origin) = decoded.origin {
                original.insert((pos.partition, pos.offset), origin);
            }
            match decoded.checked {
                Ok(()) => {
                    self.watermarks.observe(pos.partition, record.timestamp_ms);
                    let tp = TopicPartition {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                    };
                    let mark = self.watermarks.partition(pos.partition);
                    let (recs, marks) = groups.entry(tp).or_default();
                    recs.push(SourceRecord { pos, record });
                    marks.push(mark);
                }
                Err(e) => dead.push(DeadLetter {
                    origin: pos,
                    record,
                    reason: e.to_string(),
                    module: "decode".into(),
                }),
            }
        }
        // Offsets advance past everything read, including dead letters.
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for m in &batch {
            next.insert(
                TopicPartition {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                },
                m.offset() + 1,
            );
        }
        drop(batch);

        // Operators on a blocking thread, with the state moved in and out.
        let mut instances = self
            .instances
            .take()
            .ok_or_else(|| TaskError::Setup("operators lost".into()))?;
        let mut progress = self
            .progress
            .take()
            .ok_or_else(|| TaskError::Setup("progress lost".into()))?;
        let marks: BTreeMap<i32, Option<i64>> = groups
            .keys()
            .map(|tp| (tp.partition, self.watermarks.partition(tp.partition)))
            .collect();
        let op_start = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let mut outputs = Vec::new();
            let mut dead = Vec::new();
            let mut failure = None;
            for (tp, (recs, record_marks)) in groups {
                let Some(p) = progress.get_mut(&tp) else {
                    continue;
                };
                let ctx = BatchContext {
                    partition: tp.partition,
                    watermark_ms: marks.get(&tp.partition).copied().flatten(),
                    record_watermarks: &record_marks,
                };
                match instances.run(recs, &mut p.state, ctx) {
                    Ok((o, d)) => {
                        outputs.extend(o);
                        dead.extend(d);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            (instances, progress, outputs, dead, failure)
        })
        .await
        .map_err(|e| TaskError::Setup(format!("operator thread: {e}")))?;
        let (instances, progress, outputs, more_dead, failure) = joined;
        counts.operator_ns = op_start.elapsed().as_nanos() as u64;
        self.instances = Some(instances);
        self.stats_stale = true;
        if self.stats_at.elapsed() >= STATS_EVERY {
            self.refresh_operator_stats();
        }
        self.progress = Some(progress);
        if let Some(e) = failure {
            return Err(e.into());
        }
        dead.extend(more_dead);

        if let Some(rate) = &self.env.rate {
            let now_ms = self.env.epoch.elapsed().as_millis() as u64;
            let wait = rate
                .lock()
                .map(|mut b| b.take(outputs.len() as u64, now_ms))
                .unwrap_or_default();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }

        let each = routed(&outputs, &self.routes);
        for (sink, outs) in self.sinks.iter_mut().zip(each) {
            dead.extend(sink.write(&outs).await?);
        }
        counts.records_out = outputs.len() as u64;
        counts.bytes_out = outputs.iter().map(|o| o.record.size() as u64).sum();
        counts.dead_lettered = dead.len() as u64;
        if !original.is_empty() {
            for d in &mut dead {
                if let Some(o) = original.get(&(d.origin.partition, d.origin.offset)) {
                    d.origin = o.clone();
                }
            }
        }
        self.dead_letter(&dead).await?;
        if let Some(p) = &*self.producer {
            p.check()?;
        }

        if let Some(progress) = self.progress.as_mut() {
            for (tp, off) in &next {
                if let Some(p) = progress.get_mut(tp) {
                    p.next_offset = *off;
                }
            }
        }
        if let Ok(mut pos) = self.metrics.positions.lock() {
            pos.extend(next);
        }
        Ok(counts)
    }

    /// Publishes the operators' own figures (matches, partial matches,
    /// memory) if a batch ran since they were last published. Called after
    /// batches at most every [`STATS_EVERY`], and by the loop's idle tick, so
    /// the figures of the last batches before the input goes quiet show too.
    pub(super) fn refresh_operator_stats(&mut self) {
        if !self.stats_stale {
            return;
        }
        if let Some(instances) = &self.instances {
            self.stats_at = Instant::now();
            self.stats_stale = false;
            self.metrics.set_operator_stats(instances.stats());
        }
    }

    async fn dead_letter(&mut self, dead: &[DeadLetter]) -> Result<(), TaskError> {
        if dead.is_empty() {
            return Ok(());
        }
        let (Some(topic), Some(producer)) = (&self.plan.spec.dead_letter_topic, &*self.producer)
        else {
            for d in dead {
                tracing::warn!(
                    job = %self.plan.key.job, source = %d.origin.topic, partition = d.origin.partition,
                    offset = d.origin.offset, reason = %d.reason, "bad record dropped: no dead_letter_topic"
                );
            }
            return Ok(());
        };
        for d in dead {
            let partition = d.origin.partition.to_string();
            let offset = d.origin.offset.to_string();
            loop {
                let headers = OwnedHeaders::new_with_capacity(5)
                    .insert(Header {
                        key: H_DLQ_REASON,
                        value: Some(d.reason.as_bytes()),
                    })
                    .insert(Header {
                        key: H_DLQ_MODULE,
                        value: Some(d.module.as_bytes()),
                    })
                    .insert(Header {
                        key: H_SOURCE_TOPIC,
                        value: Some(d.origin.topic.as_bytes()),
                    })
                    .insert(Header {
                        key: H_SOURCE_PARTITION,
                        value: Some(partition.as_bytes()),
                    })
                    .insert(Header {
                        key: H_SOURCE_OFFSET,
                        value: Some(offset.as_bytes()),
                    });
                let mut rec = BaseRecord::to(topic)
                    .payload(&d.record.value[..])
                    .headers(headers);
                if let Some(k) = &d.record.key {
                    rec = rec.key(&k[..]);
                }
                match producer.try_send(rec) {
                    Ok(()) => break,
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        _,
                    )) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err((e, _)) => return Err(kafka::op_err("dead letter")(e).into()),
                }
            }
        }
        Ok(())
    }
}

/// How often operators' own figures are refreshed (they may walk state).
const STATS_EVERY: Duration = Duration::from_secs(1);

/// What each sink writes, in sink order: a job's sink every output without a
/// side-output header, a side sink only the outputs tagged with its side.
/// Without side outputs every sink writes the batch as it is.
fn routed<'a>(outputs: &'a [Output], routes: &[Option<String>]) -> Vec<Cow<'a, [Output]>> {
    let side = |o: &Output| {
        o.record
            .headers
            .iter()
            .find(|(k, _)| k == H_SIDE_OUTPUT)
            .map(|(_, v)| v.clone())
    };
    if !outputs.iter().any(|o| side(o).is_some()) {
        return routes
            .iter()
            .map(|r| match r {
                None => Cow::Borrowed(outputs),
                Some(_) => Cow::Owned(Vec::new()),
            })
            .collect();
    }
    routes
        .iter()
        .map(|r| {
            Cow::Owned(
                outputs
                    .iter()
                    .filter(|o| match (r, side(o)) {
                        (None, None) => true,
                        (Some(tag), Some(s)) => s == tag.as_bytes(),
                        _ => false,
                    })
                    .cloned()
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::record::Record;

    fn out(offset: i64, side: Option<&str>) -> Output {
        let mut record = Record::value(format!("{offset}"));
        if let Some(s) = side {
            record
                .headers
                .push((H_SIDE_OUTPUT.into(), s.to_owned().into_bytes().into()));
        }
        Output {
            origin: SourcePos {
                topic: "in".into(),
                partition: 0,
                offset,
            },
            seq: 0,
            record,
        }
    }

    fn offsets(outs: &[Output]) -> Vec<i64> {
        outs.iter().map(|o| o.origin.offset).collect()
    }

    #[test]
    fn side_outputs_go_only_to_their_side_topic() {
        let routes = [
            None,
            Some("fraud:timed_out".to_owned()),
            None,
            Some("fraud:late".into()),
        ];
        let batch = [
            out(1, None),
            out(2, Some("fraud:timed_out")),
            out(3, None),
            out(4, Some("fraud:late")),
        ];
        let each = routed(&batch, &routes);
        assert_eq!(offsets(&each[0]), [1, 3]);
        assert_eq!(offsets(&each[1]), [2]);
        assert_eq!(offsets(&each[2]), [1, 3]);
        assert_eq!(offsets(&each[3]), [4]);

        let plain = [out(1, None), out(2, None)];
        let each = routed(&plain, &routes);
        assert!(
            matches!(each[0], Cow::Borrowed(_)),
            "no copy without side outputs"
        );
        assert_eq!(offsets(&each[2]), [1, 2]);
        assert!(each[1].is_empty() && each[3].is_empty());
    }
}
