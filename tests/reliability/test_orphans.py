"""No orphans (issue 23, item 2): ``kill -9`` of ``python -m flows.vr_em`` at any moment leaves no process it
started alive for more than a few seconds, and the re-run still gives the uninterrupted run's metrics.

The runs are a cut-down smoke profile with Ray shards (so the CLI has the ephemeral Prefect server, the run's
reaper, Ray's GCS, raylet and worker processes below it). Descendants are tracked two independent ways while
each run goes: the process tree under the CLI (polled from /proc every 0.1 s, keyed by pid and start time so a
reused pid is never confused with a tracked process) and an outer ``VARREASON_OWNERS`` marker the test puts in
the CLI's environment, which every descendant inherits even after it is re-parented away from the tree. First
an uninterrupted run (its normal exit must leave nothing either), then, in a second state directory, three
attempts SIGKILLed at seeded random moments (one early, one while Ray's processes are up, one later), then a run
to the end, whose metrics must equal the uninterrupted run's. After each kill every tracked process and every
marked process must be gone within ``LIMIT_S``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from varreason import procs

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 8.0  # the reaper's SIGTERM grace (3 s) plus a SIGKILL round and slack for a loaded machine
SETS = ["em.rounds=1", "objective.estimators=[gml]", "baselines.rft=false", "data.n_train=40", "data.n_heldout=10",
        "data.n_seed_traces=30", "eval.max_new_tokens=32", "sharding.shards=2", "sharding.runner=ray",
        "sharding.ray_num_cpus=2"]

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="tracks processes through /proc (Linux)")


class Attempt:
    """One CLI run in ``state``; ``kill`` (a predicate on (seconds since start, live descendants)) SIGKILLs it."""

    def __init__(self, state: Path, token: str, kill=None, timeout: float = 900):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(state / "home"), PREFECT_LOCAL_STORAGE_PATH=str(state / "storage"),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
                   OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT),
                   **{procs.OWNERS: token})
        sets = [*SETS, f"artifacts_dir={state / 'artifacts'}", f"results_dir={state / 'results'}"]
        cmd = [sys.executable, "-m", "flows.vr_em", "--profile", "smoke", *(a for s in sets for a in ("--set", s))]
        state.mkdir(parents=True, exist_ok=True)
        self.log = state / f"run-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.token, self.seen, self.killed_at, self.names_at_kill = token, {}, None, []
        t0 = time.monotonic()
        while self.proc.poll() is None:
            live = procs.descendants(self.proc.pid)
            self.seen.update({(p.pid, p.start): p for p in live})
            now = time.monotonic() - t0
            if kill is not None and kill(now, live):
                self.names_at_kill = sorted(p.name for p in live)
                os.kill(self.proc.pid, signal.SIGKILL)
                self.killed_at = now
                break
            assert now < timeout, f"run did not finish in {timeout} s; log {self.log}"
            time.sleep(0.1)
        self.proc.wait(timeout=60)
        self.wall = time.monotonic() - t0

    def survivors_after(self, limit: float) -> tuple[float, list]:
        """Wait up to ``limit`` s for every tracked and every marked process to be gone; (seconds, survivors)."""
        t0 = time.monotonic()
        while True:
            left = [p for p in self.seen.values() if procs.alive(p)] + procs.marked(self.token)
            if not left or time.monotonic() - t0 > limit:
                return time.monotonic() - t0, left


def _scores(state: Path) -> list[dict]:
    rows = json.loads((state / "results" / "metrics.json").read_text())["results"]
    return [{k: v for k, v in r.items() if not k.endswith("wall_s")} for r in rows]


def _cleanup(token: str) -> None:
    for p in procs.marked(token):
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_sigkill_of_the_cli_leaves_no_process_and_the_rerun_matches(tmp_path):
    token = f"orphan-test-{uuid.uuid4().hex[:8]}"
    rng = random.Random(23)
    try:
        ref = Attempt(tmp_path / "reference", token)
        assert ref.proc.returncode == 0, ref.log.read_text()[-4000:]
        took, left = ref.survivors_after(LIMIT_S)
        assert not left, f"left after a normal exit: {left}"
        names = {p.name for p in ref.seen.values()}
        assert {"raylet", "gcs_server"} <= names, names  # the Ray processes were there to be reaped

        state, report = tmp_path / "killed", []
        ray_up = lambda live: any(p.name == "raylet" for p in live)
        delay = rng.uniform(0.0, 5.0)
        first_ray: list[float] = []

        def when_ray(now, live):
            if ray_up(live) and not first_ray:
                first_ray.append(now)
            return bool(first_ray) and now >= first_ray[0] + delay

        kills = [lambda now, live, t=rng.uniform(1.0, 0.25 * ref.wall): now >= t, when_ray,
                 lambda now, live, t=rng.uniform(0.2 * ref.wall, 0.6 * ref.wall): now >= t]
        for kill in kills:
            run = Attempt(state, token, kill)
            took, left = run.survivors_after(LIMIT_S)
            report.append({"killed_at_s": run.killed_at, "live_at_kill": run.names_at_kill, "gone_after_s": took,
                           "rc": run.proc.returncode})
            assert not left, f"alive {LIMIT_S} s after kill -9 of the CLI: {left}; {report}"
        print(json.dumps(report, indent=1))
        landed = [r for r in report if r["killed_at_s"] is not None]
        assert len(landed) >= 2 and any("raylet" in r["live_at_kill"] for r in landed), report

        final = Attempt(state, token)
        assert final.proc.returncode == 0, final.log.read_text()[-4000:]
        assert not final.survivors_after(LIMIT_S)[1]
        assert _scores(state) == _scores(tmp_path / "reference")
    finally:
        _cleanup(token)
