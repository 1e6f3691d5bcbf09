//! `weir autotune replay`: a recorded metrics trace through the tuner's
//! decision, offline. The same pure function the tuner uses, so a user can
//! see what a policy would have decided, and why, before turning it on.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::error::CliError;
use crate::domain::autotune::{decide, AutotunePolicy, DecisionInput, Sample, TunerState};
use crate::domain::document;
use crate::domain::Dur;

#[derive(Debug, Subcommand)]
pub enum AutotuneCmd {
    /// Replay a metrics trace (the runtime's `MetricsReport`s, one JSON
    /// object a line) through the tuner's decision and print every decision.
    Replay {
        /// The trace file.
        #[arg(long)]
        trace: PathBuf,
        /// A YAML file holding the policy (the fields of a job spec's
        /// `autotune:` block).
        #[arg(long)]
        policy: PathBuf,
        /// Decide every this much trace time.
        #[arg(
            long,
            default_value = "30s",
            value_parser = super::duration::parse,
            allow_hyphen_values = true
        )]
        every: Dur,
        /// Print each decision's full explanation instead of one JSON line.
        #[arg(long)]
        explain: bool,
    },
}

pub fn run(cmd: &AutotuneCmd) -> Result<(), CliError> {
    match cmd {
        AutotuneCmd::Replay {
            trace,
            policy,
            every,
            explain,
        } => {
            let policy = read_policy(policy)?;
            let samples = read_trace(trace)?;
            for line in replay(&policy, &samples, *every, *explain)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// The policy file, with every mistake named by line and field.
fn read_policy(path: &Path) -> Result<AutotunePolicy, CliError> {
    let text = read(path)?;
    let file = path.display().to_string();
    let (policy, lines) = document::from_yaml::<AutotunePolicy>(&text)
        .map_err(|p| CliError::Usage(document::render(&file, &[p])))?;
    let problems = policy.problems("");
    if problems.is_empty() {
        return Ok(policy);
    }
    Err(CliError::Usage(document::render(
        &file,
        &lines.locate(problems),
    )))
}

/// One report a line; a line that is not one is refused with its number.
fn read_trace(path: &Path) -> Result<Vec<Sample>, CliError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let s: Sample = serde_json::from_str(line).map_err(|e| {
            CliError::Usage(format!(
                "{}:{}: not a metrics report: {e}",
                path.display(),
                i + 1
            ))
        })?;
        out.push(s);
    }
    if out.is_empty() {
        return Err(CliError::Usage(format!(
            "{}: no metrics reports",
            path.display()
        )));
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

/// Decides at every `every` of trace time over the reports seen so far.
fn replay(
    policy: &AutotunePolicy,
    samples: &[Sample],
    every: Dur,
    explain: bool,
) -> Result<Vec<String>, CliError> {
    let step = chrono::Duration::milliseconds(every.as_millis().max(1) as i64);
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut state = TunerState::default();
    let mut now: DateTime<Utc> = first.at + step;
    while now <= last.at + step {
        let seen = samples.partition_point(|s| s.at <= now);
        let input = DecisionInput {
            now,
            policy,
            samples: &samples[..seen],
            tenant_limit: None,
        };
        let (decision, next) = decide(&input, &state);
        state = next;
        out.push(if explain {
            format!("== {now}\n{decision}")
        } else {
            serde_json::to_string(&decision)
                .map_err(|e| CliError::unexpected("decision as JSON", e))?
        });
        now += step;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-autotune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_bad_trace_line_is_named_by_number() {
        let p = file("bad.jsonl", "\n{\"nope\": 1}\n");
        let e = read_trace(&p).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2: not a metrics report"), "{e}");
    }

    #[test]
    fn a_bad_policy_is_named_by_line_and_field() {
        let p = file(
            "policy.yaml",
            "mode: apply\nmin_parallelism: 4\nmax_parallelism: 2\n",
        );
        let e = read_policy(&p).unwrap_err().to_string();
        assert!(e.contains("policy.yaml:3: max_parallelism"), "{e}");
        let p = file("mode.yaml", "mode: sometimes\n");
        let e = read_policy(&p).unwrap_err().to_string();
        assert!(e.contains("mode.yaml:1"), "{e}");
    }
}
