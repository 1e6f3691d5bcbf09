//! Sinks: where outputs go. Each is built from its spec by the task that
//! uses it, receives whole batches, and is flushed at every checkpoint.
//!
//! | sink | guarantee |
//! |---|---|
//! | Kafka | exactly-once: transactions, or deterministic replay on brokers without them |
//! | PostgreSQL | effectively exactly-once: idempotent upsert by key columns |
//! | NATS | at-least-once |
//! | HTTP | at-least-once, retried with backoff |

mod http;
mod kafka;
mod nats;
mod postgres;

pub use http::HttpSink;
pub use kafka::KafkaSink;
pub use nats::NatsSink;
pub use postgres::PgSink;

use super::record::{DeadLetter, Output};

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
