//! Checkpoints at batch boundaries: flush the sinks other than Kafka,
//! measure the Kafka sinks' ends, snapshot every partition, and answer once
//! every record sent before it is acknowledged; and, once a checkpoint is
//! durable, commit its offsets to the consumer group for lag tools.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::{Task, TaskError};
use crate::runtime::checkpoint::{PartitionCheckpoint, SinkOffsets};
use crate::runtime::kafka::{self, KafkaOpError};
use crate::runtime::sinks::Sink;

/// How long a checkpoint waits for its records' acknowledgements.
pub(super) const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// How often a checkpoint in flight looks whether its records are settled.
pub(super) const SETTLE_POLL: Duration = Duration::from_millis(1);

/// A checkpoint's parts, and whether it waits for records in flight.
pub(super) struct Taken {
    pub parts: Vec<PartitionCheckpoint>,
    /// Durable once every record sent before this sequence number is
    /// settled; `None` when it already is.
    pub barrier: Option<u64>,
}

pub(super) fn unsettled() -> TaskError {
    TaskError::Kafka(KafkaOpError {
        op: "flush",
        reason: format!(
            "records sent before the checkpoint not acknowledged within {SETTLE_LIMIT:?}"
        ),
    })
}

impl Task {
    pub(super) fn check_deliveries(&self) -> Result<(), TaskError> {
        match &*self.producer {
            Some(p) => Ok(p.check()?),
            None => Ok(()),
        }
    }

    /// A checkpoint that holds the task until it is durable: every sink
    /// flushed, every record sent before it acknowledged.
    pub(super) async fn checkpoint(&mut self) -> Result<Vec<PartitionCheckpoint>, TaskError> {
        let taken = self.take_checkpoint().await?;
        if let Some(barrier) = taken.barrier {
            self.wait_settled(barrier, Instant::now() + SETTLE_LIMIT)
                .await?;
        }
        Ok(taken.parts)
    }

    /// Snapshots every partition at this batch boundary. Sinks other than
    /// Kafka are flushed here. The Kafka producer is not waited for (unless
    /// transactional): the checkpoint is durable once every record sent
    /// before it ([`Taken::barrier`]) is acknowledged, and the task reads
    /// on meanwhile, so a broker slow to acknowledge does not stall it. The
    /// sink positions are taken now, from what was acknowledged so far:
    /// every record sent later lands past them, and a restore's scan from
    /// there also finds the records still in flight.
    pub(super) async fn take_checkpoint(&mut self) -> Result<Taken, TaskError> {
        for s in self.sinks.iter_mut() {
            if !matches!(s, Sink::Kafka(_)) {
                s.flush().await?;
            }
        }
        let mut barrier = None;
        if let Some(p) = &*self.producer {
            if self.env.transactional {
                let p = p.clone();
                tokio::task::spawn_blocking(move || -> Result<(), KafkaOpError> {
                    p.flush(SETTLE_LIMIT)?;
                    p.inner()
                        .commit_transaction(SETTLE_LIMIT)
                        .map_err(kafka::op_err("commit transaction"))?;
                    p.inner()
                        .begin_transaction()
                        .map_err(kafka::op_err("begin transaction"))?;
                    Ok(())
                })
                .await
                .map_err(|e| TaskError::Setup(e.to_string()))??;
            } else {
                p.check()?;
                barrier = Some(p.barrier());
            }
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
        let parts = progress
            .iter()
            .map(|(tp, p)| PartitionCheckpoint {
                tp: tp.clone(),
                next_offset: p.next_offset,
                watermark: self.watermarks.partition(tp.partition),
                sink_offsets: sink_offsets.clone(),
                state: p.state.snapshot(),
            })
            .collect();
        Ok(Taken {
            parts,
            barrier: barrier.filter(|b| !self.settled(*b)),
        })
    }

    /// Whether every record the producer sent before `barrier` is settled.
    pub(super) fn settled(&self, barrier: u64) -> bool {
        (*self.producer).as_ref().is_none_or(|p| p.settled(barrier))
    }

    /// Waits until every record sent before `barrier` is settled, then
    /// fails if any of them failed.
    /// (`&mut`: the future must be `Send`, and a task is not `Sync`.)
    pub(super) async fn wait_settled(
        &mut self,
        barrier: u64,
        deadline: Instant,
    ) -> Result<(), TaskError> {
        while !self.settled(barrier) {
            if Instant::now() > deadline {
                return Err(unsettled());
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        self.check_deliveries()
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
