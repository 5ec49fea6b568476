"""Estimators of log pi(Y | x, z): the probability that the reasoner answers correctly after trace z.

``acc`` (method.md §5.4): M answers y_m ~ pi(y | x, z), verified; log of the fraction correct (log 0 = -inf).
``gml`` (method.md §5.3): the per-token geometric mean likelihood of the reference answer,
``mean_t log pi(y_ref,t | x, z, y_ref,<t)``. Both are picked by name through ``ESTIMATORS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class EstimatorInputs:
    """Per trace (N = B*K rows): ``correct`` [N, M] 0/1 answers (Acc); ``answer_logps`` [N, A] padded and
    ``answer_len`` [N] (GML). An estimator reads only its own fields."""

    correct: Tensor | None = None
    answer_logps: Tensor | None = None
    answer_len: Tensor | None = None


def acc_log_likelihood(inp: EstimatorInputs) -> tuple[Tensor, dict[str, float]]:
    """log((1/M) sum_m correct_m): [N, M] -> [N]."""
    if inp.correct is None:
        raise ValueError("the acc estimator needs answer rollouts (correct [N, M])")
    acc = inp.correct.double().mean(-1)
    return torch.log(acc), {"mean_acc": float(acc.mean()) if acc.numel() else 0.0,
                            "frac_zero_acc": float((acc == 0).double().mean()) if acc.numel() else 0.0}


def gml_log_likelihood(inp: EstimatorInputs) -> tuple[Tensor, dict[str, float]]:
    """mean_t answer_logps[:, t] over each row's valid length: [N, A] -> [N]; NaN rows stay NaN (invalid)."""
    if inp.answer_logps is None or inp.answer_len is None:
        raise ValueError("the gml estimator needs answer log-probs (answer_logps [N, A], answer_len [N])")
    lp, n = inp.answer_logps.double(), inp.answer_len
    inside = torch.arange(lp.shape[-1])[None, :] < n[:, None]
    total = torch.where(inside, lp, torch.zeros_like(lp)).sum(-1)
    value = torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, float("nan")))
    finite = value[value.isfinite()]
    return value, {"mean_gml": float(finite.exp().mean()) if finite.numel() else 0.0}


ESTIMATORS: dict[str, Callable[[EstimatorInputs], tuple[Tensor, dict[str, float]]]] = {
    "acc": acc_log_likelihood,
    "gml": gml_log_likelihood,
}

# Estimators whose weights need M answers sampled from pi after each trace (steps c/d of the round); the recipe
# runs the `rollout-answers` step exactly for these, and `weigh_traces` refuses to run one without them.
NEEDS_ROLLOUTS = frozenset({"acc"})


def needs_rollouts(name: str) -> bool:
    return name in NEEDS_ROLLOUTS
