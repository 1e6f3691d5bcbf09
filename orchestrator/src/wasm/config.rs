//! Host-wide settings (one engine, one pool) and per-module limits.

use std::path::PathBuf;
use std::time::Duration;

use super::errors::WasmError;

/// Settings of the shared engine. Changing any of them (except `cache_dir`)
/// changes the engine config hash, so cached artifacts are compiled again.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where precompiled artifacts live; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Instances that can be alive at once (the pooling allocator's slots).
    pub max_instances: u32,
    /// The largest memory cap any module may ask for; each pool slot reserves
    /// address space for it.
    pub max_memory_bytes: usize,
    /// Granularity of deadlines: an epoch ticker thread advances the engine's
    /// epoch this often.
    pub epoch_tick: Duration,
    /// The largest module accepted for loading or upload.
    pub max_module_bytes: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 64,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(2),
            max_module_bytes: 32 << 20,
        }
    }
}

/// Limits of one instance, configurable per module (per operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLimits {
    /// Linear memory cap; growth past it fails and the call is dead-lettered.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (a whole batch, or a bisected part of it).
    pub deadline: Duration,
    /// Largest result batch one call may return.
    pub max_output_bytes: usize,
    /// Most outputs one input record may produce.
    pub max_outputs_per_record: u32,
    /// Largest keyed-state value; a bigger `put` traps the call.
    pub max_state_value_bytes: usize,
    /// Guest log lines per second passed to tracing; the rest are counted.
    pub log_lines_per_second: u32,
    /// Bytes of guest stdout and of stderr kept per instance (the rest is dropped).
    pub stdio_bytes: usize,
    /// Distinct counter names per instance.
    pub max_counters: usize,
}

impl Default for ModuleLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            max_output_bytes: 16 << 20,
            max_outputs_per_record: 10_000,
            max_state_value_bytes: 1 << 20,
            log_lines_per_second: 50,
            stdio_bytes: 64 << 10,
            max_counters: 64,
        }
    }
}

impl ModuleLimits {
    pub(crate) fn check(&self, host: &HostConfig) -> Result<(), WasmError> {
        if self.memory_bytes > host.max_memory_bytes {
            return Err(WasmError::Limits(format!(
                "memory cap of {} bytes exceeds the host maximum of {} bytes",
                self.memory_bytes, host.max_memory_bytes
            )));
        }
        if self.deadline < host.epoch_tick {
            return Err(WasmError::Limits(format!(
                "deadline {:?} is shorter than the epoch tick {:?}",
                self.deadline, host.epoch_tick
            )));
        }
        Ok(())
    }
}

/// Who an instance runs for: tags its logs and metrics and scopes its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceLabels {
    /// The job, for logs (empty in the local runner).
    pub job: String,
    /// The operator id; keyed state and timers are scoped to it.
    pub operator: String,
    /// What `config.operator-config` answers the guest ("" for most UDFs).
    pub config: String,
}
