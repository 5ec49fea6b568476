"""Tasks: held-out evaluation and the run report (files + Prefect artifacts)."""

from __future__ import annotations

import subprocess

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.caching import STEP
from varreason.config import EvalConfig, ExperimentConfig, ModelConfig, PromptConfig, SamplingConfig
from varreason.io import ArtifactRef
from varreason.pipeline import evaluate as ev
from varreason.report import Stage, collect, write_report


@task(name="evaluate", task_run_name="evaluate-{label}", tags=["gpu"], **STEP)
def evaluate(cfg: EvalConfig, sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig,
             reasoner: ArtifactRef, task_data: ArtifactRef, seed: int, label: str, root: str) -> ArtifactRef:
    return ev.evaluate(cfg, sampling, model, prompt, reasoner, task_data, seed, root)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@task(name="publish-results", cache_policy=NO_CACHE, persist_result=False)
def publish_results(cfg: ExperimentConfig, stages: list[Stage]) -> dict:
    """Write results/<profile>/{metrics.json,results.md,accuracy.png}, print the table, publish artifacts."""
    summary = collect(stages)
    summary["config_digest"] = cfg.digest()
    summary["git_commit"] = _git_commit()
    header = (f"# vr-em results: profile `{cfg.profile}`, seed {cfg.seed}\n\ngit `{summary['git_commit']}`, "
              f"params digest `{summary['config_digest']}`")
    docs = write_report(summary, cfg.eval.pass_k, cfg.results_dir, header)
    print(docs["table"])
    key = f"vr-em-{cfg.profile}".replace("_", "-").lower()
    create_markdown_artifact(markdown=docs["markdown_inline"], key=f"{key}-report",
                             description=f"vr-em {cfg.profile}: results, weights, cost")
    create_table_artifact(table=summary["results"], key=f"{key}-accuracy",
                          description="held-out accuracy per method and round")
    return summary
