//! The stream runtime against the real Kafka broker, PostgreSQL and NATS.
//! Every test uses its own topics (random suffix), PostgreSQL schema and job;
//! the rig they share is in `support::runtime`.

mod alerts;
mod broker;
mod cep;
mod cep_serve;
mod cluster;
mod pipeline;
mod reconcile;
mod repartition;
mod sinks;
mod slow_acks;
mod state;
mod wasm;
