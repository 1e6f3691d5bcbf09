//! One task: owns a set of source partitions, reads them with an explicit
//! assignment, runs the operator chain on a blocking thread, writes to the
//! sinks and the dead-letter topic, and answers checkpoint requests at batch
//! boundaries. It restores its partitions' offsets and state from a
//! checkpoint when started with one.
//!
//! The task never decides on its own to retry: any error ends [`run`], and
//! the supervisor in [`super::deployment`] restarts it from the latest
//! checkpoint with backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::store::CheckpointStore;
use super::checkpoint::{PartitionCheckpoint, SinkOffsets};
use super::control::{DeploymentKey, RuntimeError, TaskState};
use super::kafka::{self, KafkaOpError, SharedProducer, TrackedProducer};
use super::metrics::{BatchCounts, TaskMetrics};
use super::operator::{BatchContext, OperatorError};
use super::rate_limit::TokenBucket;
use super::record::{
    output_id_from_headers, DeadLetter, Record, SourcePos, SourceRecord, H_DLQ_MODULE,
    H_DLQ_REASON, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC,
};
use super::sinks::{HttpSink, KafkaSink, NatsSink, PgSink, Sink, SinkError};
use super::state::{PartitionState, SnapshotError};
use super::topology::{Chain, Instances, TopicPartition};
use super::watermark::Watermarks;
use crate::domain::job::spec::{Format, JobSpec, SinkSpec, SourceSpec, StartPosition};

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
}

/// Messages from the deployment to a task.
pub enum Control {
    /// Flush, measure the sinks, snapshot; reply with the partitions' checkpoint parts.
    Checkpoint(oneshot::Sender<Result<Vec<PartitionCheckpoint>, String>>),
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
}

/// Per-partition progress.
struct PartitionProgress {
    next_offset: i64,
    state: PartitionState,
}

struct Task {
    plan: TaskPlan,
    env: TaskEnv,
    metrics: Arc<TaskMetrics>,
    consumer: OffThread<Arc<StreamConsumer<kafka::SourceContext>>>,
    /// Metadata and offset queries, on their own connection.
    meta: OffThread<Arc<BaseConsumer>>,
    producer: OffThread<Option<SharedProducer>>,
    sinks: OffThread<Vec<Sink>>,
    instances: Option<Instances>,
    progress: Option<BTreeMap<TopicPartition, PartitionProgress>>,
    watermarks: Watermarks,
    sources: HashMap<String, SourceSpec>,
    topics: HashMap<String, Arc<str>>,
    closed: Option<oneshot::Sender<()>>,
}

/// Runs a task until it is told to stop (`Ok`) or fails (`Err`).
///
/// `closed` fires once the task's producer is gone after it ends (or is
/// aborted): everything it sent has been acknowledged or failed, so a
/// restore's replay scan sees all of it. The supervisor waits for it.
pub async fn run(
    plan: TaskPlan,
    env: TaskEnv,
    metrics: Arc<TaskMetrics>,
    mut ctl: mpsc::Receiver<Control>,
    closed: oneshot::Sender<()>,
) -> Result<(), TaskError> {
    let mut task = Task::setup(plan, env, metrics.clone()).await?;
    task.closed = Some(closed);
    let lag_probe = tokio::spawn(lag_probe(Arc::downgrade(&task.meta), metrics.clone()));
    let _abort_probe = AbortOnDrop(lag_probe);
    if task.plan.gated {
        loop {
            match ctl.recv().await {
                Some(Control::Checkpoint(reply)) => {
                    let res = task.checkpoint().await;
                    let _ = reply.send(res.map_err(|e| e.to_string()));
                    task.check_deliveries()?;
                }
                Some(Control::Committed(id)) => {
                    task.committed(&id);
                    break;
                }
                Some(Control::Stop) | None => return Ok(()),
            }
        }
    }
    metrics.set_state(TaskState::Running);
    tracing::info!(
        job = %task.plan.key.job, generation = task.plan.generation, task = task.plan.index,
        restore = ?task.plan.restore,
        positions = ?task.progress.as_ref().map(|p| p.iter().map(|(tp, p)| (tp.partition, p.next_offset)).collect::<Vec<_>>()),
        "task running"
    );
    let consumer = task.consumer.clone();
    let mut stream = consumer.stream();
    let mut idle_since = Instant::now();
    // A task whose input ran dry idles until the next record comes: its
    // idle time is counted every second, not only when a record ends it.
    let mut idle_tick = tokio::time::interval(Duration::from_secs(1));
    idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            c = ctl.recv() => match c {
                Some(Control::Checkpoint(reply)) => {
                    // A failed checkpoint (e.g. a slow broker) fails only
                    // that checkpoint; failed deliveries fail the task.
                    let res = task.checkpoint().await;
                    let _ = reply.send(res.map_err(|e| e.to_string()));
                    task.check_deliveries()?;
                }
                Some(Control::Committed(id)) => task.committed(&id),
                Some(Control::Stop) | None => return Ok(()),
            },
            _ = idle_tick.tick() => {
                task.metrics.record(BatchCounts {
                    idle_ns: idle_since.elapsed().as_nanos() as u64,
                    ..Default::default()
                });
                idle_since = Instant::now();
            }
            m = stream.next() => {
                let idle_ns = idle_since.elapsed().as_nanos() as u64;
                let busy = Instant::now();
                let mut batch = Vec::with_capacity(task.env.max_batch);
                if let Some(m) = m {
                    batch.push(m.map_err(kafka::op_err("consume"))?);
                }
                while batch.len() < task.env.max_batch {
                    match stream.next().now_or_never() {
                        Some(Some(m)) => batch.push(m.map_err(kafka::op_err("consume"))?),
                        _ => break,
                    }
                }
                tracing::trace!(records = batch.len(), "batch");
                let mut counts = task.process(batch).await?;
                counts.idle_ns = idle_ns;
                counts.busy_ns = busy.elapsed().as_nanos() as u64;
                task.metrics.record(counts);
                idle_since = Instant::now();
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every few seconds, measures how far each partition's end is ahead of the
/// task's position. Uses the metadata client, not the consumer, so the
/// queries never queue behind a fetch on the consumer's connection.
async fn lag_probe(meta: std::sync::Weak<BaseConsumer>, metrics: Arc<TaskMetrics>) {
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let positions = metrics
            .positions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let c = meta.clone();
        let lag = tokio::task::spawn_blocking(move || {
            // Upgraded here so the client is never dropped on the executor.
            let c = c.upgrade()?;
            let mut lag = BTreeMap::new();
            for (tp, next) in positions {
                let (_, hi) = c
                    .fetch_watermarks(&tp.topic, tp.partition, kafka::QUERY_TIMEOUT)
                    .ok()?;
                lag.insert(tp, (hi - next.max(0)).max(0));
            }
            Some(lag)
        })
        .await;
        // Only a complete measurement replaces the last one.
        if let Ok(Some(lag)) = lag {
            metrics.set_lag(lag);
        }
    }
}

fn group_id(key: &DeploymentKey) -> String {
    format!("weir-{}-{}", key.tenant, key.job)
}

/// Dropping Kafka clients blocks (purge, flush, thread joins, broker
/// disconnects), so a task that ends — or is aborted — hands them to a
/// plain thread instead of stalling an executor thread.
struct OffThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> std::ops::Deref for OffThread<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> std::ops::DerefMut for OffThread<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for OffThread<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("weir-kafka-close".into())
                .spawn(move || drop(v));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not spawn a thread to close Kafka clients");
            }
        }
    }
}

impl Drop for Task {
    /// Closes the producer off the executor: unsent records are discarded,
    /// in-flight ones are waited for (so none lands after a restore's scan),
    /// then `closed` fires.
    fn drop(&mut self) {
        let producer = self.producer.take();
        let sinks = std::mem::take(&mut *self.sinks);
        let closed = self.closed.take();
        let spawned = std::thread::Builder::new()
            .name("weir-task-close".into())
            .spawn(move || {
                if let Some(p) = &producer {
                    p.inner()
                        .purge(rdkafka::producer::PurgeConfig::default().queue());
                    if let Err(e) = p.inner().flush(Duration::from_secs(120)) {
                        tracing::warn!(error = %e, "in-flight records not settled while closing the producer");
                    }
                }
                drop(sinks);
                drop(producer);
                if let Some(c) = closed {
                    let _ = c.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not spawn a thread to close Kafka clients");
        }
    }
}

impl Task {
    async fn setup(
        plan: TaskPlan,
        env: TaskEnv,
        metrics: Arc<TaskMetrics>,
    ) -> Result<Self, TaskError> {
        let sources: HashMap<String, SourceSpec> = plan
            .spec
            .sources
            .iter()
            .map(|s| (s.topic.clone(), s.clone()))
            .collect();
        let out_of_order = plan
            .spec
            .sources
            .iter()
            .map(|s| s.max_out_of_orderness().as_millis())
            .max()
            .unwrap_or(0);
        let mut watermarks = Watermarks::new(out_of_order);

        // Restore what the checkpoint has for our partitions.
        let restored = match &plan.restore {
            Some(id) => env.store.partitions(id, &plan.partitions).await?,
            None => BTreeMap::new(),
        };
        let meta = Arc::new(kafka::admin_consumer(&env.brokers)?);
        let fresh: Vec<TopicPartition> = plan
            .partitions
            .iter()
            .filter(|tp| !restored.contains_key(*tp))
            .cloned()
            .collect();
        let starts = {
            let (meta, sources) = (meta.clone(), sources.clone());
            tokio::task::spawn_blocking(move || resolve_starts(&meta, &fresh, &sources))
                .await
                .map_err(|e| TaskError::Setup(e.to_string()))??
        };
        let mut progress = BTreeMap::new();
        for tp in &plan.partitions {
            let p = match restored.get(tp) {
                Some(cp) => {
                    watermarks.restore(tp.partition, cp.watermark);
                    PartitionProgress {
                        next_offset: cp.next_offset,
                        state: PartitionState::restore(&cp.state)?,
                    }
                }
                None => PartitionProgress {
                    next_offset: starts.get(tp).copied().unwrap_or(0),
                    state: PartitionState::default(),
                },
            };
            progress.insert(tp.clone(), p);
        }
        if let Ok(mut pos) = metrics.positions.lock() {
            *pos = progress
                .iter()
                .map(|(tp, p)| (tp.clone(), p.next_offset))
                .collect();
        }

        // Operators on a blocking thread: instantiation may compile or link WASM.
        let chain = plan.chain.clone();
        let instances = tokio::task::spawn_blocking(move || chain.instantiate())
            .await
            .map_err(|e| TaskError::Setup(e.to_string()))??;

        // One producer per task for Kafka sinks and the dead-letter topic.
        let needs_producer = plan.spec.dead_letter_topic.is_some()
            || plan
                .spec
                .sinks
                .iter()
                .any(|s| matches!(s, SinkSpec::Kafka { .. }));
        let producer = if needs_producer {
            let txn_id = env.transactional.then(|| {
                format!(
                    "weir-{}-{}-g{}-t{}",
                    plan.key.tenant, plan.key.job, plan.generation, plan.index
                )
            });
            let brokers = env.brokers.clone();
            let p =
                tokio::task::spawn_blocking(move || -> Result<TrackedProducer, KafkaOpError> {
                    let p = TrackedProducer::new(&brokers, txn_id.as_deref())?;
                    if txn_id.is_some() {
                        p.inner()
                            .init_transactions(Duration::from_secs(30))
                            .map_err(kafka::op_err("init transactions"))?;
                        p.inner()
                            .begin_transaction()
                            .map_err(kafka::op_err("begin transaction"))?;
                    }
                    Ok(p)
                })
                .await
                .map_err(|e| TaskError::Setup(e.to_string()))??;
            Some(Arc::new(p))
        } else {
            None
        };

        let mut sinks = Vec::new();
        for s in &plan.spec.sinks {
            sinks.push(match s {
                SinkSpec::Kafka { topic } => {
                    let (m, t) = (meta.clone(), topic.clone());
                    let parts = tokio::task::spawn_blocking(move || kafka::partitions_of(&m, &t))
                        .await
                        .map_err(|e| TaskError::Setup(e.to_string()))??;
                    let producer = producer
                        .clone()
                        .ok_or_else(|| TaskError::Setup("no producer".into()))?;
                    let mut sink = KafkaSink::new(topic.clone(), producer, parts, meta.clone());
                    let from = replay_scan(&env, &mut sink, &restored).await?;
                    // Every partition restored with this sink: its recorded
                    // offsets are a floor; otherwise measure the topic's end.
                    let all_restored = plan.partitions.iter().all(|tp| {
                        restored
                            .get(tp)
                            .is_some_and(|cp| cp.sink_offsets.contains_key(topic))
                    });
                    sink.init_floor(all_restored.then_some(from)).await?;
                    Sink::Kafka(sink)
                }
                SinkSpec::Postgres { table, key_columns } => {
                    let pool = env.sink_pool.clone().ok_or_else(|| {
                        TaskError::Setup("no PostgreSQL pool for the postgres sink".into())
                    })?;
                    Sink::Postgres(PgSink::connect(pool, table, key_columns).await?)
                }
                SinkSpec::Nats { subject } => {
                    let client = env.nats.clone().ok_or_else(|| {
                        TaskError::Setup("no NATS client for the nats sink".into())
                    })?;
                    Sink::Nats(NatsSink::new(client, subject.clone()))
                }
                SinkSpec::Http { url, max_attempts } => {
                    Sink::Http(HttpSink::new(env.http.clone(), url.clone(), *max_attempts))
                }
            });
        }

        let consumer: StreamConsumer<kafka::SourceContext> = kafka::base_config(&env.brokers)
            .set("group.id", group_id(&plan.key))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .set("fetch.error.backoff.ms", "20")
            .set(
                "isolation.level",
                if env.transactional {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create_with_context(kafka::SourceContext::default())
            .map_err(kafka::op_err("create consumer"))?;
        let mut tpl = TopicPartitionList::new();
        for (tp, p) in &progress {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::from_raw(p.next_offset))
                .map_err(kafka::op_err("assign"))?;
        }
        consumer.assign(&tpl).map_err(kafka::op_err("assign"))?;
        let topics = sources
            .keys()
            .map(|t| (t.clone(), Arc::<str>::from(t.as_str())))
            .collect();
        Ok(Self {
            plan,
            env,
            metrics,
            consumer: OffThread(Some(Arc::new(consumer))),
            meta: OffThread(Some(meta)),
            producer: OffThread(Some(producer)),
            sinks: OffThread(Some(sinks)),
            instances: Some(instances),
            progress: Some(progress),
            watermarks,
            sources,
            topics,
            closed: None,
        })
    }

    /// Decodes, processes and writes one batch.
    async fn process(&mut self, batch: Vec<BorrowedMessage<'_>>) -> Result<BatchCounts, TaskError> {
        let mut counts = BatchCounts::default();
        let mut groups: BTreeMap<TopicPartition, Vec<SourceRecord>> = BTreeMap::new();
        let mut dead: Vec<DeadLetter> = Vec::new();
        // A repartition topic's records carry their original source position;
        // dead letters name that, not the internal topic.
        let mut original: HashMap<(i32, i64), SourcePos> = HashMap::new();
        for m in &batch {
            counts.records_in += 1;
            // The one copy of a record's bytes: out of the consumer's buffer.
            let value = Bytes::copy_from_slice(m.payload().unwrap_or_default());
            let key = m.key().map(Bytes::copy_from_slice);
            counts.bytes_in += (value.len() + key.as_ref().map_or(0, Bytes::len)) as u64;
            let topic = self
                .topics
                .get(m.topic())
                .cloned()
                .unwrap_or_else(|| Arc::from(m.topic()));
            let pos = SourcePos {
                topic,
                partition: m.partition(),
                offset: m.offset(),
            };
            let mut record = Record {
                key,
                value,
                timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                headers: Vec::new(),
            };
            if self.plan.stage > 0 {
                if let Some(hs) = m.headers() {
                    let all = || hs.iter().map(|h| (h.key, h.value.unwrap_or_default()));
                    if let Some((topic, partition, offset, _)) = output_id_from_headers(all()) {
                        let origin = SourcePos {
                            topic,
                            partition,
                            offset,
                        };
                        original.insert((pos.partition, pos.offset), origin);
                    }
                    // Headers the operators of the earlier stage set travel
                    // on; the runtime's own are per hop.
                    record.headers = all()
                        .filter(|(k, _)| !k.starts_with("weir-"))
                        .map(|(k, v)| (k.to_owned(), Bytes::copy_from_slice(v)))
                        .collect();
                }
            }
            let source = self.sources.get(m.topic());
            match decode(source, &mut record) {
                Ok(()) => {
                    self.watermarks.observe(pos.partition, record.timestamp_ms);
                    let tp = TopicPartition {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                    };
                    groups
                        .entry(tp)
                        .or_default()
                        .push(SourceRecord { pos, record });
                }
                Err(reason) => dead.push(DeadLetter {
                    origin: pos,
                    record,
                    reason,
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
            for (tp, recs) in groups {
                let Some(p) = progress.get_mut(&tp) else {
                    continue;
                };
                let ctx = BatchContext {
                    partition: tp.partition,
                    watermark_ms: marks.get(&tp.partition).copied().flatten(),
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

        for sink in self.sinks.iter_mut() {
            dead.extend(sink.write(&outputs).await?);
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
                match producer.inner().send(rec) {
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

    fn check_deliveries(&self) -> Result<(), TaskError> {
        match &*self.producer {
            Some(p) => Ok(p.check()?),
            None => Ok(()),
        }
    }

    /// Flushes every sink, measures the Kafka sinks' ends and snapshots
    /// every partition. Nothing is produced between the flush and the
    /// measurement, so every later output lands at or after those offsets.
    async fn checkpoint(&mut self) -> Result<Vec<PartitionCheckpoint>, TaskError> {
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
    fn committed(&self, checkpoint: &str) {
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

/// Resolves fresh partitions' start positions to concrete offsets (blocking).
fn resolve_starts(
    meta: &BaseConsumer,
    fresh: &[TopicPartition],
    sources: &HashMap<String, SourceSpec>,
) -> Result<BTreeMap<TopicPartition, i64>, TaskError> {
    let mut out = BTreeMap::new();
    for tp in fresh {
        let start = sources
            .get(&tp.topic)
            .map(|s| s.start.clone())
            .unwrap_or_default();
        if start == StartPosition::Earliest {
            // Offset 0 needs no broker query (librdkafka's own query for the
            // logical beginning adds ~500 ms to a cold start); if retention
            // has moved the log start past it, `auto.offset.reset=earliest`
            // lands on the first record still there.
            out.insert(tp.clone(), 0);
            continue;
        }
        let (_, hi) = meta
            .fetch_watermarks(&tp.topic, tp.partition, kafka::QUERY_TIMEOUT)
            .map_err(kafka::op_err("watermarks"))?;
        let off = match start {
            StartPosition::Earliest | StartPosition::Latest => hi,
            StartPosition::Timestamp(ts) => {
                let mut q = TopicPartitionList::new();
                q.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(ts))
                    .map_err(kafka::op_err("offsets for times"))?;
                let r = meta
                    .offsets_for_times(q, kafka::QUERY_TIMEOUT)
                    .map_err(kafka::op_err("offsets for times"))?;
                match r
                    .find_partition(&tp.topic, tp.partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => hi,
                }
            }
        };
        out.insert(tp.clone(), off);
    }
    Ok(out)
}

/// Checks a record against its source's format and sets its event time.
fn decode(source: Option<&SourceSpec>, record: &mut Record) -> Result<(), String> {
    let Some(source) = source else { return Ok(()) };
    match source.format {
        Format::Raw => Ok(()),
        Format::Json => {
            let doc: serde_json::Value = serde_json::from_slice(&record.value)
                .map_err(|e| format!("decode: not JSON: {e}"))?;
            if let Some(field) = &source.event_time_field {
                let mut cur = &doc;
                for part in field.split('.') {
                    cur = cur
                        .get(part)
                        .ok_or_else(|| format!("decode: event time field `{field}` is missing"))?;
                }
                record.timestamp_ms = cur.as_i64().ok_or_else(|| {
                    format!("decode: event time field `{field}` is not an integer")
                })?;
            }
            Ok(())
        }
    }
}

/// Finds what the sink already holds from after the checkpoint, for the
/// restored partitions, so those outputs are not written again.
async fn replay_scan(
    env: &TaskEnv,
    sink: &mut KafkaSink,
    restored: &BTreeMap<TopicPartition, PartitionCheckpoint>,
) -> Result<BTreeMap<i32, i64>, TaskError> {
    let mut from: BTreeMap<i32, i64> = BTreeMap::new();
    for cp in restored.values() {
        if let Some(offs) = cp.sink_offsets.get(sink.topic()) {
            for (p, o) in offs {
                from.entry(*p)
                    .and_modify(|v| *v = (*v).min(*o))
                    .or_insert(*o);
            }
        }
    }
    if from.is_empty() {
        return Ok(from);
    }
    let resume: HashMap<(Arc<str>, i32), i64> = restored
        .values()
        .map(|cp| {
            (
                (Arc::from(cp.tp.topic.as_str()), cp.tp.partition),
                cp.next_offset,
            )
        })
        .collect();
    let scan_from = from.clone();
    let (brokers, topic, txn) = (
        env.brokers.clone(),
        sink.topic().to_owned(),
        env.transactional,
    );
    let started = Instant::now();
    let seen = tokio::task::spawn_blocking(move || {
        let wanted = move |id: &super::record::OutputId| {
            resume
                .get(&(id.0.clone(), id.1))
                .is_some_and(|next| id.2 >= *next)
        };
        kafka::scan_written(&brokers, &topic, &scan_from, txn, &wanted)
    })
    .await
    .map_err(|e| TaskError::Setup(e.to_string()))??;
    tracing::info!(
        sink = %sink.topic(), already_written = seen.len(),
        ms = started.elapsed().as_millis() as u64, "deterministic replay scan"
    );
    sink.skip_already_written(seen);
    Ok(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(format: Format, field: Option<&str>) -> SourceSpec {
        SourceSpec {
            topic: "t".into(),
            format,
            start: StartPosition::Earliest,
            event_time_field: field.map(str::to_owned),
            max_out_of_orderness: None,
            max_out_of_orderness_ms: None,
        }
    }

    #[test]
    fn json_sources_reject_non_json_and_read_event_time() {
        let s = source(Format::Json, Some("meta.ts"));
        let mut r = Record::value(r#"{"meta":{"ts":1234}}"#);
        decode(Some(&s), &mut r).unwrap();
        assert_eq!(r.timestamp_ms, 1234);
        let mut bad = Record::value("nope");
        assert!(decode(Some(&s), &mut bad).unwrap_err().contains("not JSON"));
        let mut missing = Record::value("{}");
        assert!(decode(Some(&s), &mut missing)
            .unwrap_err()
            .contains("meta.ts"));
        let mut raw = Record::value("nope");
        decode(Some(&source(Format::Raw, None)), &mut raw).unwrap();
    }
}
