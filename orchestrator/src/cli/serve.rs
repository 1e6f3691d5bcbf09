//! `weir serve`: the orchestrator process.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::config::Connections;
use crate::intake::{ensure_streams, run_relay, Fault, Intake, Subjects};
use crate::lifecycle::CommandHandler;
use crate::store::postgres::PgStore;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "WEIR_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub workflows: super::workflow::EngineArgs,
}

/// Runs `weir serve` until SIGINT or SIGTERM.
pub async fn run(conn: &Connections, args: &ServeArgs) -> Result<(), CliError> {
    crate::telemetry::init_logging();
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    serve(conn, args, shutdown).await
}

/// Runs the orchestrator until `shutdown` is cancelled (embeddable: benches, tests).
pub async fn serve(
    conn: &Connections,
    args: &ServeArgs,
    shutdown: CancellationToken,
) -> Result<(), CliError> {
    let metrics = crate::telemetry::init_metrics();
    let (store, nats) = connect(conn).await?;
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
    // One WASM engine per process (DESIGN §5): the module warmer, the compile
    // activity and the runtime's operators share it and its artifact cache.
    let host = crate::wasm::WasmHost::new(crate::wasm::HostConfig {
        cache_dir: Some(crate::registry::warm::cache_dir_from_env()),
        ..Default::default()
    })
    .map_err(|e| CliError::Usage(format!("cannot start the WASM host: {e}")))?;
    let runtime = super::workflow::spawn_engine(
        store.clone(),
        nats.clone(),
        conn,
        host.clone(),
        &args.workflows,
        &mut tasks,
        shutdown.clone(),
    )
    .await?;
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
    let app = crate::api::router(crate::api::ApiState {
        store: store.clone(),
        nats: nats.clone(),
        metrics,
        runtime,
    });
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

/// The event store (migrated) and a NATS client, or a one-line error naming
/// the service that could not be reached. `serve` and `worker` both start so.
pub(super) async fn connect(
    conn: &Connections,
) -> Result<(Arc<PgStore>, async_nats::Client), CliError> {
    let store = PgStore::connect(&conn.database_url, &conn.db_schema)
        .await
        .map_err(|e| {
            CliError::Unreachable(format!(
                "cannot reach PostgreSQL at {}: {e}",
                conn.database_url
            ))
        })?;
    let nats = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(std::time::Duration::from_secs(3))
        .event_callback(|e| async move { tracing::info!(event = %e, "nats connection") })
        .connect(&conn.nats_url)
        .await
        .map_err(|e| {
            CliError::Unreachable(format!("cannot reach NATS at {}: {e}", conn.nats_url))
        })?;
    Ok((Arc::new(store), nats))
}

pub(super) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
