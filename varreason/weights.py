"""Importance weights of posterior traces (method.md §4, §5.2, §6).

For question x with K traces z_k ~ q_phi(z | x, y')::

    d_k          = (1/T_k) sum_{t<=T_k} [log pi(z_kt | x, z_k<t) - log q(z_kt | x, y', z_k<t)]   (length-normalised)
    log rho_k    = log pi^(Y | x, z_k) + d_k                                                  (Acc or GML estimate)
    rho~_k       = rho_k / sum_j rho_j                                                        (self-normalised)
    L_K          = log (1/K) sum_k rho_k                                                      (IWAE bound estimate)
    ESS          = 1 / sum_k rho~_k^2

T_k = min(|z_k| under pi, |z_k| under q), as the reference aligns the two scorings by truncation. Using the mean
instead of the sum makes d_k a per-token geometric mean ratio: the reference's choice, which departs from the
paper's exact ratio pi(z|x)/q(z|x,y') to tame its variance over thousands of tokens.

The self-normalised weights, the bounds and the ESS are taken over the traces selection may train on
(``within_cutoff``: a trace whose shared length reaches ``objective.trace_cutoff`` gets weight 0, as
``selection`` drops it), so the diagnostics describe the weights that are trained on: with shared lengths
[20, 5] at cutoff 15 the weights are [0, 1], not the [0.71, 0.29] of both traces.

Non-finite inputs have one policy, applied here and counted in the stats: a NaN anywhere in the shared span,
a -inf under q (a trace q could not have sampled) or T = 0 make the trace *invalid* (log rho = -inf, weight 0);
a -inf under pi alone is a valid trace that pi deems impossible (log rho = -inf). A question whose traces all
have weight 0 gets rho~ = 0 everywhere (no training signal) rather than NaN.

All functions are pure: tensors in, ``(value, stats)`` out, stats as plain floats.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def length_normalised_log_ratio(logp_pi: Tensor, len_pi: Tensor, logp_q: Tensor, len_q: Tensor
                                ) -> tuple[Tensor, dict[str, float]]:
    """Per-trace mean log-ratio over the shared prefix.

    Args:
        logp_pi: [N, Tp] token log-probs of each trace under pi (padding beyond ``len_pi`` ignored).
        len_pi: [N] valid lengths; ``logp_q``/``len_q`` likewise under q.
    Returns:
        d: [N], NaN marks an invalid trace; stats: ``n_invalid``.
    """
    T = torch.minimum(len_pi, len_q)  # [N]
    width = int(T.max()) if T.numel() else 0
    pos = torch.arange(width)[None, :]  # [1, W]
    inside = pos < T[:, None]  # [N, W]
    a, b = logp_pi[:, :width].double(), logp_q[:, :width].double()
    bad = inside & (a.isnan() | b.isnan() | (b == float("-inf")))
    invalid = bad.any(-1) | (T == 0)
    diff = torch.where(inside & ~bad, a - b, torch.zeros_like(a))
    d = diff.sum(-1) / T.clamp(min=1)
    d = torch.where(invalid, torch.full_like(d, float("nan")), d)
    return d, {"n_invalid": float(invalid.sum())}


def log_rho(log_likelihood: Tensor, log_ratio: Tensor) -> tuple[Tensor, dict[str, float]]:
    """log rho_k = log pi^(Y|x,z_k) + d_k; invalid (NaN) entries become -inf. Shapes [B, K] -> [B, K]."""
    out = log_likelihood.double() + log_ratio.double()
    invalid = out.isnan()
    out = out.masked_fill(invalid, float("-inf"))
    return out, {"n_invalid": float(invalid.sum()), "n_zero_weight": float((out == float("-inf")).sum())}


def within_cutoff(log_rho_: Tensor, shared_len: Tensor, cutoff: int) -> tuple[Tensor, dict[str, float]]:
    """log rho of the traces selection may use (``selection.is_candidate``): a trace whose shared length is at
    least ``cutoff`` gets log rho = -inf. [B, K], [B, K] -> [B, K]; stats: ``n_over_cutoff``."""
    over = shared_len >= cutoff
    return log_rho_.masked_fill(over, float("-inf")), {"n_over_cutoff": float(over.sum())}


def self_normalise(log_rho_: Tensor) -> tuple[Tensor, dict[str, float]]:
    """rho~ [B, K]: softmax over K; rows with every weight 0 stay all-zero (counted as ``n_dead_questions``)."""
    dead = (log_rho_ == float("-inf")).all(-1)  # [B]
    safe = log_rho_.masked_fill(dead[:, None], 0.0)
    w = torch.softmax(safe, dim=-1).masked_fill(dead[:, None], 0.0)
    return w, {"n_dead_questions": float(dead.sum())}


def iwae_bound(log_rho_: Tensor) -> tuple[Tensor, dict[str, float]]:
    """L_K estimate per question, log((1/K) sum_k rho_k): [B, K] -> [B] (-inf when every rho_k is 0)."""
    K = log_rho_.shape[-1]
    bound = torch.logsumexp(log_rho_, dim=-1) - math.log(K)
    finite = bound[bound.isfinite()]
    return bound, {"iwae_mean": float(finite.mean()) if finite.numel() else float("-inf")}


def elbo(log_rho_: Tensor) -> tuple[Tensor, dict[str, float]]:
    """L_1 estimate per question, (1/K) sum_k log rho_k: [B, K] -> [B] (the K = 1 bound averaged over draws)."""
    value = log_rho_.mean(-1)
    return value, {"elbo_mean": float(value[value.isfinite()].mean()) if value.isfinite().any() else float("-inf")}


def effective_sample_size(rho_tilde: Tensor) -> tuple[Tensor, dict[str, float]]:
    """ESS = 1 / sum_k rho~_k^2 in [1, K]; 0 for a question with no weight. [B, K] -> [B]."""
    sq = (rho_tilde ** 2).sum(-1)
    ess = torch.where(sq > 0, 1.0 / sq.clamp(min=1e-300), torch.zeros_like(sq))
    live = sq > 0
    return ess, {"ess_mean": float(ess[live].mean()) if live.any() else 0.0,
                 "max_weight_share": float(rho_tilde.max(-1).values[live].mean()) if live.any() else 0.0}


def forward_kl_weights(p_correct: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Weights of the posterior's forward-KL refresh (method.md §6) for K samples z_k ~ pi(z|x) per question:
    w_k = pi^(Y|x,z_k) / sum_j pi^(Y|x,z_j), the Monte Carlo form of pi(Y|x,z)/pi(Y|x) divided by K.
    [B, K] -> [B, K]; each row sums to 1, or to 0 when no sample of the question is correct."""
    p = p_correct.double().clamp(min=0)
    total = p.sum(-1, keepdim=True)
    w = torch.where(total > 0, p / total.clamp(min=1e-300), torch.zeros_like(p))
    return w, {"n_dead_questions": float((total[:, 0] == 0).sum())}
