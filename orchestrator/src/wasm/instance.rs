//! One sandboxed instance and the batch protocol around it: encode, call
//! under a deadline and a memory cap, decode, commit state, and on failure
//! throw the instance away and bisect (see [`super::bisect`]).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower};
use wasmtime::{Store, Trap};
use weir_udf_sdk::abi::{self, BatchClock, InputWriter, TimerView};

use super::bindings::Udf;
use super::codec::{self, Inherit, InputRecord, OutputRecord};
use super::config::{InstanceLabels, ModuleLimits};
use super::ctx::HostCtx;
use super::errors::{FailureReason, WasmError};
use super::module::LoadedModule;
use super::state::{FiredTimer, KeyedState};
use crate::telemetry::names;

/// The result for one input record (or fired timer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    /// Zero or more outputs.
    Outputs(Vec<OutputRecord>),
    /// The record failed; it goes to the dead-letter topic. Boxed: dead
    /// letters are rare, and a small `RecordResult` keeps result vectors
    /// (one entry per record) compact.
    DeadLetter(Box<DeadLetter>),
}

/// Why a record was dead-lettered, and by which module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub reason: FailureReason,
    pub module: String,
    pub version: String,
    pub digest: String,
}

/// Time as the UDF sees it for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTime {
    /// Event-time watermark in ms, if the source has one.
    pub watermark: Option<i64>,
    /// Processing time in ms since the Unix epoch.
    pub processing_time: i64,
}

impl BatchTime {
    /// No watermark; the host clock now.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self {
            watermark: None,
            processing_time: ms,
        }
    }
    fn clock(self) -> BatchClock {
        codec::clock(self.watermark, self.processing_time)
    }
}

/// Counters of one instance, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceStats {
    /// Calls into the guest (a bisected batch makes several).
    pub calls: u64,
    /// Calls that trapped, overran or broke the protocol.
    pub failed_calls: u64,
    /// Fresh instances made (the first one included).
    pub instantiations: u64,
    /// The most linear memory any of them was granted, in bytes.
    pub peak_memory_bytes: u64,
}

fn count_dead_letter(module: &str, reason: &'static str) {
    metrics::counter!(names::UDF_DEAD_LETTERS, "module" => module.to_owned(), "reason" => reason)
        .increment(1);
}

/// Why a call's results were not kept.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The call failed as a whole; the instance was discarded.
    Failed(FailureReason),
    /// A record failed after writing state that later records of the same
    /// call may have read. Nothing was kept; run `..at` and `at..` apart.
    Rerun { at: usize },
}

/// What a call processes: input records (with the watermark after each, or
/// none) or fired timers.
#[derive(Clone, Copy)]
pub(crate) enum Batch<'a> {
    Records(&'a [InputRecord], &'a [Option<i64>]),
    Timers(&'a [FiredTimer]),
}

impl<'a> Batch<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::Records(r, _) => r.len(),
            Batch::Timers(t) => t.len(),
        }
    }
    pub(crate) fn split(&self, at: usize) -> (Batch<'a>, Batch<'a>) {
        match self {
            Batch::Records(r, w) => {
                let (wl, wr) = if w.is_empty() {
                    (*w, *w)
                } else {
                    w.split_at(at)
                };
                (Batch::Records(&r[..at], wl), Batch::Records(&r[at..], wr))
            }
            Batch::Timers(t) => (Batch::Timers(&t[..at]), Batch::Timers(&t[at..])),
        }
    }
}

/// A live instance of a module. Not `Sync`: the stream runtime owns one per
/// operator per task and calls it from a blocking thread.
pub struct UdfInstance {
    module: Arc<LoadedModule>,
    limits: ModuleLimits,
    labels: Arc<InstanceLabels>,
    live: Option<(Store<HostCtx>, Udf, Instance)>,
    writer: InputWriter,
    stats: InstanceStats,
    deadline_ticks: u64,
}

impl UdfInstance {
    pub(crate) fn new(
        module: Arc<LoadedModule>,
        limits: ModuleLimits,
        labels: InstanceLabels,
    ) -> Result<Self, WasmError> {
        let tick = module.host.cfg.epoch_tick.as_nanos().max(1);
        let deadline_ticks = (limits.deadline.as_nanos().div_ceil(tick)) as u64;
        let mut me = Self {
            module,
            limits,
            labels: Arc::new(labels),
            live: None,
            writer: InputWriter::default(),
            stats: InstanceStats::default(),
            deadline_ticks: deadline_ticks.max(1),
        };
        me.ensure_live()?;
        Ok(me)
    }

    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    pub fn stats(&self) -> InstanceStats {
        let live = self
            .live
            .as_ref()
            .map_or(0, |(store, _, _)| store.data().limiter.peak as u64);
        InstanceStats {
            peak_memory_bytes: self.stats.peak_memory_bytes.max(live),
            ..self.stats
        }
    }

    /// Counter totals reported by the guest since this instance was made.
    pub fn counters(&self) -> std::collections::HashMap<String, u64> {
        self.live
            .as_ref()
            .map(|(s, _, _)| s.data().counters().clone())
            .unwrap_or_default()
    }

    /// Takes what the guest wrote to stdout and stderr (each capped), and how
    /// many bytes were dropped past the caps.
    pub fn take_stdio(&mut self) -> ((Vec<u8>, u64), (Vec<u8>, u64)) {
        match &self.live {
            Some((s, _, _)) => (s.data().stdout.take(), s.data().stderr.take()),
            None => Default::default(),
        }
    }

    fn ensure_live(&mut self) -> Result<(), WasmError> {
        if self.live.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let host = &self.module.host;
        let ctx = HostCtx::new(&self.limits, self.labels.clone(), self.module.ident.clone());
        let mut store = Store::new(&host.engine, ctx);
        store.limiter(|c| &mut c.limiter);
        store.set_epoch_deadline(self.deadline_ticks);
        let instantiate = |e: wasmtime::Error| WasmError::Instantiate(format!("{e:#}"));
        let instance = self
            .module
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(instantiate)?;
        let udf = Udf::new(&mut store, &instance).map_err(instantiate)?;
        self.stats.instantiations += 1;
        metrics::histogram!(names::WASM_INSTANTIATE_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.live = Some((store, udf, instance));
        Ok(())
    }

    /// Runs `inputs` through the UDF. One result per input, in order. Only
    /// records that fail are dead-lettered; all others are processed exactly
    /// once, and their state writes are committed to `state`.
    pub fn process_batch(
        &mut self,
        inputs: &[InputRecord],
        state: &mut KeyedState,
    ) -> Vec<RecordResult> {
        self.process_batch_at(inputs, state, BatchTime::now())
    }

    /// [`UdfInstance::process_batch`] with an explicit batch time.
    pub fn process_batch_at(
        &mut self,
        inputs: &[InputRecord],
        state: &mut KeyedState,
        time: BatchTime,
    ) -> Vec<RecordResult> {
        super::bisect::run(self, Batch::Records(inputs, &[]), state, time)
    }

    /// Runs a prefix of `inputs`, `watermarks` holding the watermark right
    /// after each: all of them, or only up to the first record at which an
    /// event-time timer registered by this call comes due (that record
    /// included), so the caller can fire it there. One result per record
    /// run; at least one when `inputs` is not empty. See
    /// [`super::event_time`].
    pub fn process_until_due(
        &mut self,
        inputs: &[InputRecord],
        watermarks: &[Option<i64>],
        state: &mut KeyedState,
        time: BatchTime,
    ) -> Vec<RecordResult> {
        super::bisect::run(self, Batch::Records(inputs, watermarks), state, time)
    }

    /// Hands fired timers (from [`KeyedState::take_due_timers`]) to the UDF.
    /// One result per timer; outputs inherit the timer's key and time.
    pub fn on_timer(
        &mut self,
        timers: &[FiredTimer],
        state: &mut KeyedState,
        time: BatchTime,
    ) -> Vec<RecordResult> {
        super::bisect::run(self, Batch::Timers(timers), state, time)
    }

    pub(crate) fn dead_letter(&self, reason: FailureReason) -> RecordResult {
        count_dead_letter(&self.module.ident.name, reason.code());
        RecordResult::DeadLetter(Box::new(DeadLetter {
            reason,
            module: self.module.ident.name.clone(),
            version: self.module.ident.version.clone(),
            digest: self.module.ident.digest.clone(),
        }))
    }

    /// One call for the whole of `batch`. `Err` means the call as a whole
    /// failed and nothing of it was kept (no outputs, no state writes).
    pub(crate) fn call(
        &mut self,
        batch: Batch<'_>,
        state: &mut KeyedState,
        time: BatchTime,
    ) -> Result<Vec<RecordResult>, CallError> {
        if let Err(e) = self.ensure_live() {
            return Err(CallError::Failed(FailureReason::Trap {
                message: format!("no instance: {e}"),
            }));
        }
        let Some((store, udf, _)) = self.live.as_mut() else {
            return Err(CallError::Failed(FailureReason::Trap {
                message: "no instance".into(),
            }));
        };
        let mut timer_keys: Vec<Bytes> = Vec::new();
        let payload: Arc<Vec<u8>> = match batch {
            Batch::Records(r, _) => {
                codec::encode_inputs(&mut self.writer, time.clock(), r);
                Arc::new(self.writer.take_buffer())
            }
            Batch::Timers(t) => {
                let views = t.iter().map(|t| TimerView {
                    key: &t.key,
                    domain: t.domain.byte(),
                    at: t.at,
                });
                timer_keys = t.iter().map(|t| Bytes::copy_from_slice(&t.key)).collect();
                Arc::new(abi::encode_timers(time.clock(), views))
            }
        };
        {
            let ctx = store.data_mut();
            // The host imports resolve cursors to keys from the same bytes.
            ctx.input.bytes = Some(payload.clone());
            ctx.input.set(matches!(batch, Batch::Timers(_)));
            ctx.txn.clear();
            ctx.limiter.refused = false;
            std::mem::swap(&mut ctx.state, state);
        }
        store.set_epoch_deadline(self.deadline_ticks);
        self.stats.calls += 1;
        let guest = udf.weir_udf_guest();
        let result = match batch {
            Batch::Records(..) => guest.call_process(&mut *store, &payload),
            Batch::Timers(_) => guest.call_on_timer(&mut *store, &payload),
        };
        std::mem::swap(&mut store.data_mut().state, state);
        store.data_mut().input.bytes = None;
        if let (Batch::Records(..), Ok(buf)) = (batch, Arc::try_unwrap(payload)) {
            self.writer.restore_buffer(buf);
        }
        let failure = match result {
            Ok(Ok(out)) if out.len() > self.limits.max_output_bytes => {
                Some(FailureReason::OutputTooLarge {
                    bytes: out.len(),
                    limit_bytes: self.limits.max_output_bytes,
                })
            }
            Ok(Ok(out)) => {
                let no_headers: &[(String, Bytes)] = &[];
                let inherit = |i: usize| match batch {
                    Batch::Records(r, _) => Inherit::of(&r[i]),
                    Batch::Timers(t) => Inherit {
                        key: timer_keys.get(i),
                        timestamp: t[i].at,
                        headers: no_headers,
                        pass_value: None,
                    },
                };
                let (module, version, digest) = (
                    &self.module.ident.name,
                    &self.module.ident.version,
                    &self.module.ident.digest,
                );
                let dead = |reason| {
                    RecordResult::DeadLetter(Box::new(DeadLetter {
                        reason,
                        module: module.clone(),
                        version: version.clone(),
                        digest: digest.clone(),
                    }))
                };
                let decoded = codec::decode_results(
                    Bytes::from(out),
                    batch.len(),
                    matches!(batch, Batch::Records(..)),
                    inherit,
                    self.limits.max_outputs_per_record,
                    dead,
                );
                match decoded {
                    Ok((mut results, mut failed)) => {
                        if let Some((store, _, _)) = self.live.as_mut() {
                            let txn = &mut store.data_mut().txn;
                            // A failed record whose writes later records may have read.
                            let last = batch.len().saturating_sub(1) as u32;
                            let tainted =
                                failed.iter().copied().find(|c| *c < last && txn.wrote(*c));
                            if let Some(c) = tainted {
                                txn.clear();
                                return Err(CallError::Rerun {
                                    at: (c as usize).max(1),
                                });
                            }
                            // A timer this call registered comes due before its
                            // last record: keep the call up to there only (the
                            // rest runs again after the timer fired).
                            if let Batch::Records(_, marks) = batch {
                                if let Some(k) = txn.first_due(marks) {
                                    failed.extend(k as u32 + 1..batch.len() as u32);
                                    results.truncate(k + 1);
                                }
                            }
                            txn.commit(state, &self.labels.operator, &failed);
                        }
                        for &i in &failed {
                            if let Some(RecordResult::DeadLetter(d)) = results.get(i as usize) {
                                count_dead_letter(&d.module, d.reason.code());
                            }
                        }
                        return Ok(results);
                    }
                    Err(message) => Some(FailureReason::Protocol { message }),
                }
            }
            Ok(Err(message)) => Some(FailureReason::Protocol {
                message: format!("the UDF refused the batch: {message}"),
            }),
            Err(e) => Some(self.classify(&e)),
        };
        let reason = failure.unwrap_or(FailureReason::Protocol {
            message: "unknown failure".into(),
        });
        self.stats.failed_calls += 1;
        // Whatever the guest did, its memory may be inconsistent now: start over.
        self.stats.peak_memory_bytes = self.stats().peak_memory_bytes;
        self.live = None;
        Err(CallError::Failed(reason))
    }

    /// Runs `inputs` through a module that holds its own state
    /// ([`LoadedModule::holds_state`]): one call, never bisected, since
    /// the instance's memory is the state. `Err` means the call failed as a
    /// whole and the instance, with what it held, is gone: the caller must
    /// restore from its checkpoint.
    pub fn process_held(
        &mut self,
        inputs: &[InputRecord],
        time: BatchTime,
    ) -> Result<Vec<RecordResult>, FailureReason> {
        let mut unused = KeyedState::new();
        match self.call(Batch::Records(inputs, &[]), &mut unused, time) {
            Ok(results) => Ok(results),
            Err(CallError::Failed(reason)) => Err(reason),
            Err(CallError::Rerun { .. }) => Err(FailureReason::Protocol {
                message: "a held-state module wrote host keyed state".into(),
            }),
        }
    }

    /// Hands a held-state module its snapshot of `partition` (empty: none).
    pub fn restore_held(&mut self, partition: i32, snapshot: &[u8]) -> Result<(), FailureReason> {
        let r: Result<(), String> =
            self.call_held(|h| &h.restore, (partition, snapshot), "restore")?;
        r.map_err(|message| FailureReason::Protocol {
            message: format!("the module refused the snapshot of partition {partition}: {message}"),
        })
    }

    /// A held-state module's snapshot of `partition`.
    pub fn snapshot_held(&mut self, partition: i32) -> Result<Vec<u8>, FailureReason> {
        let r: Result<Vec<u8>, String> =
            self.call_held(|h| &h.snapshot, (partition,), "snapshot")?;
        r.map_err(|message| FailureReason::Protocol {
            message: format!("the module could not snapshot partition {partition}: {message}"),
        })
    }

    /// Ends `partition`'s input in a held-state module (a bounded run):
    /// the outputs that causes.
    pub fn finish_held(&mut self, partition: i32) -> Result<Vec<OutputRecord>, FailureReason> {
        let r: Result<Vec<u8>, String> = self.call_held(|h| &h.finish, (partition,), "finish")?;
        let bytes = r.map_err(|message| FailureReason::Protocol {
            message: format!("the module could not finish partition {partition}: {message}"),
        })?;
        let no_headers: &[(String, Bytes)] = &[];
        let inherit = |_| Inherit {
            key: None,
            timestamp: 0,
            headers: no_headers,
            pass_value: None,
        };
        let dead = |reason| self.dead_letter(reason);
        let (mut results, _) =
            codec::decode_results(Bytes::from(bytes), 1, false, inherit, u32::MAX, dead)
                .map_err(|message| FailureReason::Protocol { message })?;
        match results.pop() {
            Some(RecordResult::Outputs(outs)) => Ok(outs),
            Some(RecordResult::DeadLetter(d)) => Err(d.reason),
            None => Ok(Vec::new()),
        }
    }

    /// A held-state module's stats, in the order its documentation gives.
    pub fn held_stats(&mut self) -> Result<Vec<u64>, FailureReason> {
        self.call_held(|h| &h.stats, (), "stats")
    }

    /// Calls one `held-state` function under the instance's deadline and
    /// memory cap; a failure discards the instance, as for `process`.
    fn call_held<P, R>(
        &mut self,
        which: impl Fn(&super::module::HeldExports) -> &ComponentExportIndex,
        params: P,
        name: &str,
    ) -> Result<R, FailureReason>
    where
        P: ComponentNamedList + Lower,
        R: Lift + 'static,
        (R,): ComponentNamedList + Lift,
    {
        let Some(held) = self.module.held.as_ref() else {
            return Err(FailureReason::Protocol {
                message: format!("the module does not export {}", super::HELD_STATE_EXPORT),
            });
        };
        let index = *which(held);
        self.ensure_live().map_err(|e| FailureReason::Trap {
            message: format!("no instance: {e}"),
        })?;
        let Some((store, _, instance)) = self.live.as_mut() else {
            return Err(FailureReason::Trap {
                message: "no instance".into(),
            });
        };
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().limiter.refused = false;
        self.stats.calls += 1;
        let result = instance
            .get_typed_func::<P, (R,)>(&mut *store, &index)
            .and_then(|f| f.call(&mut *store, params));
        match result {
            Ok((r,)) => Ok(r),
            Err(e) => {
                let mut reason = self.classify(&e);
                if let FailureReason::Trap { message } = &mut reason {
                    *message = format!("held-state {name}: {message}");
                }
                self.stats.failed_calls += 1;
                self.stats.peak_memory_bytes = self.stats().peak_memory_bytes;
                self.live = None;
                Err(reason)
            }
        }
    }

    fn classify(&self, e: &wasmtime::Error) -> FailureReason {
        let Some((store, _, _)) = self.live.as_ref() else {
            return FailureReason::Trap {
                message: format!("{e}"),
            };
        };
        if store.data().limiter.refused {
            return FailureReason::MemoryExceeded {
                limit_bytes: self.limits.memory_bytes,
            };
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => FailureReason::DeadlineExceeded {
                deadline_ms: self.limits.deadline.as_millis() as u64,
            },
            Some(t) => {
                let mut message = t.to_string();
                if let Some(line) = store.data().stderr.tail() {
                    message.push_str("; guest stderr: ");
                    message.push_str(&line);
                }
                FailureReason::Trap { message }
            }
            // A host import refused (e.g. an oversized state value).
            None => FailureReason::Trap {
                message: e.root_cause().to_string(),
            },
        }
    }
}
