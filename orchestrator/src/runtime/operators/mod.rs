//! Operators made of native code: `key_by` (part of every job spec) and the
//! built-in modules that tests, benchmarks and demos use instead of WASM;
//! and `cep`, the declarative CEP rule operator, natively (`cep`) or in
//! Weir's stock rule component (`cep_component`).

mod builtin;
mod cep;
mod cep_component;
mod key_by;

pub use builtin::{NativeFn, NativeModules};
pub use cep::{side_tag, CepFactory, CepStats, SIDE_LATE, SIDE_TIMED_OUT};
pub use cep_component::CepComponentFactory;
pub use key_by::{extract_field, KeyBy};
