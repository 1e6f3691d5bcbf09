//! `weir workflow …`, and the engine settings of `weir serve`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::job::get;
use super::output::{self, Format};
use super::{Cli, CliError};
use crate::client::{self, Request};
use crate::intake::Subjects;
use crate::lifecycle::CommandHandler;
use crate::registry::resolver::RegistryResolver;
use crate::registry::RegistryModules;
use crate::runtime::cluster::ClusterRuntime;
use crate::runtime::{EmbeddedRuntime, RuntimeConfig};
use crate::store::postgres::PgStore;
use crate::workflow::activities::Activities;
use crate::workflow::clock::SystemClock;
use crate::workflow::driver::default_owner;
use crate::workflow::sim::SimControl;
use crate::workflow::{Catalog, Engine, EngineConfig};

#[derive(Debug, Subcommand)]
pub enum WorkflowCmd {
    /// Check workflow files as the engine would; prints `file:line: field: problem`.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List runs, newest first.
    Runs {
        /// Only this job's runs.
        #[arg(long)]
        job: Option<String>,
        /// Only runs still running or paused.
        #[arg(long)]
        active: bool,
    },
    /// Show a run: its steps and history.
    Show { run: String },
    /// Resume a paused run; the failed step runs again with a fresh retry budget.
    Resume { run: String },
    /// Abort a running or paused run.
    Abort {
        run: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Which data plane the engine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// The embedded Kafka stream runtime with WASM UDFs from the module registry.
    Embedded,
    /// The simulated runtime kept in PostgreSQL (no records flow; for tests).
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
    /// Workers (with `embedded`): this process's own, ids, heartbeat TTL.
    #[command(flatten)]
    pub cluster: super::worker::ServeClusterArgs,
}

impl EngineArgs {
    /// No engine in this process (e.g. a benchmark of the command path alone).
    pub fn disabled() -> Self {
        Self {
            workflows_dir: PathBuf::from("workflows"),
            replica_id: None,
            runtime: RuntimeKind::None,
            cluster: Default::default(),
        }
    }
}

/// Starts the workflow engine as a task of `weir serve`.
pub async fn spawn_engine(
    store: Arc<PgStore>,
    nats: async_nats::Client,
    conn: &crate::config::Connections,
    host: crate::wasm::WasmHost,
    args: &EngineArgs,
    tasks: &mut tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
) -> Result<Option<Arc<ClusterRuntime>>, CliError> {
    if args.runtime == RuntimeKind::None {
        return Ok(None);
    }
    let js = async_nats::jetstream::new(nats.clone());
    let host = Arc::new(host);
    let modules = Arc::new(RegistryModules {
        store: store.clone(),
        js,
        subject_prefix: conn.subject_prefix.clone(),
        host: host.clone(),
    });
    match args.runtime {
        RuntimeKind::None => Ok(None),
        RuntimeKind::Sim => {
            let control = SimControl::new(store.pool().clone())
                .await
                .map_err(|e| CliError::Unreachable(e.to_string()))?;
            start_engine(store, Arc::new(control), modules, args, tasks, shutdown);
            Ok(None)
        }
        RuntimeKind::Embedded => {
            // The data plane runs on workers (this process's own unless
            // disabled, and `weir worker`s); the engine drives them through
            // the cluster control plane, which places and fails over.
            let embedded = args.cluster.embedded_worker.then(|| {
                EmbeddedRuntime::new(
                    RuntimeConfig {
                        brokers: conn.kafka_brokers.clone(),
                        subject_prefix: conn.subject_prefix.clone(),
                        ..Default::default()
                    },
                    store.pool().clone(),
                    Arc::new(RegistryResolver::new(modules.clone(), host)),
                    Some(nats.clone()),
                )
            });
            let control = super::worker::start_cluster(
                conn,
                store.pool().clone(),
                nats,
                embedded,
                &args.cluster,
                tasks,
                shutdown.clone(),
            )
            .await?;
            start_engine(store, control.clone(), modules, args, tasks, shutdown);
            Ok(Some(control))
        }
    }
}

fn start_engine<C: crate::runtime::control::DeploymentControl>(
    store: Arc<PgStore>,
    control: Arc<C>,
    modules: Arc<RegistryModules<PgStore>>,
    args: &EngineArgs,
    tasks: &mut tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
) {
    let activities = Activities {
        handler: CommandHandler::new(store),
        control,
        modules,
        http: reqwest::Client::new(),
        clock: Arc::new(SystemClock),
    };
    let cfg = EngineConfig::new(args.replica_id.clone().unwrap_or_else(default_owner));
    let engine = Arc::new(Engine::new(
        activities,
        Catalog::new(Some(args.workflows_dir.clone())),
        cfg,
    ));
    tasks.spawn(engine.run(shutdown));
}

async fn send(
    cli: &Cli,
    kind: &str,
    run: &str,
    payload: serde_json::Value,
) -> Result<(), CliError> {
    let nats = client::connect(&cli.conn.nats_url).await?;
    let subjects = Subjects::new(cli.conn.subject_prefix.clone());
    let req = Request {
        tenant: cli.tenant.clone(),
        kind: kind.to_owned(),
        target: run.to_owned(),
        payload,
        expected_version: None,
        actor: cli.actor.clone(),
    };
    let outcome = client::send(
        &nats,
        &subjects,
        req,
        cli.timeout,
        cli.output == Format::Text,
    )
    .await?;
    output::outcome(cli.output, kind, &outcome)
}

fn run_line(r: &serde_json::Value) -> String {
    let cur = &r["current"];
    let at = if cur.is_null() {
        "-".to_owned()
    } else {
        format!(
            "{} #{} ({})",
            cur["step"].as_str().unwrap_or(""),
            cur["attempt"],
            cur["phase"].as_str().unwrap_or("")
        )
    };
    format!(
        "{}  {:<10} {:<10} job {:<16} at {:<28} {}",
        r["run_id"].as_str().unwrap_or(""),
        r["workflow"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or(""),
        r["job"].as_str().unwrap_or("-"),
        at,
        r["reason"].as_str().unwrap_or("")
    )
}

/// Lines for `weir job status`: each active run and where it is.
pub fn print_active_runs(runs: &serde_json::Value) {
    for r in runs.as_array().into_iter().flatten() {
        let cur = &r["current"];
        let step = if cur.is_null() {
            "-".to_owned()
        } else {
            format!(
                "{} (attempt {}, {})",
                cur["step"].as_str().unwrap_or(""),
                cur["attempt"],
                cur["phase"].as_str().unwrap_or("")
            )
        };
        println!(
            "  workflow {} run {} {}: step {step}{}",
            r["workflow"].as_str().unwrap_or(""),
            r["run_id"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["reason"]
                .as_str()
                .map(|s| format!(" — {s}"))
                .unwrap_or_default()
        );
    }
}

pub async fn run(cli: &Cli, cmd: &WorkflowCmd) -> Result<(), CliError> {
    match cmd {
        WorkflowCmd::Validate { files } => {
            let mut failed = false;
            let mut report = Vec::new();
            for f in files {
                match crate::workflow::load::load_file(f) {
                    Ok((_, spec)) => report.push(json!({"file": f, "ok": true, "workflow": spec.name, "steps": spec.steps.len()})),
                    Err(e) => {
                        failed = true;
                        let problems: Vec<_> = e
                            .problems
                            .iter()
                            .map(|p| json!({"line": p.line, "field": p.field, "problem": p.problem}))
                            .collect();
                        if cli.output == Format::Text {
                            eprintln!("{e}");
                        }
                        report.push(json!({"file": f, "ok": false, "problems": problems}));
                    }
                }
            }
            match cli.output {
                Format::Json => output::json(&report)?,
                Format::Text => {
                    for r in report.iter().filter(|r| r["ok"] == true) {
                        println!(
                            "{}: ok (workflow `{}`, {} steps)",
                            r["file"].as_str().unwrap_or(""),
                            r["workflow"].as_str().unwrap_or(""),
                            r["steps"]
                        );
                    }
                }
            }
            if failed {
                Err(CliError::Usage("invalid workflow file(s)".into()))
            } else {
                Ok(())
            }
        }
        WorkflowCmd::Runs { job, active } => {
            let mut path = format!("runs?active={active}");
            if let Some(j) = job {
                path.push_str(&format!("&job={j}"));
            }
            let runs = get(cli, &path).await?;
            match cli.output {
                Format::Json => output::json(&runs),
                Format::Text => {
                    let list = runs.as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        println!("no runs in tenant `{}`", cli.tenant);
                    }
                    for r in &list {
                        println!("{}", run_line(r));
                    }
                    Ok(())
                }
            }
        }
        WorkflowCmd::Show { run } => {
            let r = get(cli, &format!("runs/{run}")).await?;
            match cli.output {
                Format::Json => output::json(&r),
                Format::Text => {
                    println!("{}", run_line(&r));
                    println!(
                        "  definition {} sha256 {}",
                        r["file"].as_str().unwrap_or(""),
                        r["definition_sha256"].as_str().unwrap_or("")
                    );
                    for e in r["events"].as_array().cloned().unwrap_or_default() {
                        let mut p = e["payload"].clone();
                        if let Some(o) = p.as_object_mut() {
                            for k in ["type", "definition", "spec", "input"] {
                                o.remove(k);
                            }
                        }
                        println!(
                            "  v{:<4} {:<22} {}",
                            e["stream_version"],
                            e["type"].as_str().unwrap_or(""),
                            p
                        );
                    }
                    Ok(())
                }
            }
        }
        WorkflowCmd::Resume { run } => send(cli, "workflow.resume", run, json!({})).await,
        WorkflowCmd::Abort { run, reason } => {
            send(cli, "workflow.abort", run, json!({ "reason": reason })).await
        }
    }
}
