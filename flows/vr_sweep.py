"""The ``vr-sweep`` flow: a pre-registered grid of seeds x settings (``science/*.yaml``), each run a ``vr-em``
subflow of one parent run, then one summary (means, paired CIs, ablations, easy-question bias).

Run: ``python -m flows.vr_sweep [--grid science/grid.yaml] [--concurrency 1] [--arms main] [--seeds 0 1]``
(``make science`` runs the whole grid). Arms share every cached step: a run whose inputs match an earlier
run's (the same seed's pi_theta0, q_phi0, task data; round 1 of a round-2-only ablation) gets ``Cached``.
Arms run ``concurrency`` at a time, each a subflow in a thread of this process (``flows/concurrency.py``; 1 on
a 2-core CPU: one after another in the flow's own thread). Threads share torch's
global RNG, which only model initialisation draws from (``init-backbone``, once per seed): with concurrency > 1
two seeds initialised at the same moment could interleave their draws, so runs meant to reproduce a table
bit for bit use concurrency 1 (or separate processes: deployments on a process worker).
"""

from __future__ import annotations

if __name__ == "__main__":  # the grid and params are checked before Prefect is imported
    from flows.sweep_cli import main

    raise SystemExit(main())

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.concurrency import at_once
from flows.vr_em import vr_em
from tasks.science import publish_sweep
from varreason.config import load_config
from varreason.sweep import expand, load_grid


def run_arm(profile: str, params_path: str, overrides: dict, arm: str, seed: int) -> dict:
    """One grid cell: a ``vr-em`` subflow named after its arm and seed."""
    named = vr_em.with_options(flow_run_name=f"vr-em-{profile}-{arm}-seed-{seed}")
    return named(profile=profile, params_path=params_path, overrides=overrides)


def _run_name() -> str:
    p = flow_run.parameters
    return f"vr-sweep-{p.get('profile') or Path(p.get('grid_path', 'grid')).stem}"


@flow(name="vr-sweep", flow_run_name=_run_name, log_prints=True)
def vr_sweep(grid_path: str = "science/grid.yaml", params_path: str = "params.yaml", concurrency: int = 1,
             arms: list[str] | None = None, seeds: list[int] | None = None, profile: str | None = None,
             base_overrides: dict | None = None, out_dir: str | None = None) -> dict:
    """Run the grid (or only ``arms``/``seeds``) of ``grid_path``; ``profile`` and ``base_overrides`` (applied to
    every run before the arm's own) replace the grid's profile and add settings, e.g. for tests."""
    grid = load_grid(grid_path)
    profile = profile or grid.profile
    c = load_config(params_path, profile, base_overrides)
    runs = expand(grid, c.results_dir, arms, seeds)
    calls = [lambda r=r: run_arm(profile, params_path, {**(base_overrides or {}), **r["overrides"]}, r["arm"],
                                 r["seed"]) for r in runs]
    results = [call() for call in calls] if concurrency <= 1 else at_once(calls, concurrency)
    summaries: dict[str, dict[int, dict]] = {}
    run_dirs: dict[str, dict[int, str]] = {}
    for r, res in zip(runs, results):
        summaries.setdefault(r["arm"], {})[r["seed"]] = res
        run_dirs.setdefault(r["arm"], {})[r["seed"]] = r["overrides"]["results_dir"]
    return publish_sweep(grid.model_copy(update={"profile": profile}), summaries, c.objective.trace_cutoff,
                         out_dir or grid.out_dir, run_dirs)
