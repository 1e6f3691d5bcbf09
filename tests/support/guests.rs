//! Builds the udf-sdk example UDFs to wasm32-wasip2 components, once per test
//! run, and hands out their bytes.
//!
//! They are built with the `udf` profile into `<target>/udf-guests`, a
//! subdirectory of the host's target dir with its own cargo lock, so a
//! nested cargo never waits on the cargo that runs the tests. The build is
//! skipped when every component is newer than every udf-sdk source file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

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

fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return t;
    };
    for e in entries.flatten() {
        let p = e.path();
        let m = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).unwrap_or(t)
        };
        t = t.max(m);
    }
    t
}

/// Where example `name`'s component is.
pub fn path(name: &str) -> PathBuf {
    target_dir()
        .join("wasm32-wasip2/udf/examples")
        .join(format!("{name}.wasm"))
}

fn build() -> Result<(), String> {
    let sdk = workspace().join("udf-sdk");
    let sources = newest(&sdk.join("src"))
        .max(newest(&sdk.join("examples")))
        .max(newest(&sdk.join("wit")))
        .max(newest(&sdk.join("macros/src")));
    let fresh = EXAMPLES.iter().all(|e| {
        std::fs::metadata(path(e))
            .and_then(|m| m.modified())
            .map(|m| m > sources)
            .unwrap_or(false)
    });
    if fresh {
        return Ok(());
    }
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

/// The bytes of example `name`, building the examples first if needed.
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build) {
        panic!("{e}");
    }
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{}: {e}", path(name).display()))
}
