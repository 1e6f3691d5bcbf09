#!/usr/bin/env bash
# One command from a fresh machine to records flowing: services up, Weir and
# a WASM UDF built, `weir serve` started, the UDF uploaded, a job created and
# deployed through its workflows, sample orders produced, and what the
# pipeline writes printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# NATS with tenant users (127.0.0.1:4223): weir serve writes the users and
# each tenant's NATS user may touch only its own subjects.
./scripts/services.sh postgres nats-tenants kafka
NATS_TENANTS="${WEIR_STATE_DIR:-$HOME/.local/state/weir}/nats-tenants"
export WEIR_NATS_URL="nats://127.0.0.1:${WEIR_NATS_TENANTS_PORT:-4223}"
export WEIR_NATS_USERS_FILE="$NATS_TENANTS/users.conf"
export WEIR_NATS_PID_FILE="$NATS_TENANTS/nats.pid"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true

TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
echo "[demo] building weir and the uppercase UDF (first build takes several minutes)"
cargo build -q -p weir --bin weir
CARGO_TARGET_DIR="$TARGET/udf-guests" cargo build -q --target wasm32-wasip2 --profile udf -p weir-udf-sdk --example uppercase
WEIR="$TARGET/debug/weir"
UDF="$TARGET/udf-guests/wasm32-wasip2/udf/examples/uppercase.wasm"
# CEP rules run in Weir's stock rule component, in the WASM sandbox.
export WEIR_CEP_COMPONENT="${WEIR_CEP_COMPONENT:-$(./scripts/cep-component.sh)}"

ID="$(date +%s)"
export WEIR_DB_SCHEMA="${WEIR_DB_SCHEMA:-weir}"
export WEIR_TENANT="${WEIR_TENANT:-demo}"
export WEIR_HTTP_ADDR="${WEIR_HTTP_ADDR:-127.0.0.1:8080}"
export WEIR_API_URL="http://$WEIR_HTTP_ADDR"
export WEIR_TIMEOUT=30s
LOG="${TMPDIR:-/tmp}/weir-serve-$ID.log"
# weir serve authenticates every command and API call. The admin's token is
# made once per machine and kept in a file only its owner reads.
ADMIN_TOKEN_FILE="${WEIR_ADMIN_TOKEN_FILE:-$HOME/.config/weir/admin-token}"
if [ ! -s "$ADMIN_TOKEN_FILE" ]; then
  mkdir -p "$(dirname "$ADMIN_TOKEN_FILE")"
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$ADMIN_TOKEN_FILE")
fi
export WEIR_ADMIN_TOKEN_FILE="$ADMIN_TOKEN_FILE"
ADMIN_TOKEN="$(head -n1 "$ADMIN_TOKEN_FILE")"

if curl -fsS "$WEIR_API_URL/healthz" >/dev/null 2>&1; then
  echo "[demo] using the weir serve already listening on $WEIR_HTTP_ADDR"
  SERVE_PID=""
else
  echo "[demo] starting weir serve (log: $LOG)"
  "$WEIR" serve >"$LOG" 2>&1 &
  SERVE_PID=$!
  trap '[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do
    curl -fsS "$WEIR_API_URL/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -20 "$LOG"; echo "[demo] weir serve exited"; exit 1; }
    sleep 0.1
  done
fi

step() { echo; echo "\$ weir $*"; "$WEIR" "$@"; }

# The admin creates the demo's tenant (or gives it a new token on a rerun);
# everything after acts as that tenant, with its token.
echo; echo "\$ weir tenant create $WEIR_TENANT   # as the admin"
if ! CREATED="$(WEIR_TOKEN="$ADMIN_TOKEN" "$WEIR" -o json tenant create "$WEIR_TENANT" 2>/dev/null)"; then
  echo "[demo] tenant $WEIR_TENANT exists; rotating its token"
  CREATED="$(WEIR_TOKEN="$ADMIN_TOKEN" "$WEIR" -o json tenant rotate-token "$WEIR_TENANT")"
fi
WEIR_TOKEN="$(printf '%s' "$CREATED" | sed -n 's/.*"token": *"\([a-z0-9_]*\)".*/\1/p')"
[ -n "$WEIR_TOKEN" ] || { echo "[demo] no token in: $CREATED"; exit 1; }
export WEIR_TOKEN
echo "token for tenant $WEIR_TENANT: ${WEIR_TOKEN:0:9}… (printed once by weir tenant create)"

# A tenant's jobs use only topics in its namespace: <tenant>.<name>.
IN="$WEIR_TENANT.orders-$ID"; OUT="$WEIR_TENANT.orders-upper-$ID"; JOB="orders-$ID"
step topic create "$IN" --partitions 2
step topic create "$OUT" --partitions 2
# Versions are immutable: each run uploads its own build under its own version.
UDF_VERSION="1.0.$ID"
step udf upload uppercase "$UDF" --version "$UDF_VERSION"

SPEC="$(mktemp --suffix .yaml)"
cat >"$SPEC" <<YAML
description: Uppercase every order
sources:
  - topic: $IN
    format: raw
operators:
  - { type: udf, id: upper, module: "uppercase@$UDF_VERSION", kind: map }
sinks:
  - { type: kafka, topic: $OUT }
parallelism: 2
checkpoint: { interval: 1s }
YAML
echo; echo "job spec:"; sed 's/^/  /' "$SPEC"
step job create "$JOB" --spec "$SPEC"
step job deploy "$JOB"

echo; echo "[demo] waiting for the deploy workflow to bring the job up"
for _ in $(seq 1 120); do
  phase="$("$WEIR" -o json job status "$JOB" | sed -n 's/.*"phase": *"\([a-z_]*\)".*/\1/p' | head -n1)"
  [ "$phase" = running ] && break
  [ "$phase" = failed ] && { "$WEIR" job status "$JOB"; "$WEIR" job history "$JOB"; exit 1; }
  sleep 0.5
done
step job status "$JOB"

echo; echo "\$ weir topic produce $IN   # 6 sample orders"
printf '%s\n' \
  '{"order":1,"customer":"ada","item":"coffee beans"}' \
  '{"order":2,"customer":"grace","item":"teapot"}' \
  '{"order":3,"customer":"linus","item":"kettle"}' \
  '{"order":4,"customer":"ada","item":"milk frother"}' \
  '{"order":5,"customer":"barbara","item":"grinder"}' \
  '{"order":6,"customer":"ken","item":"mugs"}' \
  | "$WEIR" topic produce "$IN" --key-field customer

echo; echo "\$ weir topic tail $OUT --count 6   # what the pipeline wrote"
"$WEIR" topic tail "$OUT" --count 6 --idle 30

step job status "$JOB"

step job stop "$JOB"
step job history "$JOB"
echo
echo "[demo] done: records flowed Kafka → WASM UDF → Kafka. Event log: PostgreSQL schema '$WEIR_DB_SCHEMA'."
