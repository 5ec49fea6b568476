"""Helpers shared by the step builders: reading artifacts, loading checkpoints, timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from varreason.io import ArtifactRef, read_json, read_rows, write_json


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def questions(task: ArtifactRef, split: str | None = None) -> list[dict]:
    rows = read_rows(task.verify() / "questions.parquet")
    return [r for r in rows if split is None or r["split"] == split]


def rows(ref: ArtifactRef, name: str) -> list[dict]:
    return read_rows(ref.verify() / name)


def by_question(responses: ArtifactRef) -> tuple[list[str], dict[str, list[dict]]]:
    """The rows of ``responses.parquet`` grouped by question: (sorted question ids, ``{qid: rows in order}``)."""
    by_q: dict[str, list[dict]] = {}
    for r in rows(responses, "responses.parquet"):
        by_q.setdefault(r["qid"], []).append(r)
    return sorted(by_q), by_q


def stats(ref: ArtifactRef) -> dict:
    return read_json(ref.verify() / "stats.json")


def load_model(ckpt: ArtifactRef, cfg):
    from varreason.modeling import load_checkpoint

    return load_checkpoint(ckpt.verify(), cfg, device=device())


@contextmanager
def timed(out: Path, **counts: Any) -> Iterator[dict]:
    """Collect stats in the yielded dict and write them, with ``wall_s``, to ``out/stats.json``."""
    record: dict[str, Any] = dict(counts)
    t0 = time.perf_counter()
    yield record
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    write_json(out / "stats.json", record)
