"""Sharded passes through flows/shards.py: on a local Ray cluster (CPU, prefect-ray's RayTaskRunner) sharded
sampling gives the unsharded samples for the same seeds; a failed shard costs that shard only on the re-run."""

import asyncio
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.testing.utilities import prefect_test_harness

from prefect_helpers import final_task_runs, state_names
from step_helpers import step

from flows.shards import run_sharded
from varreason.config import load_config
from varreason.io import read_json
from varreason.pipeline import sample
from varreason.pipeline.common import rows
from varreason.shards import shard_ranges

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
N, SHARDS = 16, 4


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """16 training questions, an untrained tiny model, and the unsharded trace pass (library call, no Prefect)."""
    root = tmp_path_factory.mktemp("shards")
    c = load_config(PARAMS, "smoke", {"data.n_train": N, "data.n_seed_traces": 8, "data.n_heldout": 4})
    task = step("build-task", c, root / "base")
    model = step("init-backbone", c, root / "base", task=task)
    full = step("sample-traces", c, root / "base", q=model, task=task, rnd=1)
    return c, root, task, model, rows(full, "traces.parquet")


def _same_samples(got, want):
    assert len(got) == len(want) == N * 2
    for g, w in zip(got, want):
        assert g == w


def _task_runs_under(flow_run_id):
    async def read():
        async with get_client() as client:
            return state_names(await final_task_runs(client, [flow_run_id], timeout=60))

    return asyncio.run(read())


def _fan_out_run(name):
    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))

    (run,) = asyncio.run(read())
    return run


@pytest.mark.slow
def test_sharded_sampling_on_local_ray_cluster_equals_unsharded(harness, setup):
    import ray
    c, root, task, model, want = setup
    c = c.model_copy(update={"artifacts_dir": str(root / "ray"), "sharding": c.sharding.model_copy(
        update={"shards": SHARDS, "runner": "ray", "ray_num_cpus": 2})})
    try:
        merged = run_sharded(c, "sample-traces", {"q": model, "task": task}, {"rnd": 1}, "sample-traces-t")
        assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2  # the shards ran on the local cluster
    finally:
        ray.shutdown()
    _same_samples(rows(merged, "traces.parquet"), want)
    assert read_json(merged.verify() / "stats.json")["shards"] == SHARDS
    states = _task_runs_under(_fan_out_run("sample-traces-t-shards").id)
    assert states == {**{f"sample-traces-t-s{i}": "Completed" for i in range(SHARDS)},
                      "merge-sample-traces-t": "Completed"}


@pytest.mark.slow
def test_a_failed_shard_costs_only_that_shard(harness, setup, monkeypatch):
    c, root, task, model, want = setup
    c = c.model_copy(update={"artifacts_dir": str(root / "crash"),
                             "sharding": c.sharding.model_copy(update={"shards": SHARDS, "runner": "local"})})
    ranges, calls, died, real = shard_ranges(N, SHARDS), [], [], sample.sample_traces

    def flaky(*args, shard=None, **kw):
        calls.append(shard)
        if shard == ranges[0] and not died:
            died.append(shard)
            raise ValueError("shard 0 died")  # not transient: no retry; shards 1-3 still run to the end
        return real(*args, shard=shard, **kw)

    monkeypatch.setattr(sample, "sample_traces", flaky)
    def run():
        return run_sharded(c, "sample-traces", {"q": model, "task": task}, {"rnd": 1}, "sample-traces-crash")

    with pytest.raises(ValueError, match="shard 0 died"):
        run()
    assert sorted(calls) == sorted(ranges)
    calls.clear()
    merged = run()
    assert calls == [ranges[0]]  # the three finished shards are cache hits
    _same_samples(rows(merged, "traces.parquet"), want)
