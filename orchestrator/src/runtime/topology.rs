//! The shape of a running job: which source partitions each task owns, and
//! the operator chain every record goes through. Pure: no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::operator::{
    BatchContext, ModuleResolver, Operator, OperatorError, OperatorFactory, RecordResult,
};
use super::operators::{CepComponentFactory, CepFactory, KeyBy};
use crate::domain::cep_rule;
use weir_cep::runner::RunnerOptions;

/// The memory cap of a CEP rule component's instance (lowered to the host's
/// maximum): partial matches and buffered events of every key it holds.
const CEP_MEMORY_BYTES: usize = 256 << 20;
use super::record::{DeadLetter, Output, Record, SourcePos, SourceRecord};
use super::state::PartitionState;
use crate::domain::job::spec::{
    rule_module, Format, JobSpec, OperatorSpec, SinkSpec, SourceSpec, StartPosition,
};

/// A source partition.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// Spreads `partitions` round-robin over `min(parallelism, partitions)` tasks.
/// Sorting by (partition, topic) first makes the result independent of the
/// order metadata arrived in, and co-locates equal partition numbers of
/// co-partitioned topics.
pub fn assign(partitions: &[TopicPartition], parallelism: u32) -> Vec<Vec<TopicPartition>> {
    let mut all = partitions.to_vec();
    all.sort_by(|a, b| (a.partition, &a.topic).cmp(&(b.partition, &b.topic)));
    all.dedup();
    let tasks = (parallelism as usize).min(all.len()).max(1);
    let mut out = vec![Vec::new(); tasks];
    for (i, tp) in all.into_iter().enumerate() {
        out[i % tasks].push(tp);
    }
    out
}

/// The internal topic a `key_by` repartitions through:
/// `weir.<tenant>.<job>.<key_by id>.repartition`, with any character Kafka
/// does not allow in topic names replaced by `_`.
pub fn repartition_topic(tenant: &str, job: &str, key_by: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "weir.{}.{}.{}.repartition",
        clean(tenant),
        clean(job),
        clean(key_by)
    )
}

/// One stage of a job: what its tasks read, run and write.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The stage as a job of its own: sources, operators and sinks.
    pub spec: JobSpec,
    /// The repartition topic this stage reads (stages after the first).
    pub reads_repartition: Option<String>,
}

/// Splits a job into stages at every `key_by` whose key feeds keyed state,
/// i.e. one followed by a `process` UDF or a `cep` operator before the next
/// `key_by`.
///
/// Keyed state lives per partition of what a task reads, so records of one
/// key must all arrive on one partition. A source partitioned some other
/// way is therefore re-keyed in one stage, written to an internal
/// repartition topic (partitioned by key hash: the Kafka sink's default
/// partitioner), and read back by the next stage as an ordinary source.
/// Each stage is exactly-once on its own (its input is a durable log and its
/// output a Kafka sink or the job's sinks), so the stages need no aligned
/// checkpoints: each task checkpoints its own partitions, as before.
///
/// A job without such a `key_by` is one stage: the spec unchanged.
pub fn stages(tenant: &str, job: &str, spec: &JobSpec) -> Vec<Stage> {
    let ops = &spec.operators;
    let splits: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            matches!(op, OperatorSpec::KeyBy { .. })
                && ops[i + 1..]
                    .iter()
                    .take_while(|o| !matches!(o, OperatorSpec::KeyBy { .. }))
                    .any(OperatorSpec::is_keyed_stateful)
        })
        .map(|(i, _)| i)
        .collect();
    if splits.is_empty() {
        return vec![Stage {
            spec: spec.clone(),
            reads_repartition: None,
        }];
    }
    let out_of_order = spec.sources.iter().map(|s| s.max_out_of_orderness()).max();
    let mut stages = Vec::with_capacity(splits.len() + 1);
    let mut reads: Option<String> = None;
    let mut from = 0;
    for &at in splits.iter().chain(std::iter::once(&ops.len())) {
        let last = at == ops.len();
        let (operators, writes) = if last {
            (ops[from..].to_vec(), None)
        } else {
            let id = ops[at].id();
            (
                ops[from..=at].to_vec(),
                Some(repartition_topic(tenant, job, id)),
            )
        };
        let sources = match &reads {
            None => spec.sources.clone(),
            Some(topic) => vec![SourceSpec {
                topic: topic.clone(),
                // Values were decoded (and event time taken) by the first stage.
                format: Format::Raw,
                // A fresh stage starts where the topic ends: the stage before
                // it writes nothing until the start checkpoint is durable.
                start: StartPosition::Latest,
                event_time_field: None,
                max_out_of_orderness: out_of_order,
                max_out_of_orderness_ms: None,
            }],
        };
        let sinks = match &writes {
            Some(topic) => vec![SinkSpec::Kafka {
                topic: topic.clone(),
            }],
            None => spec.sinks.clone(),
        };
        stages.push(Stage {
            spec: JobSpec {
                sources,
                operators,
                sinks,
                // Only the job's real outputs are rate limited.
                rate_limit: if last { spec.rate_limit } else { None },
                ..spec.clone()
            },
            reads_repartition: reads.take(),
        });
        reads = writes;
        from = at + 1;
    }
    stages
}

/// The operator chain of a job: factories resolved once per deployment.
#[derive(Clone)]
pub struct Chain {
    stages: Vec<(String, Arc<dyn OperatorFactory>)>,
}

/// Why a chain could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operators[{index}] (`{id}`): {reason}")]
pub struct ChainError {
    pub index: usize,
    pub id: String,
    pub reason: String,
    pub retryable: bool,
}

impl ChainError {
    /// Operator `index` (`id`) names a module that did not resolve.
    fn resolving(index: usize, id: &str, e: super::operator::ResolveError) -> Self {
        Self {
            index,
            id: id.to_owned(),
            reason: e.to_string(),
            retryable: e.retryable,
        }
    }
}

struct KeyByFactory {
    id: String,
    field: String,
}

impl OperatorFactory for KeyByFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        Ok(Box::new(KeyBy::new(&self.id, &self.field)))
    }
}

impl Chain {
    /// Resolves every operator of `spec`.
    pub fn build(spec: &JobSpec, resolver: &dyn ModuleResolver) -> Result<Self, ChainError> {
        Self::build_in("", spec, resolver)
    }

    /// Resolves every operator of `spec` in `tenant`'s module namespace.
    pub fn build_in(
        tenant: &str,
        spec: &JobSpec,
        resolver: &dyn ModuleResolver,
    ) -> Result<Self, ChainError> {
        let mut stages = Vec::new();
        for (index, op) in spec.operators.iter().enumerate() {
            let (id, factory): (String, Arc<dyn OperatorFactory>) = match op {
                OperatorSpec::KeyBy { id, field } => (
                    id.clone(),
                    Arc::new(KeyByFactory {
                        id: id.clone(),
                        field: field.clone(),
                    }),
                ),
                OperatorSpec::Cep {
                    id,
                    rule,
                    timed_out_topic,
                    late_topic,
                    component: stock,
                } => {
                    let chain_err = |reason: String| ChainError {
                        index,
                        id: id.clone(),
                        reason,
                        retryable: false,
                    };
                    let out_of_order = spec
                        .sources
                        .iter()
                        .map(|s| s.max_out_of_orderness().as_millis())
                        .max()
                        .unwrap_or(0);
                    let opts = RunnerOptions {
                        out_of_orderness_ms: i64::try_from(out_of_order).unwrap_or(i64::MAX),
                        timed_out: timed_out_topic.is_some(),
                        late: late_topic.is_some(),
                        json_keys: false,
                    };
                    let component = |module: Arc<crate::wasm::LoadedModule>, rule, name: &str| {
                        let memory = module.max_memory_bytes().min(CEP_MEMORY_BYTES);
                        CepComponentFactory::new(id, rule, name, opts, module, memory)
                            .map(|f| Arc::new(f) as Arc<dyn OperatorFactory>)
                            .map_err(chain_err)
                    };
                    let f: Arc<dyn OperatorFactory> = if rule_module(rule).is_some() {
                        // A rule written in Rust, uploaded as a component.
                        let module = resolver
                            .rule_module(tenant, rule.trim())
                            .map_err(|e| ChainError::resolving(index, id, e))?;
                        component(module, None, rule.trim())?
                    } else {
                        let (source, checked) = cep_rule::parse_with_source(rule)
                            .map_err(|e| chain_err(e.to_string()))?;
                        // The tenant's own upload of the stock component,
                        // else the one the workers were given.
                        let stock = match stock {
                            Some(m) => Some(
                                resolver
                                    .rule_module(tenant, m.trim())
                                    .map_err(|e| ChainError::resolving(index, id, e))?,
                            ),
                            None => resolver.cep_component(),
                        };
                        match stock {
                            Some(module) => component(module, Some(&source), &checked.name)?,
                            None => {
                                Arc::new(CepFactory::new(id, checked, opts).map_err(chain_err)?)
                            }
                        }
                    };
                    (id.clone(), f)
                }
                OperatorSpec::Udf {
                    id, module, kind, ..
                } => {
                    let f = resolver
                        .resolve_in(tenant, op, module, *kind)
                        .map_err(|e| ChainError::resolving(index, id, e))?;
                    (id.clone(), f)
                }
            };
            stages.push((id, factory));
        }
        Ok(Self { stages })
    }

    /// Fresh instances of every operator, for one task.
    pub fn instantiate(&self) -> Result<Instances, OperatorError> {
        let ops = self
            .stages
            .iter()
            .map(|(id, f)| Ok((id.clone(), f.instantiate()?)))
            .collect::<Result<_, OperatorError>>()?;
        Ok(Instances { ops })
    }
}

/// One task's operator instances, in chain order.
pub struct Instances {
    ops: Vec<(String, Box<dyn Operator>)>,
}

impl Instances {
    /// Runs records of one partition through the chain. Each output keeps
    /// its source record's position and gets a sequence number among that
    /// record's outputs, so a replay produces the same identities.
    ///
    /// Records move from stage to stage without copies: each operator reads
    /// the batch in place, and only what it emits flows on.
    pub fn run(
        &mut self,
        input: Vec<SourceRecord>,
        state: &mut PartitionState,
        ctx: BatchContext<'_>,
    ) -> Result<(Vec<Output>, Vec<DeadLetter>), OperatorError> {
        let mut dead = Vec::new();
        let (positions, mut records): (Vec<SourcePos>, Vec<Record>) =
            input.into_iter().map(|r| (r.pos, r.record)).unzip();
        // Index of the source record each flowing record came from.
        let mut origins: Vec<usize> = (0..records.len()).collect();
        for (id, op) in &mut self.ops {
            if records.is_empty() {
                break;
            }
            // Each flowing record sees the watermark after its source record.
            let marks: Vec<Option<i64>> = if ctx.record_watermarks.is_empty() {
                Vec::new()
            } else {
                origins
                    .iter()
                    .map(|&src| ctx.record_watermarks.get(src).copied().flatten())
                    .collect()
            };
            let stage = BatchContext {
                record_watermarks: &marks,
                ..ctx
            };
            let results = op.process_batch(&records, state, stage)?;
            if results.len() != records.len() {
                return Err(OperatorError {
                    operator: id.clone(),
                    reason: format!(
                        "returned {} results for {} records",
                        results.len(),
                        records.len()
                    ),
                });
            }
            let mut next = Vec::with_capacity(records.len());
            let mut next_origins = Vec::with_capacity(records.len());
            for ((src, rec), res) in origins.into_iter().zip(records).zip(results) {
                match res {
                    RecordResult::Emit(outs) => {
                        next_origins.extend(std::iter::repeat_n(src, outs.len()));
                        next.extend(outs);
                    }
                    RecordResult::DeadLetter { reason } => dead.push(DeadLetter {
                        origin: positions[src].clone(),
                        record: rec,
                        reason,
                        module: op.module().to_owned(),
                    }),
                }
            }
            records = next;
            origins = next_origins;
        }
        let mut outputs = Vec::with_capacity(records.len());
        let mut last: Option<(usize, u32)> = None;
        for (src, record) in origins.into_iter().zip(records) {
            let seq = match last {
                Some((s, n)) if s == src => n + 1,
                _ => 0,
            };
            last = Some((src, seq));
            outputs.push(Output {
                origin: positions[src].clone(),
                seq,
                record,
            });
        }
        Ok((outputs, dead))
    }

    /// Each reporting operator's figures, by operator id.
    pub fn stats(&self) -> BTreeMap<String, Vec<(&'static str, u64)>> {
        self.ops
            .iter()
            .map(|(id, op)| (id.clone(), op.stats()))
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    /// Has every operator write its own state of `partition` into `state`
    /// (before a checkpoint snapshots it).
    pub fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        for (_, op) in &mut self.ops {
            op.save_state(partition, state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Dur;
    use crate::runtime::operators::NativeModules;
    use crate::runtime::record::{Record, SourcePos};

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    #[test]
    fn partitions_are_spread_round_robin_and_tasks_bounded_by_partitions() {
        let parts: Vec<_> = (0..4).map(|p| tp("a", p)).collect();
        let a = assign(&parts, 2);
        assert_eq!(
            a,
            vec![vec![tp("a", 0), tp("a", 2)], vec![tp("a", 1), tp("a", 3)]]
        );
        assert_eq!(assign(&parts, 8).len(), 4);
        assert_eq!(assign(&parts, 1)[0].len(), 4);
    }

    #[test]
    fn chain_numbers_outputs_per_source_record_and_collects_dead_letters() {
        let spec = JobSpec::parse(
            r#"
sources: [{ topic: in }]
operators:
  - { type: key_by, id: k, field: user }
  - { type: udf, id: split, module: "split@1", kind: flat_map }
sinks: [{ type: kafka, topic: out }]
"#,
        )
        .unwrap();
        let mut mods = NativeModules::builtins();
        mods.register("split@1", |r, _| {
            RecordResult::Emit(vec![r.clone(), r.clone()])
        });
        let chain = Chain::build(&spec, &mods).unwrap();
        let mut inst = chain.instantiate().unwrap();
        let pos = |o| SourcePos {
            topic: "in".into(),
            partition: 0,
            offset: o,
        };
        let input = vec![
            SourceRecord {
                pos: pos(10),
                record: Record::value(r#"{"user":"a"}"#),
            },
            SourceRecord {
                pos: pos(11),
                record: Record::value("bad"),
            },
            SourceRecord {
                pos: pos(12),
                record: Record::value(r#"{"user":"b"}"#),
            },
        ];
        let ctx = BatchContext::whole(0, None);
        let (outs, dead) = inst
            .run(input, &mut PartitionState::default(), ctx)
            .unwrap();
        let ids: Vec<_> = outs.iter().map(|o| (o.origin.offset, o.seq)).collect();
        assert_eq!(ids, vec![(10, 0), (10, 1), (12, 0), (12, 1)]);
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].origin.offset, 11);
        assert_eq!(dead[0].module, "key_by:k");
    }

    #[test]
    fn a_key_by_feeding_keyed_state_splits_the_job_at_a_repartition_topic() {
        let spec = JobSpec::parse(
            r#"
sources: [{ topic: in, event_time_field: ts, max_out_of_orderness_ms: 500 }]
operators:
  - { type: udf, id: clean, module: "upper@1", kind: map }
  - { type: key_by, id: by-user, field: user }
  - { type: udf, id: guard, module: "reject-poison@1", kind: map }
  - { type: udf, id: count, module: "count@1", kind: process }
sinks: [{ type: kafka, topic: out }]
dead_letter_topic: dlq
rate_limit: 100
"#,
        )
        .unwrap();
        let st = stages("acme", "job.1", &spec);
        assert_eq!(st.len(), 2);
        let topic = "weir.acme.job_1.by-user.repartition";
        let ids = |s: &Stage| -> Vec<String> {
            s.spec.operators.iter().map(|o| o.id().to_owned()).collect()
        };
        assert_eq!(ids(&st[0]), ["clean", "by-user"]);
        assert_eq!(st[0].spec.sources, spec.sources);
        assert_eq!(
            st[0].spec.sinks,
            vec![SinkSpec::Kafka {
                topic: topic.into()
            }]
        );
        assert_eq!(st[0].spec.rate_limit, None);
        assert_eq!(st[0].reads_repartition, None);
        assert_eq!(ids(&st[1]), ["guard", "count"]);
        assert_eq!(st[1].reads_repartition.as_deref(), Some(topic));
        let src = &st[1].spec.sources[0];
        assert_eq!(
            (
                src.topic.as_str(),
                src.format,
                src.event_time_field.as_deref()
            ),
            (topic, Format::Raw, None)
        );
        assert_eq!(src.max_out_of_orderness(), Dur::from_millis(500));
        assert_eq!(src.start, StartPosition::Latest);
        assert_eq!(st[1].spec.sinks, spec.sinks);
        assert_eq!(st[1].spec.rate_limit, Some(100));
        assert_eq!(st[1].spec.dead_letter_topic.as_deref(), Some("dlq"));

        // A key_by that only keys the output, or is re-keyed before any
        // keyed state, needs no repartition.
        let plain = JobSpec::parse(
            r#"
sources: [{ topic: in }]
operators:
  - { type: key_by, id: a, field: x }
  - { type: udf, id: up, module: "upper@1", kind: map }
  - { type: key_by, id: b, field: y }
sinks: [{ type: kafka, topic: out }]
"#,
        )
        .unwrap();
        assert_eq!(
            stages("acme", "j", &plain),
            vec![Stage {
                spec: plain.clone(),
                reads_repartition: None
            }]
        );
    }

    #[test]
    fn unknown_modules_name_the_operator() {
        let spec = JobSpec::parse(
            "sources: [{topic: a}]\noperators: [{type: udf, id: u, module: \"x@1\", kind: map}]\nsinks: [{type: kafka, topic: b}]\n",
        )
        .unwrap();
        let err = Chain::build(&spec, &NativeModules::builtins())
            .err()
            .unwrap();
        assert_eq!((err.index, err.id.as_str()), (0, "u"));
    }
}
