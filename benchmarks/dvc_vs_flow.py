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

Both runs' result rows (metrics.json without wall-clock fields) are compared. The runs' start and end times go to
``WORK/walls.json``; ``--analyse-only`` reports on a measured ``WORK`` again. Writes a markdown report (and
``.json`` beside it). Thread count is whatever the environment says (``OMP_NUM_THREADS``; unset: torch's
default, one per core), as ``make demo`` runs.
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

from benchmarks.common import ROOT, timeit

PYTHON = str(ROOT / ".venv" / "bin" / "python")

SHIM = """#!/bin/bash
# benchmarks/dvc_vs_flow.py: log each stage process's start and end, then run the real interpreter
printf 'start %s %s\\n' "$(date +%s.%N)" "$*" >> {log}
{python} "$@"
rc=$?
printf 'end %s %s %s\\n' "$(date +%s.%N)" "$rc" "$*" >> {log}
exit $rc
"""


def _run(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, float]:
    """(start, end) epoch seconds of ``cmd``."""
    t0 = time.time()
    with open(log, "w") as f:
        out = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}); see {log}")
    return t0, time.time()


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
    times, _ = timeit(lambda: subprocess.run([PYTHON, "-c", code], cwd=cwd, env=env, check=True), 3, warmup=0)
    return statistics.median(times)


def _table(results_md: Path) -> list[str]:
    return [ln for ln in results_md.read_text().splitlines() if ln.startswith("|")]


def measure(profile: str, work: Path) -> None:
    """Run both, cold, one after the other; their start and end times go to ``work/walls.json``."""
    if work.exists():
        shutil.rmtree(work)
    flow_clone, clone = work / "flow", work / "dvc"
    for c in (flow_clone, clone):
        subprocess.run(["git", "clone", "-q", str(ROOT), str(c)], check=True)
    shim_dir = work / "shim"
    shim_dir.mkdir()
    (shim_dir / "python").write_text(SHIM.format(log=work / "stages.log", python=PYTHON))
    (shim_dir / "python").chmod(0o755)
    env = _env(work)
    walls = {"profile": profile, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    walls["flow"] = _run([PYTHON, "-m", "flows.vr_em", "--profile", profile], flow_clone, env, work / "flow.log")
    dvc_env = {**env, "PATH": f"{shim_dir}:{env['PATH']}"}
    walls["dvc"] = _run([str(ROOT / ".venv" / "bin" / "dvc"), "repro"], clone, dvc_env, work / "dvc.log")
    walls["load_after"] = os.getloadavg()
    (work / "walls.json").write_text(json.dumps(walls, indent=1) + "\n")


def _env(work: Path) -> dict:
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    env["PREFECT_HOME"] = str(work / "prefect")  # a Prefect database of its own, not the caller's
    return env


def _results(metrics: Path) -> list[dict]:
    """The accuracy rows of a run's metrics.json, without their wall-clock fields."""
    return [{k: v for k, v in r.items() if "wall" not in k} for r in json.loads(metrics.read_text())["results"]]


def analyse(work: Path) -> dict:
    """The breakdown of a measured ``work`` dir: walls, stage processes, DVC's own time, results compared."""
    walls = json.loads((work / "walls.json").read_text())
    profile = walls["profile"]
    flow_s, dvc_s = walls["flow"][1] - walls["flow"][0], walls["dvc"][1] - walls["dvc"][0]
    spans = stage_spans(work / "stages.log")
    startup = _startup(work / "dvc", _env(work))
    in_stages = sum(s["end"] - s["start"] for s in spans)
    results_dir = subprocess.run([PYTHON, "-c", f"from varreason.config import load_config; "
                                  f"print(load_config('params.yaml', {profile!r}).results_dir)"],
                                 cwd=work / "flow", capture_output=True, text=True, check=True).stdout.strip()
    flow_rows = _results(work / "flow" / results_dir / "metrics.json")
    dvc_rows = _results(next((work / "dvc" / "dvc").glob(f"{profile}*/flow-report/metrics.json")))
    return {"profile": profile, "omp_num_threads": walls["omp_num_threads"], "flow_s": flow_s, "dvc_s": dvc_s,
            "ratio": dvc_s / flow_s, "stages": len(spans), "in_stage_processes_s": in_stages,
            "dvc_own_s": dvc_s - in_stages, "startup_floor_s": startup, "startup_total_s": startup * len(spans),
            "same_results": flow_rows == dvc_rows, "n_results": len(flow_rows),
            "slowest": sorted(({"stage": s["stage"], "s": round(s["end"] - s["start"], 1)} for s in spans),
                              key=lambda r: -r["s"])[:8],
            "load_after": walls.get("load_after"), "walls": walls}


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
    same = "identical" if r["same_results"] else "**differ**"
    return "\n".join(rows) + (f"\n\nSlowest stages: {slow}.\n\nThe {r['n_results']} result rows of the two runs "
                               f"(accuracy, pass@k, CIs, tokens; metrics.json without wall-clock fields): {same}.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--work", type=Path, default=Path("/tmp/dvc-vs-flow"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "dvc_vs_flow.md")
    p.add_argument("--analyse-only", action="store_true", help="report on an already measured --work dir")
    a = p.parse_args(argv)
    if not a.analyse_only:
        measure(a.profile, a.work)
    r = analyse(a.work)
    a.out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    load = tuple(round(x, 1) for x in r["load_after"]) if r["load_after"] else "not recorded"
    head = (f"# `dvc repro` vs the flow, cold, profile `{r['profile']}`\n\n"
            f"`{'OMP_NUM_THREADS=' + r['omp_num_threads'] + ' ' if r['omp_num_threads'] else ''}"
            f"python -m benchmarks.dvc_vs_flow --profile {r['profile']}` "
            f"(`make bench-dvc`; measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime(r['walls']['flow'][0]))} UTC, "
            f"load average after: {load}; torch threads: {r['omp_num_threads'] or 'default (2 here)'})."
            + (f" {r['walls']['note']}." if r["walls"].get("note") else "") + "\n\n")
    a.out.write_text(head + markdown(r))
    print(a.out.read_text())
    return 0 if r["same_results"] else 1


if __name__ == "__main__":
    sys.exit(main())
