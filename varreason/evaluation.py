"""Accuracy metrics: avg@n and the unbiased pass@k estimator (Chen et al. 2021).

``avg_at_n``: mean correctness over all n samples of every question (the paper's reported accuracy).
``pass_at_k(n, c, k) = 1 - C(n - c, k) / C(n, k)``, averaged over questions.
"""

from __future__ import annotations

import math


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def avg_at_n(correct: list[list[bool]]) -> float:
    """Mean over questions of the fraction of correct samples."""
    if not correct or any(not c for c in correct):
        raise ValueError("no questions to score, or a question without samples")
    return sum(sum(c) / len(c) for c in correct) / len(correct)


def mean_pass_at_k(correct: list[list[bool]], k: int) -> float:
    if not correct:
        raise ValueError("no questions to score")
    return sum(pass_at_k(len(c), sum(c), k) for c in correct) / len(correct)
