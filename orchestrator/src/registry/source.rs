//! Where the compile pipeline gets modules from: the [`ModuleSource`] trait,
//! what it returns ([`FetchedModule`]), why it fails ([`ModuleError`]), and
//! [`StaticModules`], a fixed set for tests and setups without a registry.
//! The registry itself is [`super::RegistryModules`].

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RegistryError;
use crate::domain::ids::NameError;
use crate::domain::module::UdfKind;
use crate::store::StoreError;
use crate::wasm::WasmError;

/// What the compile steps learn about a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedModule {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Size in bytes (0 when unknown).
    #[serde(default)]
    pub size: u64,
    /// The interface it exports, e.g. `weir:udf/guest@0.1.0`.
    pub interface: String,
    /// The shape it declares.
    pub kind: UdfKind,
    /// The schema of its keyed state, when it keeps any; part of the state fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_schema: Option<Value>,
}

/// Why a module could not be fetched or precompiled.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("module {name}@{version} is not uploaded in tenant `{tenant}`")]
    NotUploaded {
        tenant: String,
        name: String,
        version: String,
    },
    /// The module streams could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bytes could not be stored or downloaded, or do not match their digest.
    #[error(transparent)]
    Bytes(#[from] RegistryError),
    /// The bytes are not a module the WASM host accepts.
    #[error("module {module}: {source}")]
    Rejected {
        module: String,
        #[source]
        source: WasmError,
    },
    #[error("precompile task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ModuleError {
    /// Whether trying again later can succeed (an outage, not a bad module).
    pub fn is_retryable(&self) -> bool {
        match self {
            ModuleError::Store(e) => matches!(e, StoreError::Unavailable(_)),
            ModuleError::Bytes(e) => {
                matches!(e, RegistryError::Bucket { .. } | RegistryError::Put { .. })
            }
            ModuleError::InvalidName(_)
            | ModuleError::NotUploaded { .. }
            | ModuleError::Rejected { .. }
            | ModuleError::Task(_) => false,
        }
    }
}

/// Where modules come from.
pub trait ModuleSource: Send + Sync + 'static {
    /// Resolves `name@version` in `tenant`.
    fn fetch<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<FetchedModule, ModuleError>>;
    /// Compiles the module ahead of its first deployment (cached by digest).
    fn precompile<'a>(
        &'a self,
        tenant: &'a str,
        module: &'a FetchedModule,
    ) -> BoxFuture<'a, Result<(), ModuleError>>;
}

/// A fixed set of modules, for tests and setups without a registry.
#[derive(Debug, Default)]
pub struct StaticModules {
    modules: Mutex<HashMap<(String, String, String), FetchedModule>>,
    precompiled: Mutex<Vec<String>>,
}

impl StaticModules {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&self, tenant: &str, m: FetchedModule) {
        let mut g = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        g.insert((tenant.to_owned(), m.name.clone(), m.version.clone()), m);
    }
    /// Digests precompiled so far, in order.
    pub fn precompiled(&self) -> Vec<String> {
        self.precompiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ModuleSource for StaticModules {
    fn fetch<'a>(
        &'a self,
        tenant: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> BoxFuture<'a, Result<FetchedModule, ModuleError>> {
        let found = self
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant.to_owned(), name.to_owned(), version.to_owned()))
            .cloned();
        Box::pin(async move {
            found.ok_or_else(|| ModuleError::NotUploaded {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                version: version.to_owned(),
            })
        })
    }

    fn precompile<'a>(
        &'a self,
        _tenant: &'a str,
        module: &'a FetchedModule,
    ) -> BoxFuture<'a, Result<(), ModuleError>> {
        self.precompiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(module.digest.clone());
        Box::pin(async { Ok(()) })
    }
}
