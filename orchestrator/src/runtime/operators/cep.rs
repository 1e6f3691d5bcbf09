//! `cep`: a declarative CEP rule matched per key in event-time order, with
//! the `weir-cep` engine running in the task.
//!
//! Event time is the record's time (the source's `event_time_field`, or the
//! Kafka timestamp). Matching is [`weir_cep::runner`]'s: a watermark per
//! partition, advanced record by record, so a replay after a restore emits
//! the same outputs at the same source positions, which is what
//! exactly-once by deterministic replay needs.
//!
//! Partial matches and buffered records live in the operator between
//! checkpoints; a checkpoint writes each partition's snapshot into that
//! partition's keyed state, so it moves with the partition on a rescale
//! and comes back on a restore.

use std::sync::Arc;

use bytes::Bytes;
use weir_cep::event::SharedEvent;
use weir_cep::rule::CheckedRule;
use weir_cep::runner::{OutputKind, RuleRunner, RunnerOptions, RunnerStats, READ_AHEAD};

use super::super::operator::{
    BatchContext, Operator, OperatorError, OperatorFactory, RecordResult,
};
use super::super::record::{Record, H_SIDE_OUTPUT};
use super::super::state::{KeyedState, PartitionState};
use crate::telemetry::names;

/// Side-output tag of a timed-out partial match.
pub const SIDE_TIMED_OUT: &str = "timed_out";
/// Side-output tag of a late record.
pub const SIDE_LATE: &str = "late";

/// What an output of side `side` of operator `operator` carries in its
/// `weir-side-output` header, so the task writes it to that side's topic.
pub fn side_tag(operator: &str, side: &str) -> String {
    format!("{operator}:{side}")
}

/// The keyed-state entry holding the partition's snapshot (see
/// [`weir_cep::runner::RuleRunner::snapshot`]).
const SNAPSHOT_ENTRY: &[u8] = b"p";

/// Counts and sizes of one CEP operator instance, over the partitions it holds.
pub type CepStats = RunnerStats;

/// Builds CEP operator instances from a checked rule.
pub struct CepFactory {
    id: String,
    rule: Arc<CheckedRule>,
    opts: RunnerOptions,
}

impl CepFactory {
    /// Instances of a checked rule, run with `opts`.
    pub fn new(id: &str, rule: CheckedRule, opts: RunnerOptions) -> Result<Self, String> {
        rule.compile().map_err(|p| p.to_string())?;
        Ok(Self {
            id: id.to_owned(),
            rule: Arc::new(rule),
            opts,
        })
    }
}

impl OperatorFactory for CepFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        let runner =
            RuleRunner::new((*self.rule).clone(), self.opts).map_err(|reason| OperatorError {
                operator: self.id.clone(),
                reason,
            })?;
        Ok(Box::new(CepOperator {
            id: self.id.clone(),
            label: format!("cep:{}", self.rule.name),
            tags: SideTags::of(&self.id),
            runner,
        }))
    }
}

/// The side-output headers of one operator.
pub(crate) struct SideTags {
    pub(crate) timed_out: Bytes,
    pub(crate) late: Bytes,
}

impl SideTags {
    pub(crate) fn of(operator: &str) -> Self {
        Self {
            timed_out: Bytes::from(side_tag(operator, SIDE_TIMED_OUT)),
            late: Bytes::from(side_tag(operator, SIDE_LATE)),
        }
    }

    /// The header an output of `kind` carries (none for a match).
    pub(crate) fn header(&self, kind: OutputKind) -> Option<&Bytes> {
        match kind {
            OutputKind::Match => None,
            OutputKind::TimedOut => Some(&self.timed_out),
            OutputKind::Late => Some(&self.late),
        }
    }
}

/// A CEP rule run over the partitions of one task.
pub struct CepOperator {
    id: String,
    label: String,
    tags: SideTags,
    runner: RuleRunner,
}

impl CepOperator {
    fn error(&self, reason: String) -> OperatorError {
        OperatorError {
            operator: self.id.clone(),
            reason,
        }
    }

    /// Counts and sizes over the partitions this instance holds.
    pub fn cep_stats(&self) -> CepStats {
        self.runner.stats()
    }
}

/// The stats of a CEP operator as the runtime reports them.
pub(crate) fn stat_list(s: CepStats) -> Vec<(&'static str, u64)> {
    vec![
        (names::CEP_MATCHES, s.matches),
        (names::CEP_TIMEOUTS, s.timeouts),
        (names::CEP_LATE, s.late),
        (names::CEP_DROPPED, s.dropped),
        (names::CEP_PARTIAL_MATCHES, s.partial_matches),
        (names::CEP_BUFFERED, s.buffered_events),
    ]
}

/// The operator's snapshot of a partition as the last checkpoint left it
/// (empty: none).
pub(crate) fn saved_snapshot(state: &mut PartitionState, operator: &str) -> Vec<u8> {
    state
        .operator(operator)
        .get(SNAPSHOT_ENTRY)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Makes `snapshot` the operator's whole state in the partition.
pub(crate) fn save_snapshot(state: &mut PartitionState, operator: &str, snapshot: Vec<u8>) {
    let mut fresh = KeyedState::default();
    fresh.put(SNAPSHOT_ENTRY.to_vec(), snapshot);
    *state.operator(operator) = fresh;
}

/// Why a record cannot be matched, if it cannot: it has no key, or its
/// value is not JSON.
fn parse_input<'a>(runner: &RuleRunner, r: &'a Record) -> Result<(&'a Bytes, SharedEvent), String> {
    let Some(key) = &r.key else {
        return Err("record has no key: a cep operator needs a key_by before it".into());
    };
    let event = runner.event(&r.value).map_err(|e| e.to_string())?;
    Ok((key, event))
}

impl Operator for CepOperator {
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        if !self.runner.holds(ctx.partition) {
            let snapshot = saved_snapshot(state, &self.id);
            if let Err(e) = self.runner.restore(ctx.partition, &snapshot) {
                return Err(self.error(format!(
                    "state snapshot of partition {}: {e}",
                    ctx.partition
                )));
            }
        }
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(READ_AHEAD) {
            let keyed = chunk
                .iter()
                .filter_map(|r| Some((r.key.as_deref()?, r.timestamp_ms)));
            self.runner.warm(ctx.partition, keyed);
            for r in chunk {
                let (key, event) = match parse_input(&self.runner, r) {
                    Ok(v) => v,
                    Err(reason) => {
                        results.push(RecordResult::DeadLetter { reason });
                        continue;
                    }
                };
                let mut emitted = Vec::new();
                let tags = &self.tags;
                self.runner
                    .push_event(ctx.partition, key, event, r.timestamp_ms, &mut |o| {
                        emitted.push(Record {
                            key: Some(Bytes::from(o.key)),
                            value: Bytes::from(o.value),
                            timestamp_ms: o.time,
                            headers: tags
                                .header(o.kind)
                                .map(|t| vec![(H_SIDE_OUTPUT.to_owned(), t.clone())])
                                .unwrap_or_default(),
                        })
                    });
                results.push(RecordResult::Emit(emitted));
            }
        }
        Ok(results)
    }

    fn module(&self) -> &str {
        &self.label
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        stat_list(self.cep_stats())
    }

    /// Writes the partition's snapshot in place of what the state held.
    fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        if !self.runner.holds(partition) {
            return Ok(());
        }
        save_snapshot(state, &self.id, self.runner.snapshot(partition));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
