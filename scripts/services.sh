#!/usr/bin/env bash
# Makes sure PostgreSQL, NATS (JetStream) and the tansu Kafka broker are up on
# 127.0.0.1, installing and starting them if needed. Idempotent; fails with a
# clear message when a service cannot be started.
set -euo pipefail

STATE_DIR="${WEIR_STATE_DIR:-$HOME/.local/state/weir}"
mkdir -p "$STATE_DIR"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done
  return 1
}

apt_install() {
  command -v apt-get >/dev/null || die "$1 is missing and apt-get is unavailable; install $1 by hand"
  log "installing $* from Debian packages"
  if [ "$(id -u)" -ne 0 ]; then die "installing $* needs root"; fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

ensure_postgres() {
  if port_open 5432; then log "PostgreSQL is up on 127.0.0.1:5432"; return; fi
  [ -d /etc/postgresql ] || apt_install postgresql
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || die "PostgreSQL did not start (pg_ctlcluster failed)"
  wait_port 5432 postgres 30 || die "PostgreSQL did not open 127.0.0.1:5432 within 30s"
}

ensure_nats() {
  if port_open 4222; then log "NATS is up on 127.0.0.1:4222"; return; fi
  [ -x /usr/sbin/nats-server ] || apt_install nats-server
  log "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log \
    || die "nats-server did not start"
  wait_port 4222 nats 30 || die "NATS did not open 127.0.0.1:4222 within 30s (see /var/log/nats-server.log)"
}

# tansu 0.6 with Weir's storage patch (scripts/tansu/): an index for header
# lookups and a bounded fetch page. Stock 0.6 scans every header row per
# fetched record and sums the whole rest of a partition on every fetch, so it
# slows quadratically as topics grow (docs/kafka-on-tansu.md). The install
# path carries the patch's hash, so a changed patch builds a new broker.
TANSU_VERSION=0.6.0
TANSU_PATCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tansu/tansu-storage-$TANSU_VERSION.patch"
TANSU_ID="$TANSU_VERSION-$(sha256sum "$TANSU_PATCH" | cut -c1-12)"
TANSU_ROOT="${WEIR_TANSU_ROOT:-$HOME/.local/share/weir/tansu-$TANSU_ID}"
TANSU_BIN="$TANSU_ROOT/bin/tansu"

crate_file() { # name version: the downloaded .crate file, if any
  ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$1-$2.crate" 2>/dev/null | head -n1
}

install_tansu() {
  local build="$STATE_DIR/tansu-build-$TANSU_ID" log="$STATE_DIR/tansu-install.log"
  log "building tansu $TANSU_VERSION with Weir's storage patch (about 10 minutes, once per machine; log: $log)"
  command -v patch >/dev/null || apt_install patch
  rm -rf "$build" && mkdir -p "$build/fetch/src"
  # Download the published crates through cargo itself (a throwaway manifest).
  printf '[package]\nname = "weir-tansu-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntansu = "=%s"\n[workspace]\n' \
    "$TANSU_VERSION" >"$build/fetch/Cargo.toml"
  touch "$build/fetch/src/lib.rs"
  cargo fetch --manifest-path "$build/fetch/Cargo.toml" >"$log" 2>&1 \
    || die "could not download tansu $TANSU_VERSION from crates.io; see $log"
  local c
  for c in tansu tansu-storage; do
    local f; f=$(crate_file "$c" "$TANSU_VERSION")
    [ -n "$f" ] || die "cargo fetch did not leave $c-$TANSU_VERSION.crate in the registry cache"
    tar xzf "$f" -C "$build" || die "cannot unpack $f"
  done
  (cd "$build/tansu-storage-$TANSU_VERSION" && patch -p1 --quiet <"$TANSU_PATCH") \
    || die "the tansu storage patch does not apply; see $TANSU_PATCH"
  # Build the published binary crate against the patched storage crate, with
  # the crate's own lock file (newer dependency versions break its build).
  local bin="$build/tansu-$TANSU_VERSION"
  printf '\n[workspace]\n\n[patch.crates-io]\ntansu-storage = { path = "../tansu-storage-%s" }\n' \
    "$TANSU_VERSION" >>"$bin/Cargo.toml"
  python3 - "$bin/Cargo.lock" <<'PY' || die "cannot point tansu's lock file at the patched storage crate"
import re, sys
path = sys.argv[1]
lock = open(path).read()
entry = re.compile(r'(\[\[package\]\]\nname = "tansu-storage"\nversion = "[^"]*"\n)source = "[^"]*"\nchecksum = "[^"]*"\n')
lock, n = entry.subn(r'\1', lock)
if n != 1:
    sys.exit("tansu-storage entry not found in Cargo.lock")
open(path, "w").write(lock)
PY
  CARGO_TARGET_DIR="$STATE_DIR/tansu-target" cargo install --path "$bin" --locked \
      --features dynostore,libsql --root "$TANSU_ROOT" >>"$log" 2>&1 \
    || die "building tansu failed; see $log"
  rm -rf "$build"
}

ensure_tansu() {
  [ -x "$TANSU_BIN" ] || install_tansu
  # A stable path for the tests' private brokers (tests/support/kafka.rs).
  mkdir -p "$HOME/.local/share/weir/bin" && ln -sf "$TANSU_BIN" "$HOME/.local/share/weir/bin/tansu"
  local pid_file="$STATE_DIR/tansu/broker.pid" pid
  if port_open 9092; then
    # A broker this script started from an older patch reads and writes the
    # database in a way the current one has moved past: replace it.
    pid=$(cat "$pid_file" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "$TANSU_BIN" ] \
        && readlink "/proc/$pid/exe" 2>/dev/null | grep -q '/tansu-[^/]*/bin/tansu$'; then
      log "restarting tansu: the running broker (pid $pid) predates the current storage patch"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do port_open 9092 || break; sleep 0.2; done
      port_open 9092 && die "the old tansu (pid $pid) still holds 127.0.0.1:9092"
    else
      log "Kafka broker is up on 127.0.0.1:9092"; return
    fi
  fi
  log "starting tansu (sqlite storage in $STATE_DIR/tansu)"
  mkdir -p "$STATE_DIR/tansu"
  # The sqlite path must be relative: tansu prefixes the working directory.
  (cd "$STATE_DIR/tansu" || exit 1
    nohup "$TANSU_BIN" broker \
      --listener-url tcp://127.0.0.1:9092 \
      --advertised-listener-url tcp://127.0.0.1:9092 \
      --storage-engine sqlite://tansu.db >"$STATE_DIR/tansu/broker.log" 2>&1 &
    echo $! >"$pid_file")
  wait_port 9092 tansu 30 || die "tansu did not open 127.0.0.1:9092 within 30s; see $STATE_DIR/tansu/broker.log"
}

# A second nats-server, on 4223, whose users `weir serve --nats-users-file`
# writes (an `include`d file) and reloads with SIGHUP through the pid file:
# each tenant may publish and subscribe only on its own subjects. The demo
# runs on it; the shared server on 4222 has no users, for the tests.
NATS_TENANTS_PORT="${WEIR_NATS_TENANTS_PORT:-4223}"
NATS_TENANTS_DIR="$STATE_DIR/nats-tenants"
ensure_nats_tenants() {
  if port_open "$NATS_TENANTS_PORT"; then
    log "NATS with tenant users is up on 127.0.0.1:$NATS_TENANTS_PORT"; return
  fi
  [ -x /usr/sbin/nats-server ] || apt_install nats-server
  mkdir -p "$NATS_TENANTS_DIR/js"
  # Until weir serve first writes its users the file is empty, and the
  # server open; serve writes it before it connects and signals the server.
  [ -f "$NATS_TENANTS_DIR/users.conf" ] || : >"$NATS_TENANTS_DIR/users.conf"
  cat >"$NATS_TENANTS_DIR/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_TENANTS_PORT
pid_file: "$NATS_TENANTS_DIR/nats.pid"
jetstream { store_dir: "$NATS_TENANTS_DIR/js" }
include users.conf
CONF
  log "starting NATS with tenant users on 127.0.0.1:$NATS_TENANTS_PORT"
  # --pidfile: the shared server runs the same binary, and must not count.
  start-stop-daemon --start --oknodo --background --pidfile "$NATS_TENANTS_DIR/nats.pid" \
    --exec /usr/sbin/nats-server -- -c "$NATS_TENANTS_DIR/nats.conf" -l "$NATS_TENANTS_DIR/nats.log" \
    || die "nats-server (tenant users) did not start"
  wait_port "$NATS_TENANTS_PORT" nats 30 \
    || die "NATS did not open 127.0.0.1:$NATS_TENANTS_PORT within 30s (see $NATS_TENANTS_DIR/nats.log)"
}

want="${*:-postgres nats kafka}"
for s in $want; do
  case "$s" in
    postgres) ensure_postgres ;;
    nats) ensure_nats ;;
    nats-tenants) ensure_nats_tenants ;;
    kafka) ensure_tansu ;;
    kafka-build) [ -x "$TANSU_BIN" ] || install_tansu; log "tansu: $TANSU_BIN" ;;
    # Not a service: Graphviz, which the lineage test renders DOT with.
    graphviz) command -v dot >/dev/null || apt_install graphviz; log "graphviz: $(command -v dot)" ;;
    # Not a service: headless Chromium, which the console's browser test drives.
    chromium) [ -x /usr/bin/chromium ] || apt_install chromium; log "chromium: /usr/bin/chromium" ;;
    *) die "unknown service $s" ;;
  esac
done
