"""Scaling: one EM round (GML estimator: sample K traces per question from q, score them under pi and q, weigh,
build the weighted reasoner set, train pi) for N questions and K traces, each point in a fresh subprocess.

Every stage's work is proportional to the number of traces N·K: sampling and scoring handle N·K sequences,
weighing N·K weights, and training runs ceil(N·K / batch_size) optimizer steps (one pass over the traces; the
flow itself trains a fixed ``train.steps`` whatever N, which would make training flat in N). Selection is
``weighted`` without seed-data mixing so the training set is the N·K traces too. We fit
``round_s = a + b·N·K`` (numpy least squares) and report b and R²; and ``peak_rss = c + d·N`` at fixed K.

Peak RSS is the child's ``VmHWM`` (Linux high-water mark of this process image; ``ru_maxrss`` is not used
because Linux carries it over from the forking parent across exec). ``rss_before_mb`` is the resident size after
imports and set-up; the high-water mark is then reset (``/proc/self/clear_refs``) so ``peak_rss_mb`` is the
round's own peak, imports included in what stays resident. Main loads every step's rows into memory (no shard
streaming), so the round's growth is O(N·K) rows plus the batch activations of sampling, scoring and training.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT


def run_point(n: int, k: int, root: str, threads: int = 1, fixture_root: str | None = None,
              fixture_steps: int = 150) -> dict:
    """One round at (N, K) in this process; returns stage walls, token counts and peak RSS (MB)."""
    import torch

    torch.set_num_threads(threads)
    from benchmarks.common import fixture
    from varreason.pipeline.common import stats
    from varreason.pipeline.data import build_task
    from varreason.pipeline.sample import sample_traces
    from varreason.pipeline.train import train_model
    from varreason.pipeline.weigh import build_reasoner_set, score_traces, weigh_traces

    fx = fixture(fixture_root, fixture_steps)  # built by the parent: a cache hit here
    cfg = fx.cfg
    data = cfg.data.model_copy(update={"n_train": n, "n_seed_traces": max(1, n // 4)})
    task = build_task(data, cfg.prompt, cfg.seed, root)
    sampling = cfg.sampling.model_copy(update={"traces_per_question": k})
    objective = cfg.objective.model_copy(update={"selection": "weighted", "mix_seed_data": False})
    steps = math.ceil(n * k / cfg.train.batch_size)
    rss_before = _rss_mb("VmRSS")
    _reset_peak()
    walls: dict[str, float] = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        ref = fn()
        walls[name] = time.perf_counter() - t0
        return ref

    traces = stage("sample", lambda: sample_traces(sampling, cfg.model, cfg.prompt, fx.ckpt, task, cfg.seed, 1, root,
                                                   progress=False))
    scores = stage("score", lambda: score_traces(cfg.model, cfg.prompt, fx.ckpt, fx.ckpt, traces, task, 1.0, root,
                                                 progress=False))
    weights = stage("weigh", lambda: weigh_traces("gml", traces, scores, None, root,
                                                  trace_cutoff=cfg.objective.trace_cutoff))
    rset = stage("build-set", lambda: build_reasoner_set(objective, "gml", cfg.prompt, weights, traces, None, task,
                                                         root))
    ckpt = stage("train", lambda: train_model(cfg.train, cfg.model, fx.ckpt, [rset], steps, cfg.seed, "scaling", root,
                                              progress=False))
    return {"N": n, "K": k, "traces": n * k, "train_steps": steps, "round_s": sum(walls.values()), "stages_s": walls,
            "tokens_generated": stats(traces)["tokens_generated"], "tokens_scored": stats(scores)["tokens_scored"],
            "tokens_trained": stats(ckpt)["tokens_trained"],
            "rss_before_mb": rss_before, "peak_rss_mb": _rss_mb("VmHWM")}


def _rss_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB (``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # "5": reset the peak RSS (Linux >= 4.0)
    except OSError:
        pass


def linear_fit(x: list[float], y: list[float]) -> dict:
    """Least-squares y = a + b x; R² = 1 - SS_res / SS_tot."""
    X = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float)])
    Y = np.asarray(y, dtype=float)
    (a, b), *_ = np.linalg.lstsq(X, Y, rcond=None)
    ss_res = float(((Y - X @ np.array([a, b])) ** 2).sum())
    ss_tot = float(((Y - Y.mean()) ** 2).sum())
    return {"intercept": float(a), "slope": float(b), "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 1.0}


def grid(ns=(64, 128, 256, 512), ks=(1, 2, 4, 8), k_fixed: int = 4, n_fixed: int = 128, full: bool = False):
    """(N, K) points: the full grid, or an N sweep at ``k_fixed`` plus a K sweep at ``n_fixed``."""
    if full:
        return [(n, k) for n in ns for k in ks]
    pts = [(n, k_fixed) for n in ns] + [(n_fixed, k) for k in ks]
    return sorted(set(pts), key=lambda p: (p[0] * p[1], p))


def bench_scaling(points, threads: int = 1, k_fixed: int = 4, fixture_root: str | None = None,
                  fixture_steps: int = 150) -> dict:
    """Run every point in a fresh ``python -m benchmarks.scaling`` child (fresh artifact root: no cache hits)."""
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for n, k in points:
        with tempfile.TemporaryDirectory(prefix="vr-bench-scale-") as tmp:
            out = Path(tmp) / "point.json"
            cmd = [sys.executable, "-m", "benchmarks.scaling", "--point", str(n), str(k), "--root", tmp,
                   "--threads", str(threads), "--out", str(out), "--fixture-steps", str(fixture_steps)]
            cmd += ["--fixture-root", str(fixture_root)] if fixture_root else []
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"scaling point N={n} K={k} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(out.read_text()))
    fit = linear_fit([r["traces"] for r in rows], [r["round_s"] for r in rows])
    stage_fits = {s: linear_fit([r["traces"] for r in rows], [r["stages_s"][s] for r in rows])
                  for s in rows[0]["stages_s"]}
    at_k = [r for r in rows if r["K"] == k_fixed]
    rss_fit = linear_fit([r["N"] for r in at_k], [r["peak_rss_mb"] for r in at_k]) if len(at_k) > 1 else None
    growth = [r["peak_rss_mb"] - r["rss_before_mb"] for r in rows]
    return {"metric": "scaling: round time vs N·K", "unit": "s per trace", "points": rows, "fit": fit,
            "stage_fits": stage_fits, "r2": fit["r2"], "target": "linear, R² >= 0.98", "met": fit["r2"] >= 0.98,
            "rss_fit_vs_N": rss_fit, "rss_k_fixed": k_fixed, "round_rss_growth_mb": growth}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one scaling point (used by bench_scaling)")
    p.add_argument("--point", nargs=2, type=int, required=True, metavar=("N", "K"))
    p.add_argument("--root", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--fixture-root", default=None)
    p.add_argument("--fixture-steps", type=int, default=150)
    a = p.parse_args(argv)
    Path(a.out).write_text(json.dumps(run_point(a.point[0], a.point[1], a.root, a.threads, a.fixture_root,
                                                  a.fixture_steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
