//! Setting a task up: restore its partitions' offsets, state and watermarks
//! from the checkpoint (fresh partitions start where their source says),
//! instantiate the operators, create the producer and the sinks (a Kafka
//! sink first finds what it already holds, so a replay does not write it
//! twice), and assign the consumer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::decode::Decoder;
use super::shutdown::OffThread;
use super::{PartitionProgress, Task, TaskEnv, TaskError, TaskPlan};
use crate::domain::job::sink_rules;
use crate::domain::job::spec::{JobSpec, OperatorSpec, SinkSpec, SourceSpec, StartPosition};
use crate::runtime::checkpoint::PartitionCheckpoint;
use crate::runtime::control::DeploymentKey;
use crate::runtime::kafka::{self, KafkaOpError, TrackedProducer};
use crate::runtime::metrics::TaskMetrics;
use crate::runtime::operators::{side_tag, SIDE_LATE, SIDE_TIMED_OUT};
use crate::runtime::record::{topic_tag, OutputId};
use crate::runtime::sinks::egress;
use crate::runtime::sinks::{HttpSink, KafkaSink, NatsSink, PgSink, Sink};
use crate::runtime::state::PartitionState;
use crate::runtime::topology::TopicPartition;
use crate::runtime::watermark::Watermarks;

impl Task {
    pub(super) async fn setup(
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

        // The job's sinks, then each side output's topic (a CEP operator's
        // timed-out matches and late records), written only with its side.
        let routed: Vec<(Option<String>, SinkSpec)> = plan
            .spec
            .sinks
            .iter()
            .map(|s| (None, s.clone()))
            .chain(
                side_outputs(&plan.spec)
                    .into_iter()
                    .map(|(tag, topic)| (Some(tag), SinkSpec::Kafka { topic })),
            )
            .collect();
        // One producer per task for Kafka sinks and the dead-letter topic.
        let needs_producer = plan.spec.dead_letter_topic.is_some()
            || routed
                .iter()
                .any(|(_, s)| matches!(s, SinkSpec::Kafka { .. }));
        let producer = if needs_producer {
            let txn_id = env.transactional.then(|| {
                format!(
                    "weir-{}-{}-g{}-t{}",
                    plan.key.tenant, plan.key.job, plan.generation, plan.index
                )
            });
            let brokers = env.brokers.clone();
            let request_timeout = env.producer_request_timeout;
            let p =
                tokio::task::spawn_blocking(move || -> Result<TrackedProducer, KafkaOpError> {
                    let p = TrackedProducer::new(&brokers, txn_id.as_deref(), request_timeout)?;
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
        let mut routes = Vec::new();
        for (route, s) in &routed {
            routes.push(route.clone());
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
                    Sink::Postgres(
                        PgSink::connect(pool, &plan.key.tenant, table, key_columns).await?,
                    )
                }
                SinkSpec::Nats { subject } => {
                    let client = env.nats.clone().ok_or_else(|| {
                        TaskError::Setup("no NATS client for the nats sink".into())
                    })?;
                    if let Some(p) = sink_rules::subject_problem(subject, Some(&env.subject_prefix))
                    {
                        return Err(TaskError::Refused(format!("nats sink `{subject}`: {p}")));
                    }
                    Sink::Nats(NatsSink::new(client, subject.clone()))
                }
                SinkSpec::Http {
                    url,
                    max_attempts,
                    headers,
                } => {
                    if let Some(p) = egress::url_problem(url, env.http_sink_allow_private) {
                        return Err(TaskError::Refused(format!("http sink `{url}`: {p}")));
                    }
                    let sink = HttpSink::new(env.http.clone(), url.clone(), *max_attempts)
                        .with_headers(headers)
                        .map_err(|p| TaskError::Setup(format!("http sink `{url}`: {p}")))?;
                    Sink::Http(sink)
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
        let decoder = Decoder::new(sources, plan.stage, &plan.job_sources);
        Ok(Self {
            plan,
            env,
            metrics,
            consumer: OffThread::new(Arc::new(consumer)),
            meta: OffThread::new(meta),
            producer: OffThread::new(producer),
            sinks: OffThread::new(sinks),
            routes,
            stats_at: Instant::now(),
            stats_stale: false,
            instances: Some(instances),
            progress: Some(progress),
            watermarks,
            decoder,
            closed: None,
        })
    }
}

fn group_id(key: &DeploymentKey) -> String {
    format!("weir-{}-{}", key.tenant, key.job)
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
    // Keyed as identities name their source: by the topic's tag.
    let resume: HashMap<(u64, i32), i64> = restored
        .values()
        .map(|cp| ((topic_tag(&cp.tp.topic), cp.tp.partition), cp.next_offset))
        .collect();
    let scan_from = from.clone();
    let (brokers, topic, txn) = (
        env.brokers.clone(),
        sink.topic().to_owned(),
        env.transactional,
    );
    let started = Instant::now();
    let seen = tokio::task::spawn_blocking(move || {
        let wanted =
            move |id: &OutputId| resume.get(&(id.0, id.1)).is_some_and(|next| id.2 >= *next);
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

/// The side outputs of a stage's operators that have a topic: `(tag, topic)`,
/// the tag as the operator's outputs carry it in their `weir-side-output` header.
pub(crate) fn side_outputs(spec: &JobSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for op in &spec.operators {
        if let OperatorSpec::Cep {
            id,
            timed_out_topic,
            late_topic,
            ..
        } = op
        {
            for (side, topic) in [(SIDE_TIMED_OUT, timed_out_topic), (SIDE_LATE, late_topic)] {
                if let Some(t) = topic {
                    out.push((side_tag(id, side), t.clone()));
                }
            }
        }
    }
    out
}
