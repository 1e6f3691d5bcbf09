//! Uploaded modules as stream-runtime operators: resolves `name@version` in
//! a tenant's registry into a factory of WASM operators, and adapts the WASM
//! host's batch API to the runtime's [`Operator`] trait.
//!
//! Keyed state: the WASM host keeps its own [`KeyedState`] (values per
//! operator, key and name, plus timers). The adapter keeps one per partition
//! in memory and writes its snapshot into the runtime's partition state
//! under [`STATE_BLOB`] after every batch that leaves state behind, so
//! checkpoints, restores and rescales carry it like any other operator state.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{ModuleSource, RegistryModules};
use crate::domain::job::spec::{parse_module_ref, OperatorSpec};
use crate::domain::module::UdfKind;
use crate::runtime::operator::{
    BatchContext, ModuleResolver, Operator, OperatorError, OperatorFactory, RecordResult,
    ResolveError,
};
use crate::runtime::record::Record;
use crate::runtime::state::PartitionState;
use crate::store::EventStore;
use crate::telemetry::names;
use crate::wasm::{
    BatchTime, Fired, InputRecord, InstanceLabels, KeyedState, LoadedModule, ModuleLimits,
    OutputRecord, UdfInstance, WasmHost,
};

/// Key, in the operator's runtime state, of the WASM host state snapshot.
pub const STATE_BLOB: &[u8] = b"\0weir-wasm-state";

type Loaded = HashMap<(String, String, String), Arc<LoadedModule>>;

/// Resolves UDF operators from the module registry (per tenant).
pub struct RegistryResolver<S> {
    modules: Arc<RegistryModules<S>>,
    host: Arc<WasmHost>,
    loaded: Mutex<Loaded>,
    cep_component: Option<Arc<LoadedModule>>,
}

impl<S: EventStore> RegistryResolver<S> {
    pub fn new(modules: Arc<RegistryModules<S>>, host: Arc<WasmHost>) -> Self {
        Self {
            modules,
            host,
            loaded: Mutex::new(HashMap::new()),
            cep_component: None,
        }
    }

    /// Runs `cep` operators in this stock rule component (`None`: natively).
    pub fn with_cep_component(mut self, module: Option<Arc<LoadedModule>>) -> Self {
        self.cep_component = module;
        self
    }

    async fn fetch(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<(Vec<u8>, UdfKind), ResolveError> {
        let module = format!("{name}@{version}");
        let err = |reason: String, retryable: bool| ResolveError {
            module: module.clone(),
            reason,
            retryable,
        };
        let fetched = self
            .modules
            .fetch(tenant, name, version)
            .await
            .map_err(|e| err(e.to_string(), e.is_retryable()))?;
        let bytes = self
            .modules
            .bytes(tenant, &fetched)
            .await
            .map_err(|e| err(e.to_string(), e.is_retryable()))?;
        Ok((bytes, fetched.kind))
    }
}

impl<S: EventStore> ModuleResolver for RegistryResolver<S> {
    fn resolve(
        &self,
        spec: &OperatorSpec,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError> {
        self.resolve_in("default", spec, module, kind)
    }

    fn cep_component(&self) -> Option<Arc<LoadedModule>> {
        self.cep_component.clone()
    }

    fn resolve_in(
        &self,
        tenant: &str,
        spec: &OperatorSpec,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError> {
        let loaded = self.load(tenant, module, kind)?;
        Ok(Arc::new(WasmFactory::for_operator(loaded, spec, module)))
    }

    fn rule_module(&self, tenant: &str, module: &str) -> Result<Arc<LoadedModule>, ResolveError> {
        let loaded = self.load(tenant, module, UdfKind::Process)?;
        if !loaded.holds_state() {
            return Err(ResolveError {
                module: module.to_owned(),
                reason: format!(
                    "not a CEP rule component: it does not export {}",
                    crate::wasm::HELD_STATE_EXPORT
                ),
                retryable: false,
            });
        }
        Ok(loaded)
    }
}

impl<S: EventStore> RegistryResolver<S> {
    /// `module` (`name@version`) of `tenant`, fetched and loaded once; its
    /// declared kind must be `kind`.
    fn load(
        &self,
        tenant: &str,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<LoadedModule>, ResolveError> {
        let err = |reason: String, retryable: bool| ResolveError {
            module: module.to_owned(),
            reason,
            retryable,
        };
        let (name, version) =
            parse_module_ref(module).ok_or_else(|| err("must be `name@version`".into(), false))?;
        let key = (tenant.to_owned(), name.to_owned(), version.to_owned());
        let cached = self.loaded.lock().ok().and_then(|l| l.get(&key).cloned());
        let loaded = match cached {
            Some(m) => m,
            None => {
                // The runtime resolves synchronously while starting a deployment;
                // the registry is async. Requires the multi-threaded runtime.
                let handle = tokio::runtime::Handle::try_current().map_err(|e| {
                    err(
                        format!("no async runtime to reach the registry: {e}"),
                        false,
                    )
                })?;
                let (bytes, declared) = tokio::task::block_in_place(|| {
                    handle.block_on(self.fetch(tenant, name, version))
                })?;
                if declared != kind {
                    return Err(err(
                        format!(
                            "the module is a {declared:?} UDF but the spec uses it as {kind:?}"
                        ),
                        false,
                    ));
                }
                let m = tokio::task::block_in_place(|| self.host.load(name, version, &bytes))
                    .map_err(|e| err(e.to_string(), false))?;
                if let Ok(mut l) = self.loaded.lock() {
                    l.insert(key, m.clone());
                }
                m
            }
        };
        Ok(loaded)
    }
}

/// Makes WASM operator instances of one module for one operator id.
pub struct WasmFactory {
    module: Arc<LoadedModule>,
    limits: ModuleLimits,
    operator: String,
    label: String,
}

impl WasmFactory {
    /// Instances of `module` for the operator `spec` (its id and its memory
    /// and time limits); `label` names the module in dead letters.
    pub fn for_operator(module: Arc<LoadedModule>, spec: &OperatorSpec, label: &str) -> Self {
        let memory_mb = match spec {
            OperatorSpec::Udf { memory_mb, .. } => *memory_mb,
            OperatorSpec::KeyBy { .. } | OperatorSpec::Cep { .. } => None,
        };
        let mut limits = ModuleLimits::default();
        if let Some(mb) = memory_mb {
            limits.memory_bytes = (mb as usize) << 20;
        }
        if let Some(timeout) = spec.timeout() {
            limits.deadline = timeout.get();
        }
        Self {
            module,
            limits,
            operator: spec.id().to_owned(),
            label: label.to_owned(),
        }
    }
}

impl OperatorFactory for WasmFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        let labels = InstanceLabels {
            job: String::new(),
            operator: self.operator.clone(),
            ..Default::default()
        };
        let instance = self
            .module
            .instantiate(self.limits.clone(), labels)
            .map_err(|e| OperatorError {
                operator: self.operator.clone(),
                reason: e.to_string(),
            })?;
        Ok(Box::new(WasmOperator {
            instance,
            operator: self.operator.clone(),
            label: self.label.clone(),
            states: HashMap::new(),
        }))
    }
}

/// One WASM UDF instance behind the runtime's operator trait.
pub struct WasmOperator {
    instance: UdfInstance,
    operator: String,
    label: String,
    /// The host state of each partition this task owns.
    states: HashMap<i32, KeyedState>,
}

/// Both sides hold payloads as shared `Bytes`: no copies either way.
fn to_output(o: OutputRecord) -> Record {
    Record {
        key: o.key,
        value: o.value.unwrap_or_default(),
        timestamp_ms: o.timestamp,
        headers: o.headers,
    }
}

pub(crate) fn to_result(r: crate::wasm::RecordResult) -> RecordResult {
    match r {
        crate::wasm::RecordResult::Outputs(outs) => {
            RecordResult::Emit(outs.into_iter().map(to_output).collect())
        }
        crate::wasm::RecordResult::DeadLetter(dl) => RecordResult::DeadLetter {
            reason: format!("{}: {}", dl.reason.code(), dl.reason),
        },
    }
}

impl Operator for WasmOperator {
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        let op_state = state.operator(&self.operator);
        let keyed = match self.states.entry(ctx.partition) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let restored = match op_state.get(STATE_BLOB) {
                    Some(blob) => KeyedState::restore(blob).map_err(|e| OperatorError {
                        operator: self.operator.clone(),
                        reason: format!("state snapshot of partition {}: {e}", ctx.partition),
                    })?,
                    None => KeyedState::new(),
                };
                v.insert(restored)
            }
        };
        let inputs: Vec<InputRecord> = records
            .iter()
            .map(|r| InputRecord {
                key: r.key.clone(),
                value: Some(r.value.clone()),
                timestamp: r.timestamp_ms,
                headers: r.headers.clone(),
                source: Default::default(),
            })
            .collect();
        let marks: Cow<'_, [Option<i64>]> = if ctx.record_watermarks.len() == records.len() {
            Cow::Borrowed(ctx.record_watermarks)
        } else {
            Cow::Owned(vec![ctx.watermark_ms; records.len()])
        };
        let (results, fired) = crate::wasm::run_with_timers(
            &mut self.instance,
            &self.operator,
            &inputs,
            &marks,
            keyed,
            BatchTime::now().processing_time,
        );
        let mut results: Vec<RecordResult> = results.into_iter().map(to_result).collect();
        // A timer's outputs ride with the record at which it fired (see
        // `wasm::event_time`), so a replay gives them the same identity.
        for Fired {
            after,
            results: outs,
        } in fired
        {
            for r in outs {
                match to_result(r) {
                    RecordResult::Emit(outs) => attach(&mut results, after, outs, &self.label),
                    RecordResult::DeadLetter { reason } => {
                        tracing::warn!(module = %self.label, %reason, "timer callback failed");
                    }
                }
            }
        }
        Ok(results)
    }

    fn module(&self) -> &str {
        &self.label
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        vec![(
            names::UDF_PEAK_MEMORY_BYTES,
            self.instance.stats().peak_memory_bytes,
        )]
    }

    /// The host state lives here between checkpoints; it is serialised into
    /// the partition's state only when a checkpoint asks for it.
    fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        let Some(keyed) = self.states.get(&partition) else {
            return Ok(());
        };
        if !keyed.is_empty() || op_state_has_blob(state, &self.operator) {
            let snapshot = keyed.snapshot();
            state
                .operator(&self.operator)
                .put(STATE_BLOB.to_vec(), snapshot);
        }
        Ok(())
    }
}

/// Adds a fired timer's outputs to the results of record `at`; if that
/// record was dead-lettered, to the nearest record before it that emits (or
/// else after it).
fn attach(results: &mut [RecordResult], at: usize, outs: Vec<Record>, module: &str) {
    let before = results[..=at.min(results.len().saturating_sub(1))]
        .iter()
        .rposition(|r| matches!(r, RecordResult::Emit(_)));
    let after = || {
        results
            .iter()
            .skip(at)
            .position(|r| matches!(r, RecordResult::Emit(_)))
            .map(|i| i + at)
    };
    match before.or_else(after).and_then(|i| results.get_mut(i)) {
        Some(RecordResult::Emit(list)) => list.extend(outs),
        _ => tracing::warn!(
            %module,
            dropped = outs.len(),
            "timer outputs dropped: every record of the batch was dead-lettered"
        ),
    }
}

fn op_state_has_blob(state: &mut PartitionState, operator: &str) -> bool {
    state.operator(operator).get(STATE_BLOB).is_some()
}
