"""Tasks: held-out evaluation and the run report (files + Prefect artifacts)."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from tasks.caching import STEP
from varreason.config import EvalConfig, ExperimentConfig, ModelConfig, PromptConfig, SamplingConfig
from varreason.io import ArtifactRef
from varreason.pipeline import evaluate as ev
from varreason.report import Stage, collect, write_report


@task(name="evaluate", task_run_name="evaluate-{label}", tags=["gpu"], log_prints=False, **STEP)
def evaluate(cfg: EvalConfig, sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig,
             reasoner: ArtifactRef, task_data: ArtifactRef, seed: int, label: str, root: str) -> ArtifactRef:
    return ev.evaluate(cfg, sampling, model, prompt, reasoner, task_data, seed, root)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("varreason", "torch", "transformers", "prefect", "vllm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _run_info(cfg: ExperimentConfig, commit: str) -> str:
    params = dict(flow_run.get_parameters() or {})
    versions = "\n".join(f"| {k} | {v} |" for k, v in _versions().items())
    return (f"# vr-em run info: profile `{cfg.profile}`\n\n| field | value |\n|---|---|\n"
            f"| profile | {cfg.profile} |\n| params file | {params.get('params_path', 'params.yaml')} |\n"
            f"| overrides | `{json.dumps(params.get('overrides') or {}, sort_keys=True)}` |\n"
            f"| seed | {cfg.seed} |\n| git commit | {commit} |\n| params digest | {cfg.digest()} |\n\n"
            f"## Package versions\n\n| package | version |\n|---|---|\n{versions}\n\n"
            f"## Resolved profile\n\n```json\n{json.dumps(cfg.model_dump(), indent=1)}\n```\n")


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
    create_markdown_artifact(markdown=_run_info(cfg, summary["git_commit"]), key=f"{key}-run-info",
                             description=f"vr-em {cfg.profile}: params, overrides, git commit, package versions")
    return summary
