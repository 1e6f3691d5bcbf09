//! CEP rule components: WASM components (world `held`) that run a rule
//! with the `weir-cep` engine inside the sandbox.
//!
//! A component names where its rule comes from with a [`RuleSource`] and
//! exports itself with [`export_rule_component!`]. Weir's stock component
//! (`examples/weir_cep_rule.rs`) runs the declarative rule the host hands
//! it as JSON through `config.operator-config` ([`ComponentConfig`]), so
//! users need no toolchain; a rule written with the Rust pattern API
//! (`examples/abc_rule.rs`) builds its pattern itself and takes only the
//! options from the config. Either way every record of a batch goes
//! through [`RuleRunner`], the code the host's native operator and `weir
//! cep run` use too.
//!
//! Partial matches live in the instance's memory between checkpoints (the
//! `held-state` export): the host takes a snapshot per partition at each
//! checkpoint and hands it back on a restore. Per record this costs no host
//! call at all.
//!
//! Outputs: a match is an output keyed by its key (which may not be the
//! key of the input that completed it), the match record as value and its
//! last event time; a timed-out partial match or a late record carries the
//! `weir-side-output` header the config names. An input with no key, or
//! whose value is not JSON, fails alone (it goes to the dead-letter topic)
//! and the rest of the batch runs on.
//!
//! `held-state.stats` answers, in order: matches, timeouts, late records,
//! partial matches dropped over the per-key cap, partial matches alive,
//! buffered events.

use std::cell::RefCell;

use weir_cep::runner::{OutputKind, RunnerOutput, READ_AHEAD};
use weir_udf_sdk::abi::{InputReader, OutputFields, RecordView, ResultWriter};

// Generated glue: the canonical ABI needs unsafe code; the rule's own code has none.
#[doc(hidden)]
#[allow(clippy::all, unsafe_code, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "held",
        pub_export_macro: true,
        export_macro_name: "export_held",
        default_bindings_module: "weir_cep_rule::bindings",
    });
}

pub use weir_cep::runner::{ComponentConfig, RuleRunner};

use bindings::exports::weir::udf::guest::Descriptor;
use bindings::weir::udf::types::Kind;

/// Where a component's rule comes from.
pub trait RuleSource {
    /// The runner of the rule, made once per instance from its config.
    fn runner(config: &ComponentConfig) -> Result<RuleRunner, String>;
}

/// The declarative rule a config holds, checked and ready to run.
pub fn declarative(config: &ComponentConfig) -> Result<RuleRunner, String> {
    let rule = config
        .rule
        .as_ref()
        .ok_or("the operator config holds no rule")?;
    let checked = rule.check().map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("rule: {}", list.join("; "))
    })?;
    RuleRunner::new(checked, config.options())
}

/// Exports `$source` (a unit struct of the calling crate implementing
/// [`RuleSource`]) as the component's `guest` and `held-state`.
#[macro_export]
macro_rules! export_rule_component {
    ($source:ident) => {
        impl $crate::bindings::exports::weir::udf::guest::Guest for $source {
            fn describe() -> $crate::bindings::exports::weir::udf::guest::Descriptor {
                $crate::describe()
            }
            fn process(batch: Vec<u8>) -> Result<Vec<u8>, String> {
                $crate::process::<$source>(batch)
            }
            fn on_timer(timers: Vec<u8>) -> Result<Vec<u8>, String> {
                $crate::on_timer(timers)
            }
        }
        impl $crate::bindings::exports::weir::udf::held_state::Guest for $source {
            fn restore(partition: i32, snapshot: Vec<u8>) -> Result<(), String> {
                $crate::restore::<$source>(partition, snapshot)
            }
            fn snapshot(partition: i32) -> Result<Vec<u8>, String> {
                $crate::snapshot::<$source>(partition)
            }
            fn finish(partition: i32) -> Result<Vec<u8>, String> {
                $crate::finish::<$source>(partition)
            }
            fn stats() -> Vec<u64> {
                $crate::stats::<$source>()
            }
        }
        // Only a wasm32 build is a component: a native build of it (as
        // `cargo test` makes of examples) must neither export WIT-named
        // symbols nor warn that the rule is unused.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_held!($source with_types_in $crate::bindings);
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $source;
            let _ = <$source as $crate::RuleSource>::runner;
        };
    };
}

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

fn load<S: RuleSource>() -> Result<Loaded, String> {
    let text = bindings::weir::udf::config::operator_config();
    let config: ComponentConfig =
        serde_json::from_str(&text).map_err(|e| format!("operator config: {e}"))?;
    Ok(Loaded {
        runner: S::runner(&config)?,
        timed_out_tag: config.timed_out_tag,
        late_tag: config.late_tag,
    })
}

/// Runs `f` on the loaded rule, loading it first if needed.
fn with_loaded<S: RuleSource, T>(
    f: impl FnOnce(&mut Loaded) -> Result<T, String>,
) -> Result<T, String> {
    LOADED.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(load::<S>()?);
        }
        match slot.as_mut() {
            Some(loaded) => f(loaded),
            None => Err("rule not loaded".into()),
        }
    })
}

#[doc(hidden)]
pub fn describe() -> Descriptor {
    Descriptor {
        kind: Kind::Process,
        sdk_version: concat!("weir-cep-rule ", env!("CARGO_PKG_VERSION")).into(),
    }
}

#[doc(hidden)]
pub fn process<S: RuleSource>(batch: Vec<u8>) -> Result<Vec<u8>, String> {
    with_loaded::<S, _>(|loaded| {
        let mut reader = InputReader::new(&batch).map_err(|e| e.to_string())?;
        let mut w = ResultWriter::with_capacity(64 + reader.count as usize * 2);
        // Decoded first, so each stretch of records can have its keyed
        // state read ahead before it runs.
        let mut records = Vec::with_capacity(reader.count as usize);
        while let Some(rec) = reader.next_record().map_err(|e| e.to_string())? {
            records.push(rec);
        }
        for chunk in records.chunks(READ_AHEAD) {
            warm(&mut loaded.runner, chunk);
            for &rec in chunk {
                let Some(key) = rec.key else {
                    w.error("record has no key: a cep operator needs a key_by before it");
                    continue;
                };
                let Loaded {
                    runner,
                    timed_out_tag,
                    late_tag,
                } = loaded;
                let event = match runner.next_event(rec.value.unwrap_or_default()) {
                    Ok(e) => e,
                    Err(e) => {
                        w.error(&e.to_string());
                        continue;
                    }
                };
                // Most records cause no output: a one-byte DROP says so, which
                // the host reads in runs, where an EMIT of none costs it a
                // status decoded and an empty list.
                let before = w.count();
                runner.push_event(rec.partition, key, event, rec.timestamp, &mut |o| {
                    if w.count() == before {
                        w.begin_emit();
                    }
                    write_output(&mut w, (timed_out_tag, late_tag), o)
                });
                if w.count() == before {
                    w.drop_input();
                }
            }
        }
        Ok(w.finish())
    })
}

/// Reads ahead the keyed state `records` will touch (see
/// [`RuleRunner::warm`]), run by run of one partition.
fn warm(runner: &mut RuleRunner, records: &[RecordView<'_>]) {
    let mut rest = records;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .position(|r| r.partition != first.partition)
            .unwrap_or(rest.len());
        let (same, after) = rest.split_at(run);
        let keyed = same.iter().filter_map(|r| Some((r.key?, r.timestamp)));
        runner.warm(first.partition, keyed);
        rest = after;
    }
}

#[doc(hidden)]
pub fn on_timer(timers: Vec<u8>) -> Result<Vec<u8>, String> {
    // The rule registers no timers: its watermark moves with its records.
    let _ = timers;
    Err("the CEP rule component registers no timers".into())
}

/// Adds `o` to the open EMIT status: its value the match record's JSON,
/// its time the record's, and the side-output header unless it is a match.
fn write_output(w: &mut ResultWriter, (timed_out, late): (&str, &str), o: RunnerOutput) {
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
        value: Some(&o.value),
    });
}

#[doc(hidden)]
pub fn finish<S: RuleSource>(partition: i32) -> Result<Vec<u8>, String> {
    with_loaded::<S, _>(|l| {
        let mut w = ResultWriter::with_capacity(64);
        w.begin_emit();
        let Loaded {
            runner,
            timed_out_tag,
            late_tag,
        } = l;
        runner.finish(partition, &mut |o| {
            write_output(&mut w, (timed_out_tag, late_tag), o)
        });
        Ok(w.finish())
    })
}

#[doc(hidden)]
pub fn restore<S: RuleSource>(partition: i32, snapshot: Vec<u8>) -> Result<(), String> {
    with_loaded::<S, _>(|l| {
        l.runner
            .restore(partition, &snapshot)
            .map_err(|e| e.to_string())
    })
}

#[doc(hidden)]
pub fn snapshot<S: RuleSource>(partition: i32) -> Result<Vec<u8>, String> {
    with_loaded::<S, _>(|l| Ok(l.runner.snapshot(partition)))
}

#[doc(hidden)]
pub fn stats<S: RuleSource>() -> Vec<u64> {
    with_loaded::<S, _>(|l| Ok(l.runner.stats().to_array().to_vec())).unwrap_or_default()
}
