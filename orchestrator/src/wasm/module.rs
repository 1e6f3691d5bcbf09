//! A loaded module: validated, compiled (or taken from the artifact cache),
//! pre-linked into an `InstancePre` so instantiation is cheap.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, ComponentExportIndex};

use super::bindings::{exports::weir::udf::guest as wit_guest, UdfPre};
use super::config::{InstanceLabels, ModuleLimits};
use super::errors::WasmError;
use super::instance::UdfInstance;
use super::HostInner;
use crate::domain::module::UdfKind;

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";
/// The export every UDF must provide.
pub const GUEST_EXPORT: &str = "weir:udf/guest@0.1.0";

/// Names a module everywhere: logs, dead letters, metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleIdent {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
}

/// What validation learned about a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub digest: String,
    pub size: usize,
    /// The interface it exports, e.g. `weir:udf/guest@0.1.0`.
    pub interface: String,
    pub kind: UdfKind,
    pub sdk_version: String,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that don't need compiling: size, magic, component layer.
pub(crate) fn precheck(bytes: &[u8], limit: usize) -> Result<(), WasmError> {
    if bytes.len() > limit {
        return Err(WasmError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::NotWasm);
    }
    // Bytes 4..8: version 1 / layer 0 is a core module; components use layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(WasmError::NotComponent);
    }
    Ok(())
}

/// Checks that the compiled component targets our world, at our version, and
/// imports nothing but `weir:udf` interfaces and WASI.
pub(crate) fn check_world(component: &Component) -> Result<(), WasmError> {
    let engine = component.engine();
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    if !exports.iter().any(|e| e == GUEST_EXPORT) {
        if let Some(other) = exports
            .iter()
            .find_map(|e| e.strip_prefix("weir:udf/guest@"))
        {
            return Err(WasmError::UnsupportedVersion {
                found: other.to_owned(),
                supported: WIT_VERSION,
            });
        }
        return Err(WasmError::WrongWorld {
            exports: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        });
    }
    for (name, _) in ty.imports(engine) {
        let allowed = name.starts_with("wasi:");
        if let Some(rest) = name.strip_prefix("weir:udf/") {
            match rest.split_once('@') {
                Some((_, v)) if v == WIT_VERSION => continue,
                Some((_, v)) => {
                    return Err(WasmError::UnsupportedVersion {
                        found: v.to_owned(),
                        supported: WIT_VERSION,
                    })
                }
                None => {}
            }
        }
        if !allowed {
            return Err(WasmError::ForbiddenImport {
                import: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// The export of a module that holds its state in its own memory.
pub const HELD_STATE_EXPORT: &str = "weir:udf/held-state@0.1.0";

/// Where a held-state module's functions are (see `held-state` in the WIT).
#[derive(Debug, Clone)]
pub(crate) struct HeldExports {
    pub(crate) restore: ComponentExportIndex,
    pub(crate) snapshot: ComponentExportIndex,
    pub(crate) finish: ComponentExportIndex,
    pub(crate) stats: ComponentExportIndex,
}

/// The `held-state` functions of `component`, if it exports that interface.
pub(crate) fn held_exports(component: &Component) -> Result<Option<HeldExports>, WasmError> {
    let Some(iface) = component.get_export_index(None, HELD_STATE_EXPORT) else {
        return Ok(None);
    };
    let func = |name: &str| {
        component
            .get_export_index(Some(&iface), name)
            .ok_or_else(|| WasmError::WrongWorld {
                exports: format!("{HELD_STATE_EXPORT} without `{name}`"),
            })
    };
    Ok(Some(HeldExports {
        restore: func("restore")?,
        snapshot: func("snapshot")?,
        finish: func("finish")?,
        stats: func("stats")?,
    }))
}

/// A module ready to instantiate. Cheap to share: instances of it come from
/// one `InstancePre`.
pub struct LoadedModule {
    pub ident: Arc<ModuleIdent>,
    pub info: ModuleInfo,
    pub(crate) pre: UdfPre<super::ctx::HostCtx>,
    pub(crate) host: Arc<HostInner>,
    /// Set when the module holds its state in its own memory.
    pub(crate) held: Option<HeldExports>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("ident", &self.ident)
            .field("info", &self.info)
            .finish()
    }
}

impl LoadedModule {
    /// Whether the module keeps its state in its own memory (it exports
    /// `held-state`): the caller then snapshots and restores it per
    /// partition, and a failed call fails the task instead of a record.
    pub fn holds_state(&self) -> bool {
        self.held.is_some()
    }

    /// The largest memory cap an instance of it may have on this host.
    pub fn max_memory_bytes(&self) -> usize {
        self.host.cfg.max_memory_bytes
    }

    /// A new instance with its own limits and labels.
    pub fn instantiate(
        self: &Arc<Self>,
        limits: ModuleLimits,
        labels: InstanceLabels,
    ) -> Result<UdfInstance, WasmError> {
        limits.check(&self.host.cfg)?;
        UdfInstance::new(self.clone(), limits, labels)
    }
}

pub(crate) fn kind_of(d: &wit_guest::Descriptor) -> UdfKind {
    use super::bindings::weir::udf::types::Kind;
    match d.kind {
        Kind::Map => UdfKind::Map,
        Kind::Filter => UdfKind::Filter,
        Kind::FlatMap => UdfKind::FlatMap,
        Kind::Process => UdfKind::Process,
    }
}
