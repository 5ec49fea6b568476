"""The Prefect task every step of the recipe runs as (``varreason.recipe``): one wrapper for all of them, named
per call (``sample-traces``, task run ``sample-traces-em-acc-r1``), cached by the step's artifact key, retried
only on transient failures (``tasks/caching.py``)."""

from __future__ import annotations

from prefect import task

from tasks.caching import MERGE_CACHE, RETRY, STEP
from varreason import steps
from varreason.config import ExperimentConfig
from varreason.io import ArtifactRef


# log_prints off (the flow turns it on for its own prints): Prefect's print capture broke the stdout capture
# `datasets` uses (through dill) to fingerprint lm-eval's filter functions, spilling bytecode into the evaluate
# log; library code reports through its stats and tqdm, never print.
@task(name="step", log_prints=False, **STEP)
def run_step(step: str, cfg: ExperimentConfig, refs: dict[str, ArtifactRef | None], ctx: dict,
             label: str) -> ArtifactRef:
    return steps.run_step(step, cfg, refs, label=label, **ctx)


def step_task(cfg: ExperimentConfig, step: str, label: str):
    """``run_step`` named after ``step`` and run ``label``, tagged ``gpu`` when the step uses one (GPU tasks are
    admitted by the ``gpu`` tag concurrency limit, deploy/README.md)."""
    return run_step.with_options(name=step, task_run_name=label, tags=["gpu"] if steps.STEPS[step].gpu else [])


@task(name="merge-shards", task_run_name="merge-{label}", cache_policy=MERGE_CACHE, **RETRY)
def merge_shards(parts: list[ArtifactRef], label: str, root: str) -> ArtifactRef:
    return steps.run_merge(parts, root)
