"""Command line for the ``vr-sweep`` flow.

    python -m flows.vr_sweep [--grid science/grid.yaml] [--params params.yaml] [--concurrency N]
                             [--arms A B ...] [--seeds 0 1 ...] [--profile NAME] [--out-dir DIR]

The grid and every arm's resolved profile are validated before Prefect starts: a bad one prints one
``error:`` line and exits 2. Then, as ``python -m flows.vr_em`` does (``flows.cli.start_services``), every
process the sweep starts dies with it, even under ``kill -9``, and without ``PREFECT_API_URL`` it runs its own
ephemeral Prefect server, stopped at exit.
"""

from __future__ import annotations

import argparse
import os
import sys

from varreason.config import UserError, load_config


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    p = argparse.ArgumentParser(prog="python -m flows.vr_sweep", description=__doc__.split("\n")[1])
    p.add_argument("--grid", default="science/grid.yaml")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--concurrency", type=int, default=1, help="arms run at once (threads of this process)")
    p.add_argument("--arms", nargs="+", default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--profile", default=None, help="replace the grid's profile (e.g. smoke)")
    p.add_argument("--out-dir", default=None, help="replace the grid's out_dir")
    args = p.parse_args(argv)
    try:
        from varreason.sweep import expand, load_grid

        grid = load_grid(args.grid)
        profile = args.profile or grid.profile
        base = load_config(args.params, profile)
        for r in expand(grid, base.results_dir, args.arms, args.seeds):
            load_config(args.params, profile, r["overrides"])
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    from flows.cli import start_services

    start_services()  # the same process ownership as `python -m flows.vr_em`: a killed sweep leaves no server behind
    from flows.vr_sweep import vr_sweep

    vr_sweep(grid_path=args.grid, params_path=args.params, concurrency=args.concurrency, arms=args.arms,
             seeds=args.seeds, profile=profile, out_dir=args.out_dir)
    return 0
