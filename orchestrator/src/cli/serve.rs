//! `weir serve`: the orchestrator process.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use super::wiring::{self, EngineArgs};
use crate::config::Connections;
use crate::intake::auth::{Access, Gate};
use crate::intake::{ensure_streams, run_relay, Fault, Intake, Subjects};
use crate::lifecycle::CommandHandler;
use crate::secrets::SecretStore;

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
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub nats_users: NatsUsersArgs,
}

/// Where `weir serve` keeps nats-server's users, if it does.
#[derive(Debug, Clone, Default, Args)]
pub struct NatsUsersArgs {
    /// Write nats-server's users here (an `authorization` block for the
    /// server's configuration to `include`), one per tenant with its
    /// permissions, and rewrite it whenever the tenants change. Weir's
    /// processes and the admin log in with the admin token.
    #[arg(long, env = "WEIR_NATS_USERS_FILE")]
    pub nats_users_file: Option<std::path::PathBuf>,
    /// nats-server's pid file (its `-P` flag): after each rewrite `weir
    /// serve` sends the server SIGHUP, and it reloads its users.
    #[arg(long, env = "WEIR_NATS_PID_FILE", requires = "nats_users_file")]
    pub nats_pid_file: Option<std::path::PathBuf>,
}

/// Who may act: the admin token, or no authentication at all.
#[derive(Debug, Clone, Default, Args)]
pub struct AccessArgs {
    /// The admin's token (at least 32 characters): it creates tenants and may
    /// act in any of them. Prefer `--admin-token-file`; the token is never logged.
    #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file whose first line is the admin's token.
    #[arg(long, env = "WEIR_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// No authentication: anyone who reaches NATS or the API acts as any
    /// tenant, no quota applies and jobs may use any topic. For a laptop only;
    /// logs a warning.
    #[arg(long, env = "WEIR_INSECURE_DEV")]
    pub insecure_dev: bool,
    /// Ask for the admin token on `/metrics` too (open by default, for scrapers).
    #[arg(long, env = "WEIR_PROTECT_METRICS")]
    pub protect_metrics: bool,
}

/// Shortest admin token accepted.
const MIN_ADMIN_TOKEN: usize = 32;

impl AccessArgs {
    /// The admin token these flags give (`None` under `--insecure-dev`), or
    /// why there is no usable one.
    pub fn admin_token(&self) -> Result<Option<String>, CliError> {
        if self.insecure_dev {
            return Ok(None);
        }
        let token =
            match (&self.admin_token, &self.admin_token_file) {
                (Some(t), _) => t.trim().to_owned(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        CliError::Usage(format!(
                            "cannot read the admin token file {}: {e}",
                            path.display()
                        ))
                    })?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                (None, None) => return Err(CliError::Usage(
                    "weir serve needs an admin token: set WEIR_ADMIN_TOKEN or --admin-token-file \
                     (a secret of at least 32 characters, e.g. `openssl rand -hex 32`), or run \
                     --insecure-dev on a laptop"
                        .into(),
                )),
            };
        if token.len() < MIN_ADMIN_TOKEN {
            return Err(CliError::Usage(format!(
                "the admin token is {} characters; at least {MIN_ADMIN_TOKEN} are needed",
                token.len()
            )));
        }
        Ok(Some(token))
    }
}

fn nats_users_file(
    args: &NatsUsersArgs,
    admin_token: Option<&str>,
    subjects: &Subjects,
) -> Result<Option<crate::nats_auth::AuthFile>, CliError> {
    let Some(path) = &args.nats_users_file else {
        return Ok(None);
    };
    let Some(token) = admin_token else {
        return Err(CliError::Usage(
            "--nats-users-file needs authentication on: drop --insecure-dev and give an admin token".into(),
        ));
    };
    crate::nats_auth::AuthFile::new(
        path.clone(),
        args.nats_pid_file.clone(),
        subjects.clone(),
        token,
    )
    .map(Some)
    .map_err(|e| CliError::Usage(e.to_string()))
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
    // The token is read once (it may come from a file): access follows from it.
    let admin_token = args.access.admin_token()?;
    let access = admin_token
        .as_deref()
        .map_or(Access::InsecureDev, Access::tokens);
    let secret_key = args.workflows.cluster.cluster.secret_key()?;
    if access == Access::InsecureDev {
        tracing::warn!("--insecure-dev: no authentication; anyone who reaches NATS or the API acts as any tenant, no quota applies and jobs may use any topic");
    }
    let metrics = crate::telemetry::init_metrics();
    let subjects = Subjects::new(conn.subject_prefix.clone());
    let mut users_file = nats_users_file(&args.nats_users, admin_token.as_deref(), &subjects)?;
    // Weir's processes log in with the admin token unless given their own.
    let login = args
        .workflows
        .cluster
        .cluster
        .nats_token
        .clone()
        .or(admin_token);
    // The users file is written before connecting: the server may need it
    // to let this process in.
    let (store, nats) = wiring::connect(conn, login.as_deref(), users_file.as_mut()).await?;
    let js = async_nats::jetstream::new(nats.clone());
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
        gate: Gate::new(access.clone()),
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
    if let Some(file) = users_file {
        tasks.spawn(crate::nats_auth::watch(
            file,
            store.pool().clone(),
            nats.clone(),
            std::time::Duration::from_secs(10),
            shutdown.clone(),
        ));
    }
    let host = wiring::wasm_host()?;
    let upload_host = host.clone();
    let mut engine_args = args.workflows.clone();
    engine_args.tenancy = access != Access::InsecureDev;
    engine_args.secret_key = secret_key.clone();
    let runtime = wiring::spawn_engine(
        store.clone(),
        nats.clone(),
        conn,
        host.clone(),
        &engine_args,
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
        access: crate::api::auth::ApiAccess {
            access,
            protect_metrics: args.access.protect_metrics,
        },
        secrets: SecretStore::new(store.pool().clone(), secret_key),
        subjects: subjects.clone(),
        host: Some(upload_host),
        kafka_brokers: Some(conn.kafka_brokers.clone()),
    };
    // One guard over both routers, so no path is served without its check.
    let app = crate::api::router(state.clone())
        .merge(crate::console::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::api::auth::require,
        ));
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
