//! `weir job …` and `weir command`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use super::publish::send_and_print as send;
use super::render;
use crate::api::types::{
    AutotuneView, CheckpointInfo, DeploymentStatus, EventPage, JobAlerts, JobView, Page, RunFilter,
    RunView,
};
use crate::domain::job::JobSpec;
use crate::store::StoredEvent;

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Create a job from a spec file (YAML or JSON).
    Create {
        name: String,
        #[arg(long)]
        spec: PathBuf,
    },
    /// Submit a new version from a spec file.
    Version {
        name: String,
        #[arg(long)]
        spec: PathBuf,
    },
    /// Compile a version (the latest by default).
    Compile {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        /// The workflow that carries it out (a file in the workflows directory); the default if omitted.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Deploy a version (the latest by default).
    Deploy {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        parallelism: Option<u32>,
        /// Allow an upgrade that drops operator state.
        #[arg(long)]
        allow_state_loss: bool,
        /// The workflow that carries it out (a file in the workflows directory); the default if omitted.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Stop the running deployment.
    Stop { name: String },
    /// Redeploy the last stable version.
    Rollback { name: String },
    /// Restart from a checkpoint (the latest by default).
    Restore {
        name: String,
        #[arg(long)]
        checkpoint: Option<String>,
        /// The workflow that carries it out (a file in the workflows directory); the default if omitted.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Change parallelism.
    Rescale {
        name: String,
        #[arg(long)]
        parallelism: u32,
        /// The workflow that carries it out (a file in the workflows directory); the default if omitted.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Delete a job that is not running.
    Delete { name: String },
    /// Take a checkpoint of the running deployment now.
    Checkpoint { name: String },
    /// List a job's completed checkpoints, newest first.
    Checkpoints { name: String },
    /// Show a job's state.
    Status { name: String },
    /// List jobs in the tenant.
    List,
    /// Show a job's events: why it changed state.
    History { name: String },
    /// What changed between two versions, and whether an upgrade keeps state.
    Diff { name: String, from: u32, to: u32 },
    /// Show a job's alert rules, which fire, and their recent changes.
    Alerts { name: String },
    /// Show a job's auto-tuning (policy, last decision, recent decisions),
    /// or set its mode.
    Autotune {
        name: String,
        /// Print the last decision's full explanation.
        #[arg(long, conflicts_with = "mode")]
        explain: bool,
        /// Set the tuner's mode for the job (over its specs' `autotune.mode`):
        /// sends `job.set_autotune`.
        #[arg(long, value_parser = ["off", "recommend", "apply"])]
        mode: Option<String>,
    },
}

/// Publishes an arbitrary command.
#[derive(Debug, Args)]
pub struct RawCommand {
    /// Command kind, e.g. `job.mark_running`.
    #[arg(long)]
    pub kind: String,
    /// Target name, e.g. the job name.
    #[arg(long)]
    pub target: String,
    /// JSON payload.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// Refuse unless the target stream is at this version.
    #[arg(long)]
    pub expected_version: Option<u64>,
}

fn read_spec(path: &PathBuf) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    // A cep operator's rule may name a rule file, relative to the spec's folder.
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    let spec = JobSpec::parse_reading_rules(&text, |rule| {
        std::fs::read_to_string(dir.join(rule)).map_err(|e| e.to_string())
    })
    .map_err(|e| CliError::Usage(e.in_file(&path.display().to_string())))?;
    serde_json::to_value(spec).map_err(|e| CliError::unexpected("cannot encode the spec", e))
}

/// `weir job status -o json`: the job, its runs in progress and, when this
/// serve runs the data plane and the job is deployed, the runtime's view.
#[derive(Debug, Serialize)]
struct JobStatus {
    #[serde(flatten)]
    job: JobView,
    workflows: Vec<RunView>,
    runtime: Option<DeploymentStatus>,
}

pub async fn run(g: &Globals, cmd: &JobCmd) -> Result<(), CliError> {
    match cmd {
        JobCmd::Create { name, spec } => send(g, "job.create", name, json!({ "spec": read_spec(spec)? }), None).await,
        JobCmd::Version { name, spec } => {
            send(g, "job.submit_version", name, json!({ "spec": read_spec(spec)? }), None).await
        }
        JobCmd::Compile { name, version, workflow } => {
            send(g, "job.compile", name, json!({ "version": version, "workflow": workflow }), None).await
        }
        JobCmd::Deploy { name, version, parallelism, allow_state_loss, workflow } => {
            send(
                g,
                "job.deploy",
                name,
                json!({ "version": version, "parallelism": parallelism, "allow_state_loss": allow_state_loss, "workflow": workflow }),
                None,
            )
            .await
        }
        JobCmd::Stop { name } => send(g, "job.stop", name, json!({}), None).await,
        JobCmd::Rollback { name } => send(g, "job.rollback", name, json!({}), None).await,
        JobCmd::Restore { name, checkpoint, workflow } => {
            send(g, "job.restore", name, json!({ "checkpoint": checkpoint, "workflow": workflow }), None).await
        }
        JobCmd::Rescale { name, parallelism, workflow } => {
            send(g, "job.rescale", name, json!({ "parallelism": parallelism, "workflow": workflow }), None).await
        }
        JobCmd::Delete { name } => send(g, "job.delete", name, json!({}), None).await,
        JobCmd::Checkpoint { name } => {
            let c: CheckpointInfo = Api::new(g).post(&format!("jobs/{name}/checkpoints")).await?;
            match g.output {
                Format::Json => output::json(&c),
                Format::Text => {
                    println!("checkpoint {} (generation {}, {} state bytes)", c.id, c.generation, c.state_bytes);
                    Ok(())
                }
            }
        }
        JobCmd::Checkpoints { name } => {
            let list: Vec<CheckpointInfo> = Api::new(g).get(&format!("jobs/{name}/checkpoints")).await?;
            match g.output {
                Format::Json => output::json(&list),
                Format::Text => {
                    for c in &list {
                        println!("{}", render::checkpoint(c));
                    }
                    Ok(())
                }
            }
        }
        JobCmd::Status { name } => {
            let api = Api::new(g);
            let job: JobView = api.get(&format!("jobs/{name}")).await?;
            let active = RunFilter { job: Some(name.clone()), active: true, ..Default::default() };
            let workflows: Vec<RunView> = api.get_with("runs", &active).await?;
            // Absent when this serve runs no runtime or the job is not deployed;
            // an answer we cannot read is still an error.
            let runtime: Option<DeploymentStatus> = match api.get(&format!("jobs/{name}/runtime")).await {
                Ok(rt) => Some(rt),
                Err(e @ CliError::Unexpected { .. }) => return Err(e),
                Err(_) => None,
            };
            match g.output {
                Format::Json => output::json(&JobStatus { job, workflows, runtime }),
                Format::Text => {
                    println!("{}", render::job(&job, true));
                    for r in &workflows {
                        println!("{}", render::active_run(r));
                    }
                    for line in runtime.iter().flat_map(render::runtime) {
                        println!("{line}");
                    }
                    Ok(())
                }
            }
        }
        JobCmd::List => {
            let jobs: Vec<JobView> = Api::new(g)
                .get_all_by_name("jobs", |j: &JobView| &j.name)
                .await?;
            match g.output {
                Format::Json => output::json(&jobs),
                Format::Text => {
                    if jobs.is_empty() {
                        println!("no jobs in tenant `{}`", g.tenant);
                    }
                    for j in &jobs {
                        println!("{}", render::job(j, false));
                    }
                    Ok(())
                }
            }
        }
        JobCmd::Diff { name, from, to } => diff(g, name, *from, *to).await,
        JobCmd::Alerts { name } => alerts(g, name).await,
        JobCmd::Autotune { name, explain, mode } => match mode {
            Some(m) => send(g, "job.set_autotune", name, json!({ "mode": m }), None).await,
            None => autotune(g, name, *explain).await,
        },
        JobCmd::History { name } => {
            let api = Api::new(g);
            let mut page = Page { after: 0, limit: Some(1000) };
            let mut all: Vec<StoredEvent> = Vec::new();
            loop {
                let got: EventPage = api.get_with(&format!("jobs/{name}/events"), &page).await?;
                all.extend(got.events);
                match got.next_after {
                    Some(n) => page.after = n,
                    None => break,
                }
            }
            match g.output {
                Format::Json => output::json(&all),
                Format::Text => {
                    for e in &all {
                        println!("{}", render::job_event(e));
                    }
                    Ok(())
                }
            }
        }
    }
}

async fn diff(g: &Globals, name: &str, from: u32, to: u32) -> Result<(), CliError> {
    use crate::domain::job::diff::{diff, StateCompat};
    let versions: Vec<crate::domain::job::state::VersionInfo> =
        Api::new(g).get(&format!("jobs/{name}/versions")).await?;
    let find = |n: u32| {
        versions
            .iter()
            .find(|v| v.version == n)
            .ok_or_else(|| CliError::Usage(format!("job `{name}` has no version {n}")))
    };
    let d = diff(find(from)?, find(to)?);
    if g.output == Format::Json {
        return output::json(&d);
    }
    if d.changes.is_empty() {
        println!("v{from} and v{to} have the same spec");
    }
    for c in &d.changes {
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "(absent)".to_owned(),
            other => other.to_string(),
        };
        println!("{}: {} -> {}", c.path, show(&c.from), show(&c.to));
    }
    match &d.state {
        StateCompat::Kept => println!("state: kept (same state fingerprint)"),
        StateCompat::Dropped { from: a, to: b } => println!(
            "state: dropped ({a} -> {b}); an upgrade is refused unless deployed with --allow-state-loss"
        ),
        StateCompat::Unknown { not_compiled } => println!(
            "state: unknown until compiled: {}",
            not_compiled.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", ")
        ),
    }
    Ok(())
}

async fn alerts(g: &Globals, name: &str) -> Result<(), CliError> {
    let view: JobAlerts = Api::new(g).get(&format!("jobs/{name}/alerts")).await?;
    if g.output == Format::Json {
        return output::json(&view);
    }
    if view.rules.is_empty() {
        println!("job `{name}` has no alert rules in its deployed version");
    }
    for r in &view.rules {
        println!("{}", render::alert_rule(r));
    }
    for gone in view
        .firing
        .iter()
        .filter(|f| !view.rules.iter().any(|r| &r.rule.name == *f))
    {
        println!("{gone:<20} FIRING, but no longer a rule of the deployed version (resolves at the next evaluation)");
    }
    if !view.history.is_empty() {
        println!("recent changes, newest first:");
        for e in &view.history {
            println!("  {}", render::job_event(e));
        }
    }
    Ok(())
}

async fn autotune(g: &Globals, name: &str, explain: bool) -> Result<(), CliError> {
    let view: AutotuneView = Api::new(g).get(&format!("jobs/{name}/autotune")).await?;
    if g.output == Format::Json {
        return output::json(&view);
    }
    let last: Option<crate::autotune::store::Recorded> = view
        .last
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| CliError::unexpected("cannot read the decision", e))?;
    match (&last, explain) {
        (Some(last), true) => {
            println!("{}", last.decision);
            return Ok(());
        }
        (None, true) => {
            println!("job `{name}` has no autotune decision yet");
            return Ok(());
        }
        _ => {}
    }
    match &view.policy {
        Some(p) => {
            let set = if view.mode_override.is_some() {
                " (set by job.set_autotune)"
            } else {
                ""
            };
            println!(
                "policy: mode {}{set}, target utilization {} ± {}, parallelism {}..{}, window {}, stabilization {}, scale-down delay {}, at most {} rescales/h",
                serde_json::to_value(p.mode).ok().and_then(|m| m.as_str().map(str::to_owned)).unwrap_or_default(),
                p.target_utilization,
                p.utilization_band,
                p.min_parallelism,
                p.max_parallelism.map_or("partitions".to_owned(), |m| m.to_string()),
                p.metric_window,
                p.stabilization,
                p.scale_down_delay,
                p.max_rescales_per_hour
            );
        }
        None => println!("policy: none (no version)"),
    }
    if let Some(last) = &last {
        println!(
            "last decision: {}",
            render::autotune_summary(&serde_json::to_value(&last.decision).unwrap_or_default())
        );
    }
    // The newest memory recommendation: a decision made while a rescale
    // stabilizes reads no window and recommends none, so look back.
    let recorded = view.history.iter().filter_map(|e| {
        serde_json::from_value::<crate::domain::autotune::Decision>(e.payload["decision"].clone())
            .ok()
    });
    let memory = last
        .iter()
        .map(|l| l.decision.clone())
        .chain(recorded)
        .map(|d| d.memory)
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    for m in &memory {
        println!(
            "recommended memory_mb for `{}`: {} (peak {} bytes × {})",
            m.operator, m.memory_mb, m.peak_bytes, m.headroom
        );
    }
    if !view.history.is_empty() {
        println!("recorded decisions, newest first:");
        for e in &view.history {
            println!("  {}", render::job_event(e));
        }
    }
    Ok(())
}

pub async fn run_raw(g: &Globals, raw: &RawCommand) -> Result<(), CliError> {
    let payload: serde_json::Value = serde_json::from_str(&raw.payload)
        .map_err(|e| CliError::Usage(format!("--payload is not JSON: {e}")))?;
    send(g, &raw.kind, &raw.target, payload, raw.expected_version).await
}
