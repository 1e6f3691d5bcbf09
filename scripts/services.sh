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

ensure_tansu() {
  if port_open 9092; then log "Kafka broker is up on 127.0.0.1:9092"; return; fi
  if ! command -v tansu >/dev/null; then
    log "installing tansu 0.6 from crates.io (about 10 minutes, once per machine)"
    cargo install tansu --version '^0.6' --locked --features dynostore,libsql >"$STATE_DIR/tansu-install.log" 2>&1 \
      || die "cargo install tansu failed; see $STATE_DIR/tansu-install.log"
  fi
  log "starting tansu (sqlite storage in $STATE_DIR/tansu)"
  mkdir -p "$STATE_DIR/tansu"
  # The sqlite path must be relative: tansu prefixes the working directory.
  (cd "$STATE_DIR/tansu" && nohup tansu broker \
      --listener-url tcp://127.0.0.1:9092 \
      --advertised-listener-url tcp://127.0.0.1:9092 \
      --storage-engine sqlite://tansu.db >"$STATE_DIR/tansu/broker.log" 2>&1 &)
  wait_port 9092 tansu 30 || die "tansu did not open 127.0.0.1:9092 within 30s; see $STATE_DIR/tansu/broker.log"
}

want="${*:-postgres nats kafka}"
for s in $want; do
  case "$s" in
    postgres) ensure_postgres ;;
    nats) ensure_nats ;;
    kafka) ensure_tansu ;;
    *) die "unknown service $s" ;;
  esac
done
