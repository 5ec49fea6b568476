"""The result tables of docs/science.md and the README, rendered from a sweep's ``summary.json``.

    python -m science.report [--summary science/results/sci/summary.json] [--write]

Each table sits between ``<!-- science:NAME -->`` and ``<!-- /science:NAME -->`` in docs/science.md or README.md.
Without ``--write`` the command checks that every block equals its rendering (exit 1 and the names that differ
otherwise); with it, the blocks are rewritten. So a number in either page is the summary's, and the summary is
what ``make science`` wrote (tests/science/test_report.py runs the check on the committed files).

The verdict of a decision-family contrast follows docs/science.md's pre-registered rule: "A beats B" when the
paired t 95% CI over seeds lies above 0 and the Holm-adjusted p-value is below 0.05 (symmetrically for B), else
"no significant difference at n seeds".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "science/results/sci/summary.json"
PAGES = (ROOT / "docs/science.md", ROOT / "README.md")
NAMES = {"sft": "SFT-only", "rft": "RFT", "em-acc": "EM-Acc", "em-gml": "EM-GML", "grpo": "GRPO"}
METRICS = {"avg@n": "avg@4", "pass@4": "pass@4", "exact": "exact"}
ALPHA = 0.05


def _num(x: float, signed: bool = True) -> str:
    """3 decimals; a value that rounds to zero prints as 0 (+0.000), never -0.000."""
    return ("{:+.3f}" if signed else "{:.3f}").format(round(x, 3) + 0.0)


def _ci(iv: dict, signed: bool = True) -> str:
    return f"[{_num(iv['lo'], signed)}, {_num(iv['hi'], signed)}]"


def _name(cell) -> str:
    return NAMES.get(cell[0], cell[0])


def verdict(row: dict) -> str:
    """The pre-registered decision rule on one contrast row of the family (``t`` CI and ``p_holm``)."""
    a, b, t = _name(row["a"]), _name(row["b"]), row["t"]
    if row["p_holm"] < ALPHA and t["lo"] > 0:
        return f"**{a} beats {b}**"
    if row["p_holm"] < ALPHA and t["hi"] < 0:
        return f"**{b} beats {a}**"
    return f"no significant difference at {t['n']} seeds"


def decision(summary: dict, arm: str = "main") -> str:
    """The decision family: every contrast of the arm that carries a Holm-adjusted p-value."""
    lines = ["| contrast | mean diff | 95% CI (t, seeds) | Holm p | two-level bootstrap CI | A > B seeds | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in summary["arms"][arm]["contrasts"]:
        if "p_holm" not in r:
            continue
        q2 = r.get("bootstrap_2level")
        wins = sum(d > 0 for d in r["diffs"].values())
        lines.append(f"| {_name(r['a'])} - {_name(r['b'])} | {_num(r['t']['estimate'])} | {_ci(r['t'])} | "
                     f"{r['p_holm']:.2g} | {_ci(q2) if q2 else 'n/a'} | {wins}/{len(r['diffs'])} | {verdict(r)} |")
    return "\n".join(lines)


def headline(summary: dict, arm: str = "main") -> str:
    """README's table: each decision-family contrast with its pass@4 counterpart (same cells)."""
    rows = summary["arms"][arm]["contrasts"]
    n = len(summary["arms"][arm]["seeds"])
    lines = [f"| last round, `{arm}`, {n} seeds | avg@4 diff | 95% CI (t, seeds) | Holm p | pass@4 diff | 95% CI |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "p_holm" not in r:
            continue
        p4 = next((x for x in rows if x["metric"] == "pass@4" and x["a"] == r["a"] and x["b"] == r["b"]), None)
        tail = f"{_num(p4['t']['estimate'])} | {_ci(p4['t'])}" if p4 else "- | -"
        lines.append(f"| {_name(r['a'])} - {_name(r['b'])} | {_num(r['t']['estimate'])} | {_ci(r['t'])} | "
                     f"{r['p_holm']:.2g} | {tail} |")
    return "\n".join(lines)


def secondary(summary: dict, arm: str = "main") -> str:
    """Every other contrast of the arm (other metrics, earlier rounds): intervals only, no family-wise claim."""
    lines = ["| contrast | metric | mean diff | 95% CI (t, seeds) | two-level bootstrap CI | A > B seeds |",
             "|---|---|---|---|---|---|"]
    for r in summary["arms"][arm]["contrasts"]:
        if "p_holm" in r:
            continue
        q2 = r.get("bootstrap_2level")
        wins = sum(d > 0 for d in r["diffs"].values())
        lines.append(f"| {_name(r['a'])} r{r['a'][1]} - {_name(r['b'])} r{r['b'][1]} | {METRICS[r['metric']]} | "
                     f"{_num(r['t']['estimate'])} | {_ci(r['t'])} | {_ci(q2) if q2 else 'n/a'} | "
                     f"{wins}/{len(r['diffs'])} |")
    return "\n".join(lines)


def means(summary: dict, arm: str = "main") -> str:
    """Cell means over the arm's seeds with their t CIs, one line per method and round."""
    cells: dict[tuple, dict] = {}
    for m in summary["arms"][arm]["means"]:
        cells.setdefault((m["method"], m["round"]), {})[m["metric"]] = m["t"]
    lines = ["| method | round | avg@4 (95% t CI) | pass@4 (95% t CI) | exact-trace share |", "|---|---|---|---|---|"]
    for (method, rnd), by in cells.items():
        cols = [f"{_num(by[k]['estimate'], False)} {_ci(by[k], signed=False)}" if k in by else "-"
                for k in ("avg@n", "pass@4", "exact")]
        lines.append(f"| {NAMES.get(method, method)} | {rnd} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def ablations(summary: dict) -> str:
    """Each ablation arm's cell minus the baseline arm's on the same seeds: paired t CI per metric."""
    lines = ["| ablation | arm | avg@4 diff (t CI) | pass@4 diff (t CI) | exact-trace share diff (t CI) | seeds |",
             "|---|---|---|---|---|---|"]
    for ab in summary["ablations"]:
        by_arm: dict[str, dict] = {}
        for r in ab["rows"]:
            by_arm.setdefault(r["arm"], {})[r["metric"]] = r
        for arm, rows in by_arm.items():
            cols = [f"{_num(rows[k]['t']['estimate'])} {_ci(rows[k]['t'])}" if k in rows else "-"
                    for k in ("avg@n", "pass@4", "exact")]
            n = next(iter(rows.values()))["t"]["n"]
            lines.append(f"| {ab['name']} | `{arm}` | " + " | ".join(cols) + f" | {n} |")
    return "\n".join(lines)


def bias(summary: dict) -> str:
    """Relative slopes of each training signal on pi_theta0's accuracy, and the paired slope differences."""
    fit = summary["bias"]["fit"]
    lines = ["| signal | mean | relative slope per unit p (95% CI) |", "|---|---|---|"]
    lines += [f"| `{s}` | {_num(f['mean'], False)} | {_num(f['slope'])} {_ci(f)} |" for s, f in fit["slopes"].items()]
    lines += ["", "| slope difference | value (95% CI) |", "|---|---|"]
    lines += [f"| `{k}` | {_num(d['diff'])} {_ci(d)} |" for k, d in fit.get("diffs", {}).items()]
    return "\n".join(lines)


BLOCKS = {"headline": headline, "decision": decision, "secondary": secondary, "means": means, "ablations": ablations, "bias": bias}
_BLOCK = re.compile(r"(<!-- science:(\w+) -->\n)(.*?)(<!-- /science:\2 -->)", re.S)


def render_page(text: str, summary: dict) -> str:
    """``text`` with every science block replaced by its rendering from ``summary``."""
    return _BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)](summary) + "\n" + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m science.report", description=__doc__.split("\n")[0])
    p.add_argument("--summary", default=str(SUMMARY))
    p.add_argument("--write", action="store_true", help="rewrite the blocks (default: check them)")
    args = p.parse_args(argv)
    summary = json.loads(Path(args.summary).read_text())
    stale = []
    for page in PAGES:
        old = page.read_text()
        new = render_page(old, summary)
        if new != old:
            if args.write:
                page.write_text(new)
            else:
                stale.append(page.relative_to(ROOT).as_posix())
    if stale:
        print(f"stale science tables in {', '.join(stale)}: run `python -m science.report --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
