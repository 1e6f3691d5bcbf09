//! The module registry as a [`ModuleSource`]: versions come from the module
//! streams (`module.<name>`), bytes from the tenant's object store bucket
//! (digest- and size-checked), and precompiling loads them into the WASM
//! host, whose artifact cache keeps the compiled code. Loading also checks
//! the component against the `weir:udf` world, so a module that only claims
//! the right interface is caught here too.

use std::sync::Arc;

use async_nats::jetstream;
use futures::future::BoxFuture;

use super::compile::{FetchedModule, ModuleSource};
use super::ActivityError;
use crate::domain::job::spec::UdfKind;
use crate::domain::module::{ModuleEvent, ModuleKind, ModuleState};
use crate::domain::ErrorClass;
use crate::domain::{ModuleName, StreamId};
use crate::registry::{ModuleBytes, RegistryError};
use crate::store::EventStore;
use crate::wasm::WasmHost;

/// Modules uploaded with `weir udf upload`.
pub struct RegistryModules<S> {
    pub store: Arc<S>,
    pub js: jetstream::Context,
    pub subject_prefix: String,
    pub host: Arc<WasmHost>,
}

fn kind(k: ModuleKind) -> UdfKind {
    match k {
        ModuleKind::Map => UdfKind::Map,
        ModuleKind::Filter => UdfKind::Filter,
        ModuleKind::FlatMap => UdfKind::FlatMap,
        ModuleKind::Process => UdfKind::Process,
    }
}

impl<S: EventStore> RegistryModules<S> {
    async fn state(&self, tenant: &str, name: &str) -> Result<ModuleState, ActivityError> {
        let name = ModuleName::new(name).map_err(|e| ActivityError::invalid(e.to_string()))?;
        let key = (tenant.to_owned(), StreamId::new("module", name.as_str()));
        let loaded = self.store.load_streams(std::slice::from_ref(&key)).await?;
        let st = loaded.get(&key).cloned().unwrap_or_default();
        if let Some(s) = st
            .snapshot
            .and_then(|s| serde_json::from_value::<ModuleState>(s).ok())
        {
            return Ok(s);
        }
        let mut state = ModuleState::default();
        for e in self.store.read_stream(tenant, &key.1, 0).await? {
            let event: ModuleEvent = serde_json::from_value(e.payload).map_err(|err| {
                ActivityError::new(ErrorClass::Internal, format!("module event: {err}"))
            })?;
            state.apply(&event);
        }
        Ok(state)
    }
}

impl<S: EventStore> ModuleSource for RegistryModules<S> {
    fn fetch<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<FetchedModule, ActivityError>> {
        Box::pin(async move {
            let state = self.state(tenant, name).await?;
            let v = state.versions.get(version).ok_or_else(|| {
                ActivityError::new(
                    ErrorClass::NotFound,
                    format!("module {name}@{version} is not uploaded in tenant `{tenant}`"),
                )
            })?;
            Ok(FetchedModule {
                name: name.to_owned(),
                version: version.to_owned(),
                digest: v.digest.clone(),
                size: v.size,
                interface: v.interface.clone(),
                kind: kind(v.module_kind),
                // Modules do not declare a state schema yet: a process UDF's state counts as
                // changed whenever its module name changes (see `plan`).
                state_schema: None,
            })
        })
    }

    fn precompile<'a>(
        &'a self,
        tenant: &'a str,
        m: &'a FetchedModule,
    ) -> BoxFuture<'a, Result<(), ActivityError>> {
        Box::pin(async move {
            let bytes = ModuleBytes::open(&self.js, &self.subject_prefix, tenant)
                .await
                .map_err(|e| ActivityError::new(ErrorClass::Unavailable, e.to_string()))?
                .get(&m.name, &m.version, &m.digest, m.size)
                .await
                .map_err(|e| match e {
                    RegistryError::DigestMismatch { .. } => ActivityError::invalid(e.to_string()),
                    RegistryError::NotFound { .. } => {
                        ActivityError::new(ErrorClass::NotFound, e.to_string())
                    }
                    other => ActivityError::new(ErrorClass::Unavailable, other.to_string()),
                })?;
            let host = self.host.clone();
            let (name, version) = (m.name.clone(), m.version.clone());
            // Compiling is CPU-bound; keep it off the async workers.
            tokio::task::spawn_blocking(move || host.load(&name, &version, &bytes).map(|_| ()))
                .await
                .map_err(|e| {
                    ActivityError::new(ErrorClass::Internal, format!("precompile task: {e}"))
                })?
                .map_err(|e| {
                    ActivityError::invalid(format!("module {}@{}: {e}", m.name, m.version))
                })
        })
    }
}
