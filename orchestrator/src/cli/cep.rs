//! `weir cep run`: a rule file run over a JSON-lines file, locally.
//!
//! The engine runs natively in this process (the `weir-cep` crate); it is the
//! same engine a rule component would embed, but no WASM is involved here.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use weir_cep::rule::CheckedRule;
use weir_cep::{KeyedEventTime, Nfa, Outputs};

use super::error::CliError;
use crate::domain::cep_rule;

#[derive(Debug, Subcommand)]
pub enum CepCmd {
    /// Check a rule file, or run it over JSON events (one per line) with the
    /// CEP engine running natively in this process, printing one JSON line
    /// per match, timed-out partial match and late event.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The YAML rule file.
    #[arg(long)]
    pub rule: PathBuf,
    /// Only validate the rule: exit 0, or print every problem and exit 2.
    #[arg(long, conflicts_with = "input")]
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
}

pub fn run(cmd: &CepCmd) -> Result<(), CliError> {
    match cmd {
        CepCmd::Run(args) => run_rule(args),
    }
}

fn run_rule(args: &RunArgs) -> Result<(), CliError> {
    let file = args.rule.display().to_string();
    let text =
        std::fs::read_to_string(&args.rule).map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    let rule = cep_rule::parse(&text).map_err(|e| CliError::Usage(e.in_file(&file)))?;
    let nfa = rule
        .compile()
        .map_err(|p| CliError::Usage(format!("{file}: {p}")))?;
    let Some(input) = &args.input else {
        println!("{file}: ok");
        return Ok(());
    };
    let name = input.display().to_string();
    let reader = std::fs::File::open(input)
        .map(std::io::BufReader::new)
        .map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
    let mut runner = Runner::new(args, &rule, &nfa);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(problem) = runner.feed(&line, n) {
            eprintln!("{name}:{n}: {problem}");
        }
    }
    runner.finish()
}

/// Reads the key and the time of events, feeds the engine, prints outputs.
struct Runner<'a> {
    args: &'a RunArgs,
    rule: &'a CheckedRule,
    nfa: &'a Nfa<Value>,
    keys: KeyedEventTime<String, Value>,
    /// The key value behind each key's text.
    key_values: HashMap<String, Value>,
    out: Outputs<Value>,
    max_time: Option<i64>,
}

impl<'a> Runner<'a> {
    fn new(args: &'a RunArgs, rule: &'a CheckedRule, nfa: &'a Nfa<Value>) -> Self {
        Runner {
            args,
            rule,
            nfa,
            keys: KeyedEventTime::new(),
            key_values: HashMap::new(),
            out: Outputs::new(),
            max_time: None,
        }
    }

    /// Feeds line `n`; a problem with the event is returned, the run goes on.
    fn feed(&mut self, line: &str, n: usize) -> Result<(), String> {
        let event: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let key = self.key_of(&event)?;
        let time = match &self.args.time_field {
            Some(f) => time_of(field(&event, f).ok_or(format!("no time field '{f}'"))?).ok_or(
                format!("time field '{f}' is neither milliseconds nor an RFC 3339 time"),
            )?,
            None => i64::try_from(n).unwrap_or(i64::MAX),
        };
        let text = key.to_string();
        self.key_values.entry(text.clone()).or_insert(key);
        self.keys.push(text, event, time, &mut self.out);
        let max = self.max_time.map_or(time, |m| m.max(time));
        self.max_time = Some(max);
        let watermark = max.saturating_sub(self.args.out_of_orderness_ms);
        self.keys
            .advance_watermark(self.nfa, watermark, &mut self.out);
        self.flush()
    }

    fn key_of(&self, event: &Value) -> Result<Value, String> {
        match &self.args.key_field {
            Some(f) => field(event, f)
                .cloned()
                .ok_or(format!("no key field '{f}'")),
            None => Ok(Value::Null),
        }
    }

    /// At the end of input the watermark reaches the largest event time
    /// seen, and no further: nothing later is assumed.
    fn finish(mut self) -> Result<(), CliError> {
        if let Some(max) = self.max_time {
            self.keys.advance_watermark(self.nfa, max, &mut self.out);
        }
        self.flush().map_err(CliError::Usage)
    }

    fn event_time(&self, event: &Value) -> Option<i64> {
        self.args
            .time_field
            .as_ref()
            .and_then(|f| field(event, f))
            .and_then(time_of)
    }

    fn key_for(&self, event: Option<&Value>) -> Value {
        event
            .and_then(|e| self.key_of(e).ok())
            .unwrap_or(Value::Null)
    }

    /// Prints what the engine produced: late events, matches, timeouts.
    fn flush(&mut self) -> Result<(), String> {
        let mut lines = Vec::new();
        let time = |e: &Value| self.event_time(e);
        for late in &self.out.late {
            lines.push(json!({
                "rule": self.rule.name, "late": true,
                "key": self.key_for(Some(&late.event)),
                "event": late.event, "event_time": late.timestamp,
            }));
        }
        for m in &self.out.matches {
            let key = self.key_for(m.events().next());
            lines.push(self.rule.match_record(&key, m, time));
        }
        for t in &self.out.timeouts {
            let key = self.key_for(t.steps.iter().flat_map(|(_, v)| v.iter()).next());
            lines.push(self.rule.timeout_record(&key, t, time));
        }
        self.out.clear();
        let mut stdout = std::io::stdout().lock();
        for l in lines {
            writeln!(stdout, "{l}").map_err(|e| format!("stdout: {e}"))?;
        }
        Ok(())
    }
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
