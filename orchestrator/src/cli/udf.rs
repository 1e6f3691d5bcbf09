//! `weir udf …`: upload, list, show and run UDF modules.
//!
//! `upload` validates locally first (a component, our WIT world at a
//! supported version, within the size limit, compiles and instantiates), so
//! the reason for a refusal is precise and immediate. Then it stores the
//! bytes in the tenant's object store bucket and sends `module.register`.
//! `run` executes a module over local JSONL records with the real host: job
//! debugging without a cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::{self, label, Format};
use super::render;
use crate::api::types::ModuleView;
use crate::domain::{Dur, ModuleName, Outcome};
use crate::wasm::{
    run_with_timers, BatchTime, Bytes, HostConfig, InputRecord, InstanceLabels, KeyedState,
    ModuleLimits, RecordResult, SourcePosition, WasmError, WasmHost,
};

#[derive(Debug, Subcommand)]
pub enum UdfCmd {
    /// Validate a component and upload it as `<name>` at `--version`,
    /// through the API (`weir serve` validates it again and registers it).
    Upload {
        name: String,
        file: PathBuf,
        /// Version label; defaults to the first 12 hex digits of the digest.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// List the tenant's modules.
    List,
    /// Show a module's versions.
    Show { name: String },
    /// Run a module over JSONL records and print outputs and dead letters as JSONL.
    Run {
        /// `name`, `name@version` (from the registry) or a path to a `.wasm` file.
        module: String,
        /// JSONL input: `{"key": "...", "value": "...", "timestamp": 0, "headers": {"h": "v"}}` per line.
        #[arg(long)]
        input: PathBuf,
        /// Records per call.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Deadline per call (e.g. 250ms, 2s).
        #[arg(
            long,
            default_value = "1s",
            value_parser = super::duration::parse,
            allow_hyphen_values = true
        )]
        deadline: Dur,
        /// Memory cap of the instance, in MiB.
        #[arg(long, default_value_t = 64)]
        memory_mib: usize,
        #[command(flatten)]
        host: HostArgs,
    },
}

/// Where compiled artifacts are cached and how large a module may be.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Directory of precompiled artifacts (shared by upload, run and workers).
    #[arg(long, env = "WEIR_WASM_CACHE", default_value = ".weir/wasm-cache")]
    pub cache_dir: PathBuf,
    /// Largest accepted module, in bytes.
    #[arg(long, env = "WEIR_MAX_MODULE_BYTES", default_value_t = 32 << 20)]
    pub max_module_bytes: usize,
}

impl HostArgs {
    pub(super) fn host(&self) -> Result<WasmHost, CliError> {
        WasmHost::new(HostConfig {
            cache_dir: Some(self.cache_dir.clone()),
            max_module_bytes: self.max_module_bytes,
            max_instances: 4,
            ..Default::default()
        })
        .map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// One JSONL input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

/// One JSONL output line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum OutputLine {
    Output {
        input: usize,
        key: Option<String>,
        value: Option<String>,
        timestamp: i64,
        headers: std::collections::BTreeMap<String, String>,
    },
    DeadLetter {
        input: usize,
        reason: String,
        code: &'static str,
        module: String,
        digest: String,
    },
}

fn text(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn read_module_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

fn invalid(path: &Path, e: WasmError) -> CliError {
    CliError::Usage(format!(
        "{} is not a valid UDF ({}): {e}",
        path.display(),
        e.code()
    ))
}

pub async fn run(g: &Globals, cmd: &UdfCmd) -> Result<(), CliError> {
    match cmd {
        UdfCmd::Upload {
            name,
            file,
            version,
            host,
        } => upload(g, name, file, version.as_deref(), host).await,
        UdfCmd::List => {
            let modules: Vec<ModuleView> = Api::new(g)
                .get_all_by_name("modules", |m: &ModuleView| &m.name)
                .await?;
            print_modules(g.output, &modules)
        }
        UdfCmd::Show { name } => {
            let m: ModuleView = Api::new(g).get(&format!("modules/{name}")).await?;
            print_modules(g.output, &[m])
        }
        UdfCmd::Run {
            module,
            input,
            batch,
            deadline,
            memory_mib,
            host,
        } => {
            let limits = ModuleLimits {
                deadline: deadline.get(),
                memory_bytes: memory_mib << 20,
                ..Default::default()
            };
            run_local(g, module, input, (*batch).max(1), limits, host).await
        }
    }
}

pub(super) async fn upload(
    g: &Globals,
    name: &str,
    file: &Path,
    version: Option<&str>,
    host: &HostArgs,
) -> Result<(), CliError> {
    let name = ModuleName::new(name).map_err(|e| CliError::Usage(e.to_string()))?;
    let bytes = read_module_file(file)?;
    // WASI's sync bindings block on tokio; leave the async worker first.
    let info = tokio::task::block_in_place(|| {
        host.host()?.validate(&bytes).map_err(|e| invalid(file, e))
    })?;
    let version = version
        .map(str::to_owned)
        .unwrap_or_else(|| info.digest.trim_start_matches("sha256:")[..12].to_owned());
    // weir serve validates again, stores the bytes and registers them.
    let outcome: Outcome = Api::new(g)
        .put_bytes(&format!("modules/{name}/versions/{version}"), bytes)
        .await?;
    if g.output == Format::Text && outcome.is_accepted() {
        println!(
            "{name}@{version} {} ({} bytes, {})",
            info.digest,
            info.size,
            label(&info.kind)
        );
        if outcome.events.is_empty() {
            println!("already uploaded with the same bytes; nothing changed");
        }
    }
    output::outcome(g.output, "module.register", &outcome)
}

fn print_modules(format: Format, modules: &[ModuleView]) -> Result<(), CliError> {
    if format == Format::Json {
        return output::json(&modules);
    }
    for line in modules.iter().flat_map(render::module) {
        println!("{line}");
    }
    Ok(())
}

/// The module's bytes: a local file, or `name[@version]` from the registry
/// through the API (which checks them against the recorded digest), so a
/// tenant's token is all it takes.
async fn fetch(g: &Globals, module: &str) -> Result<(String, String, Vec<u8>), CliError> {
    let path = Path::new(module);
    if module.ends_with(".wasm") || path.is_file() {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("local")
            .to_owned();
        return Ok((name, "local".into(), read_module_file(path)?));
    }
    let (name, version) = match module.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (module, None),
    };
    let api = Api::new(g);
    let version = match version {
        Some(v) => v.to_owned(),
        None => {
            let view: ModuleView = api.get(&format!("modules/{name}")).await?;
            view.latest
                .ok_or_else(|| CliError::Usage(format!("module `{name}` has no versions")))?
        }
    };
    let bytes = api
        .get_bytes(&format!("modules/{name}/versions/{version}"))
        .await?;
    Ok((name.to_owned(), version, bytes))
}

async fn run_local(
    g: &Globals,
    module: &str,
    input: &Path,
    batch: usize,
    limits: ModuleLimits,
    host: &HostArgs,
) -> Result<(), CliError> {
    let (name, version, bytes) = fetch(g, module).await?;
    let text_in = std::fs::read_to_string(input)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", input.display())))?;
    let mut records = Vec::new();
    for (i, line) in text_in.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: InputLine = serde_json::from_str(line)
            .map_err(|e| CliError::Usage(format!("{}:{}: {e}", input.display(), i + 1)))?;
        records.push(InputRecord {
            key: l.key.map(Bytes::from),
            value: l.value.map(Bytes::from),
            timestamp: l.timestamp,
            headers: l
                .headers
                .into_iter()
                .map(|(k, v)| (k, Bytes::from(v)))
                .collect(),
            source: SourcePosition {
                topic: Some(input.display().to_string().into()),
                partition: 0,
                offset: i as i64,
            },
        });
    }
    // WASI's sync bindings block on tokio; leave the async worker first.
    tokio::task::block_in_place(|| {
        run_records(
            module, &name, &version, &bytes, &records, batch, limits, host,
        )
    })
}

/// Runs `records` through the module in batches, firing timers as the
/// watermark (the largest timestamp so far) passes them, and at the end.
#[allow(clippy::too_many_arguments)]
fn run_records(
    module: &str,
    name: &str,
    version: &str,
    bytes: &[u8],
    records: &[InputRecord],
    batch: usize,
    limits: ModuleLimits,
    host: &HostArgs,
) -> Result<(), CliError> {
    let host = host.host()?;
    let loaded = host
        .load(name, version, bytes)
        .map_err(|e| invalid(Path::new(module), e))?;
    let stats = host.cache_stats();
    eprintln!(
        "{name}@{version} {} ({:?}); artifact {}",
        loaded.info.digest,
        loaded.info.kind,
        if stats.hits > 0 {
            "reused from cache"
        } else {
            "compiled"
        }
    );
    let operator = "local";
    let mut udf = loaded
        .instantiate(
            limits,
            InstanceLabels {
                job: "local".into(),
                operator: operator.into(),
                ..Default::default()
            },
        )
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut state = KeyedState::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut emit = |line: OutputLine| -> Result<(), CliError> {
        let s = serde_json::to_string(&line).map_err(|e| CliError::Usage(e.to_string()))?;
        writeln!(out, "{s}").map_err(|e| CliError::Usage(e.to_string()))
    };
    let results_of = |base: usize,
                      results: Vec<RecordResult>,
                      emit: &mut dyn FnMut(OutputLine) -> Result<(), CliError>|
     -> Result<usize, CliError> {
        let mut dead = 0;
        for (i, r) in results.into_iter().enumerate() {
            match r {
                RecordResult::Outputs(os) => {
                    for o in os {
                        emit(OutputLine::Output {
                            input: base + i,
                            key: text(&o.key),
                            value: text(&o.value),
                            timestamp: o.timestamp,
                            headers: o
                                .headers
                                .iter()
                                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                                .collect(),
                        })?;
                    }
                }
                RecordResult::DeadLetter(d) => {
                    dead += 1;
                    emit(OutputLine::DeadLetter {
                        input: base + i,
                        reason: d.reason.to_string(),
                        code: d.reason.code(),
                        module: format!("{}@{}", d.module, d.version),
                        digest: d.digest,
                    })?;
                }
            }
        }
        Ok(dead)
    };
    let mut dead = 0;
    // The watermark after each record: the largest event time so far.
    let marks: Vec<Option<i64>> = records
        .iter()
        .scan(i64::MIN, |max, r| {
            *max = (*max).max(r.timestamp);
            Some(Some(*max))
        })
        .collect();
    for (n, chunk) in records.chunks(batch).enumerate() {
        let base = n * batch;
        let (results, fired) = run_with_timers(
            &mut udf,
            operator,
            chunk,
            &marks[base..base + chunk.len()],
            &mut state,
            BatchTime::now().processing_time,
        );
        // Each record's outputs, then the timers that fired right after it.
        let mut results = results.into_iter();
        let mut from = 0;
        for f in fired {
            let upto: Vec<RecordResult> = results.by_ref().take(f.after + 1 - from).collect();
            dead += results_of(base + from, upto, &mut emit)?;
            from = f.after + 1;
            dead += results_of(records.len(), f.results, &mut emit)?;
        }
        dead += results_of(base + from, results.collect(), &mut emit)?;
    }
    // End of input is the end of event time: fire what is left.
    let time = BatchTime {
        watermark: Some(i64::MAX),
        processing_time: i64::MAX,
    };
    let due = state.take_due_timers(operator, time.watermark, time.processing_time);
    if !due.is_empty() {
        let fired = udf.on_timer(&due, &mut state, time);
        dead += results_of(records.len(), fired, &mut emit)?;
    }
    let _ = std::io::stdout().flush();
    eprintln!("{} records, {dead} dead-lettered", records.len());
    Ok(())
}
