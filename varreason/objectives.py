"""Training objectives: small pure functions returning ``(loss, stats)``, chosen through ``OBJECTIVES``.

``weighted_sft``: the IWAE gradient of method.md §4 read as weighted SFT,
``loss = sum_b w_b sum_t nll_bt / normalizer``. The normalizer is a constant per run (mean target tokens per
example x batch size, in the spirit of the reference's ``constant_loss_normalizer``), not the batch's own
token count: dividing by the batch's weighted token count would undo the weights whenever a batch happens to
hold only low-weight traces. With ``w = 1`` and ``normalizer`` = the batch's token count it is plain SFT
(mean token NLL); a row with ``w = 0`` contributes nothing.
"""

from __future__ import annotations

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
