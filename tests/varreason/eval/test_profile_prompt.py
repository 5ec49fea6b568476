"""``--set prompt.reasoner=...`` reaches evaluation: the sampler receives the new template, and the evaluation
artifact's cache key changes with it (the step that runs is ``pipeline.evaluate``, the one the flow calls)."""

import pytest

from flows.cli import _parse_sets
from varreason.config import load_config
from varreason.io import produce
from varreason.pipeline.common import questions
from varreason.steps import run_step

from .fakes import RecordingSampler

CUSTOM = "<s>[INST] {question} [/INST]<|begin_of_thought|>"


@pytest.fixture()
def recorded(monkeypatch):
    samplers = []

    def build_sampler(*args, **kwargs):
        samplers.append(RecordingSampler())
        return samplers[-1]

    monkeypatch.setattr("varreason.backends.build_sampler", build_sampler)
    return samplers


def test_set_prompt_reasoner_changes_the_evaluation_prompts_and_key(tmp_path, recorded):
    root = str(tmp_path)
    base = load_config(profile="smoke", overrides={"artifacts_dir": root})
    custom = load_config(profile="smoke", overrides=_parse_sets([f"prompt.reasoner='{CUSTOM}'",
                                                                 f"artifacts_dir={root}"]))
    assert custom.prompt.reasoner == CUSTOM and base.prompt.reasoner != CUSTOM
    task = run_step("build-task", base, {}, progress=False)
    ckpt = produce(root, "checkpoint", {"fake": 1}, lambda out: (out / "weights").write_text("x"))
    refs = {}
    for name, c in (("base", base), ("custom", custom)):
        refs[name] = run_step("evaluate", c, {"model": ckpt, "task": task}, progress=False)
    assert refs["base"].path != refs["custom"].path  # the prompt is part of the evaluation's key
    held_out = questions(task, "heldout")
    for name, c in (("base", base), ("custom", custom)):
        sampler = recorded[0 if name == "base" else 1]
        prompts = [p for call in sampler.calls for p in call[0]]
        assert sorted(prompts) == sorted(c.prompt.reasoner.replace("{question}", q["question"]) for q in held_out)
        assert all((p.n, p.temperature, p.top_p) == (c.eval.n_samples, c.eval.temperature, c.eval.top_p)
                   for _, p, _ in sampler.calls)
    # the same config again is a cache hit: no sampler is built
    run_step("evaluate", custom, {"model": ckpt, "task": task}, progress=False)
    assert len(recorded) == 2
