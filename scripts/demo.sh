#!/usr/bin/env bash
# One command from a fresh machine to a running demo: services up, Weir
# built, `weir serve` started, and a job driven through its lifecycle.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

./scripts/services.sh postgres nats kafka

echo "[demo] building weir"
cargo build -q -p weir --bin weir
WEIR="${CARGO_TARGET_DIR:-target}/debug/weir"

DEMO_ID="demo$(date +%s)"
export WEIR_DB_SCHEMA="${WEIR_DB_SCHEMA:-weir}"
export WEIR_TENANT="${WEIR_TENANT:-demo}"
export WEIR_HTTP_ADDR="${WEIR_HTTP_ADDR:-127.0.0.1:8080}"
export WEIR_API_URL="http://$WEIR_HTTP_ADDR"
LOG="${TMPDIR:-/tmp}/weir-serve-$DEMO_ID.log"

if curl -fsS "$WEIR_API_URL/healthz" >/dev/null 2>&1; then
  echo "[demo] using the weir serve already listening on $WEIR_HTTP_ADDR"
  SERVE_PID=""
else
  echo "[demo] starting weir serve (log: $LOG)"
  "$WEIR" serve >"$LOG" 2>&1 &
  SERVE_PID=$!
  trap '[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -fsS "$WEIR_API_URL/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$LOG"; echo "[demo] weir serve exited"; exit 1; }
    sleep 0.1
  done
fi

JOB="orders-$DEMO_ID"
SPEC="$(mktemp --suffix .yaml)"
cat >"$SPEC" <<YAML
description: Uppercase every order
sources:
  - topic: orders
operators:
  - { type: udf, id: upper, module: "uppercase@1.0.0", kind: map }
sinks:
  - { type: kafka, topic: orders-upper }
parallelism: 2
YAML

step() { echo; echo "\$ weir $*"; "$WEIR" "$@"; }
step job create "$JOB" --spec "$SPEC"
step job compile "$JOB"
step command --kind job.compile_succeeded --target "$JOB" --payload '{"version":1,"plan_digest":"demo","state_fingerprint":"demo"}'
step job deploy "$JOB"
step command --kind job.mark_running --target "$JOB" --payload '{"generation":1}'
step job status "$JOB"
echo; echo "\$ weir job rescale $JOB --parallelism 0   # refused, with the reason"
"$WEIR" job rescale "$JOB" --parallelism 0 || echo "(exit code $?)"
step job stop "$JOB"
step command --kind job.mark_stopped --target "$JOB" --payload '{"generation":1}'
step job list
step job history "$JOB"
echo
echo "[demo] done. The event log is in PostgreSQL schema '$WEIR_DB_SCHEMA'; try: $WEIR job history $JOB"
