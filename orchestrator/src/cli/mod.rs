//! The `weir` command line: the one place that wires everything together.
//!
//! Exit codes: 0 success, 1 command rejected, 2 bad usage or input,
//! 3 a service is unreachable, 4 timed out waiting for an outcome,
//! 5 an unexpected error (e.g. an API answer the CLI cannot read).
//!
//! Subcommands (`job`, `workflow`, `udf`, `topic`, `cep`, `tenant`, `secret`, `alerts`, `lineage`, `serve`, `worker`) each
//! have a file and depend only on the shared pieces, never on each other:
//! `globals` (shared flags), `duration` (duration flags), `http` (the query
//! API), `publish` (command verbs over NATS), `render` and `output`
//! (printing), [`wiring`] (the processes' assembly) and `error` (exit codes).

mod alerts;
mod autotune;
mod cep;
mod duration;
mod error;
mod globals;
mod http;
mod job;
mod lineage;
mod output;
mod publish;
mod render;
mod secret;
pub mod serve;
mod tenant;
mod topic;
mod udf;
pub mod wiring;
pub mod worker;
mod workflow;

use clap::{Parser, Subcommand};

pub use error::CliError;
pub use globals::Globals;
pub use output::Format;

/// Weir: serverless real-time stream jobs.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Top,
}

#[derive(Debug, Subcommand)]
pub enum Top {
    /// Run the orchestrator: command intake, outbox relay and HTTP API.
    Serve(Box<serve::ServeArgs>),
    /// Run a stream-runtime worker that joins `weir serve` over NATS.
    Worker(worker::WorkerArgs),
    /// Create, deploy and inspect jobs.
    #[command(subcommand)]
    Job(job::JobCmd),
    /// Validate workflow files; list, show, resume and abort runs.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCmd),
    /// The resource auto-tuner's decision, offline (`replay` a metrics trace).
    #[command(subcommand)]
    Autotune(autotune::AutotuneCmd),
    /// Upload, list, show and locally run WASM UDF modules.
    #[command(subcommand)]
    Udf(udf::UdfCmd),
    /// What fires across the tenant's jobs (their `alerts:` rules).
    Alerts,
    /// What the tenant's jobs read and write: topics, tables, subjects, URLs.
    Lineage(lineage::LineageArgs),
    /// Publish any command envelope (for automation and platform components).
    Command(job::RawCommand),
    /// Create topics, produce and tail records on the Kafka broker.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Set, list and delete the tenant's secrets (`${secret:NAME}` in job specs).
    #[command(subcommand)]
    Secret(secret::SecretCmd),
    /// Create tenants, set their quotas and topic grants (the admin's verbs).
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    /// Check CEP rule files, run them over local JSON events, upload the stock rule component.
    #[command(subcommand)]
    Cep(cep::CepCmd),
    /// Write the JSON Schemas of every user-facing format into a directory.
    Schema {
        /// Output directory.
        #[arg(default_value = "docs/schemas")]
        dir: std::path::PathBuf,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.globals;
    match &cli.command {
        Top::Serve(args) => serve::run(&g.conn, args).await,
        Top::Worker(args) => worker::run(&g.conn, args).await,
        Top::Job(cmd) => job::run(g, cmd).await,
        Top::Workflow(cmd) => workflow::run(g, cmd).await,
        Top::Autotune(cmd) => autotune::run(cmd),
        Top::Udf(cmd) => udf::run(g, cmd).await,
        Top::Command(raw) => job::run_raw(g, raw).await,
        Top::Lineage(args) => lineage::run(g, args).await,
        Top::Alerts => alerts::run(g).await,
        Top::Topic(cmd) => topic::run(g, cmd).await,
        Top::Cep(cmd) => cep::run(g, cmd).await,
        Top::Tenant(cmd) => tenant::run(g, cmd).await,
        Top::Secret(cmd) => secret::run(g, cmd).await,
        Top::Schema { dir } => {
            crate::schema::write_all(dir).map_err(|e| CliError::Usage(e.to_string()))?;
            println!("wrote schemas to {}", dir.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn duration_flags_take_dur_and_bare_seconds() {
        let cli = Cli::try_parse_from(["weir", "--timeout", "250ms", "job", "list"]).unwrap();
        assert_eq!(cli.globals.timeout.as_millis(), 250);
        let cli = Cli::try_parse_from(["weir", "job", "list", "--timeout", "30"]).unwrap();
        assert_eq!(cli.globals.timeout.as_millis(), 30_000);
        let cli = Cli::try_parse_from(["weir", "worker", "--worker-ttl", "2m"]).unwrap();
        let super::Top::Worker(w) = cli.command else {
            panic!("not a worker")
        };
        assert_eq!(w.cluster.worker_ttl.as_millis(), 120_000);
    }

    #[test]
    fn a_bad_duration_is_a_usage_error_naming_flag_and_value() {
        for bad in ["99999999999999999999s", "-1s", "1.5s", "5d", "25h"] {
            let e = Cli::try_parse_from(["weir", "--timeout", bad, "job", "list"]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            let text = e.to_string();
            assert!(text.contains("--timeout") && text.contains(bad), "{text}");
        }
        let e = Cli::try_parse_from(["weir", "topic", "tail", "t", "--idle", "1.5"]).unwrap_err();
        assert!(e.to_string().contains("--idle"), "{e}");
    }
}
