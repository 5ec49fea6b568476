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

``grpo``: the binary-reward RL baseline (method.md §7), a clipped policy-gradient surrogate with
group-normalised advantages (``group_advantages``) on samples drawn once per round; its extra per-example
inputs are the signed advantage and the sampling policy's per-token log-probs.
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


def group_advantages(rewards: Tensor, eps: float = 1e-6) -> tuple[Tensor, dict[str, float]]:
    """GRPO's group-normalised advantages A_bg = (r_bg - mean_g r_bg) / std_g r_bg.

    Args:
        rewards: [B, G] rewards of G samples per question (binary: the task's grader, 1 = right).
        eps: a group whose std is <= eps (all right or all wrong) gets A = 0: it carries no signal.
    Returns:
        [B, G] advantages (float64); stats ``n_groups``, ``n_flat_groups`` (std <= eps), ``mean_abs_adv``.

    The std is the population std (divide by G), so for binary rewards at accuracy p-hat the right samples get
    sqrt((1-p)/p) and the wrong ones -sqrt(p/(1-p)), and the weight on the local forward-KL gradient is
    p-hat (A_right - A_wrong) = sqrt(p/(1-p)) (method.md §7). TRL and DeepSeek's code divide by the sample std
    (G-1) plus a small constant; that rescales each group by sqrt((G-1)/G), the same for every question with
    0 < p-hat < 1, so it changes the step size, not the ranking of questions.
    """
    r = rewards.double()
    std = r.std(dim=-1, unbiased=False, keepdim=True)  # [B, 1]
    flat = std <= eps
    adv = torch.where(flat, torch.zeros_like(r), (r - r.mean(-1, keepdim=True)) / std.clamp(min=eps))
    return adv, {"n_groups": float(r.shape[0]), "n_flat_groups": float(flat.sum()),
                 "mean_abs_adv": float(adv.abs().mean()) if adv.numel() else 0.0}


def grpo_loss(logits: Tensor, labels: Tensor, weights: Tensor, normalizer: float | None = None, *,
              advantage: Tensor, old_logp: Tensor, clip_eps: float = 0.2) -> tuple[Tensor, dict[str, float]]:
    """Clipped policy-gradient surrogate of GRPO (Shao et al. 2024, arXiv 2402.03300) on fixed samples.

    ``loss = - sum_b w_b sum_t min(r_bt A_b, clip(r_bt, 1 - eps, 1 + eps) A_b) / normalizer`` with the
    per-token ratio ``r_bt = exp(log pi_theta(y_bt) - old_logp_bt)`` against the policy that sampled.

    Args:
        logits: [B, T, V]; labels: [B, T] next-token targets, IGNORE outside the response (as ``weighted_sft``).
        weights: [B] example weights >= 0 (1 for a sampled response).
        normalizer: constant divisor (the loop's per-run constant); None -> the batch's target token count.
        advantage: [B] signed advantage of each example (``group_advantages`` of its question's group).
        old_logp: [B, T] log-prob of each label token under the sampling policy (temperature 1), aligned with
            ``labels``; ignored at IGNORE. NaN marks a token with no sampling policy (seed-data rows mixed in):
            it is taken as on-policy, ratio exactly 1, so a row with advantage 1 and all-NaN old log-probs is
            plain SFT.
        clip_eps: epsilon of the ratio clip (``baselines.grpo_clip``; a keyword with a default, so it is an option
            of the objective, not a data column).

    Differences from DeepSeek's GRPO: no KL penalty to a reference model (beta = 0, TRL's default); the
    token sum is divided by a constant (as our weighted SFT, Dr. GRPO's choice) instead of each response's
    length 1/|o_i|, which favours short wrong answers; samples are drawn once per round, so the loop reuses
    them for many optimizer steps and the clip against the sampling policy is what keeps the update near it
    (an unclipped negative-advantage term would drive the log-prob of wrong responses to -inf). With
    ``old_logp`` equal to the current log-probs (first step) the gradient is ``A * grad log pi``, i.e. that
    of ``weighted_sft_loss`` with weight A.
    """
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and >= 0")
    if not torch.isfinite(advantage).all():
        raise ValueError("advantages must be finite")
    mask = labels != IGNORE  # [B, T]
    logp = -token_nll(logits, labels)  # [B, T], 0 at IGNORE
    old = torch.where(old_logp.isnan(), logp.detach(), old_logp.to(logp.dtype))
    ratio = torch.exp(torch.where(mask, logp - old, torch.zeros_like(logp)))  # [B, T]
    adv = advantage.to(logp.dtype)[:, None]  # [B, 1]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv) * mask
    n_tok = mask.sum()
    denom = float(n_tok.clamp(min=1)) if normalizer is None else normalizer
    loss = -(weights.to(logp.dtype) * surrogate.sum(-1)).sum() / denom
    with torch.no_grad():
        clipped = (ratio * adv > ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv) & mask
        n = float(n_tok.clamp(min=1))
        stats = {"nll_per_token": float(-(logp * mask).sum() / n), "tokens": float(n_tok),
                 "weight_sum": float(weights.sum()), "clip_frac": float(clipped.sum()) / n,
                 "ratio_mean": float((ratio * mask).sum()) / n, "adv_mean": float(advantage.double().mean())}
    return loss, stats


ObjectiveFn = Callable[..., tuple[Tensor, dict[str, float]]]
OBJECTIVES: dict[str, ObjectiveFn] = {"weighted_sft": weighted_sft_loss, "grpo": grpo_loss}


def objective_columns(fn: ObjectiveFn) -> tuple[str, ...]:
    """The per-example data columns ``fn`` reads: the names of its keyword-only parameters without a default, in
    order (a keyword-only parameter with a default, e.g. ``grpo_loss``'s ``clip_eps``, is an option the caller
    binds, ``training.train_sft(objective_options=...)``)."""
    return tuple(p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind is p.KEYWORD_ONLY and p.default is p.empty)
