"""Training objectives: small pure functions returning ``(loss, stats)``, chosen through ``OBJECTIVES``.

``weighted_sft``: the IWAE gradient of method.md §4 read as weighted SFT,
``loss = sum_b w_b sum_t nll_bt / normalizer``. The normalizer is a constant per run (mean target tokens per
example x batch size, in the spirit of the reference's ``constant_loss_normalizer``), not the batch's own
token count: dividing by the batch's weighted token count would undo the weights whenever a batch happens to
hold only low-weight traces. With ``w = 1`` and ``normalizer`` = the batch's token count it is plain SFT
(mean token NLL); a row with ``w = 0`` contributes nothing.

How the training loop (``training.train_sft``, in-process and under a launcher) calls an objective::

    loss, stats = fn(logits, labels, weights, normalizer, **columns)

``logits`` [B, T, V], ``labels`` [B, T] (next-token targets, IGNORE outside the response), ``weights`` [B], the
run's constant ``normalizer``, and one keyword argument per **keyword-only parameter** of ``fn``
(``objective_columns``): each names a column of the training rows (``examples.parquet``; ``Example.columns``),
collated by the loop as

* a number per example (e.g. a signed ``advantage``) -> [B] float32;
* a list per example, one value per target token of the response as ``training.encode_examples`` encodes it
  (the response's tokens, then eos; cut with the example when it is truncated), e.g. the sampler's per-token
  ``old_logp`` -> [B, T] float32 aligned with ``labels`` (0.0 where ``labels`` is IGNORE).

So a GRPO objective ``def grpo_loss(logits, labels, weights, normalizer, *, advantage, old_logp)`` registered in
``OBJECTIVES`` and rows carrying ``advantage`` and ``old_logp`` train with no change to the loop. Two rules keep
the distributed loop equal to the single-process one: the loss is a **sum over rows** divided by the constant
``normalizer`` (each rank computes its rows' share; the launcher adds them up), and a **row of weight 0
contributes nothing** (a rank left without rows of a global batch computes a weight-0 copy of row 0).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor

IGNORE = -100


def token_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """[B, T, V] logits predicting [B, T] labels (already shifted; IGNORE masked) -> [B, T] nll (0 at IGNORE)."""
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels.clamp(min=0), reduction="none")
    return nll * (labels != IGNORE)


def weighted_sft_loss(logits: Tensor, labels: Tensor, weights: Tensor, normalizer: float | None = None
                      ) -> tuple[Tensor, dict[str, float]]:
    """Weighted token-sum NLL.

    Args:
        logits: [B, T, V]; labels: [B, T] next-token targets with IGNORE outside the response.
        weights: [B] per-example weights (rho~ or 1); must be finite and >= 0.
        normalizer: divide by this constant; None -> the batch's (unweighted) target token count.
    """
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and >= 0")
    nll = token_nll(logits, labels)  # [B, T]
    n_tok = (labels != IGNORE).sum()
    denom = float(n_tok.clamp(min=1)) if normalizer is None else normalizer
    per_seq = nll.sum(-1)  # [B]
    loss = (weights.to(per_seq.dtype) * per_seq).sum() / denom
    stats = {"nll_per_token": float(nll.sum().detach() / n_tok.clamp(min=1)), "tokens": float(n_tok),
             "weight_sum": float(weights.sum())}
    return loss, stats


ObjectiveFn = Callable[..., tuple[Tensor, dict[str, float]]]
OBJECTIVES: dict[str, ObjectiveFn] = {"weighted_sft": weighted_sft_loss}


def objective_columns(fn: ObjectiveFn) -> tuple[str, ...]:
    """The per-example data columns ``fn`` reads: the names of its keyword-only parameters, in order."""
    return tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)
