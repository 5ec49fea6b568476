"""Run one step of the table in a test: ``step("sample-traces", cfg, root, q=model, task=task, rnd=1)``."""

from __future__ import annotations

from varreason.io import ArtifactRef
from varreason.recipe import split_args
from varreason.steps import run_step


def step(name: str, cfg, root, label: str = "", **kw) -> ArtifactRef:
    """``varreason.steps.run_step`` with the keyword arguments split into inputs and ctx by the step's row."""
    refs, ctx = split_args(name, kw)
    return run_step(name, cfg, refs, label=label or name, root=str(root), progress=False, **ctx)


def setup_models(cfg, root) -> dict[str, ArtifactRef]:
    """Task data, backbone and both seed sets of ``cfg`` in ``root``."""
    task = step("build-task", cfg, root)
    return {"task": task, "backbone": step("init-backbone", cfg, root, task=task),
            "seed_pi": step("build-seed-set", cfg, root, task=task, role="reasoner"),
            "seed_q": step("build-seed-set", cfg, root, task=task, role="posterior")}
