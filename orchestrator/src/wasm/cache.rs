//! Precompiled artifacts on disk, keyed by module digest and engine config
//! hash, so a module is compiled once per engine configuration and a
//! restarted host reuses the work. Files are written atomically (temp file,
//! then rename) so a crash never leaves a half-written artifact behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Component;
use wasmtime::Engine;

use super::errors::WasmError;
use crate::telemetry::names;

/// How loads were served, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Artifacts reused from disk.
    pub hits: u64,
    /// Modules compiled because no usable artifact existed.
    pub compiles: u64,
    /// Artifacts found but unusable (corrupt, other engine); compiled again.
    pub rejected: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    compiles: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    config_hash: String,
    pub(crate) counters: Counters,
}

impl ArtifactCache {
    pub(crate) fn new(dir: Option<PathBuf>, config_hash: String) -> Result<Self, WasmError> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).map_err(|source| WasmError::Cache {
                path: d.display().to_string(),
                source,
            })?;
        }
        Ok(Self {
            dir,
            config_hash,
            counters: Counters::default(),
        })
    }

    /// The artifact file for a digest.
    pub(crate) fn path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.config_hash)))
    }

    /// The compiled component: from disk when possible, else compiled (and stored).
    #[allow(unsafe_code)] // loading precompiled code; the argument is at the block
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Component, WasmError> {
        if let Some(path) = self.path(digest) {
            // Read into memory rather than mmap the file: a mapping of a file
            // that someone truncates turns into SIGBUS for the whole process.
            if let Ok(artifact) = std::fs::read(&path) {
                // SAFETY: the file was written by `store` below from
                // `Component::serialize` of this host, under a name that
                // includes the digest and the engine's compatibility hash;
                // wasmtime re-checks its own header on load and we fall back
                // to compiling if it refuses. The cache directory is the
                // host's private state, like its binary.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(c) => {
                        self.counters.hits.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(names::WASM_ARTIFACT_CACHE, "result" => "hit")
                            .increment(1);
                        return Ok(c);
                    }
                    Err(e) => {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(path = %path.display(), error = %e, "cached artifact unusable; compiling again");
                    }
                }
            }
        }
        let started = std::time::Instant::now();
        let c = Component::new(engine, bytes).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::WASM_ARTIFACT_CACHE, "result" => "compiled").increment(1);
        metrics::histogram!(names::WASM_COMPILE_SECONDS).record(started.elapsed().as_secs_f64());
        if let Some(path) = self.path(digest) {
            if let Err(e) = store(&c, &path) {
                // A cache that cannot be written only costs a later compile.
                tracing::warn!(path = %path.display(), error = %e, "cannot store compiled artifact");
            }
        }
        Ok(c)
    }
}

fn store(c: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = c
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
