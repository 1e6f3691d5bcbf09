//! # weir-udf-sdk
//!
//! Write Weir user-defined functions (UDFs) in Rust. A UDF is a plain
//! function with an attribute; the SDK hides the WIT plumbing and the packed
//! batch format (see `docs/udf-abi.md`).
//!
//! ```ignore
//! use weir_udf_sdk::{map, Record, Result};
//!
//! #[map]
//! fn uppercase(record: &Record) -> Result<Vec<u8>> {
//!     Ok(record.value().to_ascii_uppercase())
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and a
//! `crate-type = ["cdylib"]` library (or example); the `.wasm` file is a
//! component ready for `weir udf upload`.
//!
//! The shapes:
//! - [`map`]: `fn(&Record) -> Result<impl IntoOutput>`, one output per input;
//! - [`filter`]: `fn(&Record) -> Result<bool>`, keep or drop;
//! - [`flat_map`]: `fn(&Record) -> Result<impl IntoIterator<Item: IntoOutput>>`;
//! - [`process`]: `fn(&mut Context, &Record, &mut Emitter) -> Result<()>`, keyed
//!   state and timers; `#[process(on_timer = f)]` adds a timer handler.
//!
//! `map`, `filter` and `flat_map` also accept `(cx: &mut Context, record: &Record)`.
//! Returning `Err` sends that one record to the dead-letter topic with the message;
//! a panic fails the call, and the host isolates the record by bisecting the batch.
//!
//! Keyed state and timers belong to the host: they survive restarts, rescales
//! and crashes of the UDF, and they are scoped to the record's key.
//!
//! The [`abi`] module (the batch codec) has no dependencies and is also used
//! by the host; disable the default `guest` feature to use it alone.

// Lets the generated bindings name this crate by its public path, as users do.
extern crate self as weir_udf_sdk;

pub mod abi;

#[cfg(feature = "guest")]
mod guest;

#[cfg(feature = "guest")]
pub use guest::*;

#[cfg(feature = "guest")]
pub use weir_udf_macros::{filter, flat_map, map, process};

/// The WIT bindings of the `weir:udf/udf` world (generated from `wit/udf.wit`).
#[cfg(feature = "guest")]
#[doc(hidden)]
#[allow(clippy::all, unsafe_op_in_unsafe_fn)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "udf",
        pub_export_macro: true,
        export_macro_name: "export_udf",
        default_bindings_module: "weir_udf_sdk::bindings",
        runtime_path: "weir_udf_sdk::__private::wit_bindgen::rt",
    });
}

/// The WIT package version this SDK targets.
pub const WIT_VERSION: &str = "0.1.0";
