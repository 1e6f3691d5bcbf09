#!/usr/bin/env bash
# Builds Weir's stock CEP rule component and prints its path. Give it to
# `weir serve`/`weir worker` (--cep-component or WEIR_CEP_COMPONENT) so `cep`
# operators run in the WASM sandbox, and to `weir cep run --component`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rustup target add wasm32-wasip2 >/dev/null 2>&1 \
  || { echo "[cep-component] ERROR: cannot add the wasm32-wasip2 target" >&2; exit 1; }
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/udf-guests"
CARGO_TARGET_DIR="$TARGET" cargo build -q --target wasm32-wasip2 --profile udf -p weir-cep-rule --example weir_cep_rule >&2
echo "$TARGET/wasm32-wasip2/udf/examples/weir_cep_rule.wasm"
