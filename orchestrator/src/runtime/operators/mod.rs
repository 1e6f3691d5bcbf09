//! Operators made of native code: `key_by` (part of every job spec) and the
//! built-in modules that tests, benchmarks and demos use instead of WASM.

mod builtin;
mod key_by;

pub use builtin::{NativeFn, NativeModules};
pub use key_by::{extract_field, KeyBy};
