//! `weir worker`: a stream-runtime process that joins the cluster over NATS.

use clap::Args;

use super::error::CliError;
use super::wiring::{self, ClusterArgs};
use crate::config::Connections;
use crate::runtime::cluster;

/// `weir worker` flags.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs `weir worker` until SIGINT or SIGTERM; then takes a final checkpoint
/// of each deployment, stops it and leaves (its deployments move at once).
pub async fn run(conn: &Connections, args: &WorkerArgs) -> Result<(), CliError> {
    crate::telemetry::init_logging();
    let id = wiring::worker_id(&args.cluster, cluster::host_worker_id)?;
    let shutdown = wiring::shutdown_on_signal();
    let (store, nats) = wiring::connect(conn, args.cluster.nats_token.as_deref(), None).await?;
    let worker = wiring::standalone_worker(conn, store, nats, &args.cluster, id.clone()).await?;
    tracing::info!(worker = %id, prefix = %conn.subject_prefix, schema = %conn.db_schema, "weir worker is up");
    worker.run(shutdown).await;
    Ok(())
}
