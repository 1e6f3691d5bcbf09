//! Operators made of native code: `key_by` (part of every job spec) and the
//! built-in modules that tests, benchmarks and demos use instead of WASM;
//! and `cep`, the declarative CEP rule operator.

mod builtin;
mod cep;
mod key_by;

pub use builtin::{NativeFn, NativeModules};
pub use cep::{side_tag, CepFactory, CepStats, SIDE_LATE, SIDE_TIMED_OUT};
pub use key_by::{extract_field, KeyBy};
