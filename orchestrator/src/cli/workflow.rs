//! `weir workflow …`: check workflow files; list, show, resume and abort runs.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, Format};
use super::publish::send_and_print;
use super::render;
use crate::api::types::{RunDetail, RunFilter, RunView};

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

/// What `validate` found in one file.
#[derive(Debug, Serialize)]
struct Checked<'a> {
    file: &'a PathBuf,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<Problem>>,
}

#[derive(Debug, Serialize)]
struct Problem {
    line: Option<usize>,
    field: String,
    problem: String,
}

fn validate(g: &Globals, files: &[PathBuf]) -> Result<(), CliError> {
    let mut report = Vec::new();
    for file in files {
        match crate::workflow::load::load_file(file) {
            Ok((_, spec)) => report.push(Checked {
                file,
                ok: true,
                workflow: Some(spec.name),
                steps: Some(spec.steps.len()),
                problems: None,
            }),
            Err(e) => {
                if g.output == Format::Text {
                    eprintln!("{e}");
                }
                let problems = e
                    .problems
                    .iter()
                    .map(|p| Problem {
                        line: p.line,
                        field: p.field.clone(),
                        problem: p.problem.clone(),
                    })
                    .collect();
                report.push(Checked {
                    file,
                    ok: false,
                    workflow: None,
                    steps: None,
                    problems: Some(problems),
                });
            }
        }
    }
    match g.output {
        Format::Json => output::json(&report)?,
        Format::Text => {
            for c in report.iter().filter(|c| c.ok) {
                println!(
                    "{}: ok (workflow `{}`, {} steps)",
                    c.file.display(),
                    c.workflow.as_deref().unwrap_or(""),
                    c.steps.unwrap_or(0)
                );
            }
        }
    }
    if report.iter().all(|c| c.ok) {
        Ok(())
    } else {
        Err(CliError::Usage("invalid workflow file(s)".into()))
    }
}

pub async fn run(g: &Globals, cmd: &WorkflowCmd) -> Result<(), CliError> {
    match cmd {
        WorkflowCmd::Validate { files } => validate(g, files),
        WorkflowCmd::Runs { job, active } => {
            let filter = RunFilter {
                job: job.clone(),
                active: *active,
                ..Default::default()
            };
            let runs: Vec<RunView> = Api::new(g).get_with("runs", &filter).await?;
            match g.output {
                Format::Json => output::json(&runs),
                Format::Text => {
                    if runs.is_empty() {
                        println!("no runs in tenant `{}`", g.tenant);
                    }
                    for r in &runs {
                        println!("{}", render::run(r));
                    }
                    Ok(())
                }
            }
        }
        WorkflowCmd::Show { run } => {
            let r: RunDetail = Api::new(g).get(&format!("runs/{run}")).await?;
            match g.output {
                Format::Json => output::json(&r),
                Format::Text => {
                    println!("{}", render::run(&r.run));
                    println!(
                        "  definition {} sha256 {}",
                        r.run.file, r.run.definition_sha256
                    );
                    for e in &r.events {
                        println!("{}", render::run_event(e));
                    }
                    Ok(())
                }
            }
        }
        WorkflowCmd::Resume { run } => {
            send_and_print(g, "workflow.resume", run, json!({}), None).await
        }
        WorkflowCmd::Abort { run, reason } => {
            send_and_print(g, "workflow.abort", run, json!({ "reason": reason }), None).await
        }
    }
}
