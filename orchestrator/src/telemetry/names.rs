//! Every metric name Weir registers, in one place. Call sites use these
//! constants, never a string; `docs/metrics.md` documents each one (type,
//! labels, meaning), and the tests below keep the code and the page in step.

macro_rules! names {
    ($( $(#[$doc:meta])* $name:ident = $value:literal; )*) => {
        $( $(#[$doc])* pub const $name: &str = $value; )*
        /// Every name above, in order.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

names! {
    // Command path.
    /// Counter, `status` = accepted | rejected.
    COMMANDS = "weir_commands_total";
    /// Histogram of commands per group commit.
    COMMAND_BATCH_SIZE = "weir_command_batch_size";
    /// Histogram of load → decide → commit seconds per batch.
    COMMAND_BATCH_SECONDS = "weir_command_batch_seconds";
    /// Counter of batches decided again after a concurrent write.
    COMMAND_CONFLICTS = "weir_command_conflicts_total";
    /// Counter of commands sent to the dead-letter subject.
    COMMANDS_DEAD_LETTERED = "weir_commands_dead_lettered_total";
    /// Counter of batches held because PostgreSQL was unavailable.
    STORE_ERRORS = "weir_store_errors_total";
    /// Counter of events published by the outbox relay.
    EVENTS_RELAYED = "weir_events_relayed_total";

    // Workflow engine.
    /// Counter of runs started by triggers.
    WORKFLOW_RUNS_STARTED = "weir_workflow_runs_started_total";
    /// Counter of failures to start runs.
    WORKFLOW_START_FAILURES = "weir_workflow_start_failures_total";
    /// Counter, `activity`, `status` = ok | error.
    WORKFLOW_STEPS = "weir_workflow_steps_total";
    /// Histogram of activity seconds, `activity`.
    WORKFLOW_STEP_SECONDS = "weir_workflow_step_seconds";
    /// Histogram of engine commands per group commit.
    WORKFLOW_COMMIT_BATCH_SIZE = "weir_workflow_commit_batch_size";

    // Stream runtime, per task (`tenant`, `job`, `task`).
    TASK_RECORDS_IN = "weir_task_records_in_total";
    TASK_RECORDS_OUT = "weir_task_records_out_total";
    TASK_BYTES_IN = "weir_task_bytes_in_total";
    TASK_BYTES_OUT = "weir_task_bytes_out_total";
    TASK_DEAD_LETTERED = "weir_task_dead_lettered_total";
    TASK_ERRORS = "weir_task_errors_total";
    TASK_BUSY_SECONDS = "weir_task_busy_seconds_total";
    TASK_IDLE_SECONDS = "weir_task_idle_seconds_total";
    TASK_OPERATOR_SECONDS = "weir_task_operator_seconds_total";
    TASK_LAG = "weir_task_lag_records";
    TASK_RESTARTS = "weir_task_restarts_total";
    CHECKPOINT_SECONDS = "weir_checkpoint_duration_seconds";
    CHECKPOINT_BYTES = "weir_checkpoint_state_bytes";
    /// Gauges of a `cep` operator per task (`tenant`, `job`, `task`,
    /// `operator`): matches, timed-out partial matches, late records and
    /// partial matches dropped over the per-key cap since the task started;
    /// partial matches alive and records waiting for the watermark now.
    CEP_MATCHES = "weir_cep_matches";
    CEP_TIMEOUTS = "weir_cep_timeouts";
    CEP_LATE = "weir_cep_late_records";
    CEP_DROPPED = "weir_cep_dropped_partial_matches";
    CEP_PARTIAL_MATCHES = "weir_cep_partial_matches";
    CEP_BUFFERED = "weir_cep_buffered_records";
    /// Counter of failed HTTP sink attempts that are retried or given up.
    SINK_HTTP_RETRIES = "weir_sink_http_retries_total";

    // WASM host and UDFs.
    /// Counter, `result` = hit | compiled.
    WASM_ARTIFACT_CACHE = "weir_wasm_artifact_cache_total";
    /// Histogram of seconds to compile a component (cache misses).
    WASM_COMPILE_SECONDS = "weir_wasm_compile_seconds";
    /// Gauge per task and UDF operator (`tenant`, `job`, `task`,
    /// `operator`): the most linear memory its instances were granted, in
    /// bytes; the auto-tuner's `memory_mb` recommendation is read from it.
    UDF_PEAK_MEMORY_BYTES = "weir_udf_peak_memory_bytes";
    /// Gauges per tuned job (`tenant`, `job`): the parallelism the last
    /// decision chose (the current one when it changed nothing).
    AUTOTUNE_DESIRED_PARALLELISM = "weir_autotune_desired_parallelism";
    /// Gauges per alert rule of a deployed version (`tenant`, `job`,
    /// `rule`, `severity`): 1 while it fires, 0 otherwise.
    ALERTS_FIRING = "weir_alerts_firing";
    /// Gauge: tasks every deployed job wants (the tuner's parallelism, else
    /// the current one, times its stages).
    AUTOTUNE_WANTED_TASKS = "weir_autotune_wanted_tasks";
    /// Gauge: workers that takes at `--tasks-per-worker` each.
    AUTOTUNE_WORKERS_NEEDED = "weir_autotune_workers_needed";
    /// Histogram of seconds to create a UDF instance.
    WASM_INSTANTIATE_SECONDS = "weir_wasm_instantiate_seconds";
    /// Counter of guest log lines over the rate limit, `module`.
    UDF_LOG_DROPPED = "weir_udf_log_dropped_total";
    /// Counter the guest adds to, `module`, `operator`, `counter`.
    UDF_COUNTER = "weir_udf_counter_total";
    /// Counter of records a UDF dead-lettered, `module`, `reason`.
    UDF_DEAD_LETTERS = "weir_udf_dead_letters_total";

    // Module registry.
    /// Counter of modules a worker could not warm, `reason`.
    MODULE_WARM_FAILURES = "weir_module_warm_failures_total";
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn crate_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// The metric names in the tables of `docs/metrics.md`.
    fn documented() -> BTreeSet<String> {
        let page =
            std::fs::read_to_string(crate_dir().join("../docs/metrics.md")).unwrap_or_default();
        page.lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(name, _)| name.to_owned())
            .filter(|name| name.starts_with("weir_"))
            .collect()
    }

    #[test]
    fn names_are_distinct_and_prometheus_friendly() {
        let unique: BTreeSet<_> = ALL.iter().collect();
        assert_eq!(unique.len(), ALL.len(), "a name is listed twice");
        for name in ALL {
            assert!(
                name.starts_with("weir_")
                    && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn docs_metrics_md_lists_exactly_the_registered_metrics() {
        let documented = documented();
        let registered: BTreeSet<String> = ALL.iter().map(|s| s.to_string()).collect();
        let missing: Vec<_> = registered.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&registered).collect();
        assert!(
            missing.is_empty(),
            "docs/metrics.md does not document {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "docs/metrics.md documents {stale:?}, which the code never registers"
        );
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// A name written as a literal at a call site would escape the list above.
    #[test]
    fn every_call_site_names_its_metric_by_a_constant() {
        let mut files = Vec::new();
        rust_files(&crate_dir().join("src"), &mut files);
        assert!(files.len() > 50, "found only {} source files", files.len());
        let mut literal = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for kind in ["counter", "gauge", "histogram"] {
                let mac = format!("{kind}!(");
                for (at, _) in text.match_indices(&mac) {
                    let rest = text[at + mac.len()..].trim_start();
                    if rest.starts_with('"') {
                        let call: String = rest.chars().take(40).collect();
                        literal.push(format!("{}: {mac}{call}", file.display()));
                    }
                }
            }
        }
        assert!(
            literal.is_empty(),
            "use a constant from telemetry::names: {literal:#?}"
        );
    }

    /// The shipped Grafana dashboard queries only metrics the code
    /// registers, and has the panels an operator expects.
    #[test]
    fn the_grafana_dashboard_queries_registered_metrics() {
        let path = crate_dir().join("../docs/grafana/weir.json");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
        let registered: BTreeSet<&str> = ALL.iter().copied().collect();
        let mut used = BTreeSet::new();
        let panels = dash["panels"].as_array().cloned().unwrap_or_default();
        for p in &panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                for (at, _) in expr.match_indices("weir_") {
                    let name: String = expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    assert!(registered.contains(name.as_str()), "{name} in {expr}");
                    used.insert(name);
                }
            }
        }
        for needed in [
            TASK_RECORDS_IN,
            TASK_LAG,
            TASK_BUSY_SECONDS,
            CHECKPOINT_SECONDS,
            CHECKPOINT_BYTES,
            TASK_RESTARTS,
            TASK_DEAD_LETTERED,
            COMMANDS,
            COMMAND_BATCH_SECONDS,
            TASK_OPERATOR_SECONDS,
        ] {
            assert!(used.contains(needed), "no panel shows {needed}");
        }
    }
}
