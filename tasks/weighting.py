"""Tasks: scoring, importance weights, training-set builds."""

from __future__ import annotations

from prefect import task

from tasks.caching import STEP
from varreason.config import ModelConfig, ObjectiveConfig, PromptConfig
from varreason.io import ArtifactRef
from varreason.pipeline import weigh
from varreason.shards import Shard


@task(name="score-traces", task_run_name="score-traces-{label}", tags=["gpu"], **STEP)
def score_traces(model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef, posterior: ArtifactRef,
                 traces: ArtifactRef, task_data: ArtifactRef, temperature: float, label: str, root: str,
                 shard: Shard | None = None) -> ArtifactRef:
    return weigh.score_traces(model, prompt, reasoner, posterior, traces, task_data, temperature, root, shard=shard)


@task(name="weigh-traces", task_run_name="weigh-traces-{label}", **STEP)
def weigh_traces(estimator: str, traces: ArtifactRef, scores: ArtifactRef, answers: ArtifactRef | None,
                 label: str, root: str, *, trace_cutoff: int) -> ArtifactRef:
    return weigh.weigh_traces(estimator, traces, scores, answers, root, trace_cutoff=trace_cutoff)


@task(name="build-reasoner-set", task_run_name="build-reasoner-set-{label}", **STEP)
def build_reasoner_set(cfg: ObjectiveConfig, estimator: str, prompt: PromptConfig, weights: ArtifactRef,
                       traces: ArtifactRef, answers: ArtifactRef | None, task_data: ArtifactRef, label: str,
                       root: str) -> ArtifactRef:
    return weigh.build_reasoner_set(cfg, estimator, prompt, weights, traces, answers, task_data, root)


@task(name="build-rft-set", task_run_name="build-rft-set-{label}", **STEP)
def build_rft_set(prompt: PromptConfig, responses: ArtifactRef, task_data: ArtifactRef, mix_seed_data: bool,
                  label: str, root: str) -> ArtifactRef:
    return weigh.build_rft_set(prompt, responses, task_data, mix_seed_data, root)


@task(name="build-posterior-set", task_run_name="build-posterior-set-{label}", **STEP)
def build_posterior_set(prompt: PromptConfig, responses: ArtifactRef, task_data: ArtifactRef, label: str,
                        root: str) -> ArtifactRef:
    return weigh.build_posterior_set(prompt, responses, task_data, root)
