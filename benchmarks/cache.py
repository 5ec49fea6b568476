"""Cache: a completed ``vr-em`` run re-run with the same params, as a fraction of the cold run's wall time.

One driver subprocess (own PREFECT_HOME, result storage, artifacts and results directories under one temp dir,
so nothing is shared with the project's own runs) imports ``flows.vr_em`` once, runs the flow cold, then
``warm_repeats`` more times with the same params in the same process. The target metric is in-process
warm / cold: what the cache saves on the run itself. Every fresh ``python -m flows.vr_em`` also pays fixed
costs that no cache can remove (interpreter, torch/transformers/Prefect imports, Prefect's ephemeral server
start: ~10-20 s here), which dominate when the cold run is a short smoke run; so one CLI re-run is timed too
and reported as information, as ``cli_fraction`` = CLI re-run / (cold run + import time). The Prefect client's
sleeps before retrying a 503 (the ephemeral server's SQLite busy) are summed per run from its debug log, so
``warm_net_s`` shows the re-run without them. On the `tiny` demo (761 s cold) re-runs took 0.18% in process and
3.6% through the CLI (README, ``benchmarks/results-cache-tiny.json``).

Comment edit: the driver runs on a copy of the code (``varreason/``, ``tasks/``, ``flows/``, params.yaml), and
after the warm runs appends a comment line to every ``varreason/**/*.py``, forgets the parsed fingerprints and
runs once more: ``edit_fraction`` = that re-run / cold. Every step should be a cache hit (per-step fingerprints
hash the syntax tree, not the bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, spread

_DRIVER = r"""
import json, logging, re, sys, time
t0 = time.perf_counter()
from flows.cli import _parse_sets
from flows.vr_em import vr_em
import_s = time.perf_counter() - t0
backoff = [0.0]
class Backoff(logging.Handler):  # the Prefect client's sleeps before retrying a 503 of the SQLite-backed server
    def emit(self, rec):
        m = re.search(r"retryable status code \d+\. Another attempt will be made in ([0-9.]+)s", rec.getMessage())
        backoff[0] += float(m.group(1)) if m else 0.0
log = logging.getLogger("prefect.client")
log.setLevel(logging.DEBUG)
log.addHandler(Backoff(logging.DEBUG))
profile, warm_repeats, sets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
over = _parse_sets(sets)
walls, backoffs, metrics = [], [], []
for _ in range(1 + warm_repeats):
    t, b = time.perf_counter(), backoff[0]
    m = vr_em(profile=profile, overrides=over)
    walls.append(time.perf_counter() - t)
    backoffs.append(backoff[0] - b)
    metrics.append(json.dumps(m["results"], sort_keys=True, default=str))  # accuracy table
import pathlib
from varreason import fingerprint
for path in pathlib.Path("varreason").rglob("*.py"):  # the copy's code: a comment on every module
    path.write_text(path.read_text() + "\n# a comment edit (benchmarks/cache.py)\n")
fingerprint.clear_caches()
t, b = time.perf_counter(), backoff[0]
m = vr_em(profile=profile, overrides=over)
edit = {"wall": time.perf_counter() - t, "backoff": backoff[0] - b,
        "same_metrics": json.dumps(m["results"], sort_keys=True, default=str) == metrics[0]}
print("BENCH-CACHE " + json.dumps({"import_s": import_s, "walls": walls, "backoffs": backoffs,
                                   "same_metrics": len(set(metrics)) == 1, "edit": edit}), flush=True)
"""


def _env(home: Path, threads: int) -> dict:
    env = dict(os.environ)
    env.update(PREFECT_HOME=str(home / "prefect"), PREFECT_LOCAL_STORAGE_PATH=str(home / "prefect" / "storage"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    # A loaded machine can take longer than Prefect's default 20 s to start the ephemeral server.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    return env


def _copy_code(dest: Path) -> Path:
    """What a flow run needs, copied, so the comment-edit run can edit it."""
    import shutil

    for d in ("varreason", "tasks", "flows"):
        shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "params.yaml", dest / "params.yaml")
    return dest


def _run(cmd: list[str], env: dict, log: Path, cwd: Path = ROOT) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    with open(log, "a") as fh:
        fh.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd[1:4])} exited {proc.returncode}; last log lines:\n{tail}")
    return wall, proc.stdout


def bench_cache(profile: str = "smoke", sets: tuple[str, ...] = (), warm_repeats: int = 2, threads: int = 1,
                keep: str | Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="vr-bench-cache-") as tmp:
        home = Path(keep or tmp)
        home.mkdir(parents=True, exist_ok=True)
        code = _copy_code(home / "code")
        env = {**_env(home, threads), "PYTHONPATH": str(code)}
        log = home / "flow.log"
        over = [f"artifacts_dir={home / 'artifacts'}", f"results_dir={home / 'results'}", *sets]
        _, out = _run([sys.executable, "-c", _DRIVER, profile, str(warm_repeats), *over], env, log, code)
        line = next(x for x in reversed(out.splitlines()) if x.startswith("BENCH-CACHE "))
        drv = json.loads(line.removeprefix("BENCH-CACHE "))
        cli = [sys.executable, "-m", "flows.vr_em", "--profile", profile] + [a for s in over for a in ("--set", s)]
        cli_s, cli_out = _run(cli, env, log, code)
        # The flow's own test asserts every step task of a re-run is Cached; here we count what the log says.
        n_cached = cli_out.count("Cached")
    cold, warm = drv["walls"][0], drv["walls"][1:]
    fractions = [w / cold for w in warm]
    frac = spread(fractions)["median"]
    net = spread([w - b for w, b in zip(warm, drv["backoffs"][1:])])
    return {"metric": "cache: re-run / cold run wall time (in-process)", "unit": "fraction", "profile": profile,
            "overrides": list(sets), "cold_s": cold, "warm_s": spread(warm), "import_s": drv["import_s"],
            "fraction": frac, "fraction_spread": spread(fractions), "target": "<= 5%", "met": frac <= 0.05,
            "same_metrics": drv["same_metrics"], "cold_backoff_s": drv["backoffs"][0],
            "warm_backoff_s": spread(drv["backoffs"][1:]), "warm_net_s": net,
            "net_fraction": net["median"] / cold, "cli_rerun_s": cli_s,
            "cli_fraction": cli_s / (cold + drv["import_s"]), "cli_cached_log_lines": n_cached,
            "edit_s": drv["edit"]["wall"], "edit_fraction": drv["edit"]["wall"] / cold,
            "edit_backoff_s": drv["edit"]["backoff"], "edit_same_metrics": drv["edit"]["same_metrics"],
            "edit_met": drv["edit"]["wall"] / cold <= 0.05}
