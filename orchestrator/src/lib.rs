//! # Weir
//!
//! The orchestrator of Weir, a serverless platform for real-time stream jobs.
//! Commands arrive on NATS JetStream, every state change is an event in
//! PostgreSQL, and job state is a projection of those events.
//!
//! # Layout
//!
//! - [`domain`]: pure logic — ids, command envelope, job spec, job state machine. No I/O.
//! - [`store`]: the event store trait, its PostgreSQL implementation and an in-memory one.
//! - [`lifecycle`]: load → decide → group-commit for batches of commands.
//! - [`intake`]: JetStream consumer, outcome publishing, dead letters, outbox relay.
//! - [`workflow`]: the workflow engine: durable runs of `workflows/*.yaml` (pure part in [`domain::workflow`]).
//! - [`runtime`]: the data plane; [`runtime::control`] is its contract with the control plane.
//! - [`autotune`]: the resource auto-tuner's metrics window, memory and schedule (decision in [`domain::autotune`]).
//! - [`reconcile`]: keeps deployments in line with job phases; records crashes and resumes as events.
//! - [`registry`]: the WASM module registry: uploads, `name@version` resolution, warm compiled code.
//! - [`wasm`]: the sandbox: wasmtime engine, limits, instances, the packed batch codec.
//! - [`nats_auth`]: NATS users for tenants: the nats-server users file `weir serve` keeps.
//! - [`api`]: the HTTP query API, health and Prometheus metrics.
//! - [`console`]: the read-only web console at `/ui` (server-rendered HTML over the API's queries).
//! - [`client`]: publish a command and wait for its outcome (used by the CLI and tests).
//! - [`cli`]: the `weir` command line; the only place that wires everything together.
//! - [`schema`]: JSON Schemas generated from the types.
//! - [`config`], [`telemetry`]: settings, logging and metrics setup.
//!
//! Imports flow one way: `cli → api → lifecycle → {workflow, intake, store,
//! runtime, registry, wasm} → domain`. `docs/architecture.md` describes the
//! layers, the command path, the data path and the guarantees.
//!
//! # Core concepts
//!
//! A *command* (see [`domain::envelope`]) targets one *stream* (`job.<name>`).
//! The handler decides it against the stream's folded state and commits the
//! resulting events with a gap-free global *position*, together with the
//! command's *outcome*, in one transaction. Redelivered commands get their
//! stored outcome back; nothing is applied twice.

pub mod alerts;
pub mod api;
pub mod autotune;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod domain;
pub mod intake;
pub mod lifecycle;
pub mod nats_auth;
pub mod reconcile;
pub mod registry;
pub mod runtime;
pub mod schema;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod wasm;
pub mod workflow;
