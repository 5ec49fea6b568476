"""A pre-registered grid of ``vr-em`` runs (arms x seeds) and its summary, from ``science/*.yaml``.

A grid file names the profile, the arms (dotted ``--set`` overrides and the seeds each runs) and the analysis,
all fixed before anything runs (docs/science.md)::

    profile: sci
    out_dir: science/results/main
    arms:
      main: {seeds: [0, 1, 2], overrides: {}}
      k8:   {seeds: [0, 1, 2], overrides: {sampling.traces_per_question: 8, baselines.rft_samples: 8}}
    analysis:
      metrics: [avg@n, pass@4]
      contrasts: [[em-gml, rft], [em-gml, sft]]     # within each arm, per round; sft is always round 0
      ablations: [{name: K, method: em-gml, round: 2, baseline: main, arms: [k8]}]
      bias: {arm: main, pairs: [[rft_share, em-gml]]}

``sweep_report`` turns the arms' ``vr-em`` summaries into the markdown and JSON summary (``varreason.stats``,
``varreason.bias``). Pure: no Prefect; reads only the artifacts the summaries list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from varreason import bias, stats
from varreason.config import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArmConfig(_Frozen):
    seeds: list[int] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)


class AblationConfig(_Frozen):
    """Cell ``(method, round)`` of each arm in ``arms`` against the same cell of ``baseline``, paired by seed."""

    name: str
    method: str
    round: int = Field(ge=0)
    baseline: str
    arms: list[str] = Field(min_length=1)


class BiasConfig(_Frozen):
    arm: str
    pairs: list[tuple[str, str]] = Field(default_factory=list)
    edges: list[float] = Field(default_factory=lambda: [0.0, 0.125, 0.375, 0.625, 0.875, 1.0], min_length=2)


class AnalysisConfig(_Frozen):
    metrics: list[str] = Field(min_length=1)
    contrasts: list[tuple[str, str]] = Field(default_factory=list)
    ablations: list[AblationConfig] = Field(default_factory=list)
    bias: BiasConfig | None = None
    n_boot: int = Field(10_000, ge=100)
    boot_seed: int = 0
    level: float = Field(0.95, gt=0, lt=1)


class GridConfig(_Frozen):
    profile: str
    out_dir: str
    arms: dict[str, ArmConfig] = Field(min_length=1)
    analysis: AnalysisConfig

    @model_validator(mode="after")
    def _arms_exist(self) -> "GridConfig":
        named = [a.baseline for a in self.analysis.ablations] + [x for a in self.analysis.ablations for x in a.arms]
        named += [self.analysis.bias.arm] if self.analysis.bias else []
        unknown = sorted(set(named) - set(self.arms))
        if unknown:
            raise ValueError(f"analysis names arms {unknown} that the grid does not define; add them under arms")
        for key in ("seed", "results_dir", "artifacts_dir"):
            if any(key in a.overrides for a in self.arms.values()):
                raise ValueError(f"an arm overrides {key!r}, which the sweep sets itself; remove it")
        return self


def load_grid(path: str | Path) -> GridConfig:
    """Read and validate a grid file; a bad one raises ``ConfigError`` with one line naming the key."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return GridConfig.model_validate(doc)
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found; see science/") from None
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: {loc + ': ' if loc else ''}{msg}") from None


def expand(grid: GridConfig, results_dir: str, arms: list[str] | None = None, seeds: list[int] | None = None
           ) -> list[dict]:
    """The runs of the grid (optionally only ``arms`` and/or ``seeds``): ``{"arm", "seed", "overrides"}`` with the
    seed and a per-run ``results_dir`` (``<results_dir>/sweep/<arm>/seed-<s>``) added to the arm's overrides."""
    names = arms or list(grid.arms)
    unknown = sorted(set(names) - set(grid.arms))
    if unknown:
        raise ConfigError(f"unknown arms {unknown}; the grid defines {sorted(grid.arms)}")
    return [{"arm": a, "seed": s, "overrides": {**grid.arms[a].overrides, "seed": s,
                                                "results_dir": f"{results_dir}/sweep/{a}/seed-{s}"}}
            for a in names for s in grid.arms[a].seeds if seeds is None or s in seeds]


def seed_parts(runs: list[dict], n: int, first: float = 2.5) -> list[list[int]]:
    """The seeds of ``runs`` (``expand``'s rows) in ``n`` parts of about equal cost, for ``n`` processes.

    A seed's runs stay in one part: they share its task data, pi_theta0 and q_phi0, which the first of them
    computes (cost ``first``; each further run of the seed, an ablation reusing them, costs 1; on ``sci`` a cold
    run took ~620 CPU s, an ablation arm's own steps ~240). Largest seed first into the cheapest part (LPT);
    parts keep ascending seed order, and empty parts are dropped."""
    count: dict[int, int] = {}
    for r in runs:
        count[r["seed"]] = count.get(r["seed"], 0) + 1
    cost = {s: first + k - 1 for s, k in count.items()}
    parts: list[list[int]] = [[] for _ in range(max(n, 1))]
    load = [0.0] * len(parts)
    for s in sorted(cost, key=lambda s: (-cost[s], s)):
        i = min(range(len(parts)), key=lambda i: (load[i], i))
        parts[i].append(s)
        load[i] += cost[s]
    return [sorted(p) for p in parts if p]


def _outcome(summary: dict) -> stats.RunOutcome:
    """``stats.run_outcome`` plus each train set's share of exactly right traces as metric ``exact``."""
    out = stats.run_outcome(summary)
    metrics = {cell: dict(m) for cell, m in out.metrics.items()}
    for s in summary.get("train_sets", []):
        if "frac_exact_traces" in s:  # GRPO's set has no traces to check
            metrics.setdefault((s["method"], s["round"]), {})["exact"] = s["frac_exact_traces"]
    return stats.RunOutcome(metrics, out.counts)


def _within(grid: GridConfig, runs: dict[int, stats.RunOutcome]) -> tuple[list[dict], list[dict]]:
    an = grid.analysis
    kw = dict(n_boot=an.n_boot, seed=an.boot_seed, level=an.level)
    means = [row for m in an.metrics + ["exact"] for row in stats.cell_means(runs, m, an.level)]
    cells = set.intersection(*(set(r.metrics) for r in runs.values()))
    rows = []
    for a, b in an.contrasts:
        for ca in sorted(c for c in cells if c[0] == a):
            cb = ("sft", 0) if b == "sft" else (b, ca[1])
            if cb in cells:
                rows += [stats.contrast(runs, ca, cb, m, **kw) for m in an.metrics]
    # the decision family (docs/science.md): every contrast of the first metric at the last round, Holm-adjusted
    last = max((r["a"][1] for r in rows), default=0)
    family = {i: r["p_t"] for i, r in enumerate(rows) if r["metric"] == an.metrics[0] and r["a"][1] == last}
    for i, p in stats.holm({str(i): p for i, p in family.items()}).items():
        rows[int(i)]["p_holm"] = p
    return means, rows


def sweep_report(grid: GridConfig, summaries: dict[str, dict[int, dict]], cutoff: int | None = None) -> dict:
    """Summary of a finished grid. ``summaries[arm][seed]``: each run's ``vr-em`` summary; ``cutoff``: the
    profile's ``objective.trace_cutoff`` (needed for the bias analysis). Returns ``{"json": ..., "markdown":
    ..., "bias_bins": ... | None}``; arms with no finished seed are skipped."""
    an = grid.analysis
    outcomes = {a: {s: _outcome(x) for s, x in sorted(by_seed.items())} for a, by_seed in summaries.items() if by_seed}
    out: dict = {"profile": grid.profile, "arms": {}, "ablations": [], "bias": None,
                 "per_seed": {a: {s: summaries[a][s]["results"] for s in runs} for a, runs in outcomes.items()}}
    md = [f"# Sweep: profile `{grid.profile}`\n"]
    for arm, runs in outcomes.items():
        means, rows = _within(grid, runs)
        out["arms"][arm] = {"seeds": sorted(runs), "overrides": grid.arms[arm].overrides, "means": means,
                            "contrasts": rows}
        md += [f"## Arm `{arm}` (seeds {sorted(runs)}, overrides `{grid.arms[arm].overrides}`)\n",
               stats.means_table(means), "", stats.contrasts_table(rows) if rows else "(no contrasts)", ""]
    for ab in an.ablations:
        rows = _ablation(an, ab, outcomes)
        out["ablations"].append({"name": ab.name, "rows": rows})
        md += [f"## Ablation {ab.name}: {ab.method} r{ab.round}, each arm - `{ab.baseline}`, paired by seed\n",
               _ablation_table(rows), ""]
    bins = None
    if an.bias and outcomes.get(an.bias.arm) and cutoff is not None:
        rows = [r for s, x in sorted(summaries[an.bias.arm].items()) for r in bias.run_rows(x, cutoff, seed=s)]
        names = bias.signal_names(rows)
        bins = bias.binned(rows, an.bias.edges, names)
        fit = bias.slopes(rows, names, an.n_boot // 5, an.boot_seed, an.level, an.bias.pairs)
        out["bias"] = {"bins": bins, "fit": fit, "n_questions": len(rows)}
        md += [f"## Easy-question bias (arm `{an.bias.arm}`, round 1, {len(rows)} questions pooled over seeds)\n",
               bias.bias_markdown(bins, fit, names), ""]
    return {"json": out, "markdown": "\n".join(md), "bias_bins": bins}


def _ablation(an: AnalysisConfig, ab: AblationConfig, outcomes: dict[str, dict[int, stats.RunOutcome]]
              ) -> list[dict]:
    """Per arm of ``ab`` and metric: the arm's cell mean and its paired difference from the baseline arm's cell
    over the seeds both ran (metrics a run lacks, e.g. ``exact`` of SFT, are skipped)."""
    base, cell, rows = outcomes.get(ab.baseline, {}), (ab.method, ab.round), []
    for arm in ab.arms:
        runs = outcomes.get(arm, {})
        common = sorted(set(runs) & set(base))
        if not common or arm == ab.baseline:
            continue
        for m in an.metrics + ["exact"]:
            if not all(m in x.metrics.get(cell, {}) for x in [runs[s] for s in common] + [base[s] for s in common]):
                continue
            a = {s: runs[s].metrics[cell][m] for s in common}
            d = stats.paired_seed_ci(a, {s: base[s].metrics[cell][m] for s in common}, an.n_boot, an.boot_seed,
                                     an.level)
            rows.append({"arm": arm, "metric": m, "mean": stats.mean_ci_t(list(a.values()), an.level).as_dict(),
                         "diffs": d["diffs"], "t": d["t"].as_dict(), "bootstrap_seeds": d["bootstrap"].as_dict(),
                         "p_t": d["p_t"]})
    return rows


def _ablation_table(rows: list[dict]) -> str:
    lines = ["| arm | metric | mean (arm) | diff vs baseline | t CI (seeds) | bootstrap CI (seeds) | n seeds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        t, b = r["t"], r["bootstrap_seeds"]
        lines.append(f"| {r['arm']} | {r['metric']} | {r['mean']['estimate']:.3f} | {t['estimate']:+.3f} | "
                     f"[{t['lo']:+.3f}, {t['hi']:+.3f}] | [{b['lo']:+.3f}, {b['hi']:+.3f}] | {t['n']} |")
    return "\n".join(lines)


def environment() -> dict:
    """What a sweep's numbers may depend on beyond code and params: the CPU, torch's build, vector ISA and
    intra-op threads, and the package versions (``summary.json["environment"]``, to compare two runs' machines).
    """
    import os
    import platform

    import torch

    from varreason.fingerprint import package_versions

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = package_versions(("torch", "transformers", "tokenizers", "lm_eval", "math-verify", "numpy"))
    return {"cpu": cpu, "cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "packages": versions}


def means_plot(means: list[dict], metric: str, path: str | Path, title: str = "") -> Path:
    """PNG at ``path``: ``metric``'s mean over seeds per method and round with its 95% t CI as error bars
    (``stats.cell_means`` rows); SFT-only (round 0) is drawn as the round-0 start of every method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in means if m["metric"] == metric]
    sft = [m for m in rows if m["method"] == "sft"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    for i, method in enumerate(sorted({m["method"] for m in rows} - {"sft"})):
        pts = sorted((m["round"], m["t"]) for m in rows if m["method"] == method)
        pts = [(0, sft[0]["t"])] * bool(sft) + pts
        x = [r + 0.03 * (i - 1) for r, _ in pts]  # a small offset keeps overlapping error bars readable
        y = [t["estimate"] for _, t in pts]
        err = [[t["estimate"] - t["lo"] for _, t in pts], [t["hi"] - t["estimate"] for _, t in pts]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=method)
    ax.set_xlabel("EM round (0: SFT-only pi_theta0)")
    ax.set_ylabel(f"held-out {metric}, mean over seeds (95% t CI)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return bias.save_png(fig, path)
