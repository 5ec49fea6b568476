"""Task: the summary of a ``vr-sweep`` grid (files + one Prefect markdown artifact). No maths here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from varreason.bias import bias_plot
from varreason.io import write_atomic
from varreason.sweep import GridConfig, environment, means_plot, sweep_report


@task(name="publish-sweep", task_run_name="publish-sweep-{grid.profile}", cache_policy=NO_CACHE,
      persist_result=False)
def publish_sweep(grid: GridConfig, summaries: dict[str, dict[int, dict]], cutoff: int, out_dir: str,
                  run_dirs: dict[str, dict[int, str]] | None = None) -> dict:
    """Write ``out_dir/{summary.md, summary.json, accuracy-<arm>.png[, bias.png]}`` (the JSON with the machine's
    ``environment``) and each run's ``metrics.json`` and ``results.md`` (from ``run_dirs[arm][seed]``) under
    ``out_dir/per-seed/<arm>/seed-<seed>/``; publish ``vr-sweep-<profile>``; return the JSON."""
    rep = sweep_report(grid, summaries, cutoff)
    rep["json"]["environment"] = environment()
    out = Path(out_dir)
    for arm, dirs in (run_dirs or {}).items():
        for seed, d in dirs.items():
            for name in ("metrics.json", "results.md"):
                if (Path(d) / name).exists():
                    write_atomic(out / "per-seed" / arm / f"seed-{seed}" / name, (Path(d) / name).read_bytes())
    write_atomic(out / "summary.json", json.dumps(rep["json"], indent=1, sort_keys=True, default=str))
    md = rep["markdown"]
    inline = md
    if rep["bias_bins"]:
        png = bias_plot(rep["bias_bins"], out / "bias.png").read_bytes()
        md += "\n![signal vs p](bias.png)\n"
        inline += f"\n![signal vs p](data:image/png;base64,{base64.b64encode(png).decode()})\n"
    for arm, res in rep["json"]["arms"].items():  # accuracy per round with error bars, one plot per arm
        png = means_plot(res["means"], grid.analysis.metrics[0], out / f"accuracy-{arm}.png",
                         f"{grid.profile}, arm {arm}, seeds {res['seeds']}").read_bytes()
        md += f"\n![{arm}](accuracy-{arm}.png)\n"
        inline += f"\n![{arm}](data:image/png;base64,{base64.b64encode(png).decode()})\n"
    write_atomic(out / "summary.md", md)
    create_markdown_artifact(key=f"vr-sweep-{grid.profile}".replace("_", "-").lower(), markdown=inline,
                             description=f"vr-sweep {grid.profile}: means, paired CIs, ablations, bias")
    print(md)
    return rep["json"]
