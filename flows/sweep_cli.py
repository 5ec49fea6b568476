"""Command line for the ``vr-sweep`` flow.

    python -m flows.vr_sweep [--grid science/grid.yaml] [--params params.yaml] [--concurrency N] [--procs N]
                             [--arms A B ...] [--seeds 0 1 ...] [--profile NAME] [--out-dir DIR]

The grid and every arm's resolved profile are validated before Prefect starts: a bad one prints one
``error:`` line and exits 2. Then, as ``python -m flows.vr_em`` does (``flows.cli.start_services``), every
process the sweep starts dies with it, even under ``kill -9``, and without ``PREFECT_API_URL`` it runs its own
ephemeral Prefect server, stopped at exit.

``--procs N`` runs the seeds in N ``vr-sweep`` processes at once (``varreason.sweep.seed_parts``: each seed's
runs in one process, parts of about equal cost), each with one torch thread under ``make science``; they share
the artifact store, Prefect's result storage and this process's Prefect server (so every run is in one UI).
When all have finished, this process runs the whole selection once more, every step a cache hit, and writes
the one summary. Unlike ``--concurrency`` (threads of one process, which share torch's global RNG), processes
give the numbers of a one-process run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from varreason.config import UserError, load_config


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    p = argparse.ArgumentParser(prog="python -m flows.vr_sweep", description=__doc__.split("\n")[1])
    p.add_argument("--grid", default="science/grid.yaml")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--concurrency", type=int, default=1, help="arms run at once (threads of this process)")
    p.add_argument("--procs", type=int, default=1, help="processes the seeds are split over (then one summary)")
    p.add_argument("--arms", nargs="+", default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--profile", default=None, help="replace the grid's profile (e.g. smoke)")
    p.add_argument("--out-dir", default=None, help="replace the grid's out_dir")
    args = p.parse_args(argv)
    try:
        from varreason.sweep import expand, load_grid, seed_parts

        grid = load_grid(args.grid)
        profile = args.profile or grid.profile
        base = load_config(args.params, profile)
        runs = expand(grid, base.results_dir, args.arms, args.seeds)
        for r in runs:
            load_config(args.params, profile, r["overrides"])
        if args.procs < 1:
            raise UserError(f"--procs {args.procs}: give 1 or more processes")
        from flows.cli import start_services

        api = start_services()  # the process ownership of `python -m flows.vr_em`: a killed sweep leaves nothing
    except UserError as exc:  # a bad grid before anything starts, or no Prefect server
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.procs > 1 and _run_parts(args, seed_parts(runs, args.procs), api) != 0:
        return 1
    from flows.vr_sweep import vr_sweep

    vr_sweep(grid_path=args.grid, params_path=args.params, concurrency=args.concurrency, arms=args.arms,
             seeds=args.seeds, profile=profile, out_dir=args.out_dir)
    return 0


def _run_parts(args: argparse.Namespace, parts: list[list[int]], api: str) -> int:
    """``python -m flows.vr_sweep ... --seeds <part>`` for every part at once, on the Prefect server ``api``; 0
    when all exit 0. Their own summaries go to a temporary directory: the caller writes the whole selection's."""
    common = ["--grid", args.grid, "--params", args.params, "--concurrency", str(args.concurrency)]
    common += ["--profile", args.profile] * bool(args.profile) + (["--arms", *args.arms] if args.arms else [])
    with tempfile.TemporaryDirectory(prefix="vr-sweep-parts-") as tmp:
        procs = []
        for i, seeds in enumerate(parts):
            env = {**os.environ, "PREFECT_API_URL": api}
            argv = [sys.executable, "-m", "flows.vr_sweep", *common, "--seeds", *map(str, seeds),
                    "--out-dir", str(Path(tmp) / f"part-{i}")]
            print(f"vr-sweep part {i + 1}/{len(parts)}: seeds {seeds}", flush=True)
            procs.append(subprocess.Popen(argv, env=env))
        codes = [p.wait() for p in procs]
    for i, rc in enumerate(codes):
        if rc != 0:
            print(f"error: vr-sweep part {i + 1} (seeds {parts[i]}) exited {rc}", file=sys.stderr)
    return max(codes, key=abs)
