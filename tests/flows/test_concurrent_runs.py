"""Three `python -m flows.vr_em` processes started at once on one artifact store and one Prefect result store.

A1 and A2 have identical params, B differs in ``train.lr`` only (so it shares the data, backbone and seed-set
steps with A but none of the training and later steps). Each process has its own PREFECT_HOME, hence its own
ephemeral API server and SQLite database (two ephemeral servers on one SQLite file race on migrations and
locks); they share PREFECT_LOCAL_STORAGE_PATH, where the result records and the FlockLockManager's locks live,
and the artifacts dir. Proved: all three exit 0; every cached step ran (Completed) in exactly one process and
was Cached in the others that needed it; A1 and A2 report the same metrics, B different ones; every artifact
dir on disk is complete and its content hash matches its marker, and nothing temporary is left. A canary
credential in the environment of all three appears in no log, result record, Prefect database (which holds
the runs' parameters, logs and Prefect artifacts), metrics file or artifact.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from varreason.io import _DONE, hash_dir

ROOT = Path(__file__).resolve().parents[2]
# Cut-down smoke: one EM round of one estimator, no RFT, small data and short evaluations (~30 s alone).
SMALL = ["em.rounds=1", "objective.estimators=[gml]", "baselines.rft=false", "data.n_train=40",
         "data.n_heldout=10", "data.n_seed_traces=30", "eval.max_new_tokens=32"]
NEVER_CACHED = ("preflight", "status", "publish-results", "dvc-version")  # by design they run in every flow run
_STATE = re.compile(r"Task run '([^']+)' - Finished in state (\w+)\(")
_UNNAMED = re.compile(r"^(build-task|init-backbone|publish-results)-[0-9a-f]{3}$")  # Prefect's random suffix


def _states(log: str) -> dict[str, str]:
    out = {}
    for name, state in _STATE.findall(log):
        m = _UNNAMED.match(name)
        out[m.group(1) if m else name] = state
    return {n: s for n, s in out.items() if not n.startswith(NEVER_CACHED)}


def _scores(metrics_path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("wall_s")}
            for r in json.loads(metrics_path.read_text())["results"]]


@pytest.mark.slow
def test_concurrent_runs_share_steps_and_never_clobber(tmp_path):
    check_concurrent_runs(tmp_path)


def check_concurrent_runs(tmp_path: Path, extra_env: dict | None = None, db_dump=None) -> dict[str, str]:
    """The scenario above; ``extra_env`` goes to all three runs (e.g. one shared ``PREFECT_API_URL``, as
    tests/flows/test_server_postgres.py does), ``db_dump()`` returns the bytes of a database kept outside
    tmp_path for the canary check. Returns each run's log."""
    canary = f"canary-{secrets.token_hex(12)}"
    store, artifacts = tmp_path / "prefect-storage", tmp_path / "artifacts"
    runs = {"a1": [], "a2": [], "b": ["train.lr=1.0e-3"]}
    procs = {}
    for name, extra in runs.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}  # ephemeral server each
        env.update(PREFECT_HOME=str(tmp_path / f"home-{name}"), PREFECT_LOCAL_STORAGE_PATH=str(store),
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_LOGGING_LEVEL="INFO", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                   AWS_SECRET_ACCESS_KEY=canary, HF_TOKEN=canary, PREFECT_API_KEY_CANARY=canary, **(extra_env or {}))
        sets = [*SMALL, *extra, f"artifacts_dir={artifacts}", f"results_dir={tmp_path / 'results' / name}"]
        cmd = [sys.executable, "-m", "flows.vr_em", "--profile", "smoke", *(a for s in sets for a in ("--set", s))]
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
    logs = {name: p.communicate(timeout=600)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} failed:\n{logs[name][-4000:]}"

    begun = [re.search(r"^(\S+) \| INFO .*Beginning flow run", log, re.M).group(1) for log in logs.values()]
    ended = [re.search(r"^(\S+) \| INFO .*Flow run '[^']+' - Finished in state", log, re.M).group(1)
             for log in logs.values()]
    assert max(begun) < min(ended), (begun, ended)  # the three flow runs overlapped in time
    states = {name: _states(log) for name, log in logs.items()}
    assert "train-pi-em-gml-r1" in states["a1"] and "build-task" in states["a1"], states["a1"]
    assert set(states["a1"]) == set(states["a2"]) == set(states["b"])
    shared = {"build-task", "init-backbone", "build-seed-set-reasoner", "build-seed-set-posterior"}
    for step in states["a1"]:
        who = ("a1", "a2", "b") if step in shared else ("a1", "a2")
        ran = [n for n in who if states[n][step] == "Completed"]
        assert len(ran) == 1 and all(states[n][step] == "Cached" for n in who if n not in ran), (step, states)
        if step not in shared:
            assert states["b"][step] == "Completed", (step, states["b"])  # B's own keys: nobody else has them

    results = tmp_path / "results"
    assert _scores(results / "a1" / "metrics.json") == _scores(results / "a2" / "metrics.json")
    assert _scores(results / "b" / "metrics.json") != _scores(results / "a1" / "metrics.json")

    # <artifacts>/.locks holds produce's per-step builder lock files, not artifacts
    dirs = [d for step in artifacts.iterdir() if step.is_dir() and step.name != ".locks" for d in step.iterdir()]
    finals = [d for d in dirs if not d.name.startswith(".")]
    assert not [d for d in dirs if d.name.startswith((".tmp-", ".stale-"))], dirs
    assert len(list((artifacts / "checkpoint").glob("[!.]*"))) == 8  # pi0, q0, pi-r1, q-r1 for each lr
    for d in finals:
        assert (d / _DONE).read_text().strip() == hash_dir(d), d  # complete and never overwritten

    blobs = [log.encode() for log in logs.values()] + ([db_dump()] if db_dump else [])
    for where in (store, artifacts, results, *(tmp_path / f"home-{n}" for n in runs)):
        blobs += [f.read_bytes() for f in where.rglob("*") if f.is_file()]
    assert len(blobs) > 50 and not [b for b in blobs if canary.encode() in b]
    return logs
