"""Tasks: task data, backbone, seed SFT sets."""

from __future__ import annotations

from prefect import task

from tasks.caching import STEP
from varreason.config import DataConfig, ModelConfig, PromptConfig
from varreason.io import ArtifactRef
from varreason.pipeline import data


@task(name="build-task", **STEP)
def build_task(cfg: DataConfig, prompt: PromptConfig, seed: int, root: str) -> ArtifactRef:
    return data.build_task(cfg, prompt, seed, root)


@task(name="init-backbone", **STEP)
def init_backbone(cfg: ModelConfig, task_data: ArtifactRef, seed: int, root: str) -> ArtifactRef:
    return data.init_backbone(cfg, task_data, seed, root)


@task(name="build-seed-set", task_run_name="build-seed-set-{role}", **STEP)
def build_seed_set(prompt: PromptConfig, task_data: ArtifactRef, role: str, root: str) -> ArtifactRef:
    return data.build_seed_set(prompt, task_data, role, root)
