"""Tasks: posterior traces, Acc answer rollouts, full responses from the reasoner."""

from __future__ import annotations

from prefect import task

from tasks.caching import STEP
from varreason.config import ModelConfig, PromptConfig, SamplingConfig
from varreason.io import ArtifactRef
from varreason.pipeline import sample
from varreason.shards import Shard


@task(name="sample-traces", task_run_name="sample-traces-{label}", tags=["gpu"], **STEP)
def sample_traces(cfg: SamplingConfig, model: ModelConfig, prompt: PromptConfig, posterior: ArtifactRef,
                  task_data: ArtifactRef, seed: int, round_: int, label: str, root: str, shard: Shard | None = None
                  ) -> ArtifactRef:
    return sample.sample_traces(cfg, model, prompt, posterior, task_data, seed, round_, root, shard=shard)


@task(name="rollout-answers", task_run_name="rollout-answers-{label}", tags=["gpu"], **STEP)
def rollout_answers(cfg: SamplingConfig, model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef,
                    traces: ArtifactRef, task_data: ArtifactRef, seed: int, label: str, root: str,
                    shard: Shard | None = None) -> ArtifactRef:
    return sample.rollout_answers(cfg, model, prompt, reasoner, traces, task_data, seed, root, shard=shard)


@task(name="sample-responses", task_run_name="sample-responses-{label}", tags=["gpu"], **STEP)
def sample_responses(cfg: SamplingConfig, model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef,
                     task_data: ArtifactRef, n: int, seed: int, purpose: str, label: str, root: str,
                     shard: Shard | None = None) -> ArtifactRef:
    """n responses per training question at the sampling temperature (RFT data, posterior refresh data)."""
    return sample.sample_responses(cfg, model, prompt, reasoner, task_data, "train", n, cfg.temperature, cfg.top_p,
                                   cfg.max_trace_tokens + cfg.max_answer_tokens, seed, purpose, root, shard=shard)
