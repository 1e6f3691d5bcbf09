//! Weir's stock CEP rule component.
//!
//! It runs a declarative rule (`docs/cep.md`) with the `weir-cep` engine
//! inside the WASM sandbox, so a user needs no toolchain: the host hands it
//! the rule and its options as JSON through `config.operator-config`
//! ([`weir_cep::runner::ComponentConfig`]), and the component matches every
//! record of a batch with [`weir_cep::runner::RuleRunner`], the same code
//! the host's tests and `weir cep run` use.
//!
//! Partial matches live in the instance's memory between checkpoints (the
//! `held-state` export): the host takes a snapshot per partition at each
//! checkpoint and hands it back on a restore. Per record this costs no host
//! call at all, which is what makes the per-record budget reachable.
//!
//! Outputs: a match is an output keyed by its key (which may not be the
//! key of the input that completed it), the match record as value and its
//! last event time; a timed-out partial match or a
//! late record carries the `weir-side-output` header the config names. An
//! input with no key, or whose value is not JSON, fails alone (it goes to
//! the dead-letter topic) and the rest of the batch runs on.
//!
//! `held-state.stats` answers, in order: matches, timeouts, late records,
//! partial matches dropped over the per-key cap, partial matches alive,
//! buffered events.

use std::cell::RefCell;

use serde_json::Value;
use weir_cep::runner::{ComponentConfig, OutputKind, RuleRunner, RunnerOutput};
use weir_udf_sdk::abi::{InputReader, OutputFields, ResultWriter};

// Generated glue: the canonical ABI needs unsafe code; the rule's own code has none.
#[allow(clippy::all, unsafe_code, unsafe_op_in_unsafe_fn)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "held",
    });
}

use bindings::exports::weir::udf::guest::{Descriptor, Guest};
use bindings::exports::weir::udf::held_state::Guest as HeldState;
use bindings::weir::udf::types::Kind;

const SIDE_OUTPUT_HEADER: &str = "weir-side-output";

/// The rule and what it holds, made on first use from the config.
struct Loaded {
    runner: RuleRunner,
    timed_out_tag: String,
    late_tag: String,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

fn load() -> Result<Loaded, String> {
    let text = bindings::weir::udf::config::operator_config();
    let config: ComponentConfig =
        serde_json::from_str(&text).map_err(|e| format!("operator config: {e}"))?;
    let checked = config.rule.check().map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("rule: {}", list.join("; "))
    })?;
    let runner = RuleRunner::new(checked, config.options())?;
    Ok(Loaded {
        runner,
        timed_out_tag: config.timed_out_tag,
        late_tag: config.late_tag,
    })
}

/// Runs `f` on the loaded rule, loading it first if needed.
fn with_loaded<T>(f: impl FnOnce(&mut Loaded) -> Result<T, String>) -> Result<T, String> {
    LOADED.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(load()?);
        }
        match slot.as_mut() {
            Some(loaded) => f(loaded),
            None => Err("rule not loaded".into()),
        }
    })
}

struct Component;

impl Guest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            kind: Kind::Process,
            sdk_version: concat!("weir-cep-rule ", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    fn process(batch: Vec<u8>) -> Result<Vec<u8>, String> {
        with_loaded(|loaded| {
            let mut reader = InputReader::new(&batch).map_err(|e| e.to_string())?;
            let mut w = ResultWriter::with_capacity(64 + reader.count as usize * 2);
            let mut text: Vec<u8> = Vec::new();
            while let Some(rec) = reader.next_record().map_err(|e| e.to_string())? {
                let Some(key) = rec.key else {
                    w.error("record has no key: a cep operator needs a key_by before it");
                    continue;
                };
                let event: Value = match serde_json::from_slice(rec.value.unwrap_or_default()) {
                    Ok(v) => v,
                    Err(e) => {
                        w.error(&format!("value is not JSON: {e}"));
                        continue;
                    }
                };
                w.begin_emit();
                let Loaded {
                    runner,
                    timed_out_tag,
                    late_tag,
                } = loaded;
                runner.push(rec.partition, key, event, rec.timestamp, &mut |o| {
                    write_output(&mut w, &mut text, (timed_out_tag, late_tag), o)
                });
            }
            Ok(w.finish())
        })
    }

    fn on_timer(timers: Vec<u8>) -> Result<Vec<u8>, String> {
        // The rule registers no timers: its watermark moves with its records.
        let _ = timers;
        Err("the CEP rule component registers no timers".into())
    }
}

/// Adds `o` to the open EMIT status: its value the match record's JSON,
/// its time the record's, and the side-output header unless it is a match.
fn write_output(
    w: &mut ResultWriter,
    text: &mut Vec<u8>,
    (timed_out, late): (&str, &str),
    o: RunnerOutput,
) {
    text.clear();
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *text, &o.value);
    let tag = match o.kind {
        OutputKind::Match => None,
        OutputKind::TimedOut => Some(timed_out),
        OutputKind::Late => Some(late),
    };
    let side = tag.map(|t| [(SIDE_OUTPUT_HEADER, t.as_bytes())]);
    w.output(OutputFields {
        key: Some(Some(&o.key)),
        timestamp: Some(o.time),
        headers: Some(side.as_ref().map_or(&[][..], |h| &h[..])),
        value: Some(text),
    });
}

impl HeldState for Component {
    fn finish(partition: i32) -> Result<Vec<u8>, String> {
        with_loaded(|l| {
            let mut w = ResultWriter::with_capacity(64);
            let mut text = Vec::new();
            w.begin_emit();
            let Loaded {
                runner,
                timed_out_tag,
                late_tag,
            } = l;
            runner.finish(partition, &mut |o| {
                write_output(&mut w, &mut text, (timed_out_tag, late_tag), o)
            });
            Ok(w.finish())
        })
    }

    fn restore(partition: i32, snapshot: Vec<u8>) -> Result<(), String> {
        with_loaded(|l| {
            l.runner
                .restore(partition, &snapshot)
                .map_err(|e| e.to_string())
        })
    }

    fn snapshot(partition: i32) -> Result<Vec<u8>, String> {
        with_loaded(|l| Ok(l.runner.snapshot(partition)))
    }

    fn stats() -> Vec<u64> {
        with_loaded(|l| Ok(l.runner.stats().to_array().to_vec())).unwrap_or_default()
    }
}

#[allow(unsafe_code)]
mod exported {
    use crate::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
