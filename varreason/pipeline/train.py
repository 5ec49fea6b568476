"""Training steps: SFT of pi and q (step a), the reasoner update (f) and the posterior refresh (g)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from varreason.config import ModelConfig, TrainConfig
from varreason.faults import building
from varreason.io import ArtifactRef, produce, work_dir
from varreason.modeling import save_checkpoint
from varreason.pipeline.common import device, load_model, rows, timed
from varreason.training import Example, train_sft


def train_model(train: TrainConfig, model: ModelConfig, init: ArtifactRef, sets: list[ArtifactRef], steps: int,
                seed: int, name: str, root: str, progress: bool = True) -> ArtifactRef:
    """Fine-tune checkpoint ``init`` on the union of the ``examples.parquet`` of ``sets`` for ``steps`` steps.

    ``name`` only labels the artifact directory; it is not part of the key, so two methods that happen to
    train on identical data share one checkpoint.

    A killed attempt's resumable state (``train.checkpoint_every``) lives in a work dir keyed like the
    artifact, so a retry continues from it; ``checkpoint_every`` is left out of the key because the weights do
    not depend on it.
    """
    key_parts = {"train": train.model_dump(exclude={"checkpoint_every"}), "model": model, "init": init.sha,
                 "sets": [s.sha for s in sets], "steps": steps, "seed": seed}
    state_dir = work_dir(root, "checkpoint", key_parts)

    def build(out: Path) -> None:
        if train.launcher is not None and train.launcher.num_processes > 1:
            _launch(train, model, init, sets, steps, seed, out, name, state_dir)
            return
        net, tok = load_model(init, model)
        examples = [Example.from_row(r) for s in sets for r in rows(s, "examples.parquet")]
        with timed(out, name=name) as st:
            result = train_sft(net, tok, examples, train, steps, model.max_length, seed, progress=progress,
                               device=device(), state_dir=state_dir)
            save_checkpoint(net, tok, out)
            st.update(asdict(result), n_examples=len(examples), tokens_trained=result.tokens,
                      tokens_per_s=round(result.tokens / max(result.seconds, 1e-9), 1))

    with building(name):  # fault points inside can name this run: ``q-em-acc-r1/train-step:5``
        ref = produce(root, "checkpoint", key_parts, build)
    shutil.rmtree(state_dir, ignore_errors=True)
    return ref


def _launch(train: TrainConfig, model: ModelConfig, init: ArtifactRef, sets: list[ArtifactRef], steps: int, seed: int,
            out: Path, name: str, state_dir: Path) -> None:
    """Train under ``train.launcher`` in a subprocess (``varreason.launch``); its ranks write ``out``."""
    import json

    from varreason.launch import DONE_FILE, launch_command, run_launcher

    spec = {"train": train.model_dump(), "model": model.model_dump(), "init": str(init.verify()),
            "sets": [str(s.verify() / "examples.parquet") for s in sets], "steps": steps, "seed": seed, "out": str(out),
            "state_dir": str(state_dir)}
    spec_path = out.parent / f".spec-{out.name}.json"
    spec_path.write_text(json.dumps(spec))
    with timed(out, name=name) as st:
        try:
            run_launcher(launch_command(train.launcher, spec_path), done=out / DONE_FILE)
        finally:
            spec_path.unlink(missing_ok=True)
        result = json.loads((out / DONE_FILE).read_text())
        (out / DONE_FILE).unlink()
        st.update(result, tokens_trained=result["tokens"],
                  tokens_per_s=round(result["tokens"] / max(result["seconds"], 1e-9), 1))
