//! Native modules: per-record Rust functions registered under `name@version`,
//! resolved exactly like WASM modules. They let the runtime be tested and
//! benchmarked without a WASM toolchain, and give demos a few ready shapes.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::operator::{
    BatchContext, ModuleResolver, Operator, OperatorError, OperatorFactory, RecordResult,
    ResolveError,
};
use super::super::record::Record;
use super::super::state::{KeyedState, PartitionState};
use crate::domain::job::spec::{OperatorSpec, UdfKind};

/// A per-record function with access to the record's keyed state.
pub type NativeFn = Arc<dyn Fn(&Record, &mut KeyedState) -> RecordResult + Send + Sync>;

/// A registry of native modules by `name@version`.
#[derive(Clone, Default)]
pub struct NativeModules {
    modules: HashMap<String, NativeFn>,
    cep_component: Option<Arc<crate::wasm::LoadedModule>>,
}

impl std::fmt::Debug for NativeModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.modules.keys().collect();
        names.sort();
        f.debug_struct("NativeModules")
            .field("modules", &names)
            .finish()
    }
}

impl NativeModules {
    /// The built-ins:
    /// - `identity@1`: passes records through;
    /// - `upper@1`: ASCII-uppercases the value;
    /// - `count@1`: keyed running count; emits `{"key":…,"count":n}` keyed by the record key;
    /// - `reject-poison@1`: dead-letters records whose value contains `poison`.
    pub fn builtins() -> Self {
        let mut m = Self::default();
        m.register("identity@1", |r, _| RecordResult::Emit(vec![r.clone()]));
        m.register("upper@1", |r, _| {
            let mut out = r.clone();
            out.value = out.value.to_ascii_uppercase().into();
            RecordResult::Emit(vec![out])
        });
        m.register("count@1", count);
        m.register("reject-poison@1", |r, _| {
            if r.value.windows(6).any(|w| w == b"poison") {
                RecordResult::DeadLetter {
                    reason: "trap: poison record".into(),
                }
            } else {
                RecordResult::Emit(vec![r.clone()])
            }
        });
        m
    }

    /// Runs `cep` operators in this stock rule component instead of natively.
    pub fn with_cep_component(mut self, module: Arc<crate::wasm::LoadedModule>) -> Self {
        self.cep_component = Some(module);
        self
    }

    /// Adds or replaces a module.
    pub fn register(
        &mut self,
        module: &str,
        f: impl Fn(&Record, &mut KeyedState) -> RecordResult + Send + Sync + 'static,
    ) -> &mut Self {
        self.modules.insert(module.to_owned(), Arc::new(f));
        self
    }
}

fn count(r: &Record, state: &mut KeyedState) -> RecordResult {
    let key = r.key.as_deref().unwrap_or_default().to_vec();
    let n = state
        .get(&key)
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_le_bytes)
        + 1;
    state.put(key.clone(), n.to_le_bytes().to_vec());
    let value = serde_json::json!({
        "key": String::from_utf8_lossy(&key),
        "count": n,
    });
    RecordResult::Emit(vec![Record {
        key: Some(key.into()),
        value: value.to_string().into(),
        timestamp_ms: r.timestamp_ms,
        headers: Vec::new(),
    }])
}

struct NativeFactory {
    id: String,
    module: String,
    kind: UdfKind,
    f: NativeFn,
}

struct NativeOperator {
    id: String,
    module: String,
    kind: UdfKind,
    f: NativeFn,
}

impl OperatorFactory for NativeFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        Ok(Box::new(NativeOperator {
            id: self.id.clone(),
            module: self.module.clone(),
            kind: self.kind,
            f: self.f.clone(),
        }))
    }
}

impl Operator for NativeOperator {
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        _ctx: BatchContext<'_>,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        let state = state.operator(&self.id);
        Ok(records
            .iter()
            .map(|r| match ((self.f)(r, state), self.kind) {
                // A filter keeps or drops the input; a map emits exactly one output.
                (RecordResult::Emit(outs), UdfKind::Filter) => {
                    RecordResult::Emit(if outs.is_empty() {
                        vec![]
                    } else {
                        vec![r.clone()]
                    })
                }
                (RecordResult::Emit(outs), UdfKind::Map) if outs.len() != 1 => {
                    RecordResult::DeadLetter {
                        reason: format!("map emitted {} records instead of 1", outs.len()),
                    }
                }
                (res, _) => res,
            })
            .collect())
    }

    fn module(&self) -> &str {
        &self.module
    }
}

impl ModuleResolver for NativeModules {
    fn resolve(
        &self,
        spec: &OperatorSpec,
        module: &str,
        kind: UdfKind,
    ) -> Result<Arc<dyn OperatorFactory>, ResolveError> {
        let f = self.modules.get(module).ok_or_else(|| ResolveError {
            module: module.to_owned(),
            reason: "no such native module".into(),
            retryable: false,
        })?;
        let id = spec.id().to_owned();
        Ok(Arc::new(NativeFactory {
            id,
            module: module.to_owned(),
            kind,
            f: f.clone(),
        }))
    }

    fn cep_component(&self) -> Option<Arc<crate::wasm::LoadedModule>> {
        self.cep_component.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        module: &str,
        kind: UdfKind,
        recs: &[Record],
        st: &mut PartitionState,
    ) -> Vec<RecordResult> {
        let spec = OperatorSpec::KeyBy {
            id: "op".into(),
            field: "x".into(),
        };
        let f = NativeModules::builtins()
            .resolve(&spec, module, kind)
            .unwrap();
        let mut op = f.instantiate().unwrap();
        let ctx = BatchContext::whole(0, None);
        op.process_batch(recs, st, ctx).unwrap()
    }

    #[test]
    fn count_keeps_a_running_count_per_key_in_host_state() {
        let mut st = PartitionState::default();
        let rec = |k: &str| Record {
            key: Some(k.to_owned().into()),
            ..Record::default()
        };
        let res = run(
            "count@1",
            UdfKind::Process,
            &[rec("a"), rec("b"), rec("a")],
            &mut st,
        );
        let RecordResult::Emit(outs) = &res[2] else {
            panic!("{res:?}")
        };
        assert_eq!(outs[0].value, &br#"{"count":2,"key":"a"}"#[..]);
        assert_eq!(st.operator("op").get(b"a"), Some(&2u64.to_le_bytes()[..]));
    }

    #[test]
    fn unknown_modules_are_not_resolved() {
        let spec = OperatorSpec::KeyBy {
            id: "x".into(),
            field: "x".into(),
        };
        let err = NativeModules::builtins()
            .resolve(&spec, "nope@1", UdfKind::Map)
            .err()
            .unwrap();
        assert_eq!(err.module, "nope@1");
    }

    #[test]
    fn poison_records_are_dead_lettered() {
        let res = run(
            "reject-poison@1",
            UdfKind::Map,
            &[Record::value("ok"), Record::value("a poison pill")],
            &mut PartitionState::default(),
        );
        assert!(matches!(res[0], RecordResult::Emit(_)));
        assert!(matches!(res[1], RecordResult::DeadLetter { .. }));
    }
}
