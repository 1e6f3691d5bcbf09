#!/usr/bin/env bash
# Runs every test (unit and integration) against real PostgreSQL, NATS and Kafka.
# `cargo test` alone runs the unit tests, which need no service; the
# integration suite (tests/it) is behind the `integration` feature, enabled here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

./scripts/services.sh postgres nats kafka graphviz chromium
rustup target add wasm32-wasip2 >/dev/null 2>&1 || echo "[test] warning: could not add wasm32-wasip2" >&2

cargo fmt --all -- --check
# Lint both builds: the shipped one, and the one with the test doubles and the integration suite.
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features weir/integration -- -D warnings
cargo test --workspace --features weir/integration

# The packed-batch format's unsafe code, under Miri: undefined behaviour that a
# normal run cannot see (out-of-bounds or uninitialised writes) fails here.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >/dev/null \
  || { echo "[test] ERROR: cannot install the nightly toolchain that Miri needs" >&2; exit 1; }
rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 \
  || { echo "[test] ERROR: cannot add Miri to the nightly toolchain" >&2; exit 1; }
cargo +nightly miri test -p weir-udf-sdk --no-default-features --lib abi
