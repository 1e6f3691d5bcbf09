//! The stream runtime (data plane): Kafka sources, WASM operators, sinks,
//! checkpoints and restore. [`control`] is its contract with the control plane.

pub mod control;
