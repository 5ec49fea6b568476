"""Training steps: SFT of pi and q (step a), the reasoner update (f) and the posterior refresh (g)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from varreason.config import ModelConfig, TrainConfig
from varreason.io import ArtifactRef, produce
from varreason.modeling import save_checkpoint
from varreason.pipeline.common import device, load_model, rows, timed
from varreason.training import Example, train_sft


def train_model(train: TrainConfig, model: ModelConfig, init: ArtifactRef, sets: list[ArtifactRef], steps: int,
                seed: int, name: str, root: str, progress: bool = True) -> ArtifactRef:
    """Fine-tune checkpoint ``init`` on the union of the ``examples.parquet`` of ``sets`` for ``steps`` steps.

    ``name`` only labels the artifact directory; it is not part of the key, so two methods that happen to
    train on identical data share one checkpoint.
    """

    def build(out: Path) -> None:
        net, tok = load_model(init, model)
        examples = [Example(r["prompt"], r["response"], float(r["weight"])) for s in sets
                    for r in rows(s, "examples.parquet")]
        with timed(out, name=name) as st:
            result = train_sft(net, tok, examples, train, steps, model.max_length, seed, progress=progress,
                               device=device())
            save_checkpoint(net, tok, out)
            st.update(asdict(result), n_examples=len(examples), tokens_trained=result.tokens,
                      tokens_per_s=round(result.tokens / max(result.seconds, 1e-9), 1))

    return produce(root, "checkpoint", {"train": train, "model": model, "init": init.sha,
                                        "sets": [s.sha for s in sets], "steps": steps, "seed": seed}, build)
