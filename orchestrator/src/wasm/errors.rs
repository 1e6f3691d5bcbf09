//! Errors of the WASM host, split by who must act: [`WasmError`] is about a
//! module or the host (it fails a load or an instantiation), [`FailureReason`]
//! is about one record (it becomes a dead letter while the batch goes on).

use serde::{Deserialize, Serialize};

/// Loading, validating or instantiating a module failed.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("not a WebAssembly binary (it does not start with the `\\0asm` magic)")]
    NotWasm,
    #[error("this is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`")]
    NotComponent,
    #[error("module is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the component does not export `weir:udf/guest`, so it does not target the `weir:udf/udf` world (its exports: {exports})")]
    WrongWorld { exports: String },
    #[error("the component targets weir:udf@{found}; this host supports weir:udf@{supported}")]
    UnsupportedVersion {
        found: String,
        supported: &'static str,
    },
    #[error("the component imports `{import}`, which the sandbox does not provide")]
    ForbiddenImport { import: String },
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component could not be linked: {0}")]
    Link(String),
    #[error("instantiating the component failed: {0}")]
    Instantiate(String),
    #[error("the component's describe() failed: {0}")]
    Describe(String),
    #[error("module limits are invalid: {0}")]
    Limits(String),
    #[error("engine setup failed: {0}")]
    Engine(String),
    #[error("artifact cache at {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl WasmError {
    /// A stable, machine-readable name for the error class.
    pub fn code(&self) -> &'static str {
        match self {
            WasmError::NotWasm => "not_wasm",
            WasmError::NotComponent => "not_component",
            WasmError::TooLarge { .. } => "too_large",
            WasmError::WrongWorld { .. } => "wrong_world",
            WasmError::UnsupportedVersion { .. } => "unsupported_version",
            WasmError::ForbiddenImport { .. } => "forbidden_import",
            WasmError::Compile(_) => "compile_failed",
            WasmError::Link(_) => "link_failed",
            WasmError::Instantiate(_) => "instantiate_failed",
            WasmError::Describe(_) => "describe_failed",
            WasmError::Limits(_) => "invalid_limits",
            WasmError::Engine(_) => "engine",
            WasmError::Cache { .. } => "cache",
        }
    }
}

/// Why one record was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// The UDF returned an error for this record.
    #[error("UDF error: {message}")]
    UdfError { message: String },
    /// The UDF trapped (a panic, `unreachable`, an out-of-bounds access …).
    #[error("UDF trapped: {message}")]
    Trap { message: String },
    /// The call ran past its deadline and was interrupted.
    #[error("UDF ran past its deadline of {deadline_ms} ms")]
    DeadlineExceeded { deadline_ms: u64 },
    /// The UDF tried to grow its memory past the cap.
    #[error("UDF exceeded its memory limit of {limit_bytes} bytes")]
    MemoryExceeded { limit_bytes: usize },
    /// The UDF's output for this record was larger than allowed.
    #[error("UDF output of {bytes} bytes exceeds the limit of {limit_bytes} bytes per call")]
    OutputTooLarge { bytes: usize, limit_bytes: usize },
    /// The UDF emitted more outputs for this record than allowed.
    #[error("UDF emitted {count} outputs for one record; the limit is {limit}")]
    TooManyOutputs { count: u32, limit: u32 },
    /// The UDF broke the batch protocol (wrong count, bad bytes).
    #[error("UDF returned a malformed result: {message}")]
    Protocol { message: String },
}

impl FailureReason {
    /// A stable name for headers and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::UdfError { .. } => "udf_error",
            FailureReason::Trap { .. } => "trap",
            FailureReason::DeadlineExceeded { .. } => "deadline_exceeded",
            FailureReason::MemoryExceeded { .. } => "memory_exceeded",
            FailureReason::OutputTooLarge { .. } => "output_too_large",
            FailureReason::TooManyOutputs { .. } => "too_many_outputs",
            FailureReason::Protocol { .. } => "protocol",
        }
    }
}
