//! `weir cep run`: a rule file run over a JSON-lines file, locally.
//! `weir cep upload`: Weir's stock rule component into the tenant's
//! registry, for `cep` operators that name it (`component:`).
//!
//! With `--component` (Weir's stock rule component) the rule runs in the
//! WASM sandbox, exactly as a job's `cep` operator runs it on a worker
//! started with `--cep-component`; without it the same matching code
//! (`weir_cep::runner`) runs natively in this process.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;
use weir_cep::runner::{RuleRunner, RunnerOptions};

use super::error::CliError;
use crate::domain::cep_rule;
use crate::wasm::{BatchTime, InputRecord, InstanceLabels, SourcePosition, UdfInstance};

#[derive(Debug, Subcommand)]
pub enum CepCmd {
    /// Check a rule file, or run it over JSON events (one per line),
    /// printing one JSON line per match, timed-out partial match and late
    /// event.
    Run(RunArgs),
    /// Upload Weir's stock rule component to the tenant's module registry
    /// as `weir-cep-rule`, so a `cep` operator's `component:
    /// weir-cep-rule@VERSION` runs its YAML rule in it, in the WASM sandbox,
    /// whatever component the workers were given. Prints the name@version.
    Upload(UploadArgs),
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The component file (`scripts/cep-component.sh` builds it and prints
    /// its path).
    #[arg(long, env = "WEIR_CEP_COMPONENT")]
    pub component: PathBuf,
    /// Version label; defaults to the first 12 hex digits of the digest.
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub host: super::udf::HostArgs,
}

/// The name the stock rule component is registered under.
pub const STOCK_COMPONENT: &str = "weir-cep-rule";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The YAML rule file. A rule component built with the Rust pattern API
    /// (`--component`) carries its own rule and takes none.
    #[arg(long, required_unless_present = "component")]
    pub rule: Option<PathBuf>,
    /// Only validate the rule: exit 0, or print every problem and exit 2.
    #[arg(long, conflicts_with = "input", requires = "rule")]
    pub check: bool,
    /// The events, one JSON object per line.
    #[arg(long, required_unless_present = "check")]
    pub input: Option<PathBuf>,
    /// The field that keys events (a dotted path, e.g. `user.id`); without
    /// it every event has the same key, `null`.
    #[arg(long)]
    pub key_field: Option<String>,
    /// The field holding the event time: milliseconds, or an RFC 3339
    /// string. Without it an event's time is its line number.
    #[arg(long)]
    pub time_field: Option<String>,
    /// How far behind the largest event time seen the watermark stays.
    #[arg(long, default_value_t = 0)]
    pub out_of_orderness_ms: i64,
    /// Run the rule in a rule component, in the WASM sandbox, as jobs do:
    /// Weir's stock one (`weir_cep_rule.wasm`) with `--rule`, or a rule
    /// built with the Rust pattern API, alone. Without it the engine runs
    /// natively.
    #[arg(long, env = "WEIR_CEP_COMPONENT")]
    pub component: Option<PathBuf>,
}

pub async fn run(g: &super::globals::Globals, cmd: &CepCmd) -> Result<(), CliError> {
    match cmd {
        CepCmd::Run(args) => run_rule(args),
        CepCmd::Upload(args) => {
            // Refuse anything that is not a rule component before it goes up.
            tokio::task::block_in_place(|| {
                super::wiring::load_cep_component(&args.host.host()?, &args.component)
            })?;
            super::udf::upload(
                g,
                STOCK_COMPONENT,
                &args.component,
                args.version.as_deref(),
                &args.host,
            )
            .await
        }
    }
}

/// Every event of a run is in this one partition.
const PARTITION: i32 = 0;
/// Lines handed to the component per call.
const BATCH: usize = 512;

fn run_rule(args: &RunArgs) -> Result<(), CliError> {
    let rule = match &args.rule {
        Some(path) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
            let (source, rule) = cep_rule::parse_with_source(&text)
                .map_err(|e| CliError::Usage(e.in_file(&file)))?;
            rule.compile()
                .map_err(|p| CliError::Usage(format!("{file}: {p}")))?;
            if args.input.is_none() {
                println!("{file}: ok");
                return Ok(());
            }
            Some((source, rule))
        }
        None => None,
    };
    let Some(input) = &args.input else {
        return Err(CliError::Usage("--input is needed to run a rule".into()));
    };
    let name = input.display().to_string();
    let reader = std::fs::File::open(input)
        .map(std::io::BufReader::new)
        .map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
    let opts = RunnerOptions {
        out_of_orderness_ms: args.out_of_orderness_ms,
        timed_out: true,
        late: true,
        json_keys: true,
    };
    let mut engine = match (&args.component, rule) {
        (Some(path), rule) => Engine::component(path, rule.map(|(source, _)| source), opts)?,
        (None, Some((_, rule))) => Engine::Native(Box::new(
            RuleRunner::new(rule, opts).map_err(CliError::Usage)?,
        )),
        (None, None) => {
            return Err(CliError::Usage(
                "give a rule: --rule FILE, or --component with a rule built in".into(),
            ))
        }
    };
    let mut out = Printer::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match event_of(args, &line, n) {
            Ok(ev) => engine.push(ev, &mut out)?,
            Err(problem) => eprintln!("{name}:{n}: {problem}"),
        }
    }
    engine.finish(&mut out)
}

/// One input line, ready for the engine.
struct Event {
    /// The key's JSON text.
    key: Vec<u8>,
    line: String,
    time: i64,
}

/// Reads the key and the time of line `n`; a problem with it is returned.
fn event_of(args: &RunArgs, line: &str, n: usize) -> Result<Event, String> {
    let event: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let key = match &args.key_field {
        Some(f) => field(&event, f)
            .cloned()
            .ok_or(format!("no key field '{f}'"))?,
        None => Value::Null,
    };
    let time = match &args.time_field {
        Some(f) => time_of(field(&event, f).ok_or(format!("no time field '{f}'"))?).ok_or(
            format!("time field '{f}' is neither milliseconds nor an RFC 3339 time"),
        )?,
        None => i64::try_from(n).unwrap_or(i64::MAX),
    };
    Ok(Event {
        key: key.to_string().into_bytes(),
        line: line.to_owned(),
        time,
    })
}

/// Writes output records to stdout, one JSON line each.
#[derive(Default)]
struct Printer {
    lines: Vec<u8>,
}

impl Printer {
    fn line(&mut self, json: &[u8]) {
        self.lines.extend_from_slice(json);
        self.lines.push(b'\n');
    }
    fn flush(&mut self) -> Result<(), CliError> {
        std::io::stdout()
            .lock()
            .write_all(&self.lines)
            .map_err(|e| CliError::Usage(format!("stdout: {e}")))?;
        self.lines.clear();
        Ok(())
    }
}

/// The engine a run uses: natively, or in the rule component.
enum Engine {
    Native(Box<RuleRunner>),
    Component {
        instance: Box<UdfInstance>,
        pending: Vec<InputRecord>,
    },
}

impl Engine {
    /// `rule`: the YAML rule for Weir's stock component; `None` for a
    /// component that carries its own.
    fn component(
        path: &std::path::Path,
        rule: Option<weir_cep::rule::Rule>,
        opts: RunnerOptions,
    ) -> Result<Self, CliError> {
        let host = super::wiring::wasm_host()?;
        let module = super::wiring::load_cep_component(&host, path)?;
        let config =
            weir_cep::runner::ComponentConfig::new(rule, opts, "timed_out".into(), "late".into());
        let labels = InstanceLabels {
            job: "local".into(),
            operator: "cep".into(),
            config: serde_json::to_string(&config)
                .map_err(|e| CliError::Usage(format!("rule config: {e}")))?,
        };
        let limits = crate::wasm::ModuleLimits {
            memory_bytes: module.max_memory_bytes(),
            ..Default::default()
        };
        let instance = module
            .instantiate(limits, labels)
            .map_err(|e| CliError::Usage(format!("the CEP rule component: {e}")))?;
        Ok(Engine::Component {
            instance: Box::new(instance),
            pending: Vec::with_capacity(BATCH),
        })
    }

    fn push(&mut self, ev: Event, out: &mut Printer) -> Result<(), CliError> {
        match self {
            Engine::Native(runner) => {
                // The event goes in as its line, exactly as it came in.
                runner
                    .push_json(PARTITION, &ev.key, ev.line.as_bytes(), ev.time, &mut |o| {
                        out.line(&o.value)
                    })
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                out.flush()
            }
            Engine::Component { pending, .. } => {
                pending.push(InputRecord {
                    key: Some(ev.key.into()),
                    value: Some(ev.line.into_bytes().into()),
                    timestamp: ev.time,
                    headers: Vec::new(),
                    source: SourcePosition {
                        topic: None,
                        partition: PARTITION,
                        offset: 0,
                    },
                });
                if pending.len() >= BATCH {
                    self.run_pending(out)?;
                }
                Ok(())
            }
        }
    }

    fn run_pending(&mut self, out: &mut Printer) -> Result<(), CliError> {
        let Engine::Component { instance, pending } = self else {
            return Ok(());
        };
        let results = instance
            .process_held(pending, BatchTime::now())
            .map_err(component_failed)?;
        for r in results {
            match r {
                crate::wasm::RecordResult::Outputs(outs) => {
                    for o in outs {
                        out.line(o.value.as_deref().unwrap_or_default());
                    }
                }
                crate::wasm::RecordResult::DeadLetter(d) => eprintln!("{}", d.reason),
            }
        }
        pending.clear();
        out.flush()
    }

    /// At the end of input the watermark reaches the largest event time
    /// seen, and no further: nothing later is assumed.
    fn finish(mut self, out: &mut Printer) -> Result<(), CliError> {
        self.run_pending(out)?;
        match &mut self {
            Engine::Native(runner) => runner.finish(PARTITION, &mut |o| out.line(&o.value)),
            Engine::Component { instance, .. } => {
                let outs = instance.finish_held(PARTITION).map_err(component_failed)?;
                for o in outs {
                    out.line(o.value.as_deref().unwrap_or_default());
                }
            }
        }
        out.flush()
    }
}

fn component_failed(e: crate::wasm::FailureReason) -> CliError {
    CliError::Usage(format!("the CEP rule component failed: {}: {e}", e.code()))
}

/// The value at a dotted path (`user.id`).
fn field<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(event, |v, part| v.get(part))
}

/// Milliseconds (a whole number) or an RFC 3339 time.
fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_times() {
        let e = json!({"user": {"id": 7}, "ts": 5, "at": "2026-01-01T00:00:01Z"});
        assert_eq!(field(&e, "user.id"), Some(&json!(7)));
        assert_eq!(field(&e, "user.name"), None);
        assert_eq!(time_of(&e["ts"]), Some(5));
        assert_eq!(time_of(&e["at"]), Some(1_767_225_601_000));
        assert_eq!(time_of(&json!("yesterday")), None);
        assert_eq!(time_of(&json!(1.5)), None);
    }
}
