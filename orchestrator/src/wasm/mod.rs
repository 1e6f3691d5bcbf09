//! The WASM UDF host: runs user code as sandboxed WebAssembly components.
//!
//! # Using it
//!
//! ```no_run
//! use weir::wasm::{HostConfig, InputRecord, InstanceLabels, KeyedState, ModuleLimits, RecordResult, WasmHost};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = WasmHost::new(HostConfig { cache_dir: Some("/var/cache/weir/wasm".into()), ..Default::default() })?;
//! let bytes = std::fs::read("uppercase.wasm")?;
//! let module = host.load("uppercase", "1", &bytes)?;        // validate, compile or reuse, pre-link
//! let labels = InstanceLabels { job: "orders".into(), operator: "op-1".into(), ..Default::default() };
//! let mut udf = module.instantiate(ModuleLimits::default(), labels)?; // ~µs from the InstancePre
//! let mut state = KeyedState::new();                      // one per partition; snapshot() it in checkpoints
//! let input = vec![InputRecord { value: Some("hello".into()), ..Default::default() }];
//! for result in udf.process_batch(&input, &mut state) {
//!     match result {
//!         RecordResult::Outputs(outs) => { /* to the sink */ }
//!         RecordResult::DeadLetter(dl) => { /* to the dead-letter topic, with dl.reason */ }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Everything here is synchronous: the stream runtime calls it from a
//! blocking thread (`spawn_blocking`, `block_in_place` or a plain thread),
//! never directly on an async worker: WASI's sync bindings (guest stdout and
//! stderr) block on the ambient tokio runtime and panic inside a task. A [`UdfInstance`] is used by one thread at a time;
//! [`WasmHost`] and [`LoadedModule`] are shared (`Arc`) across threads.
//!
//! # Core concepts
//!
//! - **One engine** ([`WasmHost`]) per process: pooling allocator,
//!   copy-on-write memory images, epoch interruption with a ticker thread.
//! - **Artifact cache**: compiled code on disk, keyed by the module's sha256
//!   digest and the engine's config hash; a restarted host does not compile again.
//! - **[`LoadedModule`]**: a validated component plus its `InstancePre`.
//! - **[`UdfInstance`]**: one store and instance, with per-module
//!   [`ModuleLimits`] (memory cap, deadline per call, output caps).
//! - **Batches**: inputs cross as one packed byte buffer and results come back
//!   as one (`docs/udf-abi.md`); one status per input. The hot path keeps
//!   per-call work off the per-record path: the input buffer lives in the
//!   instance and is reused (encoded once, shared with the host imports
//!   through an `Arc`, not copied), the epoch deadline is set once per call,
//!   a successful call's results are returned as they are (no bisect copy),
//!   and outputs that are the input's value (or part of it) are `Bytes`
//!   clones of the input, not copies.
//! - **Failure**: a record whose UDF returns an error, traps, overruns the
//!   deadline, exceeds memory or floods output becomes a [`DeadLetter`] with
//!   the reason, module and digest. A failed call discards its instance and
//!   its state writes, and the batch is bisected so only the offending
//!   records are dead-lettered (see `bisect`).
//! - **[`KeyedState`]**: owned by the caller, scoped per (operator, key);
//!   snapshot and restore it with the partition.
//!
//! # Layout
//!
//! `config` (settings and limits), `engine` (engine and epoch ticker),
//! `cache` (artifacts on disk), `module` (validation, loaded modules),
//! `instance` (calls), `bisect` (failure isolation), `event_time`
//! (timers fired at the record the watermark reaches them), `codec` (host records
//! and the packed format), `state` (keyed state and timers), `ctx` (host
//! imports and the WASI sandbox), `stdio` (captured output), `errors`.

mod bisect;
mod cache;
mod codec;
mod config;
mod ctx;
mod engine;
mod errors;
mod event_time;
mod instance;
mod module;
mod state;
mod stdio;

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::Engine;

pub use crate::domain::module::UdfKind;
/// Record keys and values are `Bytes`; re-exported so callers need no extra dependency.
pub use bytes::Bytes;
pub use cache::CacheStats;
pub use codec::{InputRecord, OutputRecord, SourcePosition};
pub use config::{HostConfig, InstanceLabels, ModuleLimits};
pub use errors::{FailureReason, WasmError};
pub use event_time::{run_with_timers, Fired};
pub use instance::{BatchTime, DeadLetter, InstanceStats, RecordResult, UdfInstance};
pub use module::{
    digest_of, LoadedModule, ModuleIdent, ModuleInfo, GUEST_EXPORT, HELD_STATE_EXPORT, WIT_VERSION,
};
pub use state::{FiredTimer, KeyedState, StateError, TimeDomain};

/// Host bindings generated from the one WIT contract in `udf-sdk/wit`.
#[allow(clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../udf-sdk/wit",
        world: "udf",
        imports: { default: trappable },
    });
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<ctx::HostCtx>,
    pub(crate) cache: cache::ArtifactCache,
    pub(crate) cfg: HostConfig,
    _ticker: engine::EpochTicker,
}

/// The process-wide WASM host. Cheap to clone.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl WasmHost {
    pub fn new(cfg: HostConfig) -> Result<Self, WasmError> {
        let engine = engine::build(&cfg)?;
        let mut linker: Linker<ctx::HostCtx> = Linker::new(&engine);
        let link = |e: wasmtime::Error| WasmError::Engine(format!("linking host imports: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link)?;
        bindings::Udf::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |c| c)
            .map_err(link)?;
        let cache = cache::ArtifactCache::new(cfg.cache_dir.clone(), engine::config_hash(&engine))?;
        let ticker = engine::EpochTicker::start(engine.clone(), cfg.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                cache,
                cfg,
                _ticker: ticker,
            }),
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.cfg
    }

    /// How artifact loads were served since this host started.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.counters.snapshot()
    }

    /// Where the precompiled artifact of `digest` lives (if a cache dir is set).
    pub fn artifact_path(&self, digest: &str) -> Option<std::path::PathBuf> {
        self.inner
            .cache
            .path(digest.strip_prefix("sha256:").unwrap_or(digest))
    }

    /// Validates a component without keeping it: is a component, targets
    /// `weir:udf/udf@0.1.0`, imports only what the sandbox provides,
    /// compiles, instantiates and describes itself. The compiled artifact is
    /// cached, so a later `load` of the same bytes is fast.
    pub fn validate(&self, bytes: &[u8]) -> Result<ModuleInfo, WasmError> {
        Ok(self.load("validate", "0", bytes)?.info.clone())
    }

    /// Validates, compiles (or takes from the cache) and pre-links a module.
    pub fn load(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<Arc<LoadedModule>, WasmError> {
        let h = &self.inner;
        module::precheck(bytes, h.cfg.max_module_bytes)?;
        let digest = digest_of(bytes);
        let hex_digest = digest.strip_prefix("sha256:").unwrap_or(&digest).to_owned();
        let component = h.cache.get_or_compile(&h.engine, &hex_digest, bytes)?;
        module::check_world(&component)?;
        let held = module::held_exports(&component)?;
        let pre = h
            .linker
            .instantiate_pre(&component)
            .map_err(|e| WasmError::Link(format!("{e:#}")))?;
        let pre = bindings::UdfPre::new(pre).map_err(|e| WasmError::Link(format!("{e:#}")))?;
        let ident = Arc::new(ModuleIdent {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: digest.clone(),
        });
        // Describe once: proves it instantiates and tells its kind.
        let mut store = wasmtime::Store::new(
            &h.engine,
            ctx::HostCtx::new(
                &ModuleLimits::default(),
                Arc::new(InstanceLabels::default()),
                ident.clone(),
            ),
        );
        store.limiter(|c| &mut c.limiter);
        store.set_epoch_deadline((1_000_000_000 / h.cfg.epoch_tick.as_nanos().max(1)) as u64 + 1);
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| WasmError::Instantiate(format!("{e:#}")))?;
        let d = inst
            .weir_udf_guest()
            .call_describe(&mut store)
            .map_err(|e| WasmError::Describe(format!("{e:#}")))?;
        let info = ModuleInfo {
            digest,
            size: bytes.len(),
            interface: GUEST_EXPORT.to_owned(),
            kind: module::kind_of(&d),
            sdk_version: d.sdk_version.chars().take(64).collect(),
        };
        Ok(Arc::new(LoadedModule {
            ident,
            info,
            pre,
            host: self.inner.clone(),
            held,
        }))
    }
}

#[cfg(test)]
mod tests;
