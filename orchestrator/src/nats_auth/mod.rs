//! NATS users for tenants: each tenant logs in to NATS with its own token
//! and may publish and subscribe only in its own subject space, so the
//! NATS server itself keeps tenants apart, not only Weir's intake.
//!
//! - [`users`]: who may do what, rendered as nats-server configuration (pure).
//! - [`file`]: `weir serve` writes it whenever the tenants change and asks
//!   nats-server to reload.

pub mod file;
pub mod users;

pub use file::{watch, AuthFile, NatsAuthError};
pub use users::{inbox_prefix, user_of_token};

/// Options that log a client in with `token`: its user and password, and
/// the inbox prefix its user may read.
pub fn login(opts: async_nats::ConnectOptions, token: Option<&str>) -> async_nats::ConnectOptions {
    match token {
        Some(t) => {
            let user = user_of_token(t);
            opts.custom_inbox_prefix(inbox_prefix(&user))
                .user_and_password(user, t.to_owned())
        }
        None => opts,
    }
}
