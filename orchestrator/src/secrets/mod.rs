//! Tenants' named secrets: sealed with the key given to `weir serve`
//! ([`SecretKey`]), kept in PostgreSQL ([`SecretStore`]), and substituted
//! for `${secret:NAME}` in a job spec only when a deployment starts
//! ([`refs`]), so specs, events, history and the API hold the reference,
//! never the value.

mod key;
pub mod refs;
mod store;

pub use key::{KeyError, SecretKey};
pub use store::{SecretError, SecretInfo, SecretStore};

/// Longest secret value accepted.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
