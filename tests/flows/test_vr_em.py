"""The vr-em flow end to end on the smoke profile: every method and round reported; a re-run is all cache hits."""

import asyncio
import json
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.testing.utilities import prefect_test_harness

from flows.vr_em import vr_em
from varreason.config import load_config
from varreason.recipe import graph

ROOT = Path(__file__).resolve().parents[2]


def _scores(summary):
    """The deterministic part of a summary (timings vary run to run)."""
    return [{k: v for k, v in r.items() if not k.endswith("wall_s")} for r in summary["results"]]


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


async def _task_states(flow_run_id, timeout=60.0):
    """Task-run states of a flow run. Prefect 3 reports task states through events, asynchronously, so the
    server may lag the finished flow by a moment: poll until every run is final (names included)."""
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            states = {r.name: r.state.name if r.state else "None" for r in runs}
            if all(r.state is not None and r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.5)


@pytest.mark.slow
def test_smoke_flow_runs_then_caches(harness, tmp_path):
    overrides = {"artifacts_dir": str(tmp_path / "artifacts"), "results_dir": str(tmp_path / "results")}
    state = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=overrides, return_state=True)
    assert state.is_completed()
    summary = state.result()
    cells = {(r["method"], r["round"]) for r in summary["results"]}
    assert cells == {("sft", 0), ("rft", 1), ("rft", 2), ("em-acc", 1), ("em-acc", 2), ("em-gml", 1), ("em-gml", 2)}
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert metrics["results"] == summary["results"]
    assert (tmp_path / "results" / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| em-acc | 1 |" in (tmp_path / "results" / "results.md").read_text()
    assert {w["method"] for w in metrics["weights"]} == {"em-acc", "em-gml"}
    assert {c["stage"] for c in metrics["cost"]} >= {"sample-traces", "score", "weights", "train", "eval"}
    first = asyncio.run(_task_states(state.state_details.flow_run_id))
    assert "train-pi-em-acc-r2" in first and "sample-traces-em-gml-r1" in first
    # Acc and GML start round 1 from the same q0 and pi0: their traces and scores have one key, computed once
    assert {n for n, s in first.items() if s != "Completed"} == {"sample-traces-em-gml-r1", "score-traces-em-gml-r1"}
    assert first["sample-traces-em-gml-r1"] == first["score-traces-em-gml-r1"] == "Cached", first
    # the flow's task runs are the recipe's steps (the DVC stages, the plan and --status read the same list)
    never_cached = ("publish-results", "preflight", "status", "dvc-version")  # by design: they run every time
    steps = [n.run for n in graph(load_config(ROOT / "params.yaml", "smoke", overrides))]
    assert sorted(n for n in first if not n.startswith(never_cached)) == sorted(steps)

    again = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=overrides, return_state=True)
    assert _scores(again.result()) == _scores(summary)
    states = asyncio.run(_task_states(again.state_details.flow_run_id))
    not_cached = {n: s for n, s in states.items() if s != "Cached" and not n.startswith(never_cached)}
    assert not not_cached, f"re-run recomputed: {not_cached}"


@pytest.mark.slow
def test_deleting_the_store_recomputes(harness, tmp_path):
    import shutil

    overrides = {"artifacts_dir": str(tmp_path / "a"), "results_dir": str(tmp_path / "r"),
                 "em.rounds": 1, "objective.estimators": ["gml"], "baselines.rft": False}
    first = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=overrides, return_state=True)
    shutil.rmtree(tmp_path / "a")
    second = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=overrides, return_state=True)
    assert second.is_completed()
    assert _scores(second.result()) == _scores(first.result())  # same seeds, same numbers
    states = asyncio.run(_task_states(second.state_details.flow_run_id))
    assert not any(s == "Cached" for s in states.values()), states
