"""Shard fan-out for the ``vr-em`` flow: one task run per question range, on the runner ``params.yaml`` names.

``run_sharded(cfg, step, refs, ctx, label)`` runs the subflow ``shards`` (task runner from ``sharding.runner``)
for a step the table marks ``sharded``: one ``<label>-s<i>`` run per range of ``shard_ranges(n_train, shards)``,
each cached and retried on its own, then ``merge-<label>`` (varreason.shards.merge_shards). A failed shard fails
the pass; the re-run recomputes only it (the others are cache hits). The runners:

* ``local``: in the flow's process, one shard after another (each still cached and retried on its own).
* ``ray``: prefect-ray's ``RayTaskRunner``; the flow process joins ``sharding.ray_address`` or starts a local
  cluster (``ray_num_cpus``) once and keeps it for the run. Ray workers import ``tasks``/``varreason`` from the
  driver's working directory on a local cluster; on a real cluster the nodes need this package installed and
  ``artifacts_dir`` on a file system every node sees. A GPU shard asks Ray for its GPUs (``plan.step_gpus``), since
  Ray hides the GPUs from tasks that ask for none.
"""

from __future__ import annotations

from contextlib import nullcontext

from prefect import flow
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.steps import merge_shards, step_task
from varreason.config import ExperimentConfig, ShardingConfig
from varreason.plan import step_gpus
from varreason.shards import shard_ranges


def _local(cfg: ShardingConfig):
    # One shard at a time: transformers' checkpoint loading is not thread-safe (concurrent loads in one process
    # fail on meta tensors), and one machine's device is shared anyway. Parallel shards on one machine: `ray`.
    return ThreadPoolTaskRunner(max_workers=1)


def _ray(cfg: ShardingConfig):
    import ray  # lazily: ray costs seconds to import and only the ray runner needs it
    from prefect_ray import RayTaskRunner

    if not ray.is_initialized():  # RayTaskRunner reuses it and leaves it up: one cluster start per flow process
        local = cfg.ray_address is None
        ray.init(address=cfg.ray_address, num_cpus=cfg.ray_num_cpus if local else None,
                 include_dashboard=False if local else None, namespace="prefect")
    return RayTaskRunner(address=cfg.ray_address)


RUNNERS = {"local": _local, "ray": _ray}


def _pinned_api(runner: str):
    """Ray workers get the flow's Prefect settings, not its process: under the ephemeral server (no
    PREFECT_API_URL, e.g. ``python -m flows.vr_em``) each worker would start a server of its own and record its
    shards there. Pin the URL of the server this flow talks to, so the shards land in the flow's run."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if runner != "ray" or PREFECT_API_URL.value():
        return nullcontext()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        url = str(client.api_url).rstrip("/")
    return temporary_settings(updates={PREFECT_API_URL: url})


def _gpu_options(runner: str, gpus: int):
    if runner != "ray" or not gpus:
        return nullcontext()
    import ray

    have = ray.cluster_resources().get("GPU", 0)
    if not have:  # a CPU cluster (a CPU miniature that preflight let through): asking for GPUs would wait for ever
        return nullcontext()
    if have < gpus:
        raise RuntimeError(f"a shard asks Ray for {gpus} GPUs but the cluster has {have:g}; it would never be "
                           "scheduled: lower sampling.tensor_parallel_size or add GPU nodes")
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=gpus)


@flow(name="shards", flow_run_name="{label}-shards")
def _fan_out(cfg: ExperimentConfig, step: str, calls: list[dict], label: str, runner: str, gpus: int):
    """Submit one run of ``step`` per call (all at once, so they run in parallel), then merge in range order."""
    with _gpu_options(runner, gpus):
        futures = [step_task(cfg, step, kw["label"]).submit(step=step, cfg=cfg, **kw) for kw in calls]
    wait(futures)  # every shard finishes (and is cached) before a failed one fails the pass: the re-run redoes it alone
    return merge_shards([f.result() for f in futures], label, cfg.artifacts_dir)


def run_sharded(cfg: ExperimentConfig, step: str, refs: dict, ctx: dict, label: str):
    """Step ``step`` (``sharded`` in the table) split over ``cfg.sharding.shards`` ranges of the train questions."""
    s = cfg.sharding
    calls = [{"refs": refs, "ctx": {**ctx, "shard": r}, "label": f"{label}-s{i}"}
             for i, r in enumerate(shard_ranges(cfg.data.n_train, s.shards))]
    fan_out = _fan_out.with_options(task_runner=RUNNERS[s.runner](s))
    with _pinned_api(s.runner):
        return fan_out(cfg, step, calls, label, s.runner, step_gpus(cfg, step))
