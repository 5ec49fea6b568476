"""Cache: a completed ``vr-em`` run re-run with the same params, as a fraction of the cold run's wall time.

Both runs are ``python -m flows.vr_em`` subprocesses with their own PREFECT_HOME, result storage, artifacts
and results directories under one temp dir, so nothing is shared with the project's own runs. The re-run's time
includes the fixed costs every invocation pays whatever the profile (interpreter + torch/transformers/Prefect
imports, Prefect's ephemeral server start, one cache lookup per task); the fraction therefore shrinks as the
cold run grows (README: the `tiny` demo, 537 s cold, re-ran in 15.7 s = 2.9%). ``startup_s`` times a bare
``import flows.vr_em`` to show how much of the re-run is start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, spread


def _env(home: Path, threads: int) -> dict:
    env = dict(os.environ)
    env.update(PREFECT_HOME=str(home / "prefect"), PREFECT_LOCAL_STORAGE_PATH=str(home / "prefect" / "storage"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    # A loaded machine can take longer than Prefect's default 20 s to start the ephemeral server.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    return env


def _timed_run(cmd: list[str], env: dict, log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd[1:4])} exited {proc.returncode}; last log lines:\n{tail}")
    return wall


def bench_cache(profile: str = "smoke", sets: tuple[str, ...] = (), warm_repeats: int = 2, threads: int = 1,
                keep: str | Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="vr-bench-cache-") as tmp:
        home = Path(keep or tmp)
        home.mkdir(parents=True, exist_ok=True)
        env = _env(home, threads)
        log = home / "flow.log"
        over = [f"artifacts_dir={home / 'artifacts'}", f"results_dir={home / 'results'}", *sets]
        cmd = [sys.executable, "-m", "flows.vr_em", "--profile", profile] + [a for s in over for a in ("--set", s)]
        cold = _timed_run(cmd, env, log)
        warm = [_timed_run(cmd, env, log) for _ in range(warm_repeats)]
        startup = [_timed_run([sys.executable, "-c", "import flows.vr_em"], env, log) for _ in range(2)]
        text = log.read_text(errors="replace")
        # The flow's own test asserts every step task of a re-run is Cached; here we count what the log says.
        n_cached = text.count("Cached")
    fractions = [w / cold for w in warm]
    frac = spread(fractions)["median"]
    return {"metric": "cache: re-run / cold run wall time", "unit": "fraction", "profile": profile,
            "overrides": list(sets), "cold_s": cold, "warm_s": spread(warm), "startup_s": spread(startup),
            "fraction": frac, "fraction_spread": spread(fractions), "target": "<= 5%", "met": frac <= 0.05,
            "cached_log_lines": n_cached}
