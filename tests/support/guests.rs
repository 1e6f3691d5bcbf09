//! Builds the udf-sdk example UDFs to wasm32-wasip2 components, once per test
//! run, and hands out their bytes.
//!
//! They are built with the `udf` profile into `<target>/udf-guests`, a
//! subdirectory of the host's target dir with its own cargo lock, so a
//! nested cargo never waits on the cargo that runs the tests. When nothing
//! changed, that build is cargo's no-op check.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example the tests use.
pub const EXAMPLES: &[&str] = &[
    "uppercase",
    "json_filter",
    "splitter",
    "running_count",
    "identity",
    "infinite_loop",
    "memory_bomb",
    "trap_on_poison",
    "huge_output",
    "stateful_poison",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace().join(p)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
        .join("udf-guests")
}

/// Where example `name`'s component is.
pub fn path(name: &str) -> PathBuf {
    target_dir()
        .join("wasm32-wasip2/udf/examples")
        .join(format!("{name}.wasm"))
}

fn build() -> Result<(), String> {
    // Cargo decides what is stale: the target dir may be shared by several
    // checkouts, so file times here would not tell.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "udf",
            "-p",
            "weir-udf-sdk",
            "-p",
            "weir-cep-rule",
            "--examples",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the example UDFs failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Where Weir's stock CEP rule component is (built with the examples).
pub fn cep_rule_path() -> PathBuf {
    built();
    path("weir_cep_rule")
}

fn built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build) {
        panic!("{e}");
    }
}

/// The bytes of example `name`, building the examples first if needed.
pub fn guest(name: &str) -> Vec<u8> {
    built();
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{}: {e}", path(name).display()))
}

/// A component that exports `weir:udf/guest@0.1.0` (an imported instance,
/// re-exported) and imports `evil:net/socket`: what a UDF reaching for a
/// host interface the sandbox does not provide looks like to the host.
pub fn forbidden_import_component() -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentExportKind, ComponentExportSection, ComponentImportSection,
        ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import("evil:net/socket", ComponentTypeRef::Instance(0));
    let mut exports = ComponentExportSection::new();
    exports.export(
        "weir:udf/guest@0.1.0",
        ComponentExportKind::Instance,
        0,
        None,
    );
    let mut c = Component::new();
    c.section(&types).section(&imports).section(&exports);
    c.finish()
}
