//! The shape of a running job: which source partitions each task owns, and
//! the operator chain every record goes through. Pure: no I/O.

use std::sync::Arc;

use super::operator::{
    BatchContext, ModuleResolver, Operator, OperatorError, OperatorFactory, RecordResult,
};
use super::operators::KeyBy;
use super::record::{DeadLetter, Output, SourceRecord};
use super::state::PartitionState;
use crate::domain::job::spec::{JobSpec, OperatorSpec};

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
                OperatorSpec::Udf {
                    id, module, kind, ..
                } => {
                    let f = resolver
                        .resolve_in(tenant, op, module, *kind)
                        .map_err(|e| ChainError {
                            index,
                            id: id.clone(),
                            reason: e.to_string(),
                            retryable: e.retryable,
                        })?;
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
    pub fn run(
        &mut self,
        input: Vec<SourceRecord>,
        state: &mut PartitionState,
        ctx: BatchContext,
    ) -> Result<(Vec<Output>, Vec<DeadLetter>), OperatorError> {
        let mut dead = Vec::new();
        // (index of source record, record) pairs flowing between stages.
        let mut flowing: Vec<(usize, crate::runtime::record::Record)> = input
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.record.clone()))
            .collect();
        for (id, op) in &mut self.ops {
            if flowing.is_empty() {
                break;
            }
            let records: Vec<_> = flowing.iter().map(|(_, r)| r.clone()).collect();
            let results = op.process_batch(&records, state, ctx)?;
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
            let mut next = Vec::with_capacity(flowing.len());
            for ((src, rec), res) in flowing.into_iter().zip(results) {
                match res {
                    RecordResult::Emit(outs) => next.extend(outs.into_iter().map(|o| (src, o))),
                    RecordResult::DeadLetter { reason } => dead.push(DeadLetter {
                        origin: input[src].pos.clone(),
                        record: rec,
                        reason,
                        module: op.module().to_owned(),
                    }),
                }
            }
            flowing = next;
        }
        let mut outputs = Vec::with_capacity(flowing.len());
        let mut last: Option<(usize, u32)> = None;
        for (src, record) in flowing {
            let seq = match last {
                Some((s, n)) if s == src => n + 1,
                _ => 0,
            };
            last = Some((src, seq));
            outputs.push(Output {
                origin: input[src].pos.clone(),
                seq,
                record,
            });
        }
        Ok((outputs, dead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let ctx = BatchContext {
            partition: 0,
            watermark_ms: None,
        };
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
