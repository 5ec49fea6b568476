"""Statistics over seeds and held-out questions: means with 95% CIs and paired method differences.

The runs of one sweep are *paired*: within a seed every method starts from the same pi_theta0, trains on the
same task data and is evaluated on the same held-out questions with the same sampler seeds, so a method
difference is computed per seed (and per question) before it is averaged. Three intervals, each answering a
different question (docs/science.md fixes which one decides):

* ``seed`` (primary): the per-seed differences d_s = m_A(s) - m_B(s) of the run-level metric, with a Student t
  95% CI (``mean_ci_t``) and a percentile bootstrap over seeds (``bootstrap_mean_ci``). It covers everything
  that changes with the seed: task data, initialisation, sampling, and the draw of held-out questions.
* ``questions``: a paired bootstrap over questions *stratified by seed*: each replicate resamples every seed's
  held-out questions with replacement (each question keeps its own n samples of both methods) and averages the
  seed means. Seeds are held fixed, so it answers "given these trained models, could a different draw of
  held-out questions and evaluation samples erase the gap?", not "would another seed?". Stratifying rather
  than pooling (seed, question) pairs as one population keeps each seed's weight equal, as in the point
  estimate (the mean of per-seed means), and respects that each seed draws its own held-out questions.
* ``two-level``: seeds resampled with replacement, then questions within each drawn seed (a cluster
  bootstrap): both sources of noise at once; the widest of the three.

Per-question scores: avg@n is c/n for a question with c of n samples right; pass@k is the unbiased
``1 - C(n-c, k)/C(n, k)`` (``varreason.eval.metrics.pass_at_k``). Their means over questions equal the run's
reported accuracy and pass@k. Everything here is numpy; bootstrap replicates come from
``numpy.random.default_rng(seed)``, so a CI is a pure function of its inputs and seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from varreason.eval.metrics import pass_at_k

Counts = Mapping[str, tuple[int, int]]  # question id -> (n samples, c correct)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided CI; ``kind`` names the procedure (``t``, ``bootstrap-seeds``, ...)."""

    estimate: float
    lo: float
    hi: float
    n: int  # seeds (or questions) the estimate averages
    kind: str

    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict:
        return asdict(self)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on ``t_cdf``; |error| < 1e-10)."""
    if not 0 < p < 1 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p} df={df}")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci_t(x, level: float = 0.95) -> Interval:
    """Mean of ``x`` [n] with the Student t CI ``mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)`` (sample sd).
    With one value the interval is (-inf, inf): one seed says nothing about seed-to-seed spread."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values")
    m = float(x.mean())
    if x.size == 1:
        return Interval(m, -math.inf, math.inf, 1, "t")
    half = t_quantile((1 + level) / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(m, m - half, m + half, int(x.size), "t")


def _percentile(estimate: float, reps: np.ndarray, n: int, level: float, kind: str) -> Interval:
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(lo), float(hi), n, kind)


def bootstrap_mean_ci(x, n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile bootstrap CI of the mean of ``x`` [n] (values resampled with replacement)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or n_boot < 1:
        raise ValueError("need values and n_boot >= 1")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    return _percentile(float(x.mean()), x[idx].mean(axis=1), int(x.size), level, "bootstrap-seeds")


def question_scores(counts: Counts, metric: str) -> dict[str, float]:
    """Per-question score: ``avg@n`` -> c/n, ``pass@k`` -> unbiased pass@k; ``counts[qid] = (n, c)``."""
    if metric == "avg@n":
        return {q: c / n for q, (n, c) in counts.items()}
    if metric.startswith("pass@"):
        k = int(metric.removeprefix("pass@"))
        return {q: pass_at_k(n, c, k) for q, (n, c) in counts.items()}
    raise ValueError(f"unknown metric {metric!r}: use 'avg@n' or 'pass@k'")


def _paired_arrays(a: Mapping[int, Mapping[str, float]], b: Mapping[int, Mapping[str, float]]
                   ) -> list[np.ndarray]:
    """Per seed (sorted), the array of per-question differences a - b over the questions both share exactly."""
    if sorted(a) != sorted(b) or not a:
        raise ValueError(f"paired seeds differ: {sorted(a)} vs {sorted(b)}")
    out = []
    for s in sorted(a):
        if set(a[s]) != set(b[s]) or not a[s]:
            raise ValueError(f"seed {s}: the two methods were scored on different held-out questions")
        qs = sorted(a[s])
        out.append(np.array([a[s][q] - b[s][q] for q in qs], dtype=np.float64))
    return out


def paired_question_bootstrap(a: Mapping[int, Mapping[str, float]], b: Mapping[int, Mapping[str, float]],
                              n_boot: int = 10_000, seed: int = 0, level: float = 0.95,
                              two_level: bool = False) -> Interval:
    """Paired bootstrap of mean_s mean_q (a[s][q] - b[s][q]) over questions, stratified by seed (see the module
    docstring); ``two_level`` also resamples seeds (cluster bootstrap). ``a[s][q]``: per-question score of
    method A on seed s (``question_scores``)."""
    diffs = _paired_arrays(a, b)  # S arrays of [Q_s]
    rng = np.random.default_rng(seed)
    per_seed = np.stack([d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1) for d in diffs])  # [S, B]
    if two_level:
        pick = rng.integers(0, len(diffs), size=(n_boot, len(diffs)))  # [B, S]
        reps = per_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1)
    else:
        reps = per_seed.mean(axis=0)
    estimate = float(np.mean([d.mean() for d in diffs]))
    return _percentile(estimate, reps, len(diffs), level, "bootstrap-2level" if two_level else "bootstrap-questions")


def t_test_p(x) -> float:
    """Two-sided p-value of the one-sample t test of mean 0 (the paired t test on differences ``x``); NaN for
    fewer than 2 values, 1.0 (or 0.0) when every value is 0 (or equal and non-zero)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return math.nan
    sd = float(x.std(ddof=1))
    if sd == 0:
        return 1.0 if float(x.mean()) == 0 else 0.0
    t = float(x.mean()) / (sd / math.sqrt(x.size))
    return 2.0 * (1.0 - t_cdf(abs(t), x.size - 1))


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values of one family of tests (``{name: p}``); NaNs stay NaN."""
    items = sorted(((p, k) for k, p in pvalues.items() if not math.isnan(p)))
    out, running = {k: math.nan for k in pvalues}, 0.0
    for i, (p, k) in enumerate(items):
        running = max(running, min(1.0, (len(items) - i) * p))
        out[k] = running
    return out


def paired_seed_ci(a: Mapping[int, float], b: Mapping[int, float], n_boot: int = 10_000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Per-seed differences of a run-level metric, their t and bootstrap CIs and the paired t test's p:
    ``{"diffs": {seed: a - b}, "t": Interval, "bootstrap": Interval, "p_t": float}``."""
    if sorted(a) != sorted(b) or not a:
        raise ValueError(f"paired seeds differ: {sorted(a)} vs {sorted(b)}")
    d = {s: a[s] - b[s] for s in sorted(a)}
    vals = list(d.values())
    return {"diffs": d, "t": mean_ci_t(vals, level), "bootstrap": bootstrap_mean_ci(vals, n_boot, seed, level),
            "p_t": t_test_p(vals)}


Cell = tuple[str, int]  # (method, round), e.g. ("em-gml", 2); SFT-only is ("sft", 0)


@dataclass(frozen=True)
class RunOutcome:
    """One seed's evaluated cells: run-level ``metrics[cell][metric]`` (``avg@n``, ``pass@k``) and
    per-question ``counts[cell][qid] = (n, c)``."""

    metrics: Mapping[Cell, Mapping[str, float]]
    counts: Mapping[Cell, Counts]


def run_outcome(summary: Mapping) -> RunOutcome:
    """A ``vr-em`` summary (its ``metrics.json``) -> ``RunOutcome``; per-question counts come from each eval
    artifact's ``questions.parquet`` (verified against its recorded sha)."""
    from varreason.io import ArtifactRef, read_rows

    metrics = {(r["method"], r["round"]): {"avg@n": r["accuracy"],
                                           **{k: v for k, v in r.items() if k.startswith("pass@")}}
               for r in summary["results"]}
    counts = {}
    for a in summary.get("artifacts", []):
        if a["stage"] == "eval":
            rows = read_rows(ArtifactRef(path=a["path"], sha=a["sha"]).verify() / "questions.parquet")
            counts[(a["method"], a["round"])] = {r["qid"]: (int(r["n"]), int(r["c"])) for r in rows}
    return RunOutcome(metrics, counts)


def cell_means(runs: Mapping[int, RunOutcome], metric: str, level: float = 0.95) -> list[dict]:
    """Per cell that has ``metric`` in every seed: mean over seeds with the t CI, the sample sd and the per-seed
    values."""
    cells = set.intersection(*({c for c, m in r.metrics.items() if metric in m} for r in runs.values()))
    out = []
    for cell in sorted(cells, key=_cell_order):
        vals = {s: runs[s].metrics[cell][metric] for s in sorted(runs)}
        x = list(vals.values())
        out.append({"method": cell[0], "round": cell[1], "metric": metric, "t": mean_ci_t(x, level).as_dict(),
                    "sd": float(np.std(x, ddof=1)) if len(x) > 1 else 0.0, "per_seed": vals})
    return out


def contrast(runs: Mapping[int, RunOutcome], a: Cell, b: Cell, metric: str, n_boot: int = 10_000, seed: int = 0,
             level: float = 0.95) -> dict:
    """Paired difference A - B over seeds: the seed-level t and bootstrap CIs (run-level metric) and the
    stratified and two-level per-question bootstraps (per-question scores; needs ``counts``)."""
    sd = paired_seed_ci({s: r.metrics[a][metric] for s, r in runs.items()},
                        {s: r.metrics[b][metric] for s, r in runs.items()}, n_boot, seed, level)
    row = {"a": list(a), "b": list(b), "metric": metric, "diffs": sd["diffs"], "t": sd["t"].as_dict(),
           "bootstrap_seeds": sd["bootstrap"].as_dict(), "p_t": sd["p_t"]}
    if all(a in r.counts and b in r.counts for r in runs.values()):
        qa = {s: question_scores(r.counts[a], metric) for s, r in runs.items()}
        qb = {s: question_scores(r.counts[b], metric) for s, r in runs.items()}
        row["bootstrap_questions"] = paired_question_bootstrap(qa, qb, n_boot, seed, level).as_dict()
        row["bootstrap_2level"] = paired_question_bootstrap(qa, qb, n_boot, seed, level, two_level=True).as_dict()
    return row


def _cell_order(cell: Cell) -> tuple:
    return ({"sft": 0, "rft": 1}.get(cell[0], 2), cell[0], cell[1])


def _fmt(iv: Mapping) -> str:
    return f"[{iv['lo']:+.3f}, {iv['hi']:+.3f}]" + (" *" if iv["lo"] > 0 or iv["hi"] < 0 else "")


def means_table(rows: list[dict]) -> str:
    """Markdown: method, round, metric, mean, 95% t CI, sd, per-seed values."""
    lines = ["| method | round | metric | mean | 95% CI (t, seeds) | sd | n seeds |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["t"]
        lines.append(f"| {r['method']} | {r['round']} | {r['metric']} | {t['estimate']:.3f} | "
                     f"[{t['lo']:.3f}, {t['hi']:.3f}] | {r['sd']:.3f} | {t['n']} |")
    return "\n".join(lines)


def contrasts_table(rows: list[dict]) -> str:
    """Markdown: one paired contrast per line; ``*`` marks a CI that excludes 0."""
    lines = ["| A - B | metric | mean diff | t CI (seeds) | p (t) | bootstrap CI (seeds) | question bootstrap CI | "
             "two-level bootstrap CI | A > B seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        wins = sum(d > 0 for d in r["diffs"].values())
        q = r.get("bootstrap_questions")
        q2 = r.get("bootstrap_2level")
        lines.append(f"| {r['a'][0]} r{r['a'][1]} - {r['b'][0]} r{r['b'][1]} | {r['metric']} | "
                     f"{r['t']['estimate']:+.3f} | {_fmt(r['t'])} | {r.get('p_t', math.nan):.3g}"
                     + (f" (Holm {r['p_holm']:.3g})" if "p_holm" in r else "") + " | "
                     f"{_fmt(r['bootstrap_seeds'])} | "
                     f"{_fmt(q) if q else 'n/a'} | {_fmt(q2) if q2 else 'n/a'} | {wins}/{len(r['diffs'])} |")
    return "\n".join(lines)
