//! One task: owns a set of source partitions, reads them with an explicit
//! assignment, runs the operator chain on a blocking thread, writes to the
//! sinks and the dead-letter topic, and answers checkpoint requests at batch
//! boundaries. It restores its partitions' offsets and state from a
//! checkpoint when started with one.
//!
//! The task never decides on its own to retry: any error ends [`run`], and
//! the supervisor in [`super::deployment`] restarts it from the latest
//! checkpoint with backoff.
//!
//! # Layout
//!
//! - [`decode`]: a consumed message → a record or a dead letter (pure).
//! - `setup`: restore, start positions, clients, sinks, the replay scan.
//! - `event_loop`: [`run`], interleaving control messages, idle ticks and batches.
//! - `batch`: one batch through decode, operators, sinks and the dead-letter topic.
//! - [`batch_size`]: how many records the next batch takes (its processing
//!   time bounds how long a checkpoint waits).
//! - `checkpoint`: snapshot at a batch boundary, answered once its outputs are
//!   acknowledged; group commits for lag tools.
//! - `lag`: the lag probe.
//! - `shutdown`: Kafka clients closed off the executor when a task ends.

mod batch;
pub mod batch_size;
mod checkpoint;
pub mod decode;
mod event_loop;
mod lag;
mod setup;
mod shutdown;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, StreamConsumer};
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::checkpoint::store::CheckpointStore;
use super::checkpoint::PartitionCheckpoint;
use super::control::{DeploymentKey, RuntimeError};
use super::kafka::{self, KafkaOpError, SharedProducer};
use super::metrics::TaskMetrics;
use super::operator::OperatorError;
use super::rate_limit::TokenBucket;
use super::sinks::{Sink, SinkError};
use super::state::{PartitionState, SnapshotError};
use super::topology::{Chain, Instances, TopicPartition};
use super::watermark::Watermarks;
use crate::domain::job::spec::JobSpec;
use decode::Decoder;
use shutdown::OffThread;

pub use event_loop::run;

/// Why a task stopped working.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("task setup: {0}")]
    Setup(String),
    /// The spec asks for what this installation does not allow (a private
    /// address, Weir's subjects): no restart can cure it, so the task fails
    /// at once.
    #[error("refused: {0}")]
    Refused(String),
}

/// Messages from the deployment to a task.
pub enum Control {
    /// Flush, measure the sinks, snapshot; reply with the partitions' checkpoint parts.
    Checkpoint(oneshot::Sender<Result<Vec<PartitionCheckpoint>, String>>),
    /// As `Checkpoint`, then read nothing more until `Stop` or `Resume`:
    /// the final checkpoint of a stop (or rescale, or upgrade) is where the
    /// task ends, with no batch processed after it.
    CheckpointAndHold(oneshot::Sender<Result<Vec<PartitionCheckpoint>, String>>),
    /// Read again after `CheckpointAndHold` (the checkpoint did not complete).
    Resume,
    /// A checkpoint is durable: commit its offsets to the consumer group
    /// (for lag tools), and start consuming if the task was gated.
    Committed(String),
    /// Stop after the current batch.
    Stop,
}

/// What a task runs.
#[derive(Clone)]
pub struct TaskPlan {
    pub key: DeploymentKey,
    pub version: u32,
    pub generation: u64,
    pub index: u32,
    pub partitions: Vec<TopicPartition>,
    pub spec: Arc<JobSpec>,
    pub chain: Chain,
    /// The task's stage: 0 reads the job's sources; a later stage reads the
    /// repartition topic the stage before it writes (see [`super::topology::stages`]).
    pub stage: u32,
    /// The job's own source topics (the first stage's): records of a
    /// repartition topic name the position they were first read at by the
    /// topic's tag, which a later stage looks up among these.
    pub job_sources: Arc<[String]>,
    /// Checkpoint to restore from; partitions absent from it start fresh.
    pub restore: Option<String>,
    /// Wait for the first `Committed` before consuming (fresh deployments:
    /// the start checkpoint must be durable before anything is emitted).
    pub gated: bool,
}

/// Shared services a task uses.
#[derive(Clone)]
pub struct TaskEnv {
    pub brokers: String,
    pub store: CheckpointStore,
    /// Where PostgreSQL sinks write.
    pub sink_pool: Option<PgPool>,
    pub nats: Option<async_nats::Client>,
    pub http: reqwest::Client,
    /// The job-wide rate limit, shared by its tasks.
    pub rate: Option<Arc<Mutex<TokenBucket>>>,
    /// Time origin for the rate limiter.
    pub epoch: Instant,
    pub max_batch: usize,
    /// Use Kafka transactions (brokers that support them).
    pub transactional: bool,
    /// How long the sink producer waits for a broker's answer before it
    /// resends (librdkafka's `socket.timeout.ms`).
    pub producer_request_timeout: std::time::Duration,
    /// Weir's own NATS subject prefix, which no sink may publish under.
    pub subject_prefix: String,
    /// HTTP sinks may post to non-public addresses.
    pub http_sink_allow_private: bool,
}

/// Per-partition progress.
struct PartitionProgress {
    next_offset: i64,
    state: PartitionState,
}

/// A running task's clients, operators and progress. Built by `setup`,
/// driven by [`run`], closed by its `Drop` (see `shutdown`).
struct Task {
    plan: TaskPlan,
    env: TaskEnv,
    metrics: Arc<TaskMetrics>,
    consumer: OffThread<Arc<StreamConsumer<kafka::SourceContext>>>,
    /// Metadata and offset queries, on their own connection.
    meta: OffThread<Arc<BaseConsumer>>,
    producer: OffThread<Option<SharedProducer>>,
    sinks: OffThread<Vec<Sink>>,
    /// Per sink: `None` for the job's sinks, or the side-output tag whose
    /// outputs (and only those) it writes.
    routes: Vec<Option<String>>,
    /// When operators' own figures were last taken.
    stats_at: Instant,
    /// A batch ran since the operators' figures were last published.
    stats_stale: bool,
    instances: Option<Instances>,
    progress: Option<BTreeMap<TopicPartition, PartitionProgress>>,
    watermarks: Watermarks,
    decoder: Decoder,
    closed: Option<oneshot::Sender<()>>,
}
