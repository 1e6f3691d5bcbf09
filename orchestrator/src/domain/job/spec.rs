//! The job spec: what a user writes to describe a pipeline (YAML or JSON).
//!
//! These types are the documentation: `docs/schemas/job-spec.schema.json` is
//! generated from them and `docs/job-spec.md` explains them. Unknown fields are
//! rejected so that a typo fails loudly instead of being ignored.
//!
//! Durations are [`Dur`]s (`250ms`, `30s`). Specs written before that gave
//! some of them as integer milliseconds (`interval_ms`); those fields are
//! still read, are folded into the new ones once the spec is checked, and
//! are never written back.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::alerts::AlertRule;
use crate::domain::autotune::AutotunePolicy;
use crate::domain::document::{self, Problem};
use crate::domain::duration::Dur;
pub use crate::domain::module::UdfKind;

/// A job version's spec. Immutable once submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Free text shown in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where records come from. At least one.
    pub sources: Vec<SourceSpec>,
    /// Operators applied in order to every record.
    #[serde(default)]
    pub operators: Vec<OperatorSpec>,
    /// Where results go. At least one.
    pub sinks: Vec<SinkSpec>,
    /// Number of parallel tasks. Bounded by the source partition count.
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Checkpoint settings.
    #[serde(default)]
    pub checkpoint: CheckpointSpec,
    /// Topic that receives records that fail to decode, trap a UDF or time out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    /// Maximum records per second the job emits, across all tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Automatic tuning of the parallelism; off unless given.
    #[serde(default, skip_serializing_if = "AutotunePolicy::is_default")]
    pub autotune: AutotunePolicy,
    /// Alert rules, evaluated by `weir serve` from the job's metrics and phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRule>,
}

fn default_parallelism() -> u32 {
    1
}

/// A Kafka source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Topic to read.
    pub topic: String,
    /// How record values are decoded.
    #[serde(default)]
    pub format: Format,
    /// Where a fresh deployment starts reading. Restores always start at the checkpoint.
    #[serde(default)]
    pub start: StartPosition,
    /// JSON field holding the event time in epoch milliseconds; the Kafka timestamp if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_field: Option<String>,
    /// How far out of order events may arrive before they count as late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Dur", extend("default" = "0s"))]
    pub max_out_of_orderness: Option<Dur>,
    /// Older spelling of `max_out_of_orderness`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", extend("deprecated" = true))]
    pub max_out_of_orderness_ms: Option<u64>,
}

impl SourceSpec {
    /// How far out of order events may arrive, whichever way it was written.
    pub fn max_out_of_orderness(&self) -> Dur {
        self.max_out_of_orderness
            .or(self.max_out_of_orderness_ms.map(Dur::from_millis))
            .unwrap_or(Dur::from_millis(0))
    }
}

/// Record value format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A JSON document per record; records that do not parse are dead-lettered.
    #[default]
    Json,
    /// Opaque bytes.
    Raw,
}

/// Where a source starts reading.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record still in the partition.
    #[default]
    Earliest,
    /// Only records written after the deployment starts.
    Latest,
    /// The first record at or after this time (epoch milliseconds).
    Timestamp(i64),
}

/// One step of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperatorSpec {
    /// Runs a WASM UDF module.
    Udf {
        /// Stable operator id; state is keyed by it, so keep it across versions to keep state.
        id: String,
        /// `name@version` of an uploaded module.
        module: String,
        /// What the UDF does with each record.
        kind: UdfKind,
        /// Memory cap for one instance, in MiB.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory_mb: Option<u32>,
        /// CPU deadline for one batch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Dur")]
        timeout: Option<Dur>,
        /// Older spelling of `timeout`, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "u64", extend("deprecated" = true))]
        timeout_ms: Option<u64>,
    },
    /// Re-keys records by a field of the JSON value, e.g. `user.id`.
    KeyBy {
        /// Stable operator id.
        id: String,
        /// Dot-separated path into the JSON value.
        field: String,
    },
    /// Matches a declarative CEP rule per key, in event-time order (see
    /// `docs/cep.md`). Needs a `key_by` before it. Emits one JSON record per
    /// match; partial matches are keyed state, kept across checkpoints,
    /// restores and rescales.
    Cep {
        /// Stable operator id; the partial matches are keyed by it.
        id: String,
        /// The rule document, as YAML text (the content of a rule file);
        /// `weir job create` inlines a rule given as a file path. Or a rule
        /// component from the module registry, `name@version` (a rule
        /// written with the Rust pattern API, uploaded like a UDF).
        rule: String,
        /// Kafka topic for partial matches that time out (`within_ms`);
        /// without it they are dropped and counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timed_out_topic: Option<String>,
        /// Kafka topic for events that arrive behind the watermark; without
        /// it they are dropped and counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        late_topic: Option<String>,
        /// Where a YAML rule runs: Weir's stock rule component as uploaded
        /// to the tenant's registry by `weir cep upload`, `name@version`.
        /// Without it the rule runs in the component the workers were
        /// given, or natively in the task. Not with a rule component.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        component: Option<String>,
    },
}

impl OperatorSpec {
    /// The stable operator id.
    pub fn id(&self) -> &str {
        match self {
            OperatorSpec::Udf { id, .. }
            | OperatorSpec::KeyBy { id, .. }
            | OperatorSpec::Cep { id, .. } => id,
        }
    }

    /// Whether the operator keeps keyed state (so the `key_by` before it
    /// must repartition a source partitioned some other way).
    pub fn is_keyed_stateful(&self) -> bool {
        matches!(
            self,
            OperatorSpec::Udf {
                kind: UdfKind::Process,
                ..
            } | OperatorSpec::Cep { .. }
        )
    }

    /// A UDF's CPU deadline for one batch, whichever way it was written.
    pub fn timeout(&self) -> Option<Dur> {
        match self {
            OperatorSpec::Udf {
                timeout,
                timeout_ms,
                ..
            } => timeout.or(timeout_ms.map(Dur::from_millis)),
            OperatorSpec::KeyBy { .. } | OperatorSpec::Cep { .. } => None,
        }
    }
}

/// A sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// A Kafka topic. Every output carries its source position in one header,
    /// `weir-id` (binary: the source topic's tag, partition, offset, seq;
    /// see docs/runtime.md).
    Kafka {
        /// Topic to write; it must exist.
        topic: String,
    },
    /// A PostgreSQL table, upserted by `key_columns`.
    Postgres {
        /// Table in the tenant's own PostgreSQL schema (a bare name: letters,
        /// digits, `_`); output values are JSON objects whose fields name its columns.
        table: String,
        /// Columns of the table's primary key or a unique constraint; rows are upserted by them.
        key_columns: Vec<String>,
    },
    /// A NATS subject (at-least-once).
    Nats {
        /// Subject each output is published on: not one of Weir's own
        /// (`<prefix>.…`), nor a `$` system subject, an `_INBOX` reply
        /// subject or a wildcard.
        subject: String,
    },
    /// An HTTP webhook, retried with backoff (at-least-once).
    Http {
        /// URL that receives one POST per batch, a JSON array of the output values.
        url: String,
        /// Attempts per batch before the task restarts from its last checkpoint.
        #[serde(default = "default_http_attempts")]
        max_attempts: u32,
        /// Headers sent with every POST, e.g. `Authorization: "Bearer
        /// ${secret:hook-token}"`: a `${secret:NAME}` is replaced by the
        /// tenant's secret when the deployment starts, and the spec, its
        /// events and the API keep the reference only.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
}

/// Why an HTTP sink header may not be sent as written, if it may not.
pub fn header_problem(name: &str, value: &str) -> Option<String> {
    // RFC 9110 token characters.
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Some(format!("`{name}` is not a header name"));
    }
    let lower = name.to_ascii_lowercase();
    if [
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "weir-batch",
    ]
    .contains(&lower.as_str())
    {
        return Some(format!("`{name}` is set by Weir and may not be given"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Some(format!("the value of `{name}` holds a line break or NUL"));
    }
    None
}

fn default_http_attempts() -> u32 {
    5
}

/// Checkpoint settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Time between periodic checkpoints, at least `100ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Dur", extend("default" = "10s"))]
    pub interval: Option<Dur>,
    /// Older spelling of `interval`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", extend("deprecated" = true))]
    pub interval_ms: Option<u64>,
    /// How many completed checkpoints to keep.
    #[serde(default = "default_retain")]
    pub retain: u32,
}

const DEFAULT_INTERVAL: Dur = Dur::from_secs(10);
const MIN_INTERVAL: Dur = Dur::from_millis(100);

fn default_retain() -> u32 {
    3
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self {
            interval: None,
            interval_ms: None,
            retain: default_retain(),
        }
    }
}

impl CheckpointSpec {
    /// Time between periodic checkpoints, whichever way it was written.
    pub fn interval(&self) -> Dur {
        self.interval
            .or(self.interval_ms.map(Dur::from_millis))
            .unwrap_or(DEFAULT_INTERVAL)
    }
}

/// A spec that failed to parse or validate: every problem found, each naming
/// its field (and, for YAML text, its line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct SpecError {
    pub problems: Vec<Problem>,
}

impl SpecError {
    /// One line per problem, `file:line: field: problem`.
    pub fn in_file(&self, file: &str) -> String {
        document::render(file, &self.problems)
    }

    /// Every problem on one line, for messages that carry no file name.
    fn summary(&self) -> String {
        self.problems
            .iter()
            .map(|p| match p.line {
                Some(l) => format!("line {l}: {p}"),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<Problem> for SpecError {
    fn from(p: Problem) -> Self {
        Self { problems: vec![p] }
    }
}

impl JobSpec {
    /// Parses a YAML or JSON document (JSON is YAML) and validates it.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        Self::parse_with(text, None)
    }

    /// [`parse`](Self::parse), first replacing each `cep` operator's `rule`
    /// that names a file (`rules/fraud.yaml`) with what `read` returns for
    /// it. The CLI reads such files next to the spec; the server never
    /// reads files a spec names.
    pub fn parse_reading_rules(
        text: &str,
        mut read: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<Self, SpecError> {
        Self::parse_with(text, Some(&mut read))
    }

    fn parse_with(text: &str, mut read: Option<&mut ReadRule<'_>>) -> Result<Self, SpecError> {
        let (mut spec, lines) = document::from_yaml::<JobSpec>(text)?;
        let mut unread = Vec::new();
        for (i, op) in spec.operators.iter_mut().enumerate() {
            if let OperatorSpec::Cep { rule, .. } = op {
                let path = rule_path(rule).map(str::to_owned);
                if let (Some(path), Some(read)) = (path, read.as_mut()) {
                    match read(&path) {
                        Ok(text) => *rule = text,
                        Err(e) => unread.push(Problem::new(
                            format!("operators[{i}].rule"),
                            format!("cannot read `{path}`: {e}"),
                        )),
                    }
                }
            }
        }
        if !unread.is_empty() {
            return Err(SpecError {
                problems: lines.locate(unread),
            });
        }
        match spec.problems() {
            ps if ps.is_empty() => Ok(spec.normalized()),
            ps => Err(SpecError {
                problems: lines.locate(ps),
            }),
        }
    }

    /// Parses an already-decoded JSON value and validates it.
    pub fn from_value(value: serde_json::Value) -> Result<Self, SpecError> {
        let spec: JobSpec = document::from_json(value)?;
        spec.validate()?;
        Ok(spec.normalized())
    }

    /// Checks what serde cannot: counts, ranges, references, and settings
    /// given in both their new and their older spelling.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self.problems() {
            ps if ps.is_empty() => Ok(()),
            problems => Err(SpecError { problems }),
        }
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.sources.is_empty() {
            out.push(Problem::new("sources", "at least one source is required"));
        }
        if self.sinks.is_empty() {
            out.push(Problem::new("sinks", "at least one sink is required"));
        }
        if self.parallelism == 0 || self.parallelism > 1024 {
            out.push(Problem::new("parallelism", "must be between 1 and 1024"));
        }
        let cp = &self.checkpoint;
        out.extend(both("checkpoint.interval", &cp.interval, cp.interval_ms));
        if cp.interval() < MIN_INTERVAL {
            let field = match cp.interval {
                Some(_) => "checkpoint.interval",
                None => "checkpoint.interval_ms",
            };
            out.push(Problem::new(field, "must be at least 100ms"));
        }
        if cp.retain == 0 {
            out.push(Problem::new("checkpoint.retain", "must be at least 1"));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if s.topic.trim().is_empty() {
                out.push(Problem::new(
                    format!("sources[{i}].topic"),
                    "must not be empty",
                ));
            }
            out.extend(both(
                &format!("sources[{i}].max_out_of_orderness"),
                &s.max_out_of_orderness,
                s.max_out_of_orderness_ms,
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, op) in self.operators.iter().enumerate() {
            match op {
                OperatorSpec::Udf {
                    module,
                    timeout,
                    timeout_ms,
                    ..
                } => {
                    if parse_module_ref(module).is_none() {
                        out.push(Problem::new(
                            format!("operators[{i}].module"),
                            "must be `name@version`",
                        ));
                    }
                    out.extend(both(
                        &format!("operators[{i}].timeout"),
                        timeout,
                        *timeout_ms,
                    ));
                }
                OperatorSpec::KeyBy { field, .. } => {
                    if field.trim().is_empty() {
                        out.push(Problem::new(
                            format!("operators[{i}].field"),
                            "must not be empty",
                        ));
                    }
                }
                OperatorSpec::Cep {
                    rule,
                    timed_out_topic,
                    late_topic,
                    component,
                    ..
                } => {
                    out.extend(cep_problems(i, rule, &self.operators[..i]));
                    out.extend(component_problem(i, rule, component.as_deref()));
                    for (name, topic) in [
                        ("timed_out_topic", timed_out_topic),
                        ("late_topic", late_topic),
                    ] {
                        if topic.as_deref().is_some_and(|t| t.trim().is_empty()) {
                            out.push(Problem::new(
                                format!("operators[{i}].{name}"),
                                "must not be empty",
                            ));
                        }
                    }
                }
            }
            let id = op.id();
            if id.is_empty() {
                out.push(Problem::new(
                    format!("operators[{i}].id"),
                    "must not be empty",
                ));
            } else if !ids.insert(id) {
                out.push(Problem::new(
                    format!("operators[{i}].id"),
                    "duplicates an earlier id",
                ));
            }
        }
        out.extend(self.autotune.problems("autotune"));
        out.extend(crate::domain::alerts::rule::problems(&self.alerts));
        for (i, s) in self.sinks.iter().enumerate() {
            match s {
                SinkSpec::Postgres { table, key_columns } => {
                    if key_columns.is_empty() {
                        out.push(Problem::new(
                            format!("sinks[{i}].key_columns"),
                            "at least one key column is required",
                        ));
                    }
                    if let Some(p) = super::sink_rules::table_problem(table) {
                        out.push(Problem::new(format!("sinks[{i}].table"), p));
                    }
                }
                SinkSpec::Nats { subject } => {
                    if let Some(p) = super::sink_rules::subject_problem(subject, None) {
                        out.push(Problem::new(format!("sinks[{i}].subject"), p));
                    }
                }
                SinkSpec::Http { url, headers, .. } => {
                    if let Some(p) = super::sink_rules::url_problem(url) {
                        out.push(Problem::new(format!("sinks[{i}].url"), p));
                    }
                    for (name, value) in headers {
                        if let Some(p) = header_problem(name, value) {
                            out.push(Problem::new(format!("sinks[{i}].headers"), p));
                        }
                    }
                }
                SinkSpec::Kafka { .. } => {}
            }
        }
        out
    }

    /// The spec with every duration in its new spelling, as it is stored.
    fn normalized(mut self) -> Self {
        let cp = &mut self.checkpoint;
        cp.interval = cp.interval.or(cp.interval_ms.take().map(Dur::from_millis));
        for s in &mut self.sources {
            s.max_out_of_orderness = s
                .max_out_of_orderness
                .or(s.max_out_of_orderness_ms.take().map(Dur::from_millis));
        }
        for op in &mut self.operators {
            if let OperatorSpec::Udf {
                timeout,
                timeout_ms,
                ..
            } = op
            {
                *timeout = timeout.or(timeout_ms.take().map(Dur::from_millis));
            }
        }
        self
    }
}

/// What is wrong with a CEP operator: its rule (each problem located at the
/// rule text's own line) and its place in the chain.
fn cep_problems(i: usize, rule: &str, before: &[OperatorSpec]) -> Vec<Problem> {
    let field = format!("operators[{i}].rule");
    let mut out = Vec::new();
    if !before
        .iter()
        .any(|o| matches!(o, OperatorSpec::KeyBy { .. }))
    {
        out.push(Problem::new(
            format!("operators[{i}]"),
            "a cep operator matches per key: put a `key_by` before it",
        ));
    }
    if rule_module(rule).is_some() {
        // A rule component from the registry: compile fetches and checks it.
        return out;
    }
    if let Some(path) = rule_path(rule) {
        out.push(Problem::new(
            field,
            format!("`{path}` looks like a file path; give the rule's YAML text (`weir job create` inlines a rule file named in the spec)"),
        ));
        return out;
    }
    match crate::domain::cep_rule::parse(rule) {
        Ok(checked) => {
            if let Err(p) = checked.compile() {
                out.push(Problem::new(field, p.to_string()));
            }
        }
        Err(e) => out.extend(e.problems.into_iter().map(|p| {
            let at = p
                .line
                .map(|l| format!("rule line {l}: "))
                .unwrap_or_default();
            Problem::new(field.clone(), format!("{at}{}: {}", p.field, p.problem))
        })),
    }
    out
}

/// What is wrong with a CEP operator's `component`: it must name a module
/// (`name@version`), and only a YAML rule runs in it.
fn component_problem(i: usize, rule: &str, component: Option<&str>) -> Option<Problem> {
    let component = component?;
    let field = format!("operators[{i}].component");
    if parse_module_ref(component.trim()).is_none() {
        return Some(Problem::new(
            field,
            format!("`{component}` is not name@version (what `weir cep upload` printed)"),
        ));
    }
    rule_module(rule).is_some().then(|| {
        Problem::new(
            field,
            "the rule is a rule component of its own, which runs as it is: `component` is for a YAML rule",
        )
    })
}

/// Reads a rule file a spec names, or says why it cannot.
type ReadRule<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// The file a `rule` names, if it is a path (one line ending in `.yaml` or
/// `.yml`) rather than the rule's text.
/// The rule component a `rule` names, if it is `name@version` (one word)
/// rather than the rule's text: a rule written with the Rust pattern API
/// and uploaded like a UDF.
pub fn rule_module(rule: &str) -> Option<(&str, &str)> {
    let t = rule.trim();
    if t.contains(char::is_whitespace) || rule_path(t).is_some() {
        return None;
    }
    parse_module_ref(t)
}

fn rule_path(rule: &str) -> Option<&str> {
    let t = rule.trim();
    (!t.contains('\n') && (t.ends_with(".yaml") || t.ends_with(".yml"))).then_some(t)
}

/// A duration given both as `field` and in its older spelling `field_ms`.
fn both(field: &str, new: &Option<Dur>, old: Option<u64>) -> Option<Problem> {
    (new.is_some() && old.is_some()).then(|| {
        Problem::new(
            format!("{field}_ms"),
            format!("give `{field}` or the older `{field}_ms`, not both"),
        )
    })
}

/// Splits `name@version`.
pub fn parse_module_ref(s: &str) -> Option<(&str, &str)> {
    let (name, version) = s.split_once('@')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
sources: [{ topic: orders }]
operators:
  - { type: udf, id: upper, module: "upper@1.0.0", kind: map }
sinks: [{ type: kafka, topic: out }]
"#;

    /// The problems as `line: field`, in order.
    fn located(e: &SpecError) -> Vec<(Option<usize>, &str)> {
        e.problems
            .iter()
            .map(|p| (p.line, p.field.as_str()))
            .collect()
    }

    #[test]
    fn parses_a_minimal_spec_with_defaults() {
        let spec = JobSpec::parse(GOOD).unwrap();
        assert_eq!(spec.parallelism, 1);
        assert_eq!(spec.checkpoint.retain, 3);
        assert_eq!(spec.checkpoint.interval(), Dur::from_secs(10));
        assert_eq!(spec.sources[0].format, Format::Json);
        assert_eq!(spec.sources[0].max_out_of_orderness(), Dur::from_millis(0));
        assert_eq!(spec.operators[0].timeout(), None);
    }

    #[test]
    fn unknown_fields_are_named_with_their_line() {
        let err = JobSpec::parse("sources: [{topic: a}]\nsinks: []\nparalelism: 2\n").unwrap_err();
        assert_eq!(located(&err), [(Some(3), "paralelism")], "{err}");
        assert!(
            err.problems[0]
                .problem
                .contains("unknown field `paralelism`"),
            "{err}"
        );
        assert!(
            err.in_file("job.yaml")
                .starts_with("job.yaml:3: paralelism: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "\
sources:
  - topic: orders
operators:
  - type: udf
    id: upper
    module: upper
    kind: map
  - { type: key_by, id: upper, field: customer.id }
sinks:
  - type: postgres
    table: counts
    key_columns: []
";
        let err = JobSpec::parse(text).unwrap_err();
        assert_eq!(
            located(&err),
            [
                (Some(6), "operators[0].module"),
                (Some(8), "operators[1].id"),
                (Some(12), "sinks[0].key_columns"),
            ],
            "{err}"
        );
        assert_eq!(
            err.in_file("orders.yaml"),
            "orders.yaml:6: operators[0].module: must be `name@version`\n\
             orders.yaml:8: operators[1].id: duplicates an earlier id\n\
             orders.yaml:12: sinks[0].key_columns: at least one key column is required"
        );
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../../docs/job-spec.md");
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap();
        let spec = JobSpec::parse(example).unwrap();
        assert_eq!(spec.checkpoint.interval(), Dur::from_secs(10));
        assert_eq!(spec.sources[0].max_out_of_orderness(), Dur::from_secs(5));
        assert_eq!(spec.operators[0].timeout(), Some(Dur::from_millis(50)));
    }

    #[test]
    fn durations_are_written_as_durations() {
        let text = GOOD
            .replace(
                "{ topic: orders }",
                "{ topic: orders, max_out_of_orderness: 5s }",
            )
            .replace("kind: map }", "kind: map, timeout: 50ms }")
            + "checkpoint: { interval: 2m }\n";
        let spec = JobSpec::parse(&text).unwrap();
        assert_eq!(spec.checkpoint.interval(), Dur::from_secs(120));
        assert_eq!(spec.sources[0].max_out_of_orderness(), Dur::from_secs(5));
        assert_eq!(spec.operators[0].timeout(), Some(Dur::from_millis(50)));
        let err = JobSpec::parse(&text.replace("2m", "2 minutes")).unwrap_err();
        assert_eq!(located(&err), [(Some(6), "checkpoint.interval")], "{err}");
        let err = JobSpec::parse(&text.replace("2m", "50ms")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 6: checkpoint.interval: must be at least 100ms"
        );
    }

    #[test]
    fn the_older_millisecond_fields_are_still_read_and_stored_as_durations() {
        let text = GOOD
            .replace(
                "{ topic: orders }",
                "{ topic: orders, max_out_of_orderness_ms: 5000 }",
            )
            .replace("kind: map }", "kind: map, timeout_ms: 50 }")
            + "checkpoint: { interval_ms: 500 }\n";
        let spec = JobSpec::parse(&text).unwrap();
        assert_eq!(spec.checkpoint.interval(), Dur::from_millis(500));
        assert_eq!(spec.sources[0].max_out_of_orderness(), Dur::from_secs(5));
        assert_eq!(spec.operators[0].timeout(), Some(Dur::from_millis(50)));
        let stored = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            stored["checkpoint"],
            serde_json::json!({"interval": "500ms", "retain": 3})
        );
        assert_eq!(stored["sources"][0]["max_out_of_orderness"], "5s");
        assert_eq!(stored["operators"][0]["timeout"], "50ms");
        assert_eq!(JobSpec::from_value(stored).unwrap(), spec);
        let err = JobSpec::parse(&text.replace("500", "50")).unwrap_err();
        assert_eq!(
            located(&err),
            [(Some(6), "checkpoint.interval_ms")],
            "{err}"
        );
    }

    #[test]
    fn a_duration_given_both_ways_is_refused_naming_both() {
        let text = GOOD.replace("kind: map }", "kind: map, timeout: 50ms, timeout_ms: 50 }")
            + "checkpoint:\n  interval: 1s\n  interval_ms: 1000\n";
        let err = JobSpec::parse(&text).unwrap_err();
        assert_eq!(
            located(&err),
            [
                (Some(4), "operators[0].timeout_ms"),
                (Some(8), "checkpoint.interval_ms"),
            ],
            "{err}"
        );
        assert_eq!(
            err.problems[1].problem,
            "give `checkpoint.interval` or the older `checkpoint.interval_ms`, not both"
        );
    }

    #[test]
    fn an_autotune_policy_is_read_and_its_mistakes_named() {
        use crate::domain::autotune::Mode;
        let spec = JobSpec::parse(GOOD).unwrap();
        assert_eq!(spec.autotune.mode, Mode::Off);
        assert!(serde_json::to_value(&spec)
            .unwrap()
            .get("autotune")
            .is_none());

        let text =
            GOOD.to_owned() + "autotune:\n  mode: apply\n  max_parallelism: 8\n  catch_up: 2m\n";
        let spec = JobSpec::parse(&text).unwrap();
        assert_eq!(spec.autotune.mode, Mode::Apply);
        assert_eq!(spec.autotune.max_parallelism, Some(8));
        assert_eq!(spec.autotune.catch_up, Dur::from_secs(120));
        assert_eq!(spec.autotune.target_utilization, 0.7);
        let stored = serde_json::to_value(&spec).unwrap();
        assert_eq!(stored["autotune"]["catch_up"], "2m");
        assert_eq!(JobSpec::from_value(stored).unwrap(), spec);

        let text = GOOD.to_owned()
            + "autotune:\n  mode: apply\n  target_utilization: 1.5\n  min_parallelism: 4\n  max_parallelism: 2\n";
        let err = JobSpec::parse(&text).unwrap_err();
        assert_eq!(
            located(&err),
            [
                (Some(8), "autotune.target_utilization"),
                (Some(10), "autotune.max_parallelism"),
            ],
            "{err}"
        );
        assert_eq!(
            err.problems[1].problem,
            "must be at least min_parallelism (4)"
        );
        let err =
            JobSpec::parse(&(GOOD.to_owned() + "autotune: { mode: sometimes }\n")).unwrap_err();
        assert_eq!(located(&err), [(Some(6), "autotune.mode")], "{err}");
        let err = JobSpec::from_value(serde_json::json!({
            "sources": [{"topic": "a"}], "sinks": [{"type": "kafka", "topic": "b"}],
            "autotune": {"mode": "recommend", "target_utilization": 0}
        }))
        .unwrap_err();
        assert_eq!(
            located(&err),
            [(None, "autotune.target_utilization")],
            "{err}"
        );
    }

    #[test]
    fn json_values_name_the_field_without_a_line() {
        let err = JobSpec::from_value(serde_json::json!({
            "sources": [{"topic": ""}], "sinks": [], "parallelism": 0
        }))
        .unwrap_err();
        assert_eq!(
            located(&err),
            [
                (None, "sinks"),
                (None, "parallelism"),
                (None, "sources[0].topic")
            ],
            "{err}"
        );
        let err = JobSpec::from_value(serde_json::json!({
            "sources": [{"topic": "a", "start": "middle"}], "sinks": []
        }))
        .unwrap_err();
        assert_eq!(located(&err), [(None, "sources[0].start")], "{err}");
    }

    const CEP: &str = r#"
sources: [{ topic: logins, event_time_field: ts }]
operators:
  - { type: key_by, id: by_user, field: user }
  - type: cep
    id: fraud
    timed_out_topic: fraud-timeouts
    rule: |
      name: fraud
      within_ms: 60000
      steps:
        - name: fail
          where: status == "failed"
          quantifier: { min: 3, max: 3 }
        - name: ok
          where: status == "ok"
sinks: [{ type: kafka, topic: alerts }]
"#;

    #[test]
    fn a_rule_is_a_module_only_when_it_is_one_name_at_version_word() {
        assert_eq!(rule_module("abc@1.0.0"), Some(("abc", "1.0.0")));
        assert_eq!(rule_module("  fraud@2\n"), Some(("fraud", "2")));
        for text in [
            "rules/fraud.yaml",
            "a@b.yaml",
            "name: x@y",
            "name: r\nsteps: []",
            "@1",
            "abc@",
        ] {
            assert_eq!(rule_module(text), None, "{text}");
        }
        let spec = "sources: [{ topic: t }]\noperators:\n  - { type: key_by, id: k, field: user }\n  - { type: cep, id: c, rule: abc@1.0.0 }\nsinks: [{ type: kafka, topic: o }]\n";
        assert!(
            JobSpec::parse(spec).is_ok(),
            "a rule module passes the spec check"
        );
    }

    #[test]
    fn a_cep_operator_checks_its_rule_and_its_key_by() {
        let spec = JobSpec::parse(CEP).unwrap();
        assert!(spec.operators[1].is_keyed_stateful());
        assert!(!spec.operators[0].is_keyed_stateful());

        let typo = CEP.replace("status == \"ok\"", "contians(status, \"ok\")");
        let err = JobSpec::parse(&typo).unwrap_err();
        assert_eq!(located(&err), [(Some(8), "operators[1].rule")], "{err}");
        let text = err.to_string();
        assert!(
            text.contains("rule line 8: steps[1].where") && text.contains("contians"),
            "{text}"
        );

        let unkeyed = CEP.replace("  - { type: key_by, id: by_user, field: user }\n", "");
        let err = JobSpec::parse(&unkeyed).unwrap_err();
        assert_eq!(located(&err), [(Some(4), "operators[0]")], "{err}");
        assert!(
            err.to_string().contains("put a `key_by` before it"),
            "{err}"
        );

        let err = JobSpec::from_value(serde_json::json!({
            "sources": [{"topic": "a"}], "sinks": [{"type": "kafka", "topic": "b"}],
            "operators": [{"type": "key_by", "id": "k", "field": "u"},
                          {"type": "cep", "id": "c", "rule": "rules/fraud.yaml", "late_topic": " "}]
        }))
        .unwrap_err();
        assert_eq!(
            located(&err),
            [
                (None, "operators[1].rule"),
                (None, "operators[1].late_topic")
            ],
            "{err}"
        );
        assert!(err.to_string().contains("looks like a file path"), "{err}");
    }

    #[test]
    fn a_cep_component_is_a_module_for_a_yaml_rule() {
        let spec = |rule: &str, component: &str| {
            JobSpec::from_value(serde_json::json!({
                "sources": [{"topic": "a"}], "sinks": [{"type": "kafka", "topic": "b"}],
                "operators": [{"type": "key_by", "id": "k", "field": "u"},
                              {"type": "cep", "id": "c", "rule": rule, "component": component}]
            }))
        };
        let yaml = "name: r\nsteps:\n  - { name: a, where: \"true\" }\n";
        let ok = spec(yaml, "weir-cep-rule@1.0.0").unwrap();
        assert!(matches!(
            &ok.operators[1],
            OperatorSpec::Cep { component: Some(c), .. } if c == "weir-cep-rule@1.0.0"
        ));

        let err = spec(yaml, "weir-cep-rule").unwrap_err();
        assert_eq!(located(&err), [(None, "operators[1].component")], "{err}");
        assert!(err.to_string().contains("is not name@version"), "{err}");

        let err = spec("abc@1.0.0", "weir-cep-rule@1.0.0").unwrap_err();
        assert_eq!(located(&err), [(None, "operators[1].component")], "{err}");
        assert!(err.to_string().contains("for a YAML rule"), "{err}");
    }
}
