"""From weighted traces to the reasoner's training set (method.md §5.5, §10).

``top1`` reproduces the reference: per question keep the single trace with the largest rho_k among candidates
(finite weight, shared length below the cutoff); with no candidate fall back to the question's gold trace if it
has one, else drop the question (both counted: ``n_fallback``, ``n_dropped``). That covers a question whose every
trace has weight 0 (no end-of-thought, NaN/-inf log-probs, no correct answer: see ``weights``) and one whose
traces are all over-long (``shared_len >= trace_cutoff``, counted per trace as ``n_over_cutoff``).
``weighted`` keeps every candidate with loss weight rho~_k, so each question still carries total weight 1 (the
IWAE gradient itself rather than its top-1 approximation).
Candidates are rows of :class:`ScoredTrace`; choices are picked by name through ``SELECTIONS``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoredTrace:
    qid: str
    k: int
    trace: str
    shared_len: int  # T: tokens the pi/q scorings share
    log_rho: float  # -inf for zero weight
    rho_tilde: float
    solution: str  # the answer text to train on after this trace


@dataclass(frozen=True)
class Selected:
    qid: str
    trace: str
    solution: str
    weight: float
    source: int  # k of the chosen trace; -1 = gold-trace fallback


def is_candidate(shared_len: int, log_rho: float, cutoff: int) -> bool:
    """A trace selection may train on: finite weight and shared length below the cutoff (``weights.within_cutoff``
    gives the same traces weight 0 before the diagnostics are computed)."""
    return shared_len < cutoff and math.isfinite(log_rho)


def _candidates(rows: list[ScoredTrace], cutoff: int) -> dict[str, list[ScoredTrace]]:
    by_q: dict[str, list[ScoredTrace]] = defaultdict(list)
    for r in rows:
        if is_candidate(r.shared_len, r.log_rho, cutoff):
            by_q[r.qid].append(r)
    return by_q


def _select(rows: list[ScoredTrace], cutoff: int, gold: dict[str, tuple[str, str]],
            pick: Callable[[list[ScoredTrace]], list[Selected]]) -> tuple[list[Selected], dict[str, float]]:
    """Per question: ``pick`` among its candidates; if it picks nothing, the gold trace, else drop."""
    cands = _candidates(rows, cutoff)
    n_over = sum(r.shared_len >= cutoff for r in rows)
    out, n_fallback, n_dropped = [], 0, 0
    for qid in sorted({r.qid for r in rows}):
        chosen = pick(cands.get(qid, []))
        if chosen:
            out += chosen
        elif qid in gold:
            out.append(Selected(qid, gold[qid][0], gold[qid][1], 1.0, -1))
            n_fallback += 1
        else:
            n_dropped += 1
    return out, {"n_selected": float(len(out) - n_fallback), "n_fallback": float(n_fallback),
                 "n_dropped": float(n_dropped), "n_over_cutoff": float(n_over)}


def _best(cands: list[ScoredTrace]) -> list[Selected]:
    if not cands:
        return []
    best = max(cands, key=lambda r: (r.log_rho, -r.k))  # ties go to the lowest k
    return [Selected(best.qid, best.trace, best.solution, 1.0, best.k)]


def _all_weighted(cands: list[ScoredTrace]) -> list[Selected]:
    live = [r for r in cands if r.rho_tilde > 0]
    total = sum(r.rho_tilde for r in live)
    return [Selected(r.qid, r.trace, r.solution, r.rho_tilde / total, r.k) for r in live] if total > 0 else []


def select_top1(rows: list[ScoredTrace], cutoff: int, gold: dict[str, tuple[str, str]]
                ) -> tuple[list[Selected], dict[str, float]]:
    """The reference's selection. ``gold[qid] = (trace, solution)`` for questions with a gold trace."""
    return _select(rows, cutoff, gold, _best)


def select_weighted(rows: list[ScoredTrace], cutoff: int, gold: dict[str, tuple[str, str]]
                    ) -> tuple[list[Selected], dict[str, float]]:
    """Every candidate with weight rho~_k renormalised over the candidates of its question (so traces cut by
    the length filter do not leak weight); gold-trace fallback as in ``select_top1``."""
    return _select(rows, cutoff, gold, _all_weighted)


SELECTIONS: dict[str, Callable[..., tuple[list[Selected], dict[str, float]]]] = {
    "top1": select_top1,
    "weighted": select_weighted,
}
