//! The `weir` command line: the one place that wires everything together.
//!
//! Exit codes: 0 success, 1 command rejected, 2 bad usage or input,
//! 3 a service is unreachable, 4 timed out waiting for an outcome.

mod job;
mod output;
pub mod serve;
mod topic;
pub mod udf;
pub mod worker;
pub mod workflow;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Connections;
pub use output::Format;

/// Weir: serverless real-time stream jobs.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
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
    /// How long to wait for a command's outcome.
    #[arg(long, global = true, env = "WEIR_TIMEOUT", default_value = "15s", value_parser = humantime_secs)]
    pub timeout: Duration,
    /// Who is acting, recorded with every event.
    #[arg(long, global = true, env = "WEIR_ACTOR", default_value_t = default_actor())]
    pub actor: String,
    #[command(subcommand)]
    pub command: Top,
}

fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

/// Parses `500ms`, `15s`, `2m` or a bare number of seconds.
fn humantime_secs(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 15s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, Subcommand)]
pub enum Top {
    /// Run the orchestrator: command intake, outbox relay and HTTP API.
    Serve(serve::ServeArgs),
    /// Run a stream-runtime worker that joins `weir serve` over NATS.
    Worker(worker::WorkerArgs),
    /// Create, deploy and inspect jobs.
    #[command(subcommand)]
    Job(job::JobCmd),
    /// Validate workflow files; list, show, resume and abort runs.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCmd),
    /// Upload, list, show and locally run WASM UDF modules.
    #[command(subcommand)]
    Udf(udf::UdfCmd),
    /// Publish any command envelope (for automation and platform components).
    Command(job::RawCommand),
    /// Create topics, produce and tail records on the Kafka broker.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Write the JSON Schemas of every user-facing format into a directory.
    Schema {
        /// Output directory.
        #[arg(default_value = "docs/schemas")]
        dir: std::path::PathBuf,
    },
}

/// Why the CLI failed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("command rejected")]
    Rejected,
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::client::ClientError> for CliError {
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError as C;
        match e {
            C::Unreachable(m) => CliError::Unreachable(m),
            C::Timeout(m) => CliError::Timeout(m),
            C::Encode(e) => CliError::Usage(e.to_string()),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Rejected => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::Timeout(_) => 4,
            CliError::Other(_) => 1,
        }
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Top::Serve(ref args) => serve::run(&cli.conn, args).await,
        Top::Worker(ref args) => worker::run(&cli.conn, args).await,
        Top::Job(ref cmd) => job::run(&cli, cmd).await,
        Top::Workflow(ref cmd) => workflow::run(&cli, cmd).await,
        Top::Udf(ref cmd) => udf::run(&cli, cmd).await,
        Top::Command(ref raw) => job::run_raw(&cli, raw).await,
        Top::Topic(ref cmd) => topic::run(&cli, cmd).await,
        Top::Schema { ref dir } => {
            crate::schema::write_all(dir).map_err(|e| CliError::Usage(e.to_string()))?;
            println!("wrote schemas to {}", dir.display());
            Ok(())
        }
    }
}
