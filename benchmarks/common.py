"""Shared harness: repeated timing (median and spread), machine facts, and the tiny-model fixture.

The fixture is built with the pipeline's own steps (``varreason.pipeline``) under ``artifacts/bench``: the
embedded arithmetic task, the tiny Qwen3 backbone, and one checkpoint SFT-ed briefly on the seed traces of both
roles (reasoner and posterior prompts) so that it closes its thoughts; it stands in for both pi and q.
Content-addressed, so a second ``make bench`` reuses it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def timeit(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[list[float], object]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls; returns (times, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def spread(values: list[float]) -> dict:
    """Median, min, max and interquartile range (quartiles by linear interpolation; IQR 0 for < 2 values)."""
    vals = sorted(values)
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "iqr": q3 - q1, "n": len(vals),
            "values": vals}


def rate_row(metric: str, rates_ours: list[float], rates_naive: list[float], target: float, unit: str,
             **extra) -> dict:
    """A result row for a throughput metric from per-repeat rates of each side; ratio = ratio of the medians.
    The ratio's spread pairs the i-th repeats of both sides (they ran back to back in this process)."""
    o, n = spread(rates_ours), spread(rates_naive)
    ratio = o["median"] / n["median"]
    return {"metric": metric, "unit": unit, "ours": o, "naive": n, "ratio": ratio,
            "ratio_spread": spread([a / b for a, b in zip(rates_ours, rates_naive)]), "target": f">= {target:g}x",
            "met": ratio >= target, **extra}


def machine() -> dict:
    import torch

    model = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


@dataclass
class Fixture:
    cfg: object  # ExperimentConfig of the tiny profile
    task: object  # ArtifactRef
    ckpt: object  # ArtifactRef: the briefly trained tiny model (pi and q)
    root: str

    def model(self):
        from varreason.modeling import load_checkpoint

        return load_checkpoint(self.ckpt.verify(), self.cfg.model)

    def questions(self, n: int) -> list[dict]:
        from varreason.pipeline.common import questions

        return questions(self.task, "train")[:n]


def fixture(root: str | Path | None = None, steps: int = 150, overrides: dict | None = None) -> Fixture:
    """The tiny profile's task and a checkpoint trained ``steps`` steps on both seed sets (cached)."""
    from varreason.config import load_config
    from varreason.io import produce, read_rows, write_rows
    from varreason.steps import run_step

    root = str(root or ROOT / "artifacts" / "bench")
    cfg = load_config(PARAMS, "tiny", {**(overrides or {}), "artifacts_dir": root, "train.init_steps": steps})
    task = run_step("build-task", cfg, {}, progress=False)
    backbone = run_step("init-backbone", cfg, {"task": task}, progress=False)
    sets = [run_step("build-seed-set", cfg, {"task": task}, progress=False, role=role)
            for role in ("reasoner", "posterior")]
    both = produce(root, "seed-set", {"union": [s.sha for s in sets]}, lambda out: write_rows(
        out / "examples.parquet", [r for s in sets for r in read_rows(s.verify() / "examples.parquet")]))
    ckpt = run_step("train-pi0", cfg, {"init": backbone, "set": both}, label="bench", progress=False)
    return Fixture(cfg, task, ckpt, root)
