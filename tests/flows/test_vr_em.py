"""The vr-em flow end to end on the smoke profile: every method and round reported; a re-run is all cache hits."""

import asyncio
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from prefect_helpers import final_task_runs, state_names

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
    """{task run name: state name} of a flow run, once every state is final (prefect_helpers)."""
    async with get_client() as client:
        return state_names(await final_task_runs(client, [flow_run_id], timeout))


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
    # A step whose key an earlier step of the same run computed is Cached, all others compute: Cached exactly when
    # the task run built no artifact. Acc and GML start round 1 from the same q0 and pi0, so their traces and
    # scores have one key (and further steps share one whenever their inputs come out byte-identical).
    never_cached = ("publish-results", "preflight", "status", "dvc-version")  # by design: they run every time
    built = {json.loads(p.read_text())["label"] for p in (tmp_path / "artifacts").glob("*/[!.]*/.key.json")}
    assert {n for n, s in first.items() if s != "Completed"} == {n for n in first if n not in built
                                                                  and not n.startswith(never_cached)}, first
    assert first["sample-traces-em-gml-r1"] == first["score-traces-em-gml-r1"] == "Cached", first
    # the flow's task runs are the recipe's steps (the DVC stages, the plan and --status read the same list)
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


async def _task_times(flow_run_id) -> dict[str, tuple]:
    async with get_client() as client:
        runs = await final_task_runs(client, [flow_run_id], timeout=60)
    return {r.name: (r.start_time, r.end_time) for r in runs if r.start_time and r.end_time}


@pytest.mark.slow
def test_concurrent_chains_give_the_sequential_results_and_overlap(harness, tmp_path):
    """em.concurrent_chains: the Acc, GML and RFT chains run at once (threads of the flow run) after the shared
    set-up; the same artifacts (same keys, in a fresh store each) and the same numbers as one after another."""
    small = {"em.rounds": 1, "data.n_train": 60, "data.n_heldout": 20, "data.n_seed_traces": 30,
             "train.init_steps": 20, "train.steps": 10, "train.posterior_steps": 10}
    out = {}
    for mode in ("sequential", "concurrent"):
        overrides = {**small, "artifacts_dir": str(tmp_path / mode / "a"), "results_dir": str(tmp_path / mode / "r"),
                     "em.concurrent_chains": mode == "concurrent"}
        state = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=overrides, return_state=True)
        assert state.is_completed(), state
        keys = sorted(str(p.relative_to(tmp_path / mode / "a")) for p in (tmp_path / mode / "a").glob("[!.]*/[!.]*"))
        out[mode] = (sorted(_scores(state.result()), key=lambda r: (r["method"], r["round"])), keys,
                     asyncio.run(_task_times(state.state_details.flow_run_id)))
    assert out["concurrent"][0] == out["sequential"][0]
    assert out["concurrent"][1] == out["sequential"][1]  # every artifact, by its content key

    def span(times, chain):
        mine = [t for n, t in times.items() if n.endswith(f"-{chain}-r1") and not n.startswith("evaluate-sft")]
        return min(s for s, _ in mine), max(e for _, e in mine)

    for mode, overlap in (("sequential", False), ("concurrent", True)):
        spans = sorted(span(out[mode][2], chain) for chain in ("em-acc", "em-gml", "rft"))
        assert any(a[1] > b[0] for a, b in zip(spans, spans[1:])) == overlap, (mode, spans)
