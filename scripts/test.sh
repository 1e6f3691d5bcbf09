#!/usr/bin/env bash
# Runs every test (unit and integration) against real PostgreSQL, NATS and Kafka.
# `cargo test` alone runs the unit tests, which need no service; the
# integration suite (tests/it) is behind the `integration` feature, enabled here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

./scripts/services.sh postgres nats kafka
rustup target add wasm32-wasip2 >/dev/null 2>&1 || echo "[test] warning: could not add wasm32-wasip2" >&2

cargo fmt --all -- --check
# Lint both builds: the shipped one, and the one with the test doubles and the integration suite.
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features weir/integration -- -D warnings
cargo test --workspace --features weir/integration
