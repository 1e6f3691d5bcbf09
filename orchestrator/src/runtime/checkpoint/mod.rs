//! Checkpoints: per source partition, the next offset to read, the keyed
//! state, the watermark and the sink end offsets; plus job-level metadata.
//! Stored in PostgreSQL ([`store::CheckpointStore`]), state included as
//! `bytea`: one transaction makes a checkpoint atomic, and the measured cost
//! is small (see docs/runtime.md).

pub mod store;

use std::collections::BTreeMap;

use super::topology::TopicPartition;

/// Sink topic → partition → end offset, measured by the task that owned the
/// source partition, right after flushing and before producing anything newer.
pub type SinkOffsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// One source partition's part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    pub tp: TopicPartition,
    /// The offset to resume reading at.
    pub next_offset: i64,
    pub watermark: Option<i64>,
    pub sink_offsets: SinkOffsets,
    /// [`super::state::PartitionState::snapshot`] bytes.
    pub state: Vec<u8>,
}

/// Why a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// At deployment start, anchoring restores before the first periodic one.
    Start,
    Periodic,
    OnDemand,
    Stop,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Periodic => "periodic",
            Trigger::OnDemand => "on_demand",
            Trigger::Stop => "stop",
        }
    }
}
