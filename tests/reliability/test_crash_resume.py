"""Crash anywhere, resume exactly: SIGKILL a smoke run of the vr-em flow at named fault points (varreason/faults.py)
inside sampling, scoring, training, posterior refresh, evaluation and artifact/file writes, then re-run it.

Set-up: one Prefect server for the test (a real one: a SIGKILLed flow process would orphan Prefect's ephemeral
server) and one state dir ``D`` (artifact store, results dir, Prefect result storage) at fixed paths, so every run
has the same config digest. Each run is ``flows.cli.main`` (what ``python -m flows.vr_em`` calls) in its own
process, forked from a server that has the imports done (``forkrun.py``); the last re-run is a plain
``python -m flows.vr_em`` process. The smoke profile is cut to one EM round of the Acc estimator (plus the RFT
baseline), with ``train.checkpoint_every=10`` so a training kill resumes from a saved state: every stage is there.

1. Reference: an uninterrupted run in a fresh ``D``; its metrics.json (wall-clock fields dropped) and its number
   of artifacts per step. Then ``D`` is deleted (a fresh store: new store id, so no Prefect cache hit survives).
2. A chain, in flow order of the points: run i is armed at point i. It must die by SIGKILL exactly inside the task
   named for the point (the tasks it finished are exactly those before it in the reference order), must have
   taken every task finished by run i-1 from the cache (it is the re-run after kill i-1), and must leave every
   artifact at a real path complete. Then ``D`` is snapshotted and an unarmed re-run goes to the end; after it
   ``D`` is restored from the snapshot and run i+1 is armed.
3. Each unarmed re-run survives when: exit 0; metrics.json equal to the reference's (accuracy, pass@k, CI,
   weights/IWAE/ESS, token counts: all but wall-clock fields); every task finished before the kill is ``Cached``;
   every artifact complete before the re-run is untouched (same marker, same inode: not rebuilt); and the state
   is clean: no ``.tmp-*``/``.work-*``/``*.tmp`` anywhere in the store or results dir, every ``<step>/<key>``
   dir's ``.complete`` equals its content hash, and each step holds as many artifacts as in the uninterrupted run
   (one more would be an orphan: the run does not reference it). Point-specific checks add the resumed
   training state (``resumed_from``) and the reuse of an artifact renamed into place just before the kill.

Prints ``survived X/Y`` and records it as the junit test-suite property ``crash_resume``.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from varreason.io import hash_dir

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
# The points below count training steps: the step counts are pinned here, not inherited from the profile.
SETS = ["em.rounds=1", "objective.estimators=[acc]", "train.checkpoint_every=10", "train.init_steps=30",
        "train.steps=10", "train.posterior_steps=10", "data.n_train=60", "data.n_heldout=20",
        "data.n_seed_traces=30"]
NEVER_CACHED = ("preflight", "status", "publish-results", "dvc-version")  # by design they run every time

# (fault spec, the task it must kill, what it tests). In flow order: each point is reached by the re-run after
# the previous kill. `train-pi0/train-step:25` dies after step 25 of 30, the state of step 20 saved. `sample-token:n`
# is the n-th decoding step of the batch loop (every batch decodes more than 3 tokens unless all stop early).
POINTS = [
    ("task/write-file:1", "build-task", "mid-file write: questions.parquet written, not yet renamed"),
    ("train-pi0/train-step:25", "train-pi0", "SFT training, resumable state at step 20"),
    ("train-q0/artifact-renamed:1", "train-q0", "artifact renamed into place, task not yet finished"),
    ("eval/eval-generate:1", "evaluate-sft-r0", "evaluation, lm-eval generation done"),
    ("traces/sample-token:3", "sample-traces-em-acc-r1", "posterior sampling, mid-decoding"),
    ("scores/score-batch:1", "score-traces-em-acc-r1", "scoring under pi"),
    ("answers/sample-token:2", "rollout-answers-em-acc-r1", "Acc answer rollouts, mid-decoding"),
    ("weights/artifact-built:1", "weigh-traces-em-acc-r1", "artifact built, no marker yet"),
    ("train-pi-em-acc-r1/train-step:5", "train-pi-em-acc-r1", "EM reasoner training"),
    ("responses/sample-token:3", "sample-responses-em-acc-r1", "posterior refresh: sampling from pi"),
    ("train-q-em-acc-r1/train-step:6", "train-q-em-acc-r1", "posterior refresh: training q"),
    ("eval/sample-token:3", "evaluate-em-acc-r1", "evaluation, mid-decoding"),
    ("responses/artifact-marked:1", "sample-responses-rft-r1", "marker written, not yet renamed"),
    ("train-pi-rft-r1/train-step:3", "train-pi-rft-r1", "RFT training"),
    ("eval/artifact-renamed:1", "evaluate-rft-r1", "evaluation artifact in place, task not yet finished"),
    ("write-file:1", "publish-results", "results dir: metrics.json written, not yet renamed"),
]

_TASK_LINE = re.compile(r"Task run '([^']+)' - Finished in state (\w+)\(")
_SUFFIXED = re.compile(r"^(build-task|init-backbone|publish-results)-[0-9a-f]+$")  # Prefect's default run names
_VOLATILE = ("wall_s", "tokens_per_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A Prefect server of the test's own (started here, stopped by its process group id) and the run env."""
    base = tmp_path_factory.mktemp("crash")
    port = _free_port()
    e = {**os.environ, "PREFECT_HOME": str(base / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
         "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
         "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOCAL_STORAGE_PATH": str(base / "state" / "prefect")}
    e.pop("VARREASON_FAULT", None)
    log = open(base / "server.log", "w")
    server = subprocess.Popen([str(Path(PY).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--no-services", "--no-ui"], env=e, stdout=log, stderr=log,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Prefect server did not start: {(base / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, e
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


class Runner:
    """Runs the flow in fresh worker processes (forked from ``forkrun.py``, or a plain interpreter)."""

    def __init__(self, base: Path, env: dict):
        self.state, self.env, self.n = base / "state", env, 0
        self.proc = subprocess.Popen([PY, str(ROOT / "tests" / "reliability" / "forkrun.py")], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert json.loads(self._reply(300))["ready"]

    def _reply(self, timeout: float) -> str:
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the fork server and its child: a hung run fails the test
            raise TimeoutError(f"no answer from the fork server in {timeout} s")
        return self.proc.stdout.readline()

    def argv(self) -> list[str]:
        sets = [f"artifacts_dir={self.state / 'artifacts'}", f"results_dir={self.state / 'results'}", *SETS]
        return ["--profile", "smoke", *[a for s in sets for a in ("--set", s)]]

    def run(self, fault: str | None, fresh_interpreter: bool = False) -> tuple[int, str, float]:
        self.n += 1
        log = self.state.parent / f"run-{self.n:02d}.log"
        t0 = time.monotonic()
        if fresh_interpreter:
            e = {k: v for k, v in self.env.items() if k != "VARREASON_FAULT"}
            with open(log, "w") as fh:
                rc = subprocess.run([PY, "-m", "flows.vr_em", *self.argv()], cwd=ROOT, env=e, stdout=fh,
                                    stderr=subprocess.STDOUT, timeout=600).returncode
        else:
            req = {"argv": self.argv(), "env": {"VARREASON_FAULT": fault}, "log": str(log)}
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            rc = json.loads(self._reply(600))["rc"]
        return rc, log.read_text(), time.monotonic() - t0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _tasks(log: str) -> dict[str, str]:
    """Task name -> final state name ('Completed', 'Cached', ...) from a run's console log, in order."""
    return {_SUFFIXED.sub(r"\1", m[1]): m[2] for m in _TASK_LINE.finditer(log)}


def _stable(obj):
    """metrics.json without wall-clock fields (everything else is a function of the seeds) and without the
    ``artifacts`` provenance list: a resumed training records where it resumed in its stats.json, so its
    checkpoint's content hash (and the keys below it) differ from an uninterrupted run's, not its numbers."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if not k.endswith(_VOLATILE) and k != "artifacts"}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _first_diff(a, b, at: str = "") -> str:
    """The first leaf where ``a`` and ``b`` differ, as ``path: a != b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_diff(a.get(k), b.get(k), f"{at}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_diff(x, y, f"{at}[{i}]")
    return f"{at or '.'}: {a!r:.80} != {b!r:.80}"


def _artifacts(store: Path) -> dict[str, Path]:
    """Every ``<step>/<key>`` directory at a real (non-dot) path."""
    return {f"{d.parent.name}/{d.name}": d for d in sorted(store.glob("[!.]*/[!.]*")) if d.is_dir()}


def _incomplete(store: Path) -> list[str]:
    """Artifacts at real paths whose marker is missing or does not match their content."""
    bad = []
    for name, d in _artifacts(store).items():
        marker = d / ".complete"
        if not marker.exists() or marker.read_text().strip() != hash_dir(d):
            bad.append(name)
    return bad


def _debris(*roots: Path) -> list[str]:
    """Temp dirs, training work dirs and temp files anywhere under ``roots``."""
    return sorted(str(p) for r in roots for p in r.rglob("*")
                  if p.name.startswith((".tmp-", ".work-", ".spec-", ".old-")) or p.name.endswith(".tmp"))


def _markers(store: Path) -> dict[str, tuple[str, int]]:
    return {n: ((d / ".complete").read_text(), (d / ".complete").stat().st_ino)
            for n, d in _artifacts(store).items() if (d / ".complete").exists()}


def _stats_of(store: Path, label: str) -> dict | None:
    """stats.json of the checkpoint built by task run ``label`` (its .key.json names the run)."""
    for d in _artifacts(store).values():
        st, key = d / "stats.json", d / ".key.json"
        if d.parent.name == "checkpoint" and st.exists() and key.exists() and \
                json.loads(key.read_text()).get("label") == label:
            return json.loads(st.read_text())
    return None


def _before_rerun(fault: str, state: Path) -> list[str]:
    """What the kill at ``fault`` must have left: the debris a re-run has to clean up or resume from."""
    store, errs = state / "artifacts", []
    if fault == "train-pi0/train-step:25" and not list(store.glob("checkpoint/.work-*/state.safetensors")):
        errs.append("no resumable training state (state.safetensors) after a kill at step 25 with "
                    "checkpoint_every=10")
    if fault == "train-q0/artifact-renamed:1" and _stats_of(store, "train-q0") is None:
        errs.append("q0's artifact is not in place although the kill came after its rename")
    if fault == "eval/artifact-renamed:1" and len(list(store.glob("eval/[!.]*"))) != 3:
        errs.append("the RFT evaluation is not in place (3 eval artifacts) although the kill came after its rename")
    if fault in ("task/write-file:1", "weights/artifact-built:1", "responses/artifact-marked:1") \
            and not list(store.glob(f"{fault.split('/')[0]}/.tmp-*")):
        errs.append(f"no temp dir of the killed build in {fault.split('/')[0]}/")
    if fault == "write-file:1" and not list((state / "results").glob(".metrics.json.*.tmp")):
        errs.append("no temp file of metrics.json in the results dir")
    return errs


def _after_rerun(fault: str, state: Path) -> list[str]:
    if fault == "train-pi0/train-step:25":
        st = _stats_of(state / "artifacts", "train-pi0")
        if not st or st.get("resumed_from") != 20:
            return [f"pi0 did not resume from its saved state at step 20: {st and st.get('resumed_from')}"]
    return []


@pytest.mark.slow
def test_crash_anywhere_resume_exactly(env, record_testsuite_property):
    base, e = env
    state, t_start = base / "state", time.monotonic()
    runner = Runner(base, e)
    try:
        rc, log, secs = runner.run(None)
        assert rc == 0, log[-3000:]
        order = list(_tasks(log))
        assert all(s == "Completed" for s in _tasks(log).values()), _tasks(log)
        for _, task, _ in POINTS:
            assert task in order, f"{task} is not a task of the run: {order}"
        ref_metrics = _stable(json.loads((state / "results" / "metrics.json").read_text()))
        ref_counts = Counter(n.split("/")[0] for n in _artifacts(state / "artifacts"))
        assert not _debris(state / "artifacts", state / "results") and not _incomplete(state / "artifacts")
        print(f"reference run: {secs:.1f} s, {len(order)} tasks, artifacts per step {dict(ref_counts)}")
        shutil.rmtree(state)

        survived, failures, prev_done = [], {}, set()
        for i, (fault, task, what) in enumerate(POINTS):
            rc, log, secs = runner.run(fault)
            states = _tasks(log)
            done = {t for t, s in states.items() if s in ("Completed", "Cached")}
            chain = []  # the armed run must be a correct re-run of the previous kill and die where it is aimed
            if rc != -signal.SIGKILL:
                chain.append(f"rc {rc}, not SIGKILL: {log[-2000:]}")
            if done != set(order[: order.index(task)]):
                chain.append(f"killed outside {task}: finished {sorted(done ^ set(order[:order.index(task)]))}")
            chain += [f"{t} recomputed after the previous kill: {states.get(t)}" for t in sorted(prev_done)
                      if not t.startswith(NEVER_CACHED) and states.get(t) != "Cached"]
            chain += [f"incomplete artifact at a real path: {n}" for n in _incomplete(state / "artifacts")]
            chain += _before_rerun(fault, state)
            assert not chain, f"point {fault}: " + "; ".join(chain)  # the chain cannot go on from a wrong state
            prev_done = done

            snapshot = base / "snapshot"
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.copytree(state, snapshot, symlinks=True)
            before = _markers(state / "artifacts")
            last = i == len(POINTS) - 1
            rc2, log2, secs2 = runner.run(None, fresh_interpreter=last)
            errs = [] if rc2 == 0 else [f"re-run exit {rc2}: {log2[-2000:]}"]
            if rc2 == 0:
                metrics = _stable(json.loads((state / "results" / "metrics.json").read_text()))
                if metrics != ref_metrics:
                    errs.append(f"metrics differ from the uninterrupted run: {_first_diff(ref_metrics, metrics)}")
                states2 = _tasks(log2)
                errs += [f"{t} not taken from the cache: {states2.get(t)}" for t in sorted(done)
                         if not t.startswith(NEVER_CACHED) and states2.get(t) != "Cached"]
                after = _markers(state / "artifacts")
                errs += [f"finished artifact rebuilt or replaced: {n}" for n, m in before.items() if after.get(n) != m]
                errs += [f"debris: {p}" for p in _debris(state / "artifacts", state / "results")]
                errs += [f"incomplete artifact: {n}" for n in _incomplete(state / "artifacts")]
                counts = Counter(n.split("/")[0] for n in _artifacts(state / "artifacts"))
                if counts != ref_counts:
                    errs.append(f"artifacts per step {dict(counts)} != uninterrupted {dict(ref_counts)}")
                errs += _after_rerun(fault, state)
            print(f"[{i + 1:2d}/{len(POINTS)}] {fault:28s} in {task:27s} killed after {secs:5.1f} s; re-run "
                  f"{'(python -m flows.vr_em) ' if last else ''}{secs2:5.1f} s: "
                  f"{'survived' if not errs else 'FAILED: ' + '; '.join(errs)[:300]}  ({what})")
            (survived.append(fault) if not errs else failures.__setitem__(fault, errs))
            shutil.rmtree(state)
            snapshot.rename(state)
    finally:
        runner.close()
    line = f"survived {len(survived)}/{len(POINTS)} (SIGKILL at {len(POINTS)} points, {time.monotonic() - t_start:.0f} s)"
    print(line)
    record_testsuite_property("crash_resume", line)
    assert not failures, failures
