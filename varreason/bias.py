"""Easy-question bias, measured: the training signal each method gives a question vs pi_theta0's accuracy p on it.

The paper's claim (method.md §7): RFT weights a question by p (it ascends accuracy, not log-accuracy) and
binary-reward GRPO by sqrt(p / (1 - p)), both increasing in p, while the variational objective normalises its
weights per question (sum_k rho~_k = 1), so every question with a usable trace counts once. Per training
question this module tabulates:

* ``p``: pi_theta0's accuracy, the share of right answers among full responses (trace + answer) sampled from
  pi_theta0 at the sampling temperature. The RFT round-1 samples are such draws (n = ``baselines.rft_samples``
  per question); a separate, larger draw (``sample_responses`` of pi_theta0 with its own ``purpose``) is
  cleaner, because the RFT and GRPO signals below are computed from the RFT samples themselves, and a p
  estimated from the same draws shares their noise (RFT's kept flag is then exactly 1[p-hat > 0]). The Acc
  answer rollouts are *not* an estimate of p: they continue posterior traces z ~ q(z | x, hint), so they
  measure pi(Y | x, z) for hint-guided z, which is higher than pi(Y | x).
* ``rft_kept``: 1 if the RFT set holds an example for the question (ours keeps the first right response of its
  n, like top-1), expected 1 - (1 - p)^n; ``rft_share``: the share of right responses (the paper's RFT, which
  keeps every right sample: weight p).
* ``grpo_expected``: sqrt(p / (1 - p)) (NaN at p = 1: the expectation is unbounded there, and a group that is
  all right has no signal); ``grpo_realised``: p-hat (A_right - A_wrong) = p-hat / sigma-hat of the group GRPO
  would train on (the RFT samples), 0 for a flat group: the realised weight on the local forward-KL gradient.
* ``em-<estimator>``: the normalised weight mass of the question's candidate traces (finite weight, shared
  length below the cutoff) that the training set receives: 1 whenever one candidate exists, for ``top1`` and
  ``weighted`` alike, else 0 (the question then falls back to its gold trace or is dropped). It varies with p
  only through dead questions (Acc: no trace with a verified answer).

Slopes: an ordinary least-squares line of signal on p over questions, for each signal divided by its mean
(``relative`` slope: the fractional change of the signal per unit of p, comparable across methods whose signals
live on different scales), with a percentile bootstrap CI resampling questions within each seed (seeds fixed,
as in ``varreason.stats``); paired slope differences use the same replicates for both signals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

SIGNALS = ("rft_kept", "rft_share", "grpo_expected", "grpo_realised")


def accuracy_by_question(responses: Sequence[Mapping]) -> dict[str, tuple[int, int]]:
    """``responses.parquet`` rows (qid, correct) -> ``{qid: (n, c)}``."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in responses:
        out[r["qid"]][0] += 1
        out[r["qid"]][1] += bool(r["correct"])
    return {q: (n, c) for q, (n, c) in out.items()}


def grpo_realised(n: int, c: int) -> float:
    """p-hat / sigma-hat for a group of n binary rewards with c right (population sigma); 0 for a flat group.
    Equals p-hat (A_right - A_wrong) with ``varreason.objectives.group_advantages``."""
    if n == 0 or c in (0, n):
        return 0.0
    p = c / n
    return p / math.sqrt(p * (1 - p))


def em_signal(weights: Sequence[Mapping], cutoff: int) -> dict[str, float]:
    """``weights.parquet`` rows -> per question the normalised weight mass its training-set entry carries: 1.0
    if it has a candidate trace (finite log rho, shared_len < cutoff: ``varreason.selection``'s candidates,
    renormalised over themselves by both selections), else 0.0."""
    live: dict[str, bool] = defaultdict(bool)
    for w in weights:
        live[w["qid"]] |= w["shared_len"] < cutoff and math.isfinite(w["log_rho"])
    return {q: float(v) for q, v in live.items()}


def question_table(p_counts: Mapping[str, tuple[int, int]], rft_counts: Mapping[str, tuple[int, int]],
                   em: Mapping[str, Mapping[str, float]], seed: int = 0) -> list[dict]:
    """One row per question present in every input: seed, qid, p, n_p, the RFT/GRPO signals of ``SIGNALS`` and
    one ``em-<estimator>`` column per entry of ``em`` (``{estimator: em_signal(...)}``).

    ``p_counts``: (n, c) of pi_theta0's responses used as p (may be ``rft_counts`` itself);
    ``rft_counts``: (n, c) of the RFT round-1 responses (RFT's and GRPO's training samples).
    """
    qids = sorted(set(p_counts) & set(rft_counts) & set.intersection(*(set(v) for v in em.values()))
                  if em else set(p_counts) & set(rft_counts))
    rows = []
    for q in qids:
        (n_p, c_p), (n, c) = p_counts[q], rft_counts[q]
        p = c_p / n_p
        rows.append({"seed": seed, "qid": q, "p": p, "n_p": n_p, "rft_kept": float(c > 0), "rft_share": c / n,
                     "grpo_expected": math.sqrt(p / (1 - p)) if p < 1 else math.nan,
                     "grpo_realised": grpo_realised(n, c),
                     **{f"em-{e}": float(sig[q]) for e, sig in em.items()}})
    return rows


def signal_names(rows: Sequence[Mapping]) -> list[str]:
    return [s for s in SIGNALS if rows and s in rows[0]] + sorted(k for k in (rows[0] if rows else {})
                                                                  if k.startswith("em-"))


def _slope(p: np.ndarray, y: np.ndarray) -> float:
    """OLS slope of y on p, for y divided by its mean (NaN if p or the mean does not vary / vanish)."""
    mean = y.mean()
    pc = p - p.mean()
    den = (pc * pc).sum()
    return float((pc * (y / mean)).sum() / den) if den > 0 and mean != 0 else math.nan


def _strata(rows: Sequence[Mapping]) -> list[np.ndarray]:
    by_seed: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_seed[r.get("seed", 0)].append(i)
    return [np.array(v) for _, v in sorted(by_seed.items())]


def slopes(rows: Sequence[Mapping], names: Sequence[str] | None = None, n_boot: int = 2000, seed: int = 0,
           level: float = 0.95, pairs: Sequence[tuple[str, str]] = ()) -> dict:
    """Relative OLS slope of each signal on p with a bootstrap CI over questions (stratified by seed), and the
    paired difference of slopes for each ``(a, b)`` in ``pairs``. Rows whose signal is NaN are left out of that
    signal's fit (``grpo_expected`` at p = 1; their count is ``n_nan``).

    Returns ``{"slopes": {name: {"slope", "lo", "hi", "n", "n_nan", "mean"}}, "diffs": {"a - b": {...}}}``.
    """
    names = list(names or signal_names(rows))
    p = np.array([r["p"] for r in rows], dtype=np.float64)
    ys = {s: np.array([r[s] for r in rows], dtype=np.float64) for s in names}
    rng = np.random.default_rng(seed)
    strata = _strata(rows)
    q = [(1 - level) / 2, (1 + level) / 2]

    def fit(name: str, idx: np.ndarray) -> float:
        ok = idx[np.isfinite(ys[name][idx])]
        return _slope(p[ok], ys[name][ok])

    boot = {s: np.empty(n_boot) for s in names}
    for i in range(n_boot):  # one resample of questions (within each seed) serves every signal: paired diffs
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in strata])
        for s in names:
            boot[s][i] = fit(s, idx)
    out: dict = {"slopes": {}, "diffs": {}}
    everything = np.arange(len(rows))
    for s in names:
        b = boot[s][np.isfinite(boot[s])]
        lo, hi = np.quantile(b, q) if b.size else (math.nan, math.nan)
        finite = np.isfinite(ys[s])
        out["slopes"][s] = {"slope": fit(s, everything), "lo": float(lo), "hi": float(hi), "n": int(finite.sum()),
                            "n_nan": int((~finite).sum()), "mean": float(ys[s][finite].mean()) if finite.any()
                            else math.nan}
    for a, b_ in pairs:
        d = boot[a] - boot[b_]
        d = d[np.isfinite(d)]
        lo, hi = np.quantile(d, q) if d.size else (math.nan, math.nan)
        out["diffs"][f"{a} - {b_}"] = {"diff": fit(a, everything) - fit(b_, everything), "lo": float(lo),
                                       "hi": float(hi)}
    return out


def binned(rows: Sequence[Mapping], edges: Sequence[float] = (0.0, 0.125, 0.375, 0.625, 0.875, 1.0),
           names: Sequence[str] | None = None) -> list[dict]:
    """Questions binned by p (bins [e_i, e_{i+1}), the last one closed): per bin the count, mean p and, per
    signal, the mean and its standard error (NaN entries left out)."""
    names = list(names or signal_names(rows))
    out = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = i == len(edges) - 2
        sel = [r for r in rows if lo <= r["p"] < hi or (last and r["p"] == hi)]
        row: dict = {"lo": lo, "hi": hi, "n": len(sel), "p_mean": float(np.mean([r["p"] for r in sel])) if sel
                     else math.nan}
        for s in names:
            v = np.array([r[s] for r in sel if math.isfinite(r[s])], dtype=np.float64)
            row[s] = float(v.mean()) if v.size else math.nan
            row[f"{s}_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
        out.append(row)
    return out


def bias_markdown(bins: Sequence[Mapping], fit: Mapping, names: Sequence[str] | None = None) -> str:
    """The binned table (mean signal per bin) and the slope table as markdown."""
    names = list(names or fit["slopes"])
    lines = ["| p bin | questions | mean p | " + " | ".join(names) + " |", "|---" * (3 + len(names)) + "|"]
    for b in bins:
        close = "]" if b is bins[-1] else ")"
        lines.append(f"| [{b['lo']:.3f}, {b['hi']:.3f}{close} | {b['n']} | {b['p_mean']:.3f} | "
                     + " | ".join(f"{b[s]:.3f}" for s in names) + " |")
    lines += ["", "| signal | mean | relative slope (per unit p) | 95% CI | questions | left out (NaN) |",
              "|---|---|---|---|---|---|"]
    for s in names:
        f = fit["slopes"][s]
        lines.append(f"| {s} | {f['mean']:.3f} | {f['slope']:+.3f} | [{f['lo']:+.3f}, {f['hi']:+.3f}] | {f['n']} | "
                     f"{f['n_nan']} |")
    if fit.get("diffs"):
        lines += ["", "| slope difference | value | 95% CI |", "|---|---|---|"]
        lines += [f"| {k} | {d['diff']:+.3f} | [{d['lo']:+.3f}, {d['hi']:+.3f}] |" for k, d in fit["diffs"].items()]
    return "\n".join(lines)


def bias_plot(bins: Sequence[Mapping], path: str | Path, names: Sequence[str] | None = None) -> Path:
    """PNG at ``path``: each signal's bin mean divided by its overall mean, vs mean p, with SE error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(names or [k for k in bins[0] if k not in ("lo", "hi", "n", "p_mean") and not k.endswith("_se")])
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    for s in names:
        pts = [(b["p_mean"], b[s], b[f"{s}_se"], b["n"]) for b in bins if b["n"] and math.isfinite(b[s])]
        total = sum(n for *_, n in pts)
        mean = sum(y * n for _, y, _, n in pts) / total if total else math.nan
        if not pts or not mean:
            continue
        ax.errorbar([x for x, *_ in pts], [y / mean for _, y, _, _ in pts],
                    yerr=[(se if math.isfinite(se) else 0.0) / mean for _, _, se, _ in pts], marker="o", capsize=3,
                    label=s)
    ax.set_xlabel("pi_theta0 accuracy p on the training question (bin mean)")
    ax.set_ylabel("training signal / its mean")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def save_png(fig, path: str | Path) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG (parents created) and close it; return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out


def run_rows(summary: Mapping, cutoff: int, seed: int = 0, p_responses: Sequence[Mapping] | None = None
             ) -> list[dict]:
    """``question_table`` of one finished ``vr-em`` run, round 1 (where every method samples or scores with
    pi_theta0), from the artifacts its summary lists: the RFT round-1 ``responses.parquet`` and each EM
    estimator's round-1 ``weights.parquet``. ``cutoff``: the run's ``objective.trace_cutoff``.
    ``p_responses``: rows of an independent draw from pi_theta0 for p (default: the RFT samples)."""
    from varreason.io import ArtifactRef, read_rows

    refs = {(a["method"], a["round"], a["stage"]): ArtifactRef(path=a["path"], sha=a["sha"])
            for a in summary["artifacts"]}
    if ("rft", 1, "sample-responses") not in refs:
        raise ValueError("the run has no RFT round-1 samples (baselines.rft: false?); they are the RFT/GRPO signal")
    rft = accuracy_by_question(read_rows(refs[("rft", 1, "sample-responses")].verify() / "responses.parquet"))
    em = {m.removeprefix("em-"): em_signal(read_rows(ref.verify() / "weights.parquet"), cutoff)
          for (m, r, st), ref in sorted(refs.items()) if st == "weights" and r == 1}
    p = accuracy_by_question(p_responses) if p_responses is not None else rft
    return question_table(p, rft, em, seed)
