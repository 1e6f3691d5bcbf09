//! Connection settings shared by every subcommand. Precedence: flags, then
//! `WEIR_*` environment variables, then defaults that point at local services.

use clap::Args;

/// Where the services are.
#[derive(Debug, Clone, Args)]
pub struct Connections {
    /// NATS server URL.
    #[arg(
        long,
        global = true,
        env = "WEIR_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// PostgreSQL URL.
    #[arg(
        long,
        global = true,
        env = "WEIR_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// PostgreSQL schema holding Weir's tables.
    #[arg(long, global = true, env = "WEIR_DB_SCHEMA", default_value = "weir")]
    pub db_schema: String,
    /// Prefix of every NATS subject and stream name.
    #[arg(
        long,
        global = true,
        env = "WEIR_SUBJECT_PREFIX",
        default_value = "weir"
    )]
    pub subject_prefix: String,
    /// Kafka bootstrap servers (the data plane's broker).
    #[arg(
        long,
        global = true,
        env = "WEIR_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_brokers: String,
    /// Base URL of a running `weir serve` HTTP API, for queries.
    #[arg(
        long,
        global = true,
        env = "WEIR_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
}
