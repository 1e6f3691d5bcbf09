//! Sinks: where outputs go. Each is built from its spec by the task that
//! uses it, receives whole batches, and is flushed at every checkpoint.
//!
//! | sink | guarantee |
//! |---|---|
//! | Kafka | exactly-once: transactions, or deterministic replay on brokers without them |
//! | PostgreSQL | effectively exactly-once: idempotent upsert by key columns |
//! | NATS | at-least-once |
//! | HTTP | at-least-once, retried with backoff |

pub mod egress;
mod http;
mod kafka;
mod nats;
mod postgres;

pub use http::HttpSink;
pub use kafka::KafkaSink;
pub use nats::NatsSink;
pub use postgres::{PgSink, TenantSpace};

use std::fmt;
use std::str::FromStr;

use super::record::{DeadLetter, Output};
use crate::domain::job::spec::{JobSpec, SinkSpec};

/// What a sink promises about each output across failures and restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guarantee {
    /// Kafka with broker transactions: a restore aborts what the failed task
    /// left open.
    KafkaTransactions,
    /// Kafka without them: outputs carry their source position, and a
    /// restore skips what the topic already holds.
    DeterministicReplay,
    /// PostgreSQL: a replay upserts the same rows again.
    IdempotentUpsert,
    /// NATS and HTTP: a replay may deliver an output again.
    AtLeastOnce,
}

impl Guarantee {
    pub const ALL: [Guarantee; 4] = [
        Guarantee::KafkaTransactions,
        Guarantee::DeterministicReplay,
        Guarantee::IdempotentUpsert,
        Guarantee::AtLeastOnce,
    ];

    /// The guarantee of a sink, with or without Kafka transactions.
    pub fn of(sink: &SinkSpec, transactional: bool) -> Self {
        match sink {
            SinkSpec::Kafka { .. } if transactional => Guarantee::KafkaTransactions,
            SinkSpec::Kafka { .. } => Guarantee::DeterministicReplay,
            SinkSpec::Postgres { .. } => Guarantee::IdempotentUpsert,
            SinkSpec::Nats { .. } | SinkSpec::Http { .. } => Guarantee::AtLeastOnce,
        }
    }

    /// How a status states it.
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::KafkaTransactions => "exactly-once (Kafka transactions)",
            Guarantee::DeterministicReplay => "exactly-once (deterministic replay)",
            Guarantee::IdempotentUpsert => "effectively exactly-once (idempotent upsert)",
            Guarantee::AtLeastOnce => "at-least-once",
        }
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that states no guarantee a sink has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stated sink guarantee: `{0}`")]
pub struct UnknownGuarantee(pub String);

impl FromStr for Guarantee {
    type Err = UnknownGuarantee;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Guarantee::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| UnknownGuarantee(s.to_owned()))
    }
}

/// A sink, named as in logs (`kafka:<topic>`, `postgres:<table>`,
/// `nats:<subject>`, `http:<url>`), and its guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkGuarantee {
    pub sink: String,
    pub guarantee: Guarantee,
}

impl SinkGuarantee {
    pub fn of(sink: &SinkSpec, transactional: bool) -> Self {
        let name = match sink {
            SinkSpec::Kafka { topic } => format!("kafka:{topic}"),
            SinkSpec::Postgres { table, .. } => format!("postgres:{table}"),
            SinkSpec::Nats { subject } => format!("nats:{subject}"),
            SinkSpec::Http { url, .. } => format!("http:{url}"),
        };
        Self {
            sink: name,
            guarantee: Guarantee::of(sink, transactional),
        }
    }

    /// Every sink's guarantee, as a deployment's status states it:
    /// `kafka:out exactly-once (deterministic replay); nats:x at-least-once`.
    pub fn state_all(spec: &JobSpec, transactional: bool) -> String {
        spec.sinks
            .iter()
            .map(|s| Self::of(s, transactional).to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Reads a status's statement back, sink by sink.
    pub fn parse_all(stated: &str) -> Result<Vec<Self>, UnknownGuarantee> {
        stated
            .split("; ")
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl fmt::Display for SinkGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.sink, self.guarantee)
    }
}

impl FromStr for SinkGuarantee {
    type Err = UnknownGuarantee;
    /// Sink names hold no spaces: the guarantee is everything after the first.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sink, guarantee) = s
            .split_once(' ')
            .ok_or_else(|| UnknownGuarantee(s.to_owned()))?;
        Ok(Self {
            sink: sink.to_owned(),
            guarantee: guarantee.parse()?,
        })
    }
}

/// A sink that failed; the task restarts from its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sink `{sink}`: {reason}")]
pub struct SinkError {
    pub sink: String,
    pub reason: String,
}

/// Any sink.
pub enum Sink {
    Kafka(KafkaSink),
    Postgres(PgSink),
    Nats(NatsSink),
    Http(HttpSink),
}

impl Sink {
    /// Writes a batch. Outputs the sink cannot represent (e.g. a non-object
    /// value for a table) come back as dead letters; the rest are written.
    pub async fn write(&mut self, outputs: &[Output]) -> Result<Vec<DeadLetter>, SinkError> {
        match self {
            Sink::Kafka(s) => s.write(outputs).await.map(|()| Vec::new()),
            Sink::Postgres(s) => s.write(outputs).await,
            Sink::Nats(s) => s.write(outputs).await.map(|()| Vec::new()),
            Sink::Http(s) => s.write(outputs).await.map(|()| Vec::new()),
        }
    }

    /// Makes everything written so far durable.
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(s) => s.flush().await,
            Sink::Postgres(_) | Sink::Http(_) => Ok(()),
            Sink::Nats(s) => s.flush().await,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Sink::Kafka(s) => format!("kafka:{}", s.topic()),
            Sink::Postgres(s) => format!("postgres:{}", s.table()),
            Sink::Nats(s) => format!("nats:{}", s.subject()),
            Sink::Http(s) => format!("http:{}", s.url()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sink_states_its_guarantee_and_the_statement_reads_back() {
        let spec = JobSpec::parse(
            r#"
sources: [{ topic: in }]
sinks:
  - { type: kafka, topic: out }
  - { type: postgres, table: counts, key_columns: [key] }
  - { type: nats, subject: "a.b" }
  - { type: http, url: "http://127.0.0.1:1/hook" }
"#,
        )
        .unwrap();
        let stated = SinkGuarantee::state_all(&spec, false);
        assert_eq!(
            stated,
            "kafka:out exactly-once (deterministic replay); \
             postgres:counts effectively exactly-once (idempotent upsert); \
             nats:a.b at-least-once; http:http://127.0.0.1:1/hook at-least-once"
        );
        let read: Vec<_> = SinkGuarantee::parse_all(&stated)
            .unwrap()
            .into_iter()
            .map(|g| g.guarantee)
            .collect();
        use Guarantee::*;
        assert_eq!(
            read,
            [
                DeterministicReplay,
                IdempotentUpsert,
                AtLeastOnce,
                AtLeastOnce
            ]
        );
        let txn = SinkGuarantee::parse_all(&SinkGuarantee::state_all(&spec, true)).unwrap();
        assert_eq!(txn[0].guarantee, KafkaTransactions);
        assert_eq!(txn[0].sink, "kafka:out");
    }

    #[test]
    fn every_guarantee_round_trips_and_other_text_is_refused() {
        for g in Guarantee::ALL {
            assert_eq!(g.to_string().parse::<Guarantee>(), Ok(g));
        }
        assert!(SinkGuarantee::parse_all("none (simulated runtime: no records flow)").is_err());
        assert_eq!(SinkGuarantee::parse_all(""), Ok(vec![]));
    }
}
