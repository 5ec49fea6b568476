"""The vr-sweep flow on the smoke profile: 2 arms (a K sweep) x 2 seeds as vr-em subflows of one parent run,
sharing cached upstream steps, with one summary (means, paired contrasts, the K ablation, the bias table)."""

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from prefect.testing.utilities import prefect_test_harness

from prefect_helpers import final_task_runs, state_names

from flows.vr_sweep import vr_sweep
from varreason.sweep import load_grid

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ("build-task", "init-backbone", "build-seed-set-reasoner", "build-seed-set-posterior", "train-pi0",
            "train-q0")


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=300):  # a loaded 2-core machine starts it slowly
        yield


async def _subflows(parent_id, timeout=90.0):
    """{(seed, K) from the parameters: {task run name: state}} of every subflow of ``parent_id``, states final."""
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            subs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
            if len(subs) == 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        out = {}
        for fr in subs:
            o = fr.parameters.get("overrides") or {}
            runs = await final_task_runs(client, [fr.id], max(deadline - time.monotonic(), 1.0))
            out[(o.get("seed"), o.get("sampling.traces_per_question", 2))] = state_names(runs)
        return out


@pytest.mark.slow
def test_sweep_smoke_two_arms_two_seeds(harness, tmp_path):
    grid = {"profile": "smoke", "out_dir": str(tmp_path / "summary"),
            "arms": {"main": {"seeds": [0, 1]},
                     "k1": {"seeds": [0, 1], "overrides": {"sampling.traces_per_question": 1,
                                                           "baselines.rft_samples": 1,
                                                           "objective.estimators": ["gml"]}}},
            "analysis": {"metrics": ["avg@n", "pass@2"], "contrasts": [["em-gml", "rft"], ["em-gml", "sft"]],
                         "ablations": [{"name": "K", "method": "em-gml", "round": 1, "baseline": "main",
                                        "arms": ["k1"]}],
                         "bias": {"arm": "main", "pairs": [["rft_share", "em-gml"]]}, "n_boot": 500}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))  # arms run in file order: main, then k1
    load_grid(path)  # valid
    # main runs both estimators: their chains share round 1's traces (one key), which once deadlocked a sweep
    # whose subflows ran inside tasks (nested cache transactions hold their locks until the outer one commits)
    base = {"artifacts_dir": str(tmp_path / "artifacts"), "em.rounds": 1, "objective.estimators": ["acc", "gml"]}
    state = vr_sweep(grid_path=str(path), params_path=str(ROOT / "params.yaml"), concurrency=1,
                     base_overrides=base, return_state=True)
    assert state.is_completed()
    assert state.name == "Completed"
    out = state.result()
    assert set(out["arms"]) == {"main", "k1"} and out["arms"]["main"]["seeds"] == [0, 1]
    contrasts = {(tuple(r["a"]), tuple(r["b"]), r["metric"]) for r in out["arms"]["main"]["contrasts"]}
    assert contrasts == {(("em-gml", 1), ("rft", 1), "avg@n"), (("em-gml", 1), ("rft", 1), "pass@2"),
                         (("em-gml", 1), ("sft", 0), "avg@n"), (("em-gml", 1), ("sft", 0), "pass@2")}
    row = out["arms"]["main"]["contrasts"][0]
    assert row["t"]["n"] == 2 and "bootstrap_questions" in row and "bootstrap_2level" in row
    assert {r["arm"] for r in out["ablations"][0]["rows"]} == {"k1"}
    assert out["bias"]["n_questions"] == 2 * 120  # smoke: 120 training questions per seed
    summary = (tmp_path / "summary" / "summary.md").read_text()
    assert "## Arm `main`" in summary and "## Ablation K" in summary and "relative slope" in summary
    assert json.loads((tmp_path / "summary" / "summary.json").read_text())["profile"] == "smoke"
    for png in ("bias.png", "accuracy-main.png", "accuracy-k1.png"):
        assert (tmp_path / "summary" / png).read_bytes()[:4] == b"\x89PNG"
    for arm, seed in (("main", 0), ("k1", 1)):  # each run's own files next to the summary
        per_seed = tmp_path / "summary" / "per-seed" / arm / f"seed-{seed}"
        assert json.loads((per_seed / "metrics.json").read_text())["results"] == out["per_seed"][arm][seed]
        assert (per_seed / "results.md").read_text().startswith("#")

    subs = asyncio.run(_subflows(state.state_details.flow_run_id))
    assert set(subs) == {(0, 2), (1, 2), (0, 1), (1, 1)}
    for seed in (0, 1):
        first, second = subs[(seed, 2)], subs[(seed, 1)]  # main ran first (concurrency 1), then k1
        assert [_state(first, n) for n in UPSTREAM] == ["Completed"] * len(UPSTREAM), first
        assert [_state(second, n) for n in UPSTREAM] == ["Cached"] * len(UPSTREAM), second  # shared
        assert second["sample-traces-em-gml-r1"] == "Completed"  # K changed: new traces
        assert first["sample-traces-em-gml-r1"] == "Cached"  # the Acc chain's, computed once


def _state(states: dict, prefix: str) -> str:
    """The state of the one task run named ``prefix`` or ``prefix-<suffix>`` (Prefect's default run names)."""
    hits = [s for n, s in states.items() if n == prefix or n.startswith(prefix + "-")]
    assert len(hits) == 1, (prefix, states)
    return hits[0]
