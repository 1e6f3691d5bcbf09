//! Integration tests against the real PostgreSQL, NATS JetStream and Kafka
//! broker. One binary, one module per feature (wasmtime's `tests/all` style).
//! This target belongs to the `weir` package (see orchestrator/Cargo.toml)
//! and needs its `integration` feature: `cargo test -p weir --features
//! integration --test it` (scripts/test.sh runs it with everything else).

// A test binary: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[path = "../support/lib.rs"]
mod support;

mod alerts;
mod autotune;
mod cep;
mod cli;
mod console;
mod e2e;
mod lifecycle;
mod lineage;
mod registry;
mod runtime;
mod security;
mod store;
mod wasm;
mod workflow;
