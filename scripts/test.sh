#!/usr/bin/env bash
# Runs every test (unit and integration) against real PostgreSQL, NATS and Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

./scripts/services.sh postgres nats kafka
rustup target add wasm32-wasip2 >/dev/null 2>&1 || echo "[test] warning: could not add wasm32-wasip2" >&2

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
