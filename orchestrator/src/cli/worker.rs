//! `weir worker`: a stream-runtime process that joins the cluster over NATS,
//! and the worker settings `weir serve` shares with it.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::config::Connections;
use crate::registry::resolver::RegistryResolver;
use crate::registry::RegistryModules;
use crate::runtime::cluster::control::failover;
use crate::runtime::cluster::liveness::Liveness;
use crate::runtime::cluster::{self, ClusterConfig, ClusterRuntime, Worker};
use crate::runtime::{EmbeddedRuntime, RuntimeConfig};

/// Worker settings of `weir serve` and `weir worker`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// This worker's id: a subject token (letters, digits, `-`, `_`), unique
    /// among live workers and stable across restarts, so a restarted process
    /// takes its own deployments back. Default: `serve` for the worker
    /// embedded in `weir serve`, `worker-<hostname>` for `weir worker`.
    #[arg(long, env = "WEIR_WORKER_ID")]
    pub worker_id: Option<String>,
    /// A worker that has not heartbeated for this long is dead and its
    /// deployments move (heartbeats go every third of it). Use the same value
    /// in every process: the first one creates the bucket with it.
    #[arg(long, env = "WEIR_WORKER_TTL", default_value = "10s", value_parser = super::humantime_secs)]
    pub worker_ttl: Duration,
    /// Deployments this worker accepts.
    #[arg(long, env = "WEIR_WORKER_CAPACITY", default_value_t = 64)]
    pub worker_capacity: u32,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        Self {
            worker_id: None,
            worker_ttl: Duration::from_secs(10),
            worker_capacity: 64,
        }
    }
}

/// `weir serve`'s part: whether it runs a worker itself.
#[derive(Debug, Clone, Args)]
pub struct ServeClusterArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Run a worker inside `weir serve` (`--embedded-worker false` leaves
    /// the data plane to `weir worker` processes).
    #[arg(long, env = "WEIR_EMBEDDED_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub embedded_worker: bool,
}

impl Default for ServeClusterArgs {
    fn default() -> Self {
        Self {
            cluster: ClusterArgs::default(),
            embedded_worker: true,
        }
    }
}

/// `weir worker` flags.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

fn config(conn: &Connections, args: &ClusterArgs) -> ClusterConfig {
    ClusterConfig {
        prefix: conn.subject_prefix.clone(),
        ttl: args.worker_ttl,
        ..Default::default()
    }
}

fn worker_id(args: &ClusterArgs, default: impl FnOnce() -> String) -> Result<String, CliError> {
    let id = args.worker_id.clone().unwrap_or_else(default);
    if cluster::valid_worker_id(&id) {
        Ok(id)
    } else {
        Err(CliError::Usage(format!(
            "worker id `{id}` must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

fn unavailable(e: crate::runtime::control::RuntimeError) -> CliError {
    CliError::Unreachable(e.to_string())
}

/// The runtime embedded in `weir serve`: its worker (if enabled) joins and
/// runs as a task, and the returned control plane places deployments on
/// whichever workers are alive; a failover task moves them off dead ones.
pub async fn start_cluster(
    conn: &Connections,
    pool: sqlx::PgPool,
    nats: async_nats::Client,
    embedded: Option<EmbeddedRuntime>,
    args: &ServeClusterArgs,
    tasks: &mut tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
) -> Result<Arc<ClusterRuntime>, CliError> {
    let cfg = config(conn, &args.cluster);
    let js = async_nats::jetstream::new(nats.clone());
    let liveness = Liveness::open(&js, &cfg.prefix, cfg.ttl)
        .await
        .map_err(unavailable)?;
    if let Some(runtime) = embedded {
        let id = worker_id(&args.cluster, || "serve".into())?;
        let worker = Worker::new(
            id,
            args.cluster.worker_capacity,
            cfg.clone(),
            runtime,
            pool.clone(),
            liveness.clone(),
            nats.clone(),
        );
        worker.join().await.map_err(unavailable)?;
        tasks.spawn(worker.run(shutdown.clone()));
    }
    let control = Arc::new(ClusterRuntime::new(cfg, nats, pool, liveness));
    tasks.spawn(failover(control.clone(), shutdown));
    Ok(control)
}

/// Runs `weir worker` until SIGINT or SIGTERM; then takes a final checkpoint
/// of each deployment, stops it and leaves (its deployments move at once).
pub async fn run(conn: &Connections, args: &WorkerArgs) -> Result<(), CliError> {
    crate::telemetry::init_logging();
    let id = worker_id(&args.cluster, cluster::host_worker_id)?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        super::serve::wait_for_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    let (store, nats) = super::serve::connect(conn).await?;
    let js = async_nats::jetstream::new(nats.clone());
    // One WASM engine per process, with the same artifact cache as serve's.
    let host = Arc::new(
        crate::wasm::WasmHost::new(crate::wasm::HostConfig {
            cache_dir: Some(crate::registry::warm::cache_dir_from_env()),
            ..Default::default()
        })
        .map_err(|e| CliError::Usage(format!("cannot start the WASM host: {e}")))?,
    );
    let modules = Arc::new(RegistryModules {
        store: store.clone(),
        js: js.clone(),
        subject_prefix: conn.subject_prefix.clone(),
        host: host.clone(),
    });
    let runtime = EmbeddedRuntime::new(
        RuntimeConfig {
            brokers: conn.kafka_brokers.clone(),
            subject_prefix: conn.subject_prefix.clone(),
            ..Default::default()
        },
        store.pool().clone(),
        Arc::new(RegistryResolver::new(modules, host)),
        Some(nats.clone()),
    );
    let cfg = config(conn, &args.cluster);
    let liveness = Liveness::open(&js, &cfg.prefix, cfg.ttl)
        .await
        .map_err(unavailable)?;
    let worker = Worker::new(
        id.clone(),
        args.cluster.worker_capacity,
        cfg,
        runtime,
        store.pool().clone(),
        liveness,
        nats,
    );
    worker.join().await.map_err(unavailable)?;
    tracing::info!(worker = %id, prefix = %conn.subject_prefix, schema = %conn.db_schema, "weir worker is up");
    worker.run(shutdown).await;
    Ok(())
}
