//! `cep` in the WASM sandbox: the rule runs inside Weir's stock rule
//! component (`udf-sdk/cep-rule`), with the same memory cap and deadline
//! as any UDF, and the same matching code as [`super::cep`] (both use
//! `weir_cep::runner`), so outputs are identical record for record.
//!
//! The component holds its partial matches in its own memory between
//! checkpoints (`held-state`): a checkpoint asks it for each partition's
//! snapshot and stores it in that partition's keyed state, under the same
//! entry as the native operator, and a restore hands it back. A failed
//! call (trap, deadline, memory cap) fails the task, which restarts from
//! its checkpoint and replays; a bad record (no key, not JSON) goes to the
//! dead-letter topic alone.

use std::collections::HashSet;
use std::sync::Arc;

use weir_cep::rule::Rule;
use weir_cep::runner::{ComponentConfig, RunnerOptions, RunnerStats};

use super::super::operator::{
    BatchContext, Operator, OperatorError, OperatorFactory, RecordResult,
};
use super::super::record::Record;
use super::super::state::PartitionState;
use super::cep::{save_snapshot, saved_snapshot, side_tag, stat_list, SIDE_LATE, SIDE_TIMED_OUT};
use crate::registry::resolver::to_result;
use crate::telemetry::names;
use crate::wasm::{
    BatchTime, FailureReason, InputRecord, InstanceLabels, LoadedModule, ModuleLimits,
    SourcePosition, UdfInstance,
};

/// Makes component-backed CEP operator instances of one rule.
pub struct CepComponentFactory {
    id: String,
    label: String,
    module: Arc<LoadedModule>,
    limits: ModuleLimits,
    /// What the component reads through `config.operator-config`.
    config: String,
}

impl CepComponentFactory {
    /// `rule` is the declarative rule the stock component runs (checked
    /// already), or `None` for a rule component that brings its own
    /// pattern; `name` names the rule in labels; `module` is the loaded
    /// component; `memory_bytes` its memory cap.
    pub fn new(
        id: &str,
        rule: Option<&Rule>,
        name: &str,
        opts: RunnerOptions,
        module: Arc<LoadedModule>,
        memory_bytes: usize,
    ) -> Result<Self, String> {
        if !module.holds_state() {
            return Err(format!(
                "module {}@{} is not a CEP rule component (it does not export {})",
                module.ident.name,
                module.ident.version,
                crate::wasm::HELD_STATE_EXPORT
            ));
        }
        let config = ComponentConfig::new(
            rule.cloned(),
            opts,
            side_tag(id, SIDE_TIMED_OUT),
            side_tag(id, SIDE_LATE),
        );
        let config = serde_json::to_string(&config).map_err(|e| format!("rule config: {e}"))?;
        Ok(Self {
            id: id.to_owned(),
            label: format!("cep:{}@{}:{name}", module.ident.name, module.ident.version),
            module,
            limits: ModuleLimits {
                memory_bytes,
                ..ModuleLimits::default()
            },
            config,
        })
    }
}

impl OperatorFactory for CepComponentFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        let labels = InstanceLabels {
            job: String::new(),
            operator: self.id.clone(),
            config: self.config.clone(),
        };
        let instance = self
            .module
            .instantiate(self.limits.clone(), labels)
            .map_err(|e| OperatorError {
                operator: self.id.clone(),
                reason: e.to_string(),
            })?;
        Ok(Box::new(CepComponentOperator {
            id: self.id.clone(),
            label: self.label.clone(),
            instance,
            held: HashSet::new(),
            stats: RunnerStats::default(),
            inputs: Vec::new(),
        }))
    }
}

/// One instance of the stock rule component behind the operator trait.
pub struct CepComponentOperator {
    id: String,
    label: String,
    instance: UdfInstance,
    /// Partitions whose snapshot the instance has been handed.
    held: HashSet<i32>,
    /// The component's stats after the last batch.
    stats: RunnerStats,
    /// The batch's inputs, reused between batches.
    inputs: Vec<InputRecord>,
}

impl CepComponentOperator {
    /// A failed call lost the instance and what it held: the task restarts.
    fn failed(&mut self, what: &str, reason: FailureReason) -> OperatorError {
        self.held.clear();
        OperatorError {
            operator: self.id.clone(),
            reason: format!("{what}: {}: {reason}", reason.code()),
        }
    }
}

impl Operator for CepComponentOperator {
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        if !self.held.contains(&ctx.partition) {
            let snapshot = saved_snapshot(state, &self.id);
            if let Err(reason) = self.instance.restore_held(ctx.partition, &snapshot) {
                let what = format!("state snapshot of partition {}", ctx.partition);
                return Err(self.failed(&what, reason));
            }
            self.held.insert(ctx.partition);
        }
        self.inputs.clear();
        self.inputs.extend(records.iter().map(|r| InputRecord {
            key: r.key.clone(),
            value: Some(r.value.clone()),
            timestamp: r.timestamp_ms,
            headers: Vec::new(),
            source: SourcePosition {
                topic: None,
                partition: ctx.partition,
                offset: 0,
            },
        }));
        let time = BatchTime {
            watermark: ctx.watermark_ms,
            ..BatchTime::now()
        };
        let results = match self.instance.process_held(&self.inputs, time) {
            Ok(r) => r,
            Err(reason) => return Err(self.failed("batch", reason)),
        };
        match self.instance.held_stats() {
            Ok(v) => self.stats = RunnerStats::from_slice(&v),
            Err(reason) => return Err(self.failed("stats", reason)),
        }
        Ok(results.into_iter().map(to_result).collect())
    }

    fn module(&self) -> &str {
        &self.label
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let mut s = stat_list(self.stats);
        s.push((
            names::UDF_PEAK_MEMORY_BYTES,
            self.instance.stats().peak_memory_bytes,
        ));
        s
    }

    /// Asks the component for the partition's snapshot and writes it in
    /// place of what the state held.
    fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        if !self.held.contains(&partition) {
            return Ok(());
        }
        let snapshot = match self.instance.snapshot_held(partition) {
            Ok(s) => s,
            Err(reason) => {
                let what = format!("snapshot of partition {partition}");
                return Err(self.failed(&what, reason));
            }
        };
        save_snapshot(state, &self.id, snapshot);
        Ok(())
    }
}
