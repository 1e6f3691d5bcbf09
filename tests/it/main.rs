//! Integration tests against the real PostgreSQL, NATS JetStream and Kafka
//! broker. One binary, one module per feature (wasmtime's `tests/all` style).
//! This target belongs to the `weir` package (see orchestrator/Cargo.toml),
//! so `env!("CARGO_BIN_EXE_weir")` points at the freshly built binary.

#[path = "../support/lib.rs"]
mod support;

mod cli;
mod e2e;
mod lifecycle;
mod registry;
mod runtime;
mod runtime_cluster;
mod runtime_repartition;
mod store;
mod wasm;
mod workflow;
