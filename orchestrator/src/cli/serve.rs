//! `weir serve`: the orchestrator process.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::wiring::{self, EngineArgs};
use crate::config::Connections;
use crate::intake::{ensure_streams, run_relay, Fault, Intake, Subjects};
use crate::lifecycle::CommandHandler;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "WEIR_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub workflows: EngineArgs,
    /// Accept internal command kinds (`job.mark_*`, `job.compile_*`,
    /// `job.record_*`, workflow step reports) from NATS clients. Off: only
    /// Weir's own services send them, and a client cannot forge a compile
    /// result or a deployment's state. On only for driving the lifecycle by
    /// hand without workflows (`--runtime none`).
    #[arg(long, env = "WEIR_ACCEPT_INTERNAL_COMMANDS")]
    pub accept_internal_commands: bool,
}

/// Runs `weir serve` until SIGINT or SIGTERM.
pub async fn run(conn: &Connections, args: &ServeArgs) -> Result<(), CliError> {
    crate::telemetry::init_logging();
    serve(conn, args, wiring::shutdown_on_signal()).await
}

/// Runs the orchestrator until `shutdown` is cancelled (embeddable: benches, tests).
pub async fn serve(
    conn: &Connections,
    args: &ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), CliError> {
    let metrics = crate::telemetry::init_metrics();
    let (store, nats) = wiring::connect(conn).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let subjects = Subjects::new(conn.subject_prefix.clone());
    ensure_streams(&js, &subjects)
        .await
        .map_err(|e| CliError::Unreachable(e.to_string()))?;

    let committed = Arc::new(Notify::new());
    let intake = Intake {
        js: js.clone(),
        subjects: subjects.clone(),
        handler: CommandHandler::new(store.clone()),
        committed: committed.clone(),
        fault: Fault::from_env(),
        accept_internal: args.accept_internal_commands,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(intake.run(shutdown.clone()));
    tasks.spawn(run_relay(
        store.clone(),
        js.clone(),
        subjects.clone(),
        committed,
        shutdown.clone(),
    ));
    let host = wiring::wasm_host()?;
    let runtime = wiring::spawn_engine(
        store.clone(),
        nats.clone(),
        conn,
        host.clone(),
        &args.workflows,
        &mut tasks,
        shutdown.clone(),
    )
    .await?;
    if args.workflows.runtime != wiring::RuntimeKind::None {
        // The tuner's decisions read the metrics reports this keeps.
        tasks.spawn(crate::autotune::recorder::run(
            nats.clone(),
            conn.subject_prefix.clone(),
            crate::autotune::TunerStore::new(store.pool().clone()),
            shutdown.clone(),
        ));
    }
    if crate::registry::warm::enabled_from_env() {
        tasks.spawn(crate::registry::warm::run(
            store.clone(),
            js.clone(),
            conn.subject_prefix.clone(),
            host,
            shutdown.clone(),
        ));
    }

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.http_addr)))?;
    let state = crate::api::ApiState {
        store: store.clone(),
        nats: nats.clone(),
        metrics,
        runtime,
    };
    let app = crate::api::router(state.clone()).merge(crate::console::router(state));
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "http server failed");
        }
    });
    tracing::info!(http = %args.http_addr, prefix = subjects.prefix(), schema = %conn.db_schema, "weir serve is up");

    shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}
