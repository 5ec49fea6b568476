"""A fresh clone's cold ``dvc repro`` against the flow's cold run on the same profile (issue 22, item 4).

    python -m benchmarks.dvc_vs_flow [--profile tiny] [--work /tmp/dvc-vs-flow] [--out benchmarks/dvc_vs_flow.md]

Clones this repository's HEAD twice into ``--work``, points both at this checkout's ``.venv`` (the packages, not
the code: every command runs from a clone), then, one after the other on the same machine:

1. in the first clone, the flow, cold, as a user runs it: ``python -m flows.vr_em --profile P`` (empty store; it
   ends by versioning its outputs under DVC, which is why ``dvc repro`` gets a clone of its own);
2. in the second, ``dvc repro`` (empty store), through a ``python`` shim first on
   PATH that logs each stage process's start and end, so the wall splits into the stage processes (start-up,
   imports, the step, materialising the output) and DVC's own time between them (hashing outputs and deps,
   ``dvc.lock``, checking the pipeline);
3. a bare stage process's start-up: ``python -c 'import torch, transformers, varreason.pipeline.run_stage'``
   (median of 3), the floor each of the stages pays.

Both results tables are compared cell for cell. Writes a markdown report (and ``.json`` beside it). Thread count
is whatever the environment says (``OMP_NUM_THREADS``); pin it for numbers you report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHIM = """#!/bin/bash
# benchmarks/dvc_vs_flow.py: log each stage process's start and end, then run the real interpreter
printf 'start %s %s\\n' "$(date +%s.%N)" "$*" >> {log}
{python} "$@"
rc=$?
printf 'end %s %s %s\\n' "$(date +%s.%N)" "$rc" "$*" >> {log}
exit $rc
"""


def _run(cmd: list[str], cwd: Path, env: dict, log: Path) -> float:
    t0 = time.monotonic()
    with open(log, "w") as f:
        out = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}); see {log}")
    return wall


def stage_spans(log: Path) -> list[dict]:
    """The shim's log as one span per stage process: {stage, start, end} (epoch seconds)."""
    spans, open_ = [], {}
    for line in log.read_text().splitlines():
        kind, ts, *rest = line.split(" ")
        if kind == "start":
            open_[" ".join(rest)] = float(ts)
        else:
            args = " ".join(rest[1:])
            stage = args.split(" run ", 1)[1].split(" ")[0] if " run " in args else args
            spans.append({"stage": stage, "start": open_.pop(args), "end": float(ts)})
    return spans


def _startup(cwd: Path, env: dict) -> float:
    code = "import torch, transformers, varreason.pipeline.run_stage"
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([env["VR_PYTHON"], "-c", code], cwd=cwd, env=env, check=True)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def _table(results_md: Path) -> list[str]:
    return [ln for ln in results_md.read_text().splitlines() if ln.startswith("|")]


def measure(profile: str, work: Path) -> dict:
    if work.exists():
        shutil.rmtree(work)
    flow_clone, clone = work / "flow", work / "dvc"
    for c in (flow_clone, clone):
        subprocess.run(["git", "clone", "-q", str(ROOT), str(c)], check=True)
    python = str(ROOT / ".venv" / "bin" / "python")
    shim_dir = work / "shim"
    shim_dir.mkdir()
    spans_log = work / "stages.log"
    (shim_dir / "python").write_text(SHIM.format(log=spans_log, python=python))
    (shim_dir / "python").chmod(0o755)
    env = {**os.environ, "VR_PYTHON": python, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env["PREFECT_HOME"] = str(work / "prefect")  # a Prefect database of its own, not the caller's

    flow_wall = _run([python, "-m", "flows.vr_em", "--profile", profile], flow_clone, env, work / "flow.log")
    dvc_env = {**env, "PATH": f"{shim_dir}:{env['PATH']}"}
    dvc_wall = _run([str(ROOT / ".venv" / "bin" / "dvc"), "repro"], clone, dvc_env, work / "dvc.log")
    spans = stage_spans(spans_log)
    startup = _startup(clone, env)
    in_stages = sum(s["end"] - s["start"] for s in spans)
    results_dir = subprocess.run([python, "-c", f"from varreason.config import load_config; "
                                  f"print(load_config('params.yaml', {profile!r}).results_dir)"],
                                 cwd=flow_clone, env=env, capture_output=True, text=True, check=True).stdout.strip()
    flow_table = _table(flow_clone / results_dir / "results.md")
    dvc_md = next((clone / "dvc" / profile).glob("**/flow-report/results.md"))
    dvc_table = _table(dvc_md)
    return {"profile": profile, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "flow_s": flow_wall,
            "dvc_s": dvc_wall, "ratio": dvc_wall / flow_wall, "stages": len(spans), "in_stage_processes_s": in_stages,
            "dvc_own_s": dvc_wall - in_stages, "startup_floor_s": startup, "startup_total_s": startup * len(spans),
            "same_table": flow_table == dvc_table, "table": dvc_table,
            "slowest": sorted(({"stage": s["stage"], "s": round(s["end"] - s["start"], 1)} for s in spans),
                              key=lambda r: -r["s"])[:8],
            "load_after": os.getloadavg()}


def markdown(r: dict) -> str:
    rows = [
        "| | seconds |", "|---|---|",
        f"| flow, cold (`python -m flows.vr_em --profile {r['profile']}`, empty store) | {r['flow_s']:.0f} |",
        f"| `dvc repro`, cold (fresh clone, empty store) | {r['dvc_s']:.0f} |",
        f"| ratio dvc / flow | {r['ratio']:.2f} |",
        f"| in the {r['stages']} stage processes | {r['in_stage_processes_s']:.0f} |",
        f"| of which start-up + imports (floor {r['startup_floor_s']:.1f} s x {r['stages']}) | "
        f"{r['startup_total_s']:.0f} |",
        f"| DVC's own time between stages (hashing, lock, checks) | {r['dvc_own_s']:.0f} |",
    ]
    slow = ", ".join(f"{s['stage']} {s['s']} s" for s in r["slowest"])
    same = "identical" if r["same_table"] else "**differ**"
    return "\n".join(rows) + f"\n\nSlowest stages: {slow}.\n\nResults tables of the two runs: {same}.\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--work", type=Path, default=Path("/tmp/dvc-vs-flow"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "dvc_vs_flow.md")
    a = p.parse_args(argv)
    r = measure(a.profile, a.work)
    a.out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    head = (f"# `dvc repro` vs the flow, cold, profile `{r['profile']}`\n\n"
            f"`OMP_NUM_THREADS={r['omp_num_threads']} python -m benchmarks.dvc_vs_flow --profile {r['profile']}` "
            f"({time.strftime('%Y-%m-%d')}, load average after {tuple(round(x, 1) for x in r['load_after'])}).\n\n")
    a.out.write_text(head + markdown(r))
    print(a.out.read_text())
    return 0 if r["same_table"] else 1


if __name__ == "__main__":
    sys.exit(main())
