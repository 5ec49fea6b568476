"""Task: refuse to start a profile this machine cannot run (no GPU, no vllm, no model files), in seconds."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from varreason.config import ExperimentConfig
from varreason.preflight import check


@task(name="preflight", task_run_name="preflight-{cfg.profile}", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
def preflight(cfg: ExperimentConfig) -> None:
    """Raise ``PreflightError`` with one line naming what is missing; never retried, never cached."""
    check(cfg)
