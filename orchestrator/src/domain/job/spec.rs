//! The job spec: what a user writes to describe a pipeline (YAML or JSON).
//!
//! These types are the documentation: `docs/schemas/job-spec.schema.json` is
//! generated from them and `docs/job-spec.md` explains them. Unknown fields are
//! rejected so that a typo fails loudly instead of being ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// How far out of order events may arrive, in milliseconds, before they count as late.
    #[serde(default)]
    pub max_out_of_orderness_ms: u64,
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
        /// CPU deadline for one batch, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Re-keys records by a field of the JSON value, e.g. `user.id`.
    KeyBy {
        /// Stable operator id.
        id: String,
        /// Dot-separated path into the JSON value.
        field: String,
    },
}

/// A sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// A Kafka topic. Every output carries its source position in headers
    /// (`weir-source-topic`, `weir-source-partition`, `weir-source-offset`, `weir-seq`).
    Kafka {
        /// Topic to write; it must exist.
        topic: String,
    },
    /// A PostgreSQL table, upserted by `key_columns`.
    Postgres {
        /// Table (optionally `schema.table`); output values are JSON objects whose fields name its columns.
        table: String,
        /// Columns of the table's primary key or a unique constraint; rows are upserted by them.
        key_columns: Vec<String>,
    },
    /// A NATS subject (at-least-once).
    Nats {
        /// Subject each output is published on.
        subject: String,
    },
    /// An HTTP webhook, retried with backoff (at-least-once).
    Http {
        /// URL that receives one POST per batch, a JSON array of the output values.
        url: String,
        /// Attempts per batch before the task restarts from its last checkpoint.
        #[serde(default = "default_http_attempts")]
        max_attempts: u32,
    },
}

fn default_http_attempts() -> u32 {
    5
}

/// Checkpoint settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Interval between checkpoints, in milliseconds.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// How many completed checkpoints to keep.
    #[serde(default = "default_retain")]
    pub retain: u32,
}

fn default_interval() -> u64 {
    10_000
}
fn default_retain() -> u32 {
    3
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self {
            interval_ms: default_interval(),
            retain: default_retain(),
        }
    }
}

/// A spec that failed validation, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    pub field: String,
    pub problem: String,
}

impl JobSpec {
    /// Parses a YAML or JSON document (JSON is YAML) and validates it.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let spec: JobSpec = serde_yaml::from_str(text).map_err(|e| SpecError {
            field: e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "spec".into()),
            problem: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses an already-decoded JSON value and validates it.
    pub fn from_value(value: serde_json::Value) -> Result<Self, SpecError> {
        let spec: JobSpec = serde_json::from_value(value).map_err(|e| SpecError {
            field: "spec".into(),
            problem: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what serde cannot: counts, ranges and references.
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |field: String, problem: &str| SpecError {
            field,
            problem: problem.into(),
        };
        if self.sources.is_empty() {
            return Err(err("sources".into(), "at least one source is required"));
        }
        if self.sinks.is_empty() {
            return Err(err("sinks".into(), "at least one sink is required"));
        }
        if self.parallelism == 0 || self.parallelism > 1024 {
            return Err(err("parallelism".into(), "must be between 1 and 1024"));
        }
        if self.checkpoint.interval_ms < 100 {
            return Err(err("checkpoint.interval_ms".into(), "must be at least 100"));
        }
        if self.checkpoint.retain == 0 {
            return Err(err("checkpoint.retain".into(), "must be at least 1"));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if s.topic.trim().is_empty() {
                return Err(err(format!("sources[{i}].topic"), "must not be empty"));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, op) in self.operators.iter().enumerate() {
            let id = match op {
                OperatorSpec::Udf { id, module, .. } => {
                    if parse_module_ref(module).is_none() {
                        return Err(err(
                            format!("operators[{i}].module"),
                            "must be `name@version`",
                        ));
                    }
                    id
                }
                OperatorSpec::KeyBy { id, field } => {
                    if field.trim().is_empty() {
                        return Err(err(format!("operators[{i}].field"), "must not be empty"));
                    }
                    id
                }
            };
            if id.is_empty() {
                return Err(err(format!("operators[{i}].id"), "must not be empty"));
            }
            if !ids.insert(id.clone()) {
                return Err(err(
                    format!("operators[{i}].id"),
                    "duplicates an earlier id",
                ));
            }
        }
        for (i, s) in self.sinks.iter().enumerate() {
            if let SinkSpec::Postgres { key_columns, .. } = s {
                if key_columns.is_empty() {
                    return Err(err(
                        format!("sinks[{i}].key_columns"),
                        "at least one key column is required",
                    ));
                }
            }
        }
        Ok(())
    }
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

    #[test]
    fn parses_a_minimal_spec_with_defaults() {
        let spec = JobSpec::parse(GOOD).unwrap();
        assert_eq!(spec.parallelism, 1);
        assert_eq!(spec.checkpoint.retain, 3);
        assert_eq!(spec.sources[0].format, Format::Json);
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = JobSpec::parse("sources: []\nsinks: []\nparalelism: 2\n").unwrap_err();
        assert!(err.problem.contains("paralelism"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let err = JobSpec::parse(&GOOD.replace("upper@1.0.0", "upper")).unwrap_err();
        assert_eq!(err.field, "operators[0].module");
        let err = JobSpec::parse("sources: [{topic: a}]\nsinks: []\n").unwrap_err();
        assert_eq!(err.field, "sinks");
    }
}
