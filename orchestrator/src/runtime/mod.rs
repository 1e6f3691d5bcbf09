//! The stream runtime (data plane): Kafka sources, operators (WASM UDFs and
//! native ones), sinks, checkpoints and restore. [`control`] is its
//! contract with the control plane.
//!
//! # Using it
//!
//! ```no_run
//! use std::sync::Arc;
//! use weir::domain::job::JobSpec;
//! use weir::runtime::control::*;
//! use weir::runtime::{EmbeddedRuntime, NativeModules, RuntimeConfig};
//!
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = EmbeddedRuntime::new(
//!     RuntimeConfig::default(),             // brokers 127.0.0.1:9092, no Kafka transactions
//!     pool,                                 // schema with migration 0002; also used by postgres sinks
//!     Arc::new(NativeModules::builtins()),  // or the WASM module registry
//!     None,                                 // a NATS client enables nats sinks and metrics
//! );
//! let spec = JobSpec::parse(r#"
//! sources: [{ topic: orders }]
//! operators: [{ type: udf, id: up, module: "upper@1", kind: map }]
//! sinks: [{ type: kafka, topic: orders-upper }]
//! "#)?;
//! let key = DeploymentKey { tenant: "acme".into(), job: "orders".into() };
//! runtime.start(DeploymentRequest {
//!     key: key.clone(), version: 1, generation: 1, parallelism: 2,
//!     spec, restore: RestoreFrom::Latest, state_limit: None,
//! }).await?;                                   // returns once the start checkpoint is durable
//! let ck = runtime.checkpoint(&key).await?;    // on demand
//! println!("{:?}", runtime.status(&key).await?.guarantee);
//! runtime.stop(&key, 1, true).await?;          // final checkpoint, then stop
//! # Ok(()) }
//! ```
//!
//! # Core concepts
//!
//! - **Tasks** own source partitions, assigned explicitly and round-robin
//!   ([`topology::assign`]); parallelism is bounded by the partition count.
//!   Each reads with `assign` (no group rebalancing) and commits offsets to
//!   the consumer group `weir-<tenant>-<job>` after each checkpoint, for lag tools.
//! - **Operators** implement [`Operator`]: a batch in, one result per record
//!   out (outputs or a dead letter), against **host-owned keyed state per
//!   partition** ([`state::PartitionState`]). They run on blocking threads.
//! - **Checkpoints** ([`checkpoint`]): per partition, the next offset, state
//!   snapshot, watermark and the Kafka sinks' end offsets measured right
//!   after a flush; written in one PostgreSQL transaction, fenced by generation.
//! - **Exactly-once to Kafka** without broker transactions (tansu): every
//!   output carries its source position in headers; on restore the task
//!   scans the sink from the recorded end offsets and skips outputs already
//!   there ([`kafka::scan_written`]). With `RuntimeConfig::transactional`,
//!   Kafka transactions (transactional id per task and generation) are used
//!   as well.
//! - **Restore**: a crashed task restarts from the latest checkpoint with
//!   backoff and a restart budget ([`restart`]); a new generation (deploy
//!   after stop, rescale) restores the chosen checkpoint, and each
//!   partition's state goes to whichever task now owns it.
//! - **Bad records** go to the dead-letter topic with headers
//!   `weir-dlq-reason`, `weir-dlq-module`, `weir-source-topic`,
//!   `weir-source-partition`, `weir-source-offset`.
//!
//! # Layout
//!
//! `record` (records, replay headers), `state` (keyed state, snapshots),
//! `operator` + `operators` (the trait, key_by, native modules), `topology`
//! (assignment, operator chain), `watermark`, `rate_limit`, `restart`,
//! `kafka` (clients, replay scan), `sinks`, `checkpoint`, `task` (the loop),
//! `deployment` (supervisors, checkpoint coordinator), `embedded` (the
//! [`control::DeploymentControl`] implementation), `metrics`.

pub mod broker_watch;
pub mod checkpoint;
pub mod cluster;
pub mod control;
pub mod deployment;
pub mod embedded;
pub mod kafka;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod rate_limit;
pub mod record;
pub mod restart;
pub mod sinks;
pub mod state;
pub mod task;
pub mod topics;
pub mod topology;
pub mod watermark;

pub use embedded::{EmbeddedRuntime, RuntimeConfig};
pub use operator::{ModuleResolver, Operator, OperatorFactory, RecordResult};
pub use operators::NativeModules;
