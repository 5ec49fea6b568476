"""Benchmark scores from per-question sample counts: avg@n, unbiased pass@k and a bootstrap 95% CI.

* avg@n: mean correctness over all n samples of every question (the paper's reported accuracy, method.md §13).
* ``pass_at_k(n, c, k) = 1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021), averaged over questions.
* The confidence interval is ours (the paper reports none): a percentile bootstrap over questions (questions
  resampled with replacement, each keeping its own n samples), seeded so that it is reproducible.
"""

from __future__ import annotations

import math

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def bootstrap_ci(scores: list[float], n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-question ``scores`` (e.g. each question's c/n)."""
    if not scores:
        raise ValueError("no questions to bootstrap")
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level} n_boot={n_boot}")
    x = np.asarray(scores, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def summarize(counts: list[tuple[int, int]], ks: list[int] = (1,), n_boot: int = 10_000, seed: int = 0) -> dict:
    """Scores of one benchmark from ``counts[q] = (n samples, c correct)`` of every question q.

    Returns ``avg@n`` (mean of c/n), ``ci95`` (bootstrap of avg@n over questions), ``pass@k`` for each k <= the
    smallest n, ``n_questions``, ``n_samples`` (per question; the smallest if they differ).
    """
    if not counts:
        raise ValueError("no questions to score")
    per_q = [c / n for n, c in counts]
    n_min = min(n for n, _ in counts)
    out = {"avg@n": float(np.mean(per_q)), "ci95": list(bootstrap_ci(per_q, n_boot, seed)),
           "n_questions": len(counts), "n_samples": n_min}
    for k in ks:
        if k <= n_min:
            out[f"pass@{k}"] = float(np.mean([pass_at_k(n, c, k) for n, c in counts]))
    return out
