"""The Prefect server's database: a cold ``vr-em`` run's wall time and the Prefect client's retry sleeps on
SQLite vs PostgreSQL, same machine, same commands (``make bench-db``; writes ``benchmarks/results-db.json``).

    python -m benchmarks.db [--profile smoke] [--config single ray2] [--repeats 1] [--set key=value ...]

Backends: ``ephemeral-sqlite`` (no PREFECT_API_URL: the CLI's own server on ``$PREFECT_HOME/prefect.db``, what
``python -m flows.vr_em`` does by default), ``server-sqlite`` and ``server-postgres`` (``deploy/server.sh``, i.e.
``make server [DB=postgres]``, started once per backend on a fresh database, its start not timed). Configs:
``single`` (one CLI run) and ``ray2`` (``sharding.shards=2``, ``runner=ray`` on 2 CPUs: two shards hit the API
at once). Every run is cold: fresh artifact store, result storage and PREFECT_HOME. Retries are counted the way
``benchmarks/cache.py`` counts them, from the Prefect client's debug message "Received response with retryable
status code N. Another attempt will be made in S s", here switched on in every process of the run (the CLI and
its Ray workers) with ``PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL=DEBUG`` and read from the run's output
(``RAY_DEDUP_LOGS=0`` so Ray forwards every worker line). The load average is recorded before and after each
run: these timings come from a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import ROOT, spread

RETRY = re.compile(r"retryable status code (\d+)\. Another attempt will be made in ([0-9.]+)s")
RETRY_EXC = re.compile(r"Encountered retryable exception during request\. Another attempt will be made in ([0-9.]+)s")
BACKENDS = ("ephemeral-sqlite", "server-sqlite", "server-postgres")
CONFIGS = {"single": [], "ray2": ["sharding.shards=2", "sharding.runner=ray", "sharding.ray_num_cpus=2"]}
DEBUG_CLIENT = {"PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL": "DEBUG", "RAY_DEDUP_LOGS": "0"}


def retries(text: str) -> dict:
    """The client's retry sleeps in ``text``: count and seconds per status code, and after connection errors."""
    codes: dict[str, dict] = {}
    for code, sleep in RETRY.findall(text):
        c = codes.setdefault(code, {"n": 0, "sleep_s": 0.0})
        c["n"] += 1
        c["sleep_s"] += float(sleep)
    exc = [float(s) for s in RETRY_EXC.findall(text)]
    return {"n": sum(c["n"] for c in codes.values()), "sleep_s": sum(c["sleep_s"] for c in codes.values()),
            "by_code": codes, "n_503": codes.get("503", {}).get("n", 0), "n_exception": len(exc),
            "exception_sleep_s": sum(exc)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(home: Path) -> dict:
    """A clean Prefect environment for one run or server: its own PREFECT_HOME, telemetry off, no API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", TQDM_DISABLE="1",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


@contextlib.contextmanager
def prefect_server(db: str, home: Path, timeout: float = 240):
    """``deploy/server.sh`` (what ``make server DB=<db>`` runs) on free ports with its state in ``home``; yields
    ``(api_url, env)``; stops it (and a PostgreSQL it started) on exit. ``env['PG_PORT']`` is PostgreSQL's."""
    port = free_port()
    env = base_env(home)
    env.update(PREFECT=str(Path(sys.executable).parent / "prefect"), PREFECT_PORT=str(port), DB=db,
               PG_PORT=str(free_port()))
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.out", "w")
    proc = subprocess.Popen([str(ROOT / "deploy" / "server.sh")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{db} server did not come up: {(home / 'server.out').read_text()[-3000:]}")
            time.sleep(1)
        yield url, env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # server.sh forwards it and then stops its PostgreSQL
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def cold_run(work: Path, profile: str, sets: list[str], api_url: str | None, timeout: float = 1800) -> dict:
    """One ``python -m flows.vr_em`` run on fresh state under ``work``; wall time, retries, load average."""
    env = base_env(work / "home")
    env.update(DEBUG_CLIENT, PREFECT_LOCAL_STORAGE_PATH=str(work / "storage"))
    if api_url:
        env["PREFECT_API_URL"] = api_url
    over = [f"artifacts_dir={work / 'artifacts'}", f"results_dir={work / 'results'}", *sets]
    cmd = [sys.executable, "-m", "flows.vr_em", "--profile", profile, *(a for s in over for a in ("--set", s))]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    (work / "run.log").write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-8:])
        raise RuntimeError(f"run in {work} exited {proc.returncode}:\n{tail}")
    return {"wall_s": wall, "retries": retries(proc.stdout), "loadavg_before": load0, "loadavg_after": os.getloadavg(),
            "metrics": json.loads((work / "results" / "metrics.json").read_text())["results"]}


def bench_db(profile: str = "smoke", configs: tuple[str, ...] = ("single", "ray2"), repeats: int = 1,
             sets: tuple[str, ...] = (), backends: tuple[str, ...] = BACKENDS, keep: str | None = None) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="vr-bench-db-") as tmp:
        root = Path(keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o711)  # PostgreSQL's own user (under root) must pass through to its cluster below
        for backend in backends:
            server = (contextlib.nullcontext((None, None)) if backend == "ephemeral-sqlite"
                      else prefect_server(backend.split("-")[1], root / backend / "server"))
            with server as (url, _):
                for config in configs:
                    runs = [cold_run(root / backend / f"{config}-{i}", profile, [*CONFIGS[config], *sets], url)
                            for i in range(repeats)]
                    rows.append(_row(backend, config, runs))
                    print(json.dumps({k: rows[-1][k] for k in ("backend", "config", "wall_s", "retry_sleep_s")}),
                          file=sys.stderr, flush=True)
    same = {c: len({json.dumps(_scores(r), sort_keys=True) for r in rows if r["config"] == c}) == 1 for c in configs}
    return {"metric": "cold vr-em run: wall time and Prefect client retry sleeps per database backend",
            "profile": profile, "overrides": list(sets), "repeats": repeats, "rows": rows,
            "same_metrics_across_backends": same}


def _scores(row: dict) -> list:
    return [{k: v for k, v in r.items() if not k.endswith("wall_s")} for r in row["metrics"]]


def _row(backend: str, config: str, runs: list[dict]) -> dict:
    return {"backend": backend, "config": config, "wall_s": spread([r["wall_s"] for r in runs]),
            "retry_sleep_s": spread([r["retries"]["sleep_s"] for r in runs]),
            "retries_503": [r["retries"]["n_503"] for r in runs], "retries": [r["retries"] for r in runs],
            "loadavg": [(r["loadavg_before"], r["loadavg_after"]) for r in runs], "metrics": runs[-1]["metrics"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.db", description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--config", nargs="+", default=["single", "ray2"], choices=sorted(CONFIGS))
    p.add_argument("--backend", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--keep", default=None, help="keep every run's state and log under this directory")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results-db.json"))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res = bench_db(args.profile, tuple(args.config), args.repeats, tuple(args.sets), tuple(args.backend), args.keep)
    res["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0],
                      "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                      "total_s": time.perf_counter() - t0}
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    for r in res["rows"]:
        print(f"{r['backend']:17s} {r['config']:7s} wall {r['wall_s']['median']:7.1f} s  retry sleeps "
              f"{r['retry_sleep_s']['median']:6.1f} s  503s {r['retries_503']}  load {r['loadavg'][0][0][0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
