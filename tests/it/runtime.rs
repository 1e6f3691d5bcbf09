//! The stream runtime against the real Kafka broker, PostgreSQL and NATS.

#[path = "runtime_broker.rs"]
mod broker;
