//! The store's data: what host imports see during a call. Implements the
//! `weir:udf` imports (state, timers, logging, counters) and the WASI view.
//!
//! WASI is linked with an empty context: no preopened directories, no
//! environment or arguments, no network (every socket address is refused
//! and name lookup is off), stdin empty, stdout and stderr captured with a
//! cap. Clocks are frozen at the Unix epoch and randomness is a fixed
//! sequence, so UDFs are deterministic: replaying a batch gives the same
//! outputs, which deterministic-replay exactly-once depends on. UDFs that
//! need time read the batch clock (`Context::processing_time`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weir_udf_sdk::abi::{InputReader, TimerReader};

use super::bindings::weir::udf as wit;
use super::config::{InstanceLabels, ModuleLimits};
use super::module::ModuleIdent;
use super::state::{CallTxn, KeyedState, TimeDomain};
use super::stdio::Capture;
use crate::telemetry::names;

/// Caps linear memory growth and remembers that it refused one, so a trap
/// that follows can be reported as "memory exceeded".
pub(crate) struct MemLimiter {
    pub cap: usize,
    pub refused: bool,
    /// The most linear memory granted, in bytes (what `memory_mb` must cover).
    pub peak: usize,
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// What the current call is about: the encoded batch (for key lookups by
/// cursor) and whether it is records or timers.
#[derive(Default)]
pub(crate) struct CallInput {
    /// Shared with the caller, which passed the same bytes to the guest (no copy).
    pub bytes: Option<Arc<Vec<u8>>>,
    pub timers: bool,
    /// Key byte ranges per cursor, built on the first state access.
    keys: Option<Vec<Option<(usize, usize)>>>,
}

impl CallInput {
    pub(crate) fn set(&mut self, timers: bool) {
        self.timers = timers;
        self.keys = None;
    }

    fn key(&mut self, cursor: u32) -> wasmtime::Result<&[u8]> {
        let bytes: &[u8] = self.bytes.as_deref().map_or(&[], |b| b.as_slice());
        if self.keys.is_none() {
            let base = bytes.as_ptr() as usize;
            let range = |k: &[u8]| (k.as_ptr() as usize - base, k.len());
            let mut keys = Vec::new();
            if self.timers {
                let mut r = TimerReader::new(bytes).map_err(|e| wasmtime::format_err!("{e}"))?;
                while let Some(t) = r.next_timer().map_err(|e| wasmtime::format_err!("{e}"))? {
                    keys.push(Some(range(t.key)));
                }
            } else {
                let mut r = InputReader::new(bytes).map_err(|e| wasmtime::format_err!("{e}"))?;
                while let Some(rec) = r.next_record().map_err(|e| wasmtime::format_err!("{e}"))? {
                    keys.push(rec.key.map(range));
                }
            }
            self.keys = Some(keys);
        }
        match self.keys.as_ref().and_then(|k| k.get(cursor as usize)) {
            // A null key is its own key: the empty byte string.
            Some(Some((at, len))) => Ok(&bytes[*at..*at + *len]),
            Some(None) => Ok(&[]),
            None => Err(wasmtime::format_err!(
                "state access with cursor {cursor} outside the batch"
            )),
        }
    }
}

/// Token bucket for guest log lines.
struct LogLimiter {
    per_second: u32,
    window: Instant,
    used: u32,
    dropped: u64,
}

pub(crate) struct HostCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemLimiter,
    /// The caller's state, moved in for the duration of a call.
    pub state: KeyedState,
    pub txn: CallTxn,
    pub input: CallInput,
    pub stderr: Capture,
    pub stdout: Capture,
    labels: Arc<InstanceLabels>,
    module: Arc<ModuleIdent>,
    max_state_value: usize,
    log: LogLimiter,
    counters: HashMap<String, u64>,
    max_counters: usize,
}

impl HostCtx {
    pub(crate) fn new(
        limits: &ModuleLimits,
        labels: Arc<InstanceLabels>,
        module: Arc<ModuleIdent>,
    ) -> Self {
        let stdout = Capture::new(limits.stdio_bytes);
        let stderr = Capture::new(limits.stdio_bytes);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![
                0x5e, 0xed, 0x42, 0x17,
            ]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![
                0x5e, 0xed, 0x42, 0x17,
            ]))
            .insecure_random_seed(0x5eed)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemLimiter {
                cap: limits.memory_bytes,
                refused: false,
                peak: 0,
            },
            state: KeyedState::new(),
            txn: CallTxn::default(),
            input: CallInput::default(),
            stderr,
            stdout,
            labels,
            module,
            max_state_value: limits.max_state_value_bytes,
            log: LogLimiter {
                per_second: limits.log_lines_per_second,
                window: Instant::now(),
                used: 0,
                dropped: 0,
            },
            counters: HashMap::new(),
            max_counters: limits.max_counters,
        }
    }

    /// Counter totals of this instance.
    pub(crate) fn counters(&self) -> &HashMap<String, u64> {
        &self.counters
    }
}

struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for HostCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn domain(d: wit::types::TimeDomain) -> TimeDomain {
    match d {
        wit::types::TimeDomain::EventTime => TimeDomain::EventTime,
        wit::types::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
    }
}

impl wit::types::Host for HostCtx {}

impl wit::state::Host for HostCtx {
    fn get(&mut self, cursor: u32, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let key = self.input.key(cursor)?;
        Ok(self.txn.get(&self.state, &self.labels.operator, key, &name))
    }

    fn put(&mut self, cursor: u32, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        if value.len() > self.max_state_value {
            return Err(wasmtime::format_err!(
                "state value `{name}` of {} bytes exceeds the limit of {} bytes",
                value.len(),
                self.max_state_value
            ));
        }
        let key = self.input.key(cursor)?;
        self.txn.put(cursor, key, &name, Some(value));
        Ok(())
    }

    fn delete(&mut self, cursor: u32, name: String) -> wasmtime::Result<()> {
        let key = self.input.key(cursor)?;
        self.txn.put(cursor, key, &name, None);
        Ok(())
    }
}

impl wit::timers::Host for HostCtx {
    fn register(
        &mut self,
        cursor: u32,
        d: wit::types::TimeDomain,
        at: i64,
    ) -> wasmtime::Result<()> {
        let key = self.input.key(cursor)?;
        self.txn.timer(cursor, true, key, domain(d), at);
        Ok(())
    }

    fn delete(&mut self, cursor: u32, d: wit::types::TimeDomain, at: i64) -> wasmtime::Result<()> {
        let key = self.input.key(cursor)?;
        self.txn.timer(cursor, false, key, domain(d), at);
        Ok(())
    }
}

impl wit::logging::Host for HostCtx {
    fn log(&mut self, level: wit::types::Level, message: String) -> wasmtime::Result<()> {
        let now = Instant::now();
        if now.duration_since(self.log.window) >= Duration::from_secs(1) {
            self.log.window = now;
            self.log.used = 0;
        }
        if self.log.used >= self.log.per_second {
            self.log.dropped += 1;
            metrics::counter!(names::UDF_LOG_DROPPED, "module" => self.module.name.clone())
                .increment(1);
            return Ok(());
        }
        self.log.used += 1;
        let dropped = std::mem::take(&mut self.log.dropped);
        let msg: String = message.chars().take(1024).collect();
        let (job, op, module) = (&self.labels.job, &self.labels.operator, &self.module.name);
        let version = &self.module.version;
        match level {
            wit::types::Level::Trace => {
                tracing::trace!(job, operator = op, module, version, dropped, "udf: {msg}")
            }
            wit::types::Level::Debug => {
                tracing::debug!(job, operator = op, module, version, dropped, "udf: {msg}")
            }
            wit::types::Level::Info => {
                tracing::info!(job, operator = op, module, version, dropped, "udf: {msg}")
            }
            wit::types::Level::Warn => {
                tracing::warn!(job, operator = op, module, version, dropped, "udf: {msg}")
            }
            wit::types::Level::Error => {
                tracing::error!(job, operator = op, module, version, dropped, "udf: {msg}")
            }
        }
        Ok(())
    }
}

impl wit::counters::Host for HostCtx {
    fn add(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        let known = self.counters.contains_key(&name);
        if !known && self.counters.len() >= self.max_counters {
            // Guest-chosen names become metric labels: cap them.
            return Ok(());
        }
        metrics::counter!(
            names::UDF_COUNTER,
            "module" => self.module.name.clone(),
            "operator" => self.labels.operator.clone(),
            "counter" => name.clone()
        )
        .increment(delta);
        *self.counters.entry(name).or_insert(0) += delta;
        Ok(())
    }
}

impl wit::config::Host for HostCtx {
    fn operator_config(&mut self) -> wasmtime::Result<String> {
        Ok(self.labels.config.clone())
    }
}
