"""`vr-em/qwen3` end to end as a user runs it, on the CPU miniature (issue 20): the Prefect server of conftest.py,
a process worker on the `vr-gpu` pool started with `HF_HOME=mini/hf` (the miniature's hub caches, offline), and
`prefect deployment run vr-em/qwen3 --param profile=qwen3-mini`, with the HF sampling backend
(`sampling.backend=hf`; the vLLM variant is `make test-vllm`, which sets VR_MINI_BACKEND=vllm).

The run must complete with every piece of the qwen3 composition present: preflight, the Bespoke dataset from the
datasets cache, the Qwen3-style checkpoint, training under `accelerate launch` with 2 processes, sampling /
scoring / answer verification in 2 Ray shards each, lm-eval on MATH500/AIME/AMC slices and the hub suites from
the cache, the three published artifacts. A second run is all cache hits. Then a run whose pi0 training is
killed with its worker (SIGKILL of the worker and everything it started) after the launcher saved a state
resumes from that state when run again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from uishots import browser  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "mini"
BACKEND = os.environ.get("VR_MINI_BACKEND", "hf")
# by design they run every time (promotion: the gate, and the push and pointer moves of what it promotes)
NEVER_CACHED = ("preflight", "status", "publish-results", "dvc-version", "promote", "push-", "point-")
RUN_TIMEOUT = 1500


@pytest.fixture(scope="module")
def mini_inputs():
    """`python -m varreason.mini build` (deterministic: a rebuild writes the same bytes) unless present."""
    if not (MINI / "hf" / "README.md").exists() or not (MINI / "qwen3-mini" / "model.safetensors").exists():
        subprocess.run([sys.executable, "-m", "varreason.mini", "build", "--out", str(MINI)], cwd=ROOT, check=True,
                       timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return MINI


@pytest.fixture(scope="module")
def worker(stack, mini_inputs):
    """The only worker on vr-gpu for this module: conftest's workers are stopped, this one sees the miniature's
    HF_HOME (as a GPU host's worker sees its HF_HOME on shared storage)."""
    stack.stop_workers()
    stack.env_mini = {**stack.env, "HF_HOME": str(mini_inputs / "hf"), "HF_DATASETS_OFFLINE": "1",
                      "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    _start_worker(stack)
    yield stack
    _kill_tree(stack.procs["worker-mini"].pid)


def _start_worker(stack) -> subprocess.Popen:
    log = open(stack.tmp / "worker-mini.log", "a")
    p = subprocess.Popen([stack.env["PREFECT"], "worker", "start", "--pool", "vr-gpu", "--type", "process"],
                         cwd=ROOT, env=stack.env_mini, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.procs["worker-mini"] = p
    return p


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for line in subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines():
        c, parent = map(int, line.split())
        children.setdefault(parent, []).append(c)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process it started (the flow run, its launcher ranks, its Ray cluster), by PID."""
    for p in _descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _overrides(stack, name: str, **more) -> dict:
    return {"artifacts_dir": str(stack.tmp / name / "artifacts"), "results_dir": str(stack.tmp / name / "results"),
            "promotion.dir": str(stack.tmp / name / "promoted"), "sampling.backend": BACKEND, **more}


def _task_runs(stack, flow_run_id) -> list:
    """Every task run of the flow run and of its subflows (the shard fan-outs), once all are final."""
    return stack.task_runs(flow_run_id, subflows=True)


def _trained(art: Path) -> dict[str, dict]:
    """The stats of every checkpoint in the store, by the task run that built it (its ``.key.json`` label)."""
    return {json.loads((p.parent / ".key.json").read_text())["label"]: json.loads(p.read_text())
            for p in art.glob("checkpoint/[!.]*/stats.json")}


def _built(art: Path) -> set[str]:
    """The task runs (shard suffix dropped) that built an artifact of the store (their ``.key.json`` labels)."""
    labels = (json.loads(p.read_text()).get("label") for p in art.glob("*/[!.]*/.key.json"))
    return {re.sub(r"-s\d+$", "", x) for x in labels if x}


def _run(stack, overrides: dict, timeout: float = RUN_TIMEOUT):
    t0 = time.monotonic()
    run_id = stack.run_deployment("qwen3", {"profile": "qwen3-mini", "overrides": overrides})
    run = stack.wait_final(run_id, timeout=timeout)
    return run, time.monotonic() - t0


@pytest.fixture(scope="module")
def first(worker):
    load0 = os.getloadavg()
    run, wall = _run(worker, _overrides(worker, "main"))
    assert run.state is not None and run.state.is_completed(), (
        f"qwen3-mini ended {run.state}:\n{worker.log('worker-mini')}")
    print(f"\nqwen3-mini ({BACKEND}) through the deployment: {wall:.0f} s, load average {load0} -> "
          f"{os.getloadavg()}", file=sys.stderr)
    return run, wall


def test_first_run_composes_every_piece(worker, first):
    run, wall = first
    tasks = {t.name: t.state.name for t in _task_runs(worker, run.id)}
    # A fresh store computes every step, except a step whose key another task run of the same run computed first
    # (the estimators' shared round-1 traces and scores under pi0): Cached exactly when it built nothing.
    built = _built(Path(_overrides(worker, "main")["artifacts_dir"]))
    node = {t: re.sub(r"-s\d+$", "", t.removeprefix("merge-")) for t in tasks
            if not t.startswith(NEVER_CACHED + ("shards-",))}
    assert {t for t in node if tasks[t] != "Completed"} == {t for t, n in node.items() if n not in built}, tasks
    assert {"sample-traces-em-gml-r1", "score-traces-em-gml-r1"} <= set(node.values()) - built  # as --status says
    assert set(tasks.values()) <= {"Completed", "Cached"}, tasks
    for step in ("sample-traces-em-acc-r1", "score-traces-em-acc-r1", "rollout-answers-em-acc-r1",
                 "score-traces-em-gml-r1", "sample-responses-rft-r1"):
        assert {f"{step}-s0", f"{step}-s1", f"merge-{step}"} <= set(tasks), sorted(tasks)
    art = Path(_overrides(worker, "main")["artifacts_dir"])
    trained = _trained(art)
    assert set(trained) == {"train-pi0", "train-q0", "train-pi-em-acc-r1", "train-pi-em-gml-r1", "train-pi-rft-r1"}
    assert all(s["world"] == 2 for s in trained.values()), trained  # accelerate launch, 2 processes
    task = json.loads(next(art.glob("task/*/stats.json")).read_text())
    assert task["dataset"] == "zhouxiangxin/Bespoke-Stratos-17k-Reformatted" and task["n_train"] == 16
    evals = [json.loads(p.read_text()) for p in art.glob("eval/*/metrics.json")]
    assert len(evals) == 4
    expected = {"vr_math500", "vr_aime24", "vr_aime25", "vr_amc23", "vr_gpqa_diamond", "vr_olympiadbench",
                "vr_mmlu_pro", "vr_lcb_easy", "vr_lcb_medium", "vr_lcb_hard"}
    for m in evals:
        assert set(m["tasks"]) == expected and all(1 <= t["n_questions"] <= 2 for t in m["tasks"].values())
        assert m["versions"]["engine"] == BACKEND
    traces = json.loads(next(p for p in art.glob("traces/*/stats.json")
                             if "shards" in json.loads(p.read_text())).read_text())
    assert traces["n_traces"] == 16 * 8 and traces["n_unfinished"] < traces["n_traces"]  # some thoughts close

    async def artifacts(client):
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[run.id])))

    keys = {a.key for a in worker.api(artifacts) if a.key}
    assert keys == {f"vr-em-qwen3-mini-{k}" for k in ("accuracy", "report", "run-info", "status", "promotion")}, keys


def test_second_run_is_all_cache_hits(worker, first):
    run, wall = _run(worker, _overrides(worker, "main"))
    assert run.state.is_completed(), f"{run.state}:\n{worker.log('worker-mini')}"
    # `shards-<i>`: the task runs that stand for the shard subflows in the parent flow (never cached themselves)
    steps = {t.name: t.state.name for t in _task_runs(worker, run.id)
             if not t.name.startswith(NEVER_CACHED + ("shards-",))}
    assert len(steps) > 30 and set(steps.values()) == {"Cached"}, {k: v for k, v in steps.items() if v != "Cached"}
    print(f"\nqwen3-mini ({BACKEND}) re-run: {wall:.0f} s (first {first[1]:.0f} s), load {os.getloadavg()}",
          file=sys.stderr)
    assert wall < first[1], f"re-run {wall:.0f} s vs first {first[1]:.0f} s"


def test_killed_worker_resumes_training_from_the_launcher_state(worker, first):
    """A run with its own artifact store (so pi0 trains again) is killed with its worker once the launcher
    wrote a state; after a fresh worker and `deployment run` again, pi0 resumes from that state. One estimator
    and no RFT chain: the resumed run is about resuming, and the first run composed every piece already."""
    over = _overrides(worker, "killed", **{"train.init_steps": 24, "objective.estimators": ["gml"],
                                           "baselines.rft": False})
    art = Path(over["artifacts_dir"])
    run_id = worker.run_deployment("qwen3", {"profile": "qwen3-mini", "overrides": over})
    deadline = time.monotonic() + 600
    while not list(art.glob("checkpoint/.work-*/latest.json")):
        assert time.monotonic() < deadline, f"no launcher state after 600 s:\n{worker.log('worker-mini')}"
        time.sleep(0.2)
    state = json.loads(next(art.glob("checkpoint/.work-*/latest.json")).read_text())
    _kill_tree(worker.procs["worker-mini"].pid)
    assert not list(art.glob("checkpoint/[!.]*/stats.json")), "pi0 finished before the kill"
    _release(worker, run_id)
    _start_worker(worker)
    run, wall = _run(worker, over)
    assert run.state.is_completed(), f"{run.state}:\n{worker.log('worker-mini')}"
    print(f"\nqwen3-mini ({BACKEND}) after the kill at step {state['step']}: {wall:.0f} s, load {os.getloadavg()}",
          file=sys.stderr)
    pi0 = _trained(art)["train-pi0"]
    assert pi0["resumed_from"] == state["step"] >= 4, (pi0, state)
    assert not list(art.glob("checkpoint/.work-*")), "the resumed training left its state dir behind"


def _release(stack, run_id) -> None:
    """Mark the killed run Crashed, as Prefect would once it noticed: its worker is gone, so nothing else ends it,
    and until it ends it holds the deployment's concurrency slot (qwen3: 1) and the next run would wait."""
    from prefect.states import Crashed

    async def go(client):
        await client.set_flow_run_state(run_id, Crashed(message="worker SIGKILLed by the test"), force=True)

    stack.api(go)


def test_run_shows_in_the_ui(worker, first, browser, tmp_path_factory):
    from uishots import shoot, visible_text

    run, _ = first
    browser.get(f"{worker.url}/runs/flow-run/{run.id}")
    visible_text(browser, run.name)  # "vr-em-qwen3-mini"
    visible_text(browser, "Completed")
    visible_text(browser, "qwen3")  # the deployment
    shot = shoot(browser, tmp_path_factory.mktemp("screenshots") / "qwen3-mini.png")
    if os.environ.get("VR_UPDATE_SCREENSHOT"):  # docs/ui-qwen3-mini.png; a plain run leaves the tree clean
        import shutil

        shutil.copyfile(shot, ROOT / "docs" / "ui-qwen3-mini.png")
