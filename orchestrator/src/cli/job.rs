//! `weir job …` and `weir command`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{self, Format};
use super::{Cli, CliError};
use crate::client::{self, Request};
use crate::domain::job::JobSpec;
use crate::intake::Subjects;

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
    let spec = JobSpec::parse(&text)
        .map_err(|e| CliError::Usage(e.in_file(&path.display().to_string())))?;
    serde_json::to_value(spec).map_err(|e| CliError::Usage(e.to_string()))
}

async fn send(
    cli: &Cli,
    kind: &str,
    target: &str,
    payload: serde_json::Value,
    expected_version: Option<u64>,
) -> Result<(), CliError> {
    let nats = client::connect(&cli.conn.nats_url).await?;
    let subjects = Subjects::new(cli.conn.subject_prefix.clone());
    let outcome = client::send(
        &nats,
        &subjects,
        Request {
            tenant: cli.tenant.clone(),
            kind: kind.to_owned(),
            target: target.to_owned(),
            payload,
            expected_version,
            actor: cli.actor.clone(),
        },
        cli.timeout,
        cli.output == Format::Text,
    )
    .await?;
    output::outcome(cli.output, kind, &outcome)
}

/// GETs a tenant-scoped API path; client errors (400/404) are bad input, the rest means the API is unreachable.
pub(super) async fn get(cli: &Cli, path: &str) -> Result<serde_json::Value, CliError> {
    let url = format!(
        "{}/v1/tenants/{}/{path}",
        cli.conn.api_url.trim_end_matches('/'),
        cli.tenant
    );
    let resp = reqwest::Client::new()
        .get(&url)
        .timeout(cli.timeout)
        .send()
        .await
        .map_err(|e| {
            CliError::Unreachable(format!(
                "cannot reach the Weir API at {}: {e}",
                cli.conn.api_url
            ))
        })?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| CliError::Unreachable(format!("unreadable API response from {url}: {e}")))?;
    if status.is_success() {
        Ok(body)
    } else {
        let msg = body
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("request failed");
        Err(if status.is_client_error() {
            CliError::Usage(msg.to_owned())
        } else {
            CliError::Unreachable(format!("{status}: {msg}"))
        })
    }
}

pub async fn run(cli: &Cli, cmd: &JobCmd) -> Result<(), CliError> {
    match cmd {
        JobCmd::Create { name, spec } => send(cli, "job.create", name, json!({ "spec": read_spec(spec)? }), None).await,
        JobCmd::Version { name, spec } => {
            send(cli, "job.submit_version", name, json!({ "spec": read_spec(spec)? }), None).await
        }
        JobCmd::Compile { name, version, workflow } => {
            send(cli, "job.compile", name, json!({ "version": version, "workflow": workflow }), None).await
        }
        JobCmd::Deploy { name, version, parallelism, allow_state_loss, workflow } => {
            send(
                cli,
                "job.deploy",
                name,
                json!({ "version": version, "parallelism": parallelism, "allow_state_loss": allow_state_loss, "workflow": workflow }),
                None,
            )
            .await
        }
        JobCmd::Stop { name } => send(cli, "job.stop", name, json!({}), None).await,
        JobCmd::Rollback { name } => send(cli, "job.rollback", name, json!({}), None).await,
        JobCmd::Restore { name, checkpoint, workflow } => {
            send(cli, "job.restore", name, json!({ "checkpoint": checkpoint, "workflow": workflow }), None).await
        }
        JobCmd::Rescale { name, parallelism, workflow } => {
            send(cli, "job.rescale", name, json!({ "parallelism": parallelism, "workflow": workflow }), None).await
        }
        JobCmd::Delete { name } => send(cli, "job.delete", name, json!({}), None).await,
        JobCmd::Checkpoint { name } => {
            let url = format!(
                "{}/v1/tenants/{}/jobs/{name}/checkpoints",
                cli.conn.api_url.trim_end_matches('/'),
                cli.tenant
            );
            let resp = reqwest::Client::new()
                .post(&url)
                .timeout(cli.timeout)
                .send()
                .await
                .map_err(|e| CliError::Unreachable(format!("cannot reach the Weir API at {}: {e}", cli.conn.api_url)))?;
            let ok = resp.status().is_success();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if !ok {
                return Err(CliError::Usage(body["error"].as_str().unwrap_or("checkpoint failed").to_owned()));
            }
            match cli.output {
                Format::Json => output::json(&body),
                Format::Text => {
                    println!("checkpoint {} (generation {}, {} state bytes)", body["id"].as_str().unwrap_or(""), body["generation"], body["state_bytes"]);
                    Ok(())
                }
            }
        }
        JobCmd::Checkpoints { name } => {
            let list = get(cli, &format!("jobs/{name}/checkpoints")).await?;
            match cli.output {
                Format::Json => output::json(&list),
                Format::Text => {
                    for c in list.as_array().into_iter().flatten() {
                        println!(
                            "{}  v{} gen {}  {}  {} state bytes",
                            c["id"].as_str().unwrap_or(""),
                            c["version"],
                            c["generation"],
                            c["created_at"].as_str().unwrap_or(""),
                            c["state_bytes"]
                        );
                    }
                    Ok(())
                }
            }
        }
        JobCmd::Status { name } => {
            let mut job = get(cli, &format!("jobs/{name}")).await?;
            // The workflow runs in progress for this job, with their current step.
            let runs = get(cli, &format!("runs?job={name}&active=true")).await?;
            // The data plane's view, when this serve runs a runtime and the job is deployed.
            let runtime = get(cli, &format!("jobs/{name}/runtime")).await.ok();
            match cli.output {
                Format::Json => {
                    if let Some(o) = job.as_object_mut() {
                        o.insert("workflows".into(), runs);
                        o.insert("runtime".into(), runtime.unwrap_or_default());
                    }
                    output::json(&job)
                }
                Format::Text => {
                    print_job_line(&job, true);
                    super::workflow::print_active_runs(&runs);
                    if let Some(rt) = runtime {
                        print_runtime(&rt);
                    }
                    Ok(())
                }
            }
        }
        JobCmd::List => {
            let jobs = get(cli, "jobs").await?;
            match cli.output {
                Format::Json => output::json(&jobs),
                Format::Text => {
                    let list = jobs.as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        println!("no jobs in tenant `{}`", cli.tenant);
                    }
                    for j in &list {
                        print_job_line(j, false);
                    }
                    Ok(())
                }
            }
        }
        JobCmd::History { name } => {
            let mut after = 0i64;
            let mut all = Vec::new();
            loop {
                let page = get(cli, &format!("jobs/{name}/events?after={after}&limit=1000")).await?;
                let events = page.get("events").and_then(|e| e.as_array()).cloned().unwrap_or_default();
                all.extend(events);
                match page.get("next_after").and_then(|n| n.as_i64()) {
                    Some(n) => after = n,
                    None => break,
                }
            }
            match cli.output {
                Format::Json => output::json(&all),
                Format::Text => {
                    for e in &all {
                        let mut payload = e.get("payload").cloned().unwrap_or_default();
                        if let Some(o) = payload.as_object_mut() {
                            o.remove("type");
                            if o.contains_key("spec") {
                                o.insert("spec".into(), json!("…"));
                            }
                        }
                        println!(
                            "#{:<6} v{:<3} {:<25} {:<18} by {:<10} {}",
                            e["position"].as_i64().unwrap_or(0),
                            e["stream_version"].as_u64().unwrap_or(0),
                            e["recorded_at"].as_str().unwrap_or(""),
                            e["type"].as_str().unwrap_or(""), e["actor"].as_str().unwrap_or("-"), payload
                        );
                    }
                    Ok(())
                }
            }
        }
    }
}

fn print_runtime(rt: &serde_json::Value) {
    println!(
        "  runtime: generation {} × {} tasks, {} checkpoints, guarantee: {}",
        rt["generation"],
        rt["parallelism"],
        rt["completed_checkpoints"],
        rt["guarantee"].as_str().unwrap_or("-")
    );
    for t in rt["tasks"].as_array().into_iter().flatten() {
        println!(
            "    task {:<3} {:<10} partitions {:<10} in {:<8} out {:<8} dlq {:<5} lag {:<6} restarts {} last checkpoint {}",
            t["task"],
            t["state"]["state"].as_str().unwrap_or("-"),
            t["partitions"].to_string(),
            t["records_in"],
            t["records_out"],
            t["dead_lettered"],
            t["lag"].as_i64().map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            t["restarts"],
            t["last_checkpoint"].as_str().unwrap_or("-"),
        );
    }
}

fn print_job_line(j: &serde_json::Value, detail: bool) {
    let dep = &j["deployment"];
    println!(
        "{:<24} {:<10} latest v{} stable {} deployed {} gen {}",
        j["name"].as_str().unwrap_or(""),
        j["phase"].as_str().unwrap_or(""),
        j["latest_version"],
        j["last_stable_version"]
            .as_u64()
            .map(|v| format!("v{v}"))
            .unwrap_or_else(|| "-".into()),
        if dep.is_null() {
            "-".to_string()
        } else {
            format!(
                "v{}×{} ({})",
                dep["version"],
                dep["parallelism"],
                dep["cause"].as_str().unwrap_or("")
            )
        },
        j["generation"],
    );
    if detail {
        if let Some(f) = j["last_failure"].as_str() {
            println!("  last failure: {f}");
        }
    }
}

pub async fn run_raw(cli: &Cli, raw: &RawCommand) -> Result<(), CliError> {
    let payload: serde_json::Value = serde_json::from_str(&raw.payload)
        .map_err(|e| CliError::Usage(format!("--payload is not JSON: {e}")))?;
    send(cli, &raw.kind, &raw.target, payload, raw.expected_version).await
}
