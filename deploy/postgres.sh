#!/usr/bin/env bash
# A PostgreSQL cluster for the Prefect server, on one host, from Debian's `postgresql` package (`make postgres`).
#
#   deploy/postgres.sh start    init the cluster if needed, start it, create the database; print the
#                               connection URL for PREFECT_API_DATABASE_CONNECTION_URL on stdout
#   deploy/postgres.sh url      print that URL (the cluster must have been initialised)
#   deploy/postgres.sh stop     stop the cluster (fast shutdown)
#   deploy/postgres.sh status   exit 0 if it runs
#   deploy/postgres.sh psql ... psql connected to the database as `prefect` (e.g. psql -c 'select 1')
#   deploy/postgres.sh dump     pg_dump of the database on stdout
#
#   PG_DIR   state directory (default $PREFECT_HOME/pg, i.e. .prefect/pg): data/ (the cluster), password
#            (0600, the `prefect` role's), postgres.log
#   PG_PORT  TCP port on 127.0.0.1 (default 55432; no Unix socket is opened)
#   PG_BIN   directory of initdb/pg_ctl/psql (default: the newest /usr/lib/postgresql/*/bin, else PATH)
#   PG_OS_USER  who runs the server when this script runs as root, which PostgreSQL refuses to be
#            (default postgres, the account Debian's package creates)
#
# The server listens on 127.0.0.1 only; the role `prefect` (superuser of this private cluster, so Prefect's
# migrations can create the extensions they need) logs in with a random password (scram-sha-256). As root, the
# data directory belongs to PG_OS_USER, and the directories above it that root owns inside the state directory
# get that user's group with g+x (traverse only), so nobody else gains access; a blocking directory higher up is
# reported, not changed.
set -euo pipefail
die() { echo "error: $*" >&2; exit 1; }

PREFECT_HOME=$(realpath -m "${PREFECT_HOME:-$(pwd)/.prefect}")
PG_DIR=${PG_DIR:-$PREFECT_HOME/pg}
PG_PORT=${PG_PORT:-55432}
PG_OS_USER=${PG_OS_USER:-postgres}
DB=prefect
ROLE=prefect
mkdir -p "$PG_DIR"
PG_DIR=$(cd "$PG_DIR" && pwd)
DATA=$PG_DIR/data
PWFILE=$PG_DIR/password
LOG=$PG_DIR/postgres.log

if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$PG_BIN" ] || PG_BIN=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
fi
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL not found (no initdb in ${PG_BIN});" \
  "run \`make postgres\` (Debian: apt-get install -y postgresql) or set PG_BIN"

as_pg() {  # run a PostgreSQL binary as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

grant_traverse() {  # as root: let PG_OS_USER reach $DATA without opening anything to other users
  id -u "$PG_OS_USER" >/dev/null 2>&1 ||
    die "user $PG_OS_USER does not exist (PostgreSQL refuses to run as root); create it or set PG_OS_USER"
  local d="" part
  local -a parts
  IFS=/ read -r -a parts <<< "${PG_DIR#/}"
  for part in "${parts[@]}"; do  # from / down, so each test only asks about one more directory
    d="$d/$part"
    runuser -u "$PG_OS_USER" -- test -x "$d" && continue
    case "$d/" in
      "$PREFECT_HOME"/*|"$PG_DIR"/*) chgrp "$PG_OS_USER" "$d" && chmod g+x "$d" ;;
      *) die "user $PG_OS_USER cannot enter $d (needed to reach $DATA); set PG_DIR to a directory it can" \
             "reach, e.g. /var/tmp/vr-pg" ;;
    esac
  done
}

url() {
  [ -s "$PWFILE" ] || die "$PWFILE missing: run deploy/postgres.sh start first"
  echo "postgresql+asyncpg://$ROLE:$(cat "$PWFILE")@127.0.0.1:$PG_PORT/$DB"
}

init() {
  umask 077
  [ "$(id -u)" != 0 ] || grant_traverse
  [ -s "$PWFILE" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$PWFILE"
  local tmp
  tmp=$(mktemp "$PG_DIR/.pw.XXXXXX")
  cp "$PWFILE" "$tmp"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$DATA" && chown "$PG_OS_USER" "$DATA" "$tmp" && touch "$LOG" && chown "$PG_OS_USER" "$LOG"
  fi
  as_pg "$PG_BIN/initdb" -D "$DATA" -U "$ROLE" --pwfile="$tmp" --auth-local=scram-sha-256 \
    --auth-host=scram-sha-256 -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 ||
    { rm -f "$tmp"; die "initdb failed; see $PG_DIR/initdb.log"; }
  rm -f "$tmp"
  # Loopback TCP only; no Unix socket directory to own or share.
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = ''\n" "$PG_PORT" \
    | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
}

running() { [ -d "$DATA" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  [ -f "$DATA/PG_VERSION" ] || init
  [ "$(id -u)" != 0 ] || grant_traverse
  if ! running; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PG_PORT" -w -t 60 start >/dev/null ||
      die "PostgreSQL did not start on 127.0.0.1:$PG_PORT; see $LOG (port taken? set PG_PORT)"
  fi
  local have
  have=$(PGPASSWORD=$(cat "$PWFILE") "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'") || die "cannot connect to 127.0.0.1:$PG_PORT as $ROLE; see $LOG"
  [ "$have" = 1 ] || PGPASSWORD=$(cat "$PWFILE") "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" "$DB"
  url
}

stop() { if running; then as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  status) running ;;
  psql) shift; PGPASSWORD=$(cat "$PWFILE") exec "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" -d "$DB" "$@" ;;
  dump) PGPASSWORD=$(cat "$PWFILE") exec "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" "$DB" ;;
  *) echo "usage: $0 start|stop|url|status|psql ...|dump" >&2; exit 2 ;;
esac
