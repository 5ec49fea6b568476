"""The ``vr-em`` flow: variational EM (Zhou et al. 2025) with SFT-only and RFT baselines in one harness.

Run: ``python -m flows.vr_em [--profile tiny] [--set em.rounds=1 ...]`` (``make demo`` runs the tiny profile).
The steps and their order are ``varreason.recipe.compose`` (per round r and estimator e: sample K traces from q
-> score under pi and q (+ M answer rollouts for Acc) -> weights -> reasoner training set -> train pi_r ->
refresh q (forward KL) -> evaluate pi_r); this flow runs each step as a cached task (``tasks/steps.py``), split
into shards where the table says so, and publishes the results.
"""

from __future__ import annotations

if __name__ == "__main__":  # the CLI validates params.yaml before Prefect is imported, so bad input errors in ~0.3 s
    from flows.cli import main

    raise SystemExit(main())

from prefect import flow

from flows.concurrency import at_once

from flows.shards import run_sharded
from tasks.preflight import preflight
from tasks.promote import final_state, promote
from tasks.publish import publish_results, publish_status
from tasks.steps import step_task
from tasks.versioning import version_run
from varreason.config import ExperimentConfig, load_config
from varreason.recipe import compose, in_order, split_args
from varreason.report import Stage
from varreason.steps import STEPS


def _runner(c: ExperimentConfig, stages: list[Stage]):
    """The recipe's ``run``: each step as a task (or its shards and their merge); report cells collected."""

    def run(step: str, method: str, round_: int, /, *, label: str = "", **kw):
        refs, ctx = split_args(step, kw)
        s, name = STEPS[step], STEPS[step].run_name(method, round_, label)
        if s.sharded and c.sharding.shards > 1:
            ref = run_sharded(c, step, refs, ctx, name)
        else:
            ref = step_task(c, step, name)(step, c, refs, ctx, name)
        if s.report:
            stages.append(Stage(method, round_, s.report, ref))
        return ref

    return run


@flow(name="vr-em", flow_run_name="vr-em-{profile}", log_prints=True)
def vr_em(profile: str | None = None, params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Run the whole experiment for ``profile`` of ``params_path`` with dotted ``overrides``; return metrics
    (when the promotion gate withheld a method: in a Completed state named NotPromoted, tasks/promote.py)."""
    c = load_config(params_path, profile, overrides)
    preflight(c)
    publish_status(c)  # what this run will reuse and what it will compute, as a Prefect artifact
    stages: list[Stage] = []
    # chains at once: each in a thread of this run; a GPU step still waits for the `gpu` tag's slot, and two chains
    # reaching one step key compute it once (the cache lock, tasks/caching.py)
    compose(c, _runner(c, stages), chains=at_once if c.em.concurrent_chains else in_order)
    summary = publish_results(c, stages)
    version_run(c, params_path, overrides, summary["git_commit"])  # dvc.lock + push; a no-op off the DVC profile
    decisions = promote(c, summary, params_path, overrides) if c.promotion.enabled else []  # the eval gate
    return final_state(summary, decisions)  # summary, or a Completed state named NotPromoted that carries it
