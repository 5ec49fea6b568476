"""Helpers shared by the steps: reading artifacts, backends, timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from varreason.config import ModelConfig, SamplingConfig
from varreason.eval.grader import grader_of
from varreason.io import ArtifactRef, read_json, read_rows, write_json


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def questions(task: ArtifactRef, split: str | None = None) -> list[dict]:
    rows = read_rows(task.verify() / "questions.parquet")
    return [r for r in rows if split is None or r["split"] == split]


def grade(q: dict, solution: str | None) -> bool:
    """The dataset's one grader (``eval.grader.GRADERS``, the one its lm-eval task uses) on a solution block."""
    return solution is not None and grader_of(q)(q["answer"], solution).correct


def rows(ref: ArtifactRef, name: str) -> list[dict]:
    return read_rows(ref.verify() / name)


def stats(ref: ArtifactRef) -> dict:
    return read_json(ref.verify() / "stats.json")


def load_model(ckpt: ArtifactRef, cfg: ModelConfig):
    from varreason.modeling import load_checkpoint

    return load_checkpoint(ckpt.verify(), cfg, device=device())


def make_sampler(cfg: SamplingConfig, model_cfg: ModelConfig, ckpt: ArtifactRef, progress: bool = True):
    """The backend named by ``cfg.backend`` over checkpoint ``ckpt`` (verified first)."""
    from varreason.backends import build_sampler

    return build_sampler(ckpt.verify(), model_cfg, cfg.backend, cfg.batch_size, device(), cfg.tensor_parallel_size,
                         progress, cfg.gpu_memory_utilization)


@contextmanager
def timed(out: Path, **counts: Any) -> Iterator[dict]:
    """Collect stats in the yielded dict and write them, with ``wall_s``, to ``out/stats.json``."""
    record: dict[str, Any] = dict(counts)
    t0 = time.perf_counter()
    yield record
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    write_json(out / "stats.json", record)
