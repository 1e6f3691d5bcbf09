//! The operator seam: anything that turns a batch of records into per-record
//! results against host-owned keyed state. Native operators (`key_by`, the
//! built-ins) and the WASM adapter implement the same trait, so the task loop
//! and every test run the same way whatever the operator is made of.
//!
//! Operators are synchronous; the task runs them on a blocking thread, never
//! on the async executor.

use std::sync::Arc;

use super::record::Record;
use super::state::PartitionState;
use crate::domain::job::spec::{OperatorSpec, UdfKind};

/// What became of one input record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// Zero or more outputs (zero: filtered out).
    Emit(Vec<Record>),
    /// The record is bad (undecodable, trapped the UDF, timed out); it goes to
    /// the dead-letter topic and the job keeps running.
    DeadLetter { reason: String },
}

/// Facts about the batch an operator may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchContext<'a> {
    /// The source partition all records of the batch come from.
    pub partition: i32,
    /// The partition's watermark (event time below which no more records are expected).
    pub watermark_ms: Option<i64>,
    /// The partition's watermark right after each record, when the task
    /// knows it; empty otherwise (every record then sees `watermark_ms`).
    /// It never decreases. Event-time timers fire at the record whose
    /// watermark reaches them, so a replay that cuts its batches elsewhere
    /// fires them at the same record.
    pub record_watermarks: &'a [Option<i64>],
}

impl BatchContext<'_> {
    /// A batch whose records all see one watermark.
    pub fn whole(partition: i32, watermark_ms: Option<i64>) -> Self {
        BatchContext {
            partition,
            watermark_ms,
            record_watermarks: &[],
        }
    }
}

/// An operator failure that breaks the whole task (not one record); the
/// task restarts from its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator `{operator}` failed: {reason}")]
pub struct OperatorError {
    pub operator: String,
    pub reason: String,
}

/// One operator instance, owned by one task.
pub trait Operator: Send {
    /// Processes `records` (all from one partition), returning exactly one
    /// result per record, in order. `state` is that partition's keyed state;
    /// an operator touches only its own part (by its operator id).
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError>;

    /// What dead letters name as their module (`name@version` for UDFs).
    fn module(&self) -> &str;

    /// Figures the operator reports about itself, as `(metric name, value)`
    /// (a CEP operator's matches and partial matches). Called at most about
    /// once a second, so it may walk its state.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Writes state the operator keeps on its own side (a WASM UDF's host
    /// state) into the partition's state. The task calls it just before it
    /// snapshots the partition for a checkpoint, so the operator need not
    /// serialise after every batch.
    fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        let _ = (partition, state);
        Ok(())
    }
}

/// Makes fresh instances of one operator of a job (one per task, and again
/// after a crash).
pub trait OperatorFactory: Send + Sync {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError>;
}

/// A module could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("module `{module}`: {reason}")]
pub struct ResolveError {
    pub module: String,
    pub reason: String,
    /// Whether retrying may succeed (e.g. the module registry is unreachable).
    pub retryable: bool,
}

/// Turns a UDF operator of a spec (`module` = `name@version`, `kind`) into a
/// factory. The WASM module registry implements this; tests and demos use
/// [`super::operators::NativeModules`].
pub trait ModuleResolver: Send + Sync + 'static {
    fn resolve(
        &self,
        spec: &OperatorSpec,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError>;

    /// Resolves in one tenant's namespace. Registries whose modules are per
    /// tenant override this; tenant-independent resolvers need not.
    fn resolve_in(
        &self,
        tenant: &str,
        spec: &OperatorSpec,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError> {
        let _ = tenant;
        self.resolve(spec, module, kind)
    }

    /// Weir's stock CEP rule component, when `cep` operators run in the
    /// WASM sandbox; `None` runs them natively in the task.
    fn cep_component(&self) -> Option<Arc<crate::wasm::LoadedModule>> {
        None
    }

    /// A rule component (`name@version`) from `tenant`'s registry, for a
    /// `cep` operator whose rule is written in Rust.
    fn rule_module(
        &self,
        tenant: &str,
        module: &str,
    ) -> Result<Arc<crate::wasm::LoadedModule>, ResolveError> {
        let _ = tenant;
        Err(ResolveError {
            module: module.to_owned(),
            reason: "this runtime has no module registry for rule components".into(),
            retryable: false,
        })
    }
}
