"""Run summary: results table (method x round x held-out accuracy), accuracy plot, weight diagnostics and
per-stage cost, built from the artifacts of one run. Pure: refs in, files and strings out."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from varreason.io import ArtifactRef, hash_json, read_json, write_atomic, write_json

METHOD_ORDER = {"sft": 0, "rft": 1, "grpo": 2}
_TOKEN_KINDS = ("generated", "scored", "trained")  # stats.json keys tokens_<kind>, written by the steps


@dataclass(frozen=True)
class Stage:
    """One executed step of the run, for the cost table (and, for ``eval``/``weights``, the metric tables)."""

    method: str  # "sft", "rft", "em-acc", ...
    round: int
    stage: str  # "eval", "weights", "sample-traces", "train", ...
    ref: ArtifactRef


def _sort_key(method: str) -> tuple[int, str]:
    return METHOD_ORDER.get(method, len(METHOD_ORDER)), method


def collect(stages: list[Stage]) -> dict:
    """metrics.json content: per (method, round) accuracy and pass@k; weight diagnostics; per-stage cost; the
    ref (path, sha) of every stage's artifact, from which ``varreason.stats``/``bias`` read per-question data."""
    results, weights, sets, cost, artifacts = [], [], [], [], []
    for s in stages:
        st = read_json(s.ref.verify() / "stats.json")
        artifacts.append({"method": s.method, "round": s.round, "stage": s.stage, "path": s.ref.path, "sha": s.ref.sha})
        if s.stage == "eval":
            m = read_json(s.ref.verify() / "metrics.json")
            results.append({"method": s.method, "round": s.round, **{k: v for k, v in m.items() if k != "tasks"}})
        if s.stage == "weights":
            weights.append({"method": s.method, "round": s.round,
                            **{k: st[k] for k in ("iwae_mean", "elbo_mean", "ess_mean", "max_weight_share",
                                                  "n_dead_questions", "n_unfinished", "n_invalid", "K")}})
        if s.stage == "train-set":
            sets.append({"method": s.method, "round": s.round,  # what the set's builder records (GRPO: none)
                         **{k: st[k] for k in ("n_selected", "n_fallback", "n_dropped", "frac_exact_traces") if k in st}})
        kinds = {k: int(st.get(f"tokens_{k}", 0)) for k in _TOKEN_KINDS}
        tokens = sum(kinds.values())
        wall = st.get("wall_s", 0.0) + st.get("sample_wall_s", 0.0)  # eval samples inside a nested step
        cost.append({"method": s.method, "round": s.round, "stage": s.stage, "wall_s": round(wall, 3),
                     "tokens": tokens, **{f"tokens_{k}": v for k, v in kinds.items()},
                     "tokens_per_s": round(tokens / wall, 1) if wall else 0.0})
    results.sort(key=lambda r: (_sort_key(r["method"]), r["round"]))
    sets.sort(key=lambda r: (_sort_key(r["method"]), r["round"]))
    return {"results": results, "weights": weights, "train_sets": sets, "cost": cost, "artifacts": artifacts}


def results_table(summary: dict, pass_k: list[int]) -> str:
    ks = [k for k in pass_k if k > 1]
    head = "| method | round | held-out acc (avg@n) | " + " | ".join(f"pass@{k}" for k in ks) + " |"
    lines = [head, "|" + "---|" * (3 + len(ks))]
    for r in summary["results"]:
        lines.append(f"| {r['method']} | {r['round']} | {r['accuracy']:.3f} | "
                     + " | ".join(f"{r[f'pass@{k}']:.3f}" for k in ks) + " |")
    return "\n".join(lines)


def weights_table(summary: dict) -> str:
    lines = ["| method | round | K | IWAE bound* | ELBO* | ESS | max weight share | dead questions | unfinished |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w in summary["weights"]:
        lines.append(f"| {w['method']} | {w['round']} | {w['K']} | {w['iwae_mean']:.3f} | {w['elbo_mean']:.3f} | "
                     f"{w['ess_mean']:.2f} | {w['max_weight_share']:.2f} | {int(w['n_dead_questions'])} | "
                     f"{int(w['n_unfinished'])} |")
    lines.append("\n\\* mean over the questions where both bounds are finite (a question with one zero-weight "
                 "trace has ELBO -inf); dead questions: every trace has weight 0.")
    return "\n".join(lines)


def train_set_table(summary: dict) -> str:
    lines = ["| method | round | questions with a new trace | gold fallback | dropped | traces exactly right |",
             "|---|---|---|---|---|---|"]
    for s in summary["train_sets"]:
        cols = [f"{int(s[k])}" if k in s else "-" for k in ("n_selected", "n_fallback", "n_dropped")]
        exact = f"{s['frac_exact_traces']:.3f}" if "frac_exact_traces" in s else "-"
        lines.append(f"| {s['method']} | {s['round']} | " + " | ".join(cols) + f" | {exact} |")
    return "\n".join(lines)


def cost_table(summary: dict) -> str:
    """Cost per stage (summed over methods and rounds), then per (method, round): wall seconds, tokens
    generated / scored / trained and tokens per second."""

    def rows(key) -> dict:
        agg: dict = {}
        for c in summary["cost"]:
            a = agg.setdefault(key(c), {"wall_s": 0.0, **{k: 0 for k in _TOKEN_KINDS}})
            a["wall_s"] += c["wall_s"]
            for k in _TOKEN_KINDS:
                a[k] += c[f"tokens_{k}"]
        return agg

    def line(label: str, a: dict) -> str:
        tok = sum(a[k] for k in _TOKEN_KINDS)
        return (f"| {label} | {a['wall_s']:.1f} | " + " | ".join(str(int(a[k])) for k in _TOKEN_KINDS)
                + f" | {tok / a['wall_s'] if a['wall_s'] else 0:.0f} |")

    cols = " | ".join(f"tokens {k}" for k in _TOKEN_KINDS)
    lines = [f"| stage | wall s | {cols} | tokens/s |", "|---|---|---|---|---|---|"]
    lines += [line(st, a) for st, a in sorted(rows(lambda c: c["stage"]).items(), key=lambda kv: -kv[1]["wall_s"])]
    lines += ["", f"| method | round | wall s | {cols} | tokens/s |", "|---|---|---|---|---|---|---|"]
    per_round = rows(lambda c: (c["method"], c["round"]))
    lines += [line(f"{m} | {r}", a) for (m, r), a in sorted(per_round.items(), key=lambda kv: (_sort_key(kv[0][0]),
                                                                                              kv[0][1]))]
    return "\n".join(lines)


def accuracy_plot(summary: dict) -> bytes:
    """PNG: held-out accuracy per round, one line per method (SFT-only drawn as the round-0 start of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    sft = [r for r in summary["results"] if r["method"] == "sft"]
    base = sft[0]["accuracy"] if sft else None
    for method in sorted({r["method"] for r in summary["results"]} - {"sft"}, key=_sort_key):
        pts = sorted((r["round"], r["accuracy"]) for r in summary["results"] if r["method"] == method)
        if base is not None:
            pts = [(0, base)] + pts
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    if base is not None:
        ax.axhline(base, color="gray", ls="--", label="sft (pi_theta0)")
    ax.set_xlabel("EM round")
    ax.set_ylabel("held-out accuracy (avg@n)")
    ax.legend()
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Description": _plot_key(summary)})
    plt.close(fig)
    return buf.getvalue()


def _plot_key(summary: dict) -> str:
    """What the plot is a function of (its results rows), hashed; stored in the PNG's own text chunk."""
    return "varreason-accuracy " + hash_json(summary["results"])


def _previous_plot(path: Path, summary: dict) -> bytes | None:
    """The PNG at ``path`` when it was drawn from the same results: a cached re-run then skips matplotlib
    (~0.6 s of a ~3 s re-run). The key travels inside the file, so a crash between writes cannot pair a stale
    plot with new results."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            same = img.text.get("Description") == _plot_key(summary)
        return path.read_bytes() if same else None
    except (OSError, ValueError, AttributeError):
        return None


def write_report(summary: dict, pass_k: list[int], out_dir: str | Path, header: str) -> dict[str, str]:
    """Write metrics.json, results.md and accuracy.png into ``out_dir`` (atomically); return the markdown
    (with the plot inlined as a data URI, for UIs that show one document)."""
    out = Path(out_dir)
    png = _previous_plot(out / "accuracy.png", summary)
    write_json(out / "metrics.json", summary)
    if png is None:
        png = accuracy_plot(summary)
        write_atomic(out / "accuracy.png", png)
    body = (f"{header}\n\n## Held-out accuracy\n\n{results_table(summary, pass_k)}\n\n## Importance weights\n\n"
            f"{weights_table(summary)}\n\n## Reasoner training sets\n\n{train_set_table(summary)}\n\n## Cost per stage\n\n{cost_table(summary)}\n")
    write_atomic(out / "results.md", body + "\n![accuracy per round](accuracy.png)\n")
    inline = body + f"\n![accuracy per round](data:image/png;base64,{base64.b64encode(png).decode()})\n"
    return {"markdown": body, "markdown_inline": inline, "table": results_table(summary, pass_k)}


def seed_summary(runs: dict[int, dict], out_dir: str | Path) -> str:
    """Mean and sample standard deviation of held-out accuracy per (method, round) over seeds; writes
    ``seeds.json`` and ``seeds.md`` into ``out_dir`` and returns the markdown table."""
    import statistics

    cells: dict[tuple[str, int], list[float]] = {}
    for summary in runs.values():
        for r in summary["results"]:
            cells.setdefault((r["method"], r["round"]), []).append(r["accuracy"])
    rows = []
    for (method, rnd), accs in sorted(cells.items(), key=lambda kv: (_sort_key(kv[0][0]), kv[0][1])):
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append({"method": method, "round": rnd, "mean": statistics.fmean(accs), "std": sd, "per_seed": accs})
    seeds = sorted(runs)
    lines = [f"| method | round | mean acc | std | per seed ({', '.join(map(str, seeds))}) |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['round']} | {r['mean']:.3f} | {r['std']:.3f} | "
              f"{', '.join(f'{a:.3f}' for a in r['per_seed'])} |" for r in rows]
    table = "\n".join(lines)
    write_json(Path(out_dir) / "seeds.json", {"seeds": seeds, "rows": rows})
    write_atomic(Path(out_dir) / "seeds.md", table + "\n")
    return table
