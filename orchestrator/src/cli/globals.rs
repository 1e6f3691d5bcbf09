//! The flags every subcommand shares: where the services are, which tenant,
//! who acts, how to print, how long to wait.

use clap::Args;

use super::output::Format;
use crate::config::Connections;
use crate::domain::Dur;

#[derive(Debug, Clone, Args)]
pub struct Globals {
    #[command(flatten)]
    pub conn: Connections,
    /// Tenant to act in.
    #[arg(
        long,
        short = 't',
        global = true,
        env = "WEIR_TENANT",
        default_value = "default"
    )]
    pub tenant: String,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// How long to wait for a command's outcome or an API answer (e.g. 500ms, 15s, 2m; at most 24h).
    #[arg(
        long,
        global = true,
        env = "WEIR_TIMEOUT",
        default_value = "15s",
        value_parser = super::duration::parse,
        allow_hyphen_values = true
    )]
    pub timeout: Dur,
    /// The token to act with: the tenant's (from `weir tenant create`) or
    /// the admin's. Not needed against `weir serve --insecure-dev`.
    #[arg(long, global = true, env = "WEIR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Who is acting, recorded with every event.
    #[arg(long, global = true, env = "WEIR_ACTOR", default_value_t = default_actor())]
    pub actor: String,
}

fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}
