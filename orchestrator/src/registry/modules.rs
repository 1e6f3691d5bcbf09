//! The module registry as a [`ModuleSource`]: versions come from the module
//! streams (`module.<name>`), bytes from the tenant's object store bucket
//! (digest- and size-checked), and precompiling loads them into the WASM
//! host, whose artifact cache keeps the compiled code. Loading also checks
//! the component against the `weir:udf` world, so a module that only claims
//! the right interface is caught here too.

use std::sync::Arc;

use async_nats::jetstream;
use futures::future::BoxFuture;

use super::source::{FetchedModule, ModuleError, ModuleSource};
use super::ModuleBytes;
use crate::domain::module::ModuleState;
use crate::domain::{Aggregate, ModuleName, StreamId};
use crate::store::{self, EventStore};
use crate::wasm::WasmHost;

/// Modules uploaded with `weir udf upload`.
pub struct RegistryModules<S> {
    pub store: Arc<S>,
    pub js: jetstream::Context,
    pub subject_prefix: String,
    pub host: Arc<WasmHost>,
}

impl<S: EventStore> RegistryModules<S> {
    async fn state(&self, tenant: &str, name: &str) -> Result<ModuleState, ModuleError> {
        let name = ModuleName::new(name)?;
        let stream = StreamId::new(ModuleState::STREAM_KIND, name.as_str());
        Ok(store::load(self.store.as_ref(), tenant, &stream)
            .await?
            .state)
    }

    /// The verified bytes of `name@version`.
    pub async fn bytes(&self, tenant: &str, m: &FetchedModule) -> Result<Vec<u8>, ModuleError> {
        Ok(ModuleBytes::open(&self.js, &self.subject_prefix, tenant)
            .await?
            .get(&m.name, &m.version, &m.digest, m.size)
            .await?)
    }
}

impl<S: EventStore> ModuleSource for RegistryModules<S> {
    fn fetch<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<FetchedModule, ModuleError>> {
        Box::pin(async move {
            let state = self.state(tenant, name).await?;
            let v = state
                .versions
                .get(version)
                .ok_or_else(|| ModuleError::NotUploaded {
                    tenant: tenant.to_owned(),
                    name: name.to_owned(),
                    version: version.to_owned(),
                })?;
            Ok(FetchedModule {
                name: name.to_owned(),
                version: version.to_owned(),
                digest: v.digest.clone(),
                size: v.size,
                interface: v.interface.clone(),
                kind: v.module_kind,
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
    ) -> BoxFuture<'a, Result<(), ModuleError>> {
        Box::pin(async move {
            let bytes = self.bytes(tenant, m).await?;
            let host = self.host.clone();
            let (name, version) = (m.name.clone(), m.version.clone());
            // Compiling is CPU-bound; keep it off the async workers.
            tokio::task::spawn_blocking(move || host.load(&name, &version, &bytes).map(|_| ()))
                .await?
                .map_err(|source| ModuleError::Rejected {
                    module: format!("{}@{}", m.name, m.version),
                    source,
                })
        })
    }
}
