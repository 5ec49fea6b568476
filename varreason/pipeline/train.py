"""Training steps: SFT of pi_theta0 and q_phi0 (step a), the reasoner update (f) and the posterior refresh (g).
Builders of the step table (``varreason.steps``); ``c`` is the config view of the keys their rows read.

``scratch`` is a work dir keyed like the artifact: a killed attempt's resumable state
(``train.checkpoint_every``) lives there, so a retry continues from it; ``checkpoint_every`` is not part of the
key because the weights do not depend on it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from varreason.io import ArtifactRef
from varreason.modeling import save_checkpoint
from varreason.pipeline.common import device, load_model, rows, timed
from varreason.training import Example, train_sft

_TRAIN_FIELDS = ("lr", "batch_size", "warmup_frac", "weight_decay", "grad_clip", "adam_betas", "adam_eps",
                 "checkpoint_every")


def train_init(out: Path, c, init: ArtifactRef, set: ArtifactRef, *, scratch: Path, progress: bool = True) -> None:
    """pi_theta0 or q_phi0: ``train.init_steps`` steps of SFT of the backbone on a seed set."""
    _train(out, c, init, [set], c.train.init_steps, c.seed, scratch, progress)


def train_reasoner(out: Path, c, init: ArtifactRef, set: ArtifactRef, *, rnd: int, scratch: Path,
                   progress: bool = True) -> None:
    """pi_r: ``train.steps`` steps of (weighted) SFT on round ``rnd``'s reasoner set (EM and RFT alike)."""
    _train(out, c, init, [set], c.train.steps, c.seed + rnd, scratch, progress)


def train_posterior(out: Path, c, init: ArtifactRef, set: ArtifactRef, *, rnd: int, scratch: Path,
                    progress: bool = True) -> None:
    """q_r: ``train.posterior_steps`` steps of forward-KL weighted SFT of q on round ``rnd``'s refresh set."""
    _train(out, c, init, [set], c.train.posterior_steps, c.seed + rnd, scratch, progress)


def train_grpo(out: Path, c, init: ArtifactRef, set: ArtifactRef, *, rnd: int, scratch: Path,
               progress: bool = True) -> None:
    """GRPO's pi_r: ``train.steps`` steps of the clipped GRPO objective (``objectives.grpo_loss``, clip
    ``baselines.grpo_clip``) on round ``rnd``'s GRPO set, from the policy that drew its samples."""
    _train(out, c, init, [set], c.train.steps, c.seed + rnd, scratch, progress, "grpo",
           {"clip_eps": c.baselines.grpo_clip})


def _train(out: Path, c, init: ArtifactRef, sets: list[ArtifactRef], steps: int, seed: int, scratch: Path,
           progress: bool, objective: str = "weighted_sft", options: dict | None = None) -> None:
    """Fine-tune checkpoint ``init`` on the union of the ``examples.parquet`` of ``sets`` for ``steps`` steps with
    ``objectives.OBJECTIVES[objective]`` (bound to ``options``), in-process or under ``train.launcher``."""
    launcher = c.train.launcher
    if launcher is not None and launcher.num_processes > 1:
        _launch(out, c, init, sets, steps, seed, scratch, objective, options)
        return
    net, tok = load_model(init, c.model)
    examples = [Example.from_row(r) for s in sets for r in rows(s, "examples.parquet")]
    with timed(out) as st:
        result = train_sft(net, tok, examples, c.train, steps, c.model.max_length, seed, objective=objective,
                           progress=progress, device=device(), state_dir=scratch, objective_options=options)
        save_checkpoint(net, tok, out)
        st.update(asdict(result), n_examples=len(examples), tokens_trained=result.tokens,
                  tokens_per_s=round(result.tokens / max(result.seconds, 1e-9), 1))


def _launch(out: Path, c, init: ArtifactRef, sets: list[ArtifactRef], steps: int, seed: int, scratch: Path,
            objective: str, options: dict | None) -> None:
    """Train under ``train.launcher`` in a subprocess (``varreason.launch``); its ranks write ``out``."""
    import json

    from varreason.launch import DONE_FILE, launch_command, run_launcher

    t = c.train
    train = {**{k: getattr(t, k) for k in _TRAIN_FIELDS}, "launcher": t.launcher.model_dump()}
    spec = {"train": train, "model": c.model.model_dump(), "init": str(init.verify()),
            "sets": [str(s.verify() / "examples.parquet") for s in sets], "steps": steps, "seed": seed, "out": str(out),
            "state_dir": str(scratch), "objective": objective, "objective_options": options}
    spec_path = out.parent / f".spec-{out.name}.json"
    spec_path.write_text(json.dumps(spec))
    with timed(out) as st:
        try:
            run_launcher(launch_command(t.launcher, spec_path), done=out / DONE_FILE)
        finally:
            spec_path.unlink(missing_ok=True)
        result = json.loads((out / DONE_FILE).read_text())
        (out / DONE_FILE).unlink()
        st.update(result, tokens_trained=result["tokens"],
                  tokens_per_s=round(result["tokens"] / max(result["seconds"], 1e-9), 1))
