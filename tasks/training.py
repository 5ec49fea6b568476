"""Task: SFT / weighted SFT of a reasoner or posterior checkpoint."""

from __future__ import annotations

from prefect import task

from tasks.caching import STEP
from varreason.config import ModelConfig, TrainConfig
from varreason.io import ArtifactRef
from varreason.pipeline import train


@task(name="train-model", task_run_name="train-{label}", tags=["gpu"], **STEP)
def train_model(cfg: TrainConfig, model: ModelConfig, init: ArtifactRef, sets: list[ArtifactRef], steps: int,
                seed: int, label: str, root: str) -> ArtifactRef:
    return train.train_model(cfg, model, init, sets, steps, seed, label, root)
