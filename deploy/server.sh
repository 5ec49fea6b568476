#!/usr/bin/env bash
# `make server`: the Prefect server (API + UI) on 127.0.0.1:PREFECT_PORT, in the foreground; Ctrl-C stops it.
#
#   PREFECT       prefect executable (default .venv/bin/prefect)
#   PREFECT_PORT  port of the API and the UI (default 4200)
#   DB            sqlite (default: $PREFECT_HOME/prefect.db, nothing to set up) or postgres (deploy/postgres.sh:
#                 a cluster under $PREFECT_HOME/pg on 127.0.0.1:PG_PORT, started here and stopped on exit if
#                 this script started it)
#
# The UI's JavaScript calls the API at PREFECT_UI_API_URL, which Prefect otherwise derives from
# PREFECT_API_URL or from PREFECT_SERVER_API_HOST/PORT, not from `--port`: without it a server on another port
# serves a UI that calls http://127.0.0.1:4200/api. Both are set here from PREFECT_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFECT=${PREFECT:-.venv/bin/prefect}
PORT=${PREFECT_PORT:-4200}
HOST=127.0.0.1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_API_HOST=$HOST PREFECT_SERVER_API_PORT=$PORT
export PREFECT_UI_API_URL=${PREFECT_UI_API_URL:-http://$HOST:$PORT/api}

started_pg=0
case "${DB:-sqlite}" in
  sqlite) ;;
  postgres)
    deploy/postgres.sh status || started_pg=1
    PREFECT_API_DATABASE_CONNECTION_URL=$(deploy/postgres.sh start)
    export PREFECT_API_DATABASE_CONNECTION_URL
    echo "Prefect database: PostgreSQL on 127.0.0.1:${PG_PORT:-55432} (deploy/postgres.sh)" >&2 ;;
  *) echo "error: DB=${DB} is not a known database; use DB=sqlite (default) or DB=postgres" >&2; exit 2 ;;
esac

"$PREFECT" server start --host "$HOST" --port "$PORT" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' INT TERM
rc=0
wait "$server" || rc=$?
wait "$server" 2>/dev/null || true  # a trapped signal interrupts the first wait; this one sees it exit
if [ "$started_pg" = 1 ]; then deploy/postgres.sh stop; fi
exit "$rc"
