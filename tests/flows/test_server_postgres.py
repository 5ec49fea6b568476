"""PostgreSQL as the Prefect server's database (issue 23), on a real server and a real PostgreSQL.

``deploy/server.sh`` with ``DB=postgres`` (what ``make server DB=postgres`` runs) initialises a cluster with
Debian's binaries (``deploy/postgres.sh``; as root, as the ``postgres`` user), starts it on a free loopback
port, and runs the Prefect server on it. Through that one server: the three concurrent runs of
tests/flows/test_concurrent_runs.py (which also check that a canary credential reaches neither the logs nor
the database: here a ``pg_dump``), then a Ray-sharded smoke run. Every process logs the Prefect client's retry
sleeps (benchmarks/db.py, the method of benchmarks/cache.py); the target is 0 retried 503s. The server's
tables must hold the runs (so they really went to PostgreSQL). PostgreSQL comes from ``make postgres``, a
``make test`` prerequisite; this test installs nothing.
"""

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from benchmarks.db import CONFIGS, DEBUG_CLIENT, base_env, cold_run, prefect_server, retries
from tests.flows.test_concurrent_runs import check_concurrent_runs

ROOT = Path(__file__).resolve().parents[2]


def _psql(env: dict, sql: str) -> str:
    out = subprocess.run([str(ROOT / "deploy" / "postgres.sh"), "psql", "-tAc", sql], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
def test_concurrent_and_ray_sharded_runs_on_a_postgres_backed_server(tmp_path):
    # Not under pytest's tmp dir: its parent is 0700, and the cluster's owner (the postgres user, under root)
    # must reach the data directory. deploy/postgres.sh opens this directory to that user's group only.
    home = Path(tempfile.mkdtemp(prefix="vr-pg-test-"))
    try:
        with prefect_server("postgres", home) as (url, env):
            pg_env = {**env, "PREFECT_HOME": str(home)}
            assert _psql(pg_env, "select version()").startswith("PostgreSQL")
            dump = lambda: subprocess.run([str(ROOT / "deploy" / "postgres.sh"), "dump"], cwd=ROOT, env=pg_env,
                                          capture_output=True, timeout=120, check=True).stdout
            logs = check_concurrent_runs(tmp_path / "concurrent", extra_env={"PREFECT_API_URL": url, **DEBUG_CLIENT},
                                         db_dump=dump)
            concurrent = retries("".join(logs.values()))
            ray = cold_run(tmp_path / "ray", "smoke", CONFIGS["ray2"], url)
            flow_runs = _psql(pg_env, "select count(*) from flow_run where name = 'vr-em-smoke' and state_type = "
                                      "'COMPLETED'")
            shard_runs = _psql(pg_env, "select count(*) from task_run where name like 'sample-traces-%-s1'")
        assert int(flow_runs) == 4, flow_runs  # three concurrent runs and the Ray run, all in PostgreSQL
        assert int(shard_runs) >= 1, shard_runs  # the Ray workers' shard task runs reached the same server
        assert concurrent["n_503"] == 0 and ray["retries"]["n_503"] == 0, (concurrent, ray["retries"])
        print(f"retries: concurrent {concurrent}, ray {ray['retries']}, ray wall {ray['wall_s']:.0f} s, "
              f"load {ray['loadavg_after']}")
        status = subprocess.run([str(ROOT / "deploy" / "postgres.sh"), "status"], cwd=ROOT, env=pg_env)
        assert status.returncode != 0, "server.sh started PostgreSQL, so it must stop it on exit"
    finally:
        shutil.rmtree(home, ignore_errors=True)


class _Busy(http.server.BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first request, then 200: one retry for the client to log."""

    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits += 1
        first = type(self).hits == 1
        self.send_response(503 if first else 200)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'"ok"')

    def log_message(self, *args):
        pass


def test_the_retry_count_sees_a_real_503(tmp_path):
    """The counting path the test above relies on: the environment switch makes a Prefect client in another
    process log its retry, and ``retries`` parses that line."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**base_env(tmp_path / "home"), **DEBUG_CLIENT,
               "PREFECT_API_URL": f"http://127.0.0.1:{server.server_port}/api"}
        code = ("from prefect.logging.configuration import setup_logging\nsetup_logging()  # as a flow run does\n"
                "from prefect.client.orchestration import get_client\n"
                "with get_client(sync_client=True) as c: c.hello()")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        r = retries(out.stdout + out.stderr)
        assert (r["n_503"], r["n"], r["by_code"]["503"]["sleep_s"]) == (1, 1, 0.0), (r, out.stderr[-2000:])
        quiet = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **{k: "" for k in DEBUG_CLIENT}},
                               capture_output=True, text=True, timeout=120)
        assert quiet.returncode == 0 and retries(quiet.stderr)["n"] == 0  # without the switch, no line to count
    finally:
        server.shutdown()
    assert _Busy.hits == 3
    assert retries("Received response with retryable status code 503. Another attempt will be made in 2.5s. "
                   "This is attempt 1/6.\nReceived response with retryable status code 429. Another attempt will "
                   "be made in 1s.")["by_code"] == {"503": {"n": 1, "sleep_s": 2.5}, "429": {"n": 1, "sleep_s": 1.0}}
    assert os.environ.get("PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL") is None  # nothing leaked into pytest
