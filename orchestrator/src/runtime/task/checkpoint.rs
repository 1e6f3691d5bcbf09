//! Checkpoints at batch boundaries: flush the sinks, measure the Kafka
//! sinks' ends, snapshot every partition; and, once a checkpoint is
//! durable, commit its offsets to the consumer group for lag tools.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::{Task, TaskError};
use crate::runtime::checkpoint::{PartitionCheckpoint, SinkOffsets};
use crate::runtime::kafka::{self, KafkaOpError};
use crate::runtime::sinks::Sink;

impl Task {
    pub(super) fn check_deliveries(&self) -> Result<(), TaskError> {
        match &*self.producer {
            Some(p) => Ok(p.check()?),
            None => Ok(()),
        }
    }

    /// Flushes every sink, measures the Kafka sinks' ends and snapshots
    /// every partition. Nothing is produced between the flush and the
    /// measurement, so every later output lands at or after those offsets.
    pub(super) async fn checkpoint(&mut self) -> Result<Vec<PartitionCheckpoint>, TaskError> {
        for s in self.sinks.iter_mut() {
            s.flush().await?;
        }
        if let Some(p) = &*self.producer {
            let p = p.clone();
            let txn = self.env.transactional;
            tokio::task::spawn_blocking(move || -> Result<(), KafkaOpError> {
                p.flush(Duration::from_secs(60))?;
                if txn {
                    p.inner()
                        .commit_transaction(Duration::from_secs(60))
                        .map_err(kafka::op_err("commit transaction"))?;
                    p.inner()
                        .begin_transaction()
                        .map_err(kafka::op_err("begin transaction"))?;
                }
                Ok(())
            })
            .await
            .map_err(|e| TaskError::Setup(e.to_string()))??;
        }
        // Operators that keep state on their side write it in now.
        let ops = self
            .instances
            .as_mut()
            .ok_or_else(|| TaskError::Setup("operators lost".into()))?;
        if let Some(progress) = self.progress.as_mut() {
            for (tp, p) in progress.iter_mut() {
                ops.save_state(tp.partition, &mut p.state)?;
            }
        }
        let mut sink_offsets = SinkOffsets::new();
        for s in self.sinks.iter() {
            if let Sink::Kafka(k) = s {
                sink_offsets.insert(k.topic().to_owned(), k.end_offsets());
            }
        }
        let progress = self
            .progress
            .as_ref()
            .ok_or_else(|| TaskError::Setup("progress lost".into()))?;
        Ok(progress
            .iter()
            .map(|(tp, p)| PartitionCheckpoint {
                tp: tp.clone(),
                next_offset: p.next_offset,
                watermark: self.watermarks.partition(tp.partition),
                sink_offsets: sink_offsets.clone(),
                state: p.state.snapshot(),
            })
            .collect())
    }

    /// Commits the checkpointed offsets to the consumer group, best effort:
    /// they are for lag tools; the checkpoint is the source of truth.
    pub(super) fn committed(&self, checkpoint: &str) {
        let Some(progress) = &self.progress else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        for (tp, p) in progress.iter().filter(|(_, p)| p.next_offset >= 0) {
            let _ =
                tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(p.next_offset));
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "consumer group commit failed");
        }
        tracing::debug!(checkpoint, "offsets committed to the consumer group");
    }
}
