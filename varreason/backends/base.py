"""The sampler interface every generation backend implements.

Shapes: P prompts, n samples per prompt; a completion's token ids and log-probs have its own length L.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol


def stable_seed(seed: int, *parts) -> int:
    """A 62-bit per-request seed from the run seed and identifiers (question id, round, purpose, ...):
    independent of order, batching and sharding."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass(frozen=True)
class SamplingParams:
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    """One sampled continuation.

    ``logp_sampling`` is each token's log-prob under the distribution actually sampled (temperature + top-p,
    renormalised); ``logp_model`` under the untempered model (temperature 1, full vocabulary). The stop string
    is not part of ``text``/``token_ids``.
    """

    text: str
    token_ids: list[int]
    logp_sampling: list[float]
    logp_model: list[float]
    finish_reason: str  # "stop" | "length"


@dataclass(frozen=True)
class Rollouts:
    """``completions[i][j]``: sample j of prompt i; ``n_generated`` counts sampled tokens (cost accounting)."""

    completions: list[list[Completion]]
    n_generated: int = field(default=0)


class Sampler(Protocol):
    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> Rollouts:
        """Sample ``params.n`` completions per prompt. ``seeds[i]`` fixes prompt i's samples whatever the
        batch it lands in, so sharded and unsharded runs agree."""
        ...

    def sync_weights(self, checkpoint: str) -> None:
        """Load new weights (the current round's checkpoint)."""
        ...
