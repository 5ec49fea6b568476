"""Task: merge the shard artifacts of one sampling/scoring/verification pass into the unsharded artifact."""

from __future__ import annotations

from prefect import task

from tasks.caching import STEP
from varreason import shards
from varreason.io import ArtifactRef


@task(name="merge-shards", task_run_name="merge-{label}", **STEP)
def merge_shards(parts: list[ArtifactRef], label: str, root: str) -> ArtifactRef:
    return shards.merge_shards(parts, root)
