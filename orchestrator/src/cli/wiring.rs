//! Process wiring for `weir serve` and `weir worker`: connect to PostgreSQL
//! and NATS, start the WASM host, the workflow engine and the cluster's
//! workers, and turn SIGINT/SIGTERM into a shutdown token. Also the flags
//! that shape these pieces, shared by both processes.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use crate::config::Connections;
use crate::domain::Dur;
use crate::lifecycle::CommandHandler;
use crate::registry::resolver::RegistryResolver;
use crate::registry::RegistryModules;
use crate::runtime::cluster::control::failover;
use crate::runtime::cluster::liveness::Liveness;
use crate::runtime::cluster::{self, ClusterConfig, ClusterRuntime, Worker};
use crate::runtime::restart::RestartPolicy;
use crate::runtime::{EmbeddedRuntime, RuntimeConfig};
use crate::store::postgres::PgStore;
use crate::wasm::{HostConfig, WasmHost};
use crate::workflow::activities::{Activities, Notifier};
use crate::workflow::clock::SystemClock;
use crate::workflow::driver::default_owner;
#[cfg(feature = "test-util")]
use crate::workflow::sim::SimControl;
use crate::workflow::{Catalog, Engine, EngineConfig};

/// Which data plane the engine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// The embedded Kafka stream runtime with WASM UDFs from the module registry.
    Embedded,
    /// The simulated runtime kept in PostgreSQL (no records flow; for tests).
    #[cfg(feature = "test-util")]
    Sim,
    /// Do not run the workflow engine in this process (commands are only recorded).
    None,
}

/// Workflow engine settings of `weir serve`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Directory of workflow files; the built-in ones are used for files it lacks.
    #[arg(long, env = "WEIR_WORKFLOWS_DIR", default_value = "workflows")]
    pub workflows_dir: PathBuf,
    /// This replica's id. Keep it stable across restarts and unique among replicas,
    /// so a restarted replica resumes its own steps at once instead of waiting for their leases.
    #[arg(long, env = "WEIR_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// The data plane workflow activities drive.
    #[arg(long, env = "WEIR_RUNTIME", value_enum, default_value_t = RuntimeKind::Embedded)]
    pub runtime: RuntimeKind,
    /// How often each running job with an `autotune:` policy gets a
    /// decision (a run of `autotune.yaml`); `0s` turns the tuner off here.
    #[arg(long, env = "WEIR_AUTOTUNE_EVERY", default_value = "30s", value_parser = super::duration::parse)]
    pub autotune_every: Dur,
    /// How often the alert rules of every job are judged; `0s` turns alert
    /// evaluation off in this process.
    #[arg(long, env = "WEIR_ALERT_EVERY", default_value = "10s", value_parser = super::duration::parse)]
    pub alert_every: Dur,
    /// Tasks one worker is sized for: `weir_autotune_workers_needed` is
    /// every deployed job's wanted tasks divided by this, for an external
    /// autoscaler of the worker pool.
    #[arg(long, env = "WEIR_TASKS_PER_WORKER", default_value_t = 8)]
    pub tasks_per_worker: u32,
    /// The most tasks one tenant's jobs may run in all: the auto-tuner never
    /// gives a job more than the tenant's other running jobs leave. Unset:
    /// no limit.
    #[arg(long, env = "WEIR_TENANT_MAX_TASKS")]
    pub tenant_max_tasks: Option<u32>,
    /// Workers (with `embedded`): this process's own, ids, heartbeat TTL.
    #[command(flatten)]
    pub cluster: ServeClusterArgs,
    /// Tenants are enforced: topic namespaces and the state quota (set by
    /// `weir serve` unless `--insecure-dev`).
    #[arg(skip)]
    pub tenancy: bool,
    /// The key tenants' secrets are sealed with (set by `weir serve`).
    #[arg(skip)]
    pub secret_key: Option<crate::secrets::SecretKey>,
}

impl EngineArgs {
    /// No engine in this process (e.g. a benchmark of the command path alone).
    pub fn disabled() -> Self {
        Self {
            workflows_dir: PathBuf::from("workflows"),
            replica_id: None,
            runtime: RuntimeKind::None,
            autotune_every: Dur::from_secs(0),
            alert_every: Dur::from_secs(0),
            tasks_per_worker: 8,
            tenant_max_tasks: None,
            cluster: Default::default(),
            tenancy: false,
            secret_key: None,
        }
    }
}

/// Worker settings of `weir serve` and `weir worker`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// This worker's id: a subject token (letters, digits, `-`, `_`), unique
    /// among live workers and stable across restarts, so a restarted process
    /// takes its own deployments back. Default: `serve` for the worker
    /// embedded in `weir serve`, `worker-<hostname>` for `weir worker`.
    #[arg(long, env = "WEIR_WORKER_ID")]
    pub worker_id: Option<String>,
    /// The token this process logs in to NATS with, where nats-server
    /// checks users (`weir serve --nats-users-file`): the admin's.
    /// `weir serve` uses its own admin token when this is not given.
    #[arg(long, env = "WEIR_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// A worker that has not heartbeated for this long is dead and its
    /// deployments move (heartbeats go every third of it). Use the same value
    /// in every process: the first one creates the bucket with it.
    #[arg(
        long,
        env = "WEIR_WORKER_TTL",
        default_value = "10s",
        value_parser = super::duration::parse,
        allow_hyphen_values = true
    )]
    pub worker_ttl: Dur,
    /// Deployments this worker accepts.
    #[arg(long, env = "WEIR_WORKER_CAPACITY", default_value_t = 64)]
    pub worker_capacity: u32,
    /// Weir's stock CEP rule component (`weir_cep_rule.wasm`; build it with
    /// `scripts/cep-component.sh`): `cep` operators then run in the WASM
    /// sandbox, under a memory cap and a deadline. Without it they run
    /// natively in the task, with the same matching code.
    #[arg(long, env = "WEIR_CEP_COMPONENT")]
    pub cep_component: Option<std::path::PathBuf>,
    /// Let jobs' HTTP sinks post to loopback, private and link-local
    /// addresses (Weir's own API, the machine's services, cloud metadata).
    /// Off: only public addresses.
    #[arg(long, env = "WEIR_HTTP_SINK_ALLOW_PRIVATE")]
    pub http_sink_allow_private: bool,
    /// Crashes a task may have within `--task-restart-window` before it is
    /// marked failed (and its job with it).
    #[arg(long, env = "WEIR_TASK_RESTART_BUDGET", default_value_t = 10)]
    pub task_restart_budget: u32,
    /// On SIGTERM, how long final checkpoints may take before the worker
    /// stops its jobs without them (they resume from the previous one).
    #[arg(
        long,
        env = "WEIR_SHUTDOWN_GRACE",
        default_value = "20s",
        value_parser = super::duration::parse,
        allow_hyphen_values = true
    )]
    pub shutdown_grace: Dur,
    /// The sliding window of the restart budget.
    #[arg(
        long,
        env = "WEIR_TASK_RESTART_WINDOW",
        default_value = "5m",
        value_parser = super::duration::parse,
        allow_hyphen_values = true
    )]
    pub task_restart_window: Dur,
    /// The key tenants' secrets are sealed with: 64 hex digits (e.g.
    /// `openssl rand -hex 32`), the same in `weir serve` and every `weir
    /// worker`. Prefer `--secret-key-file`. Without one, secrets can be
    /// neither set nor used.
    #[arg(long, env = "WEIR_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A file holding the secret key.
    #[arg(long, env = "WEIR_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

impl ClusterArgs {
    /// The secret key, if one is given.
    /// The stock CEP rule component, loaded into `host`, if one is given.
    pub fn cep_component(
        &self,
        host: &WasmHost,
    ) -> Result<Option<Arc<crate::wasm::LoadedModule>>, CliError> {
        let Some(path) = &self.cep_component else {
            return Ok(None);
        };
        load_cep_component(host, path).map(Some)
    }

    pub fn secret_key(&self) -> Result<Option<crate::secrets::SecretKey>, CliError> {
        let text = match (&self.secret_key, &self.secret_key_file) {
            (Some(k), _) => k.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the secret key file {}: {e}",
                    path.display()
                ))
            })?,
            (None, None) => return Ok(None),
        };
        crate::secrets::SecretKey::from_hex(&text)
            .map(Some)
            .map_err(|e| CliError::Usage(e.to_string()))
    }
}

impl Default for ClusterArgs {
    fn default() -> Self {
        Self {
            worker_id: None,
            nats_token: None,
            worker_ttl: Dur::from_secs(10),
            worker_capacity: 64,
            cep_component: None,
            http_sink_allow_private: false,
            task_restart_budget: 10,
            shutdown_grace: Dur::from_secs(20),
            task_restart_window: Dur::from_secs(300),
            secret_key: None,
            secret_key_file: None,
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

/// The event store (migrated) and a NATS client logged in with `login`,
/// or a one-line error naming the service that could not be reached.
/// `serve` and `worker` both start so; `serve` writes nats-server's users
/// (`users_file`) in between.
pub async fn connect(
    conn: &Connections,
    login: Option<&str>,
    users_file: Option<&mut crate::nats_auth::AuthFile>,
) -> Result<(Arc<PgStore>, async_nats::Client), CliError> {
    let store = PgStore::connect(&conn.database_url, &conn.db_schema)
        .await
        .map_err(|e| {
            CliError::Unreachable(format!(
                "cannot reach PostgreSQL at {}: {e}",
                conn.database_url
            ))
        })?;
    if let Some(file) = users_file {
        file.sync(store.pool())
            .await
            .map_err(|e| CliError::Unreachable(e.to_string()))?;
    }
    let nats = crate::nats_auth::login(async_nats::ConnectOptions::new(), login)
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

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    shutdown
}

async fn wait_for_signal() {
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

/// The process's one WASM engine: the module warmer, the compile activity
/// and the runtime's operators share it and its artifact cache.
pub fn wasm_host() -> Result<WasmHost, CliError> {
    WasmHost::new(HostConfig {
        cache_dir: Some(crate::registry::warm::cache_dir_from_env()),
        ..Default::default()
    })
    .map_err(|e| CliError::Usage(format!("cannot start the WASM host: {e}")))
}

fn registry_modules(
    store: Arc<PgStore>,
    nats: &async_nats::Client,
    conn: &Connections,
    host: Arc<WasmHost>,
) -> Arc<RegistryModules<PgStore>> {
    Arc::new(RegistryModules {
        store,
        js: async_nats::jetstream::new(nats.clone()),
        subject_prefix: conn.subject_prefix.clone(),
        host,
    })
}

/// Loads Weir's stock CEP rule component from `path` and checks that it is one.
pub fn load_cep_component(
    host: &WasmHost,
    path: &std::path::Path,
) -> Result<Arc<crate::wasm::LoadedModule>, CliError> {
    let file = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("the CEP rule component {file}: {e}")))?;
    let module = host
        .load(
            super::cep::STOCK_COMPONENT,
            env!("CARGO_PKG_VERSION"),
            &bytes,
        )
        .map_err(|e| CliError::Usage(format!("the CEP rule component {file}: {e}")))?;
    if !module.holds_state() {
        return Err(CliError::Usage(format!(
            "{file} is not the CEP rule component: it does not export {}",
            crate::wasm::HELD_STATE_EXPORT
        )));
    }
    Ok(module)
}

/// The Kafka stream runtime of a worker, resolving UDFs from the registry.
fn embedded_runtime(
    conn: &Connections,
    store: &PgStore,
    nats: &async_nats::Client,
    modules: Arc<RegistryModules<PgStore>>,
    host: Arc<WasmHost>,
    cluster: &ClusterArgs,
    secret_key: Option<crate::secrets::SecretKey>,
) -> Result<EmbeddedRuntime, CliError> {
    let resolver = RegistryResolver::new(modules, host.clone())
        .with_cep_component(cluster.cep_component(&host)?);
    Ok(EmbeddedRuntime::new(
        RuntimeConfig {
            brokers: conn.kafka_brokers.clone(),
            subject_prefix: conn.subject_prefix.clone(),
            restart: RestartPolicy {
                budget: cluster.task_restart_budget,
                window: cluster.task_restart_window.get(),
                ..Default::default()
            },
            http_sink_allow_private: cluster.http_sink_allow_private,
            secret_key,
            ..Default::default()
        },
        store.pool().clone(),
        Arc::new(resolver),
        Some(nats.clone()),
    ))
}

/// Starts the workflow engine as a task of `weir serve`; with the embedded
/// runtime, also the cluster control plane it drives (returned for the API).
pub async fn spawn_engine(
    store: Arc<PgStore>,
    nats: async_nats::Client,
    conn: &Connections,
    host: WasmHost,
    args: &EngineArgs,
    tasks: &mut JoinSet<()>,
    shutdown: CancellationToken,
) -> Result<Option<Arc<ClusterRuntime>>, CliError> {
    if args.runtime == RuntimeKind::None {
        return Ok(None);
    }
    let host = Arc::new(host);
    let modules = registry_modules(store.clone(), &nats, conn, host.clone());
    let notifier = Notifier::new(
        args.cluster.cluster.http_sink_allow_private,
        Some(nats.clone()),
        &conn.subject_prefix,
    );
    match args.runtime {
        RuntimeKind::None => Ok(None),
        #[cfg(feature = "test-util")]
        RuntimeKind::Sim => {
            let control = SimControl::new(store.pool().clone())
                .await
                .map_err(|e| CliError::Unreachable(e.to_string()))?;
            start_engine(
                store,
                Arc::new(control),
                modules,
                notifier,
                args,
                tasks,
                shutdown,
            );
            Ok(None)
        }
        RuntimeKind::Embedded => {
            // The data plane runs on workers (this process's own unless
            // disabled, and `weir worker`s); the engine drives them through
            // the cluster control plane, which places and fails over.
            let embedded = args.cluster.embedded_worker.then(|| {
                embedded_runtime(
                    conn,
                    &store,
                    &nats,
                    modules.clone(),
                    host,
                    &args.cluster.cluster,
                    args.secret_key.clone(),
                )
            });
            let embedded = embedded.transpose()?;
            let control = start_cluster(
                conn,
                store.pool().clone(),
                nats,
                embedded,
                &args.cluster,
                tasks,
                shutdown.clone(),
            )
            .await?;
            let reconciler = crate::reconcile::Reconciler::new(
                control.clone(),
                CommandHandler::new(store.clone()),
                Arc::new(SystemClock),
            );
            tasks.spawn(reconciler.run(shutdown.clone()));
            start_engine(
                store,
                control.clone(),
                modules,
                notifier,
                args,
                tasks,
                shutdown,
            );
            Ok(Some(control))
        }
    }
}

fn start_engine<C: crate::runtime::control::DeploymentControl>(
    store: Arc<PgStore>,
    control: Arc<C>,
    modules: Arc<RegistryModules<PgStore>>,
    notifier: Notifier,
    args: &EngineArgs,
    tasks: &mut JoinSet<()>,
    shutdown: CancellationToken,
) {
    let pool = store.pool().clone();
    let alert_every = args.alert_every.get();
    if !alert_every.is_zero() {
        let evaluator = crate::alerts::Evaluator::new(
            crate::alerts::AlertStore::new(store.pool().clone()),
            CommandHandler::new(store.clone()),
            Arc::new(SystemClock),
        );
        tasks.spawn(evaluator.run(alert_every, shutdown.clone()));
    }
    let activities = Activities {
        tuner: crate::autotune::TunerStore::new(store.pool().clone())
            .with_tenant_max_tasks(args.tenant_max_tasks),
        handler: CommandHandler::new(store),
        control,
        modules,
        http: reqwest::Client::new(),
        notifier,
        clock: Arc::new(SystemClock),
        tenancy: args.tenancy,
        secrets: crate::secrets::SecretStore::new(pool.clone(), args.secret_key.clone()),
    };
    let mut cfg = EngineConfig::new(args.replica_id.clone().unwrap_or_else(default_owner));
    let every = args.autotune_every.get();
    cfg.autotune_every = (!every.is_zero()).then_some(every);
    if !every.is_zero() {
        tasks.spawn(crate::autotune::capacity::run(
            pool,
            args.tasks_per_worker,
            every,
            shutdown.clone(),
        ));
    }
    let engine = Arc::new(Engine::new(
        activities,
        Catalog::new(Some(args.workflows_dir.clone())),
        cfg,
    ));
    tasks.spawn(engine.run(shutdown));
}

fn cluster_config(conn: &Connections, args: &ClusterArgs) -> ClusterConfig {
    ClusterConfig {
        prefix: conn.subject_prefix.clone(),
        ttl: args.worker_ttl.get(),
        shutdown_grace: args.shutdown_grace.get(),
        ..Default::default()
    }
}

/// The worker id from the flags or `default`, if it is a valid subject token.
pub fn worker_id(args: &ClusterArgs, default: impl FnOnce() -> String) -> Result<String, CliError> {
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
async fn start_cluster(
    conn: &Connections,
    pool: sqlx::PgPool,
    nats: async_nats::Client,
    embedded: Option<EmbeddedRuntime>,
    args: &ServeClusterArgs,
    tasks: &mut JoinSet<()>,
    shutdown: CancellationToken,
) -> Result<Arc<ClusterRuntime>, CliError> {
    let cfg = cluster_config(conn, &args.cluster);
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

/// A `weir worker`'s worker, joined to the cluster and ready to run: the
/// stream runtime with its own WASM host, heartbeating under `id`.
pub async fn standalone_worker(
    conn: &Connections,
    store: Arc<PgStore>,
    nats: async_nats::Client,
    args: &ClusterArgs,
    id: String,
) -> Result<Worker, CliError> {
    let host = Arc::new(wasm_host()?);
    let modules = registry_modules(store.clone(), &nats, conn, host.clone());
    let runtime = embedded_runtime(conn, &store, &nats, modules, host, args, args.secret_key()?)?;
    let cfg = cluster_config(conn, args);
    let js = async_nats::jetstream::new(nats.clone());
    let liveness = Liveness::open(&js, &cfg.prefix, cfg.ttl)
        .await
        .map_err(unavailable)?;
    let worker = Worker::new(
        id,
        args.worker_capacity,
        cfg,
        runtime,
        store.pool().clone(),
        liveness,
        nats,
    );
    worker.join().await.map_err(unavailable)?;
    Ok(worker)
}
