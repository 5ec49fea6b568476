"""The step table: every kind of step a run can execute, and how one is keyed and built.

One ``Step`` row says what a step is: its builder (``module:function``, imported only when the step runs), the
artifact directory it writes, the upstream artifacts it reads (by role), the config keys it reads (dotted, e.g.
``sampling.temperature``; a whole section is named by itself, e.g. ``model``), the run-position values it uses
(``rnd``: the EM round, ``est``: the estimator, ``role``), the non-Python files it reads, the packages whose
versions change its numbers, whether it runs on a GPU and whether it is split over question ranges. The order in
which a run executes steps is ``varreason.recipe``; the Prefect flow, the DVC stages, the planner and
``--status`` all read this table and that recipe.

**Keys.** ``key_parts`` is a step's artifact key: the values of the config keys it declares, its run-position
values, the content hashes of its inputs, its code fingerprint (``varreason.fingerprint``: the AST of every
``varreason`` module its builder transitively imports), its data files and package versions, and ``version``.
The Prefect cache key and the DVC stage deps come from the same parts. A builder sees the config through a view
that raises on any key the row does not declare, so a step cannot read a value its key does not cover.
Bump a row's ``version`` when its output changes for a reason the fingerprint cannot see: a module imported by a
computed name, a data file outside ``data``, or a change in a package whose version is not in ``packages``.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varreason import fingerprint as fp
from varreason.config import ExperimentConfig
from varreason.faults import building
from varreason.io import ArtifactRef, artifact_key, produce, work_dir

ENGINE = ("sampling.backend", "sampling.batch_size", "sampling.tensor_parallel_size",
          "sampling.gpu_memory_utilization")
DRAW = ("sampling.temperature", "sampling.top_p")
OPTIM = ("train.lr", "train.batch_size", "train.warmup_frac", "train.weight_decay", "train.grad_clip",
         "train.adam_betas", "train.adam_eps", "train.launcher")
MODEL_PKGS = ("torch", "transformers", "tokenizers", "safetensors")
GRADER_PKGS = ("math-verify", "antlr4-python3-runtime")
EVAL_PKGS = (*MODEL_PKGS, *GRADER_PKGS, "lm-eval")


@dataclass(frozen=True)
class Step:
    name: str
    build: str  # "varreason.pipeline.sample:sample_traces"
    out: str  # artifact directory under artifacts_dir
    run: str  # task-run name pattern; {tag} = "<method>-r<round>", {label} = the caller's label
    inputs: tuple[str, ...] = ()  # upstream artifact roles; "name?" is optional (None allowed)
    reads: tuple[str, ...] = ()  # config keys in the key (DVC params)
    ctx: tuple[str, ...] = ()  # run-position arguments of the builder, in the key
    unkeyed: tuple[str, ...] = ()  # config keys the builder reads that do not change its output
    gpu: bool = False
    sharded: bool = False  # split over ranges of the train questions (sharding.shards)
    scratch: bool = False  # gets a work dir keyed like the artifact (resumable training state)
    data: tuple[str, ...] = ()  # globs under varreason/ of the non-Python files it reads
    packages: tuple[str, ...] = MODEL_PKGS
    version: int = 1
    report: str | None = None  # the artifact's label in the run report's cost table

    @property
    def module(self) -> str:
        return self.build.split(":")[0]

    def roles(self) -> tuple[str, ...]:
        return tuple(r.rstrip("?") for r in self.inputs)

    def run_name(self, method: str = "", rnd: int = 0, label: str = "") -> str:
        return self.run.format(tag=f"{method}-r{rnd}", label=label)


_SAMPLE_TRACES = ("sampling.traces_per_question", "sampling.max_trace_tokens")
_RESPONSES = ("sampling.max_trace_tokens", "sampling.max_answer_tokens")
_P = "varreason.pipeline"

STEPS: dict[str, Step] = {s.name: s for s in [
    Step("build-task", f"{_P}.task:build_task", "task", "build-task", reads=("data", "prompt", "seed"),
         packages=("tokenizers", "datasets")),
    Step("init-backbone", f"{_P}.backbone:init_backbone", "backbone", "init-backbone", ("task",), ("model", "seed")),
    Step("build-seed-set", f"{_P}.seeds:build_seed_set", "seed-set", "build-seed-set-{label}", ("task",),
         ("prompt",), ctx=("role",), packages=()),
    Step("train-pi0", f"{_P}.train:train_init", "checkpoint", "train-pi0", ("init", "set"),
         (*OPTIM, "train.init_steps", "model", "seed"), unkeyed=("train.checkpoint_every",), gpu=True,
         scratch=True, report="train"),
    Step("train-q0", f"{_P}.train:train_init", "checkpoint", "train-q0", ("init", "set"),
         (*OPTIM, "train.init_steps", "model", "seed"), unkeyed=("train.checkpoint_every",), gpu=True,
         scratch=True, report="train-posterior"),
    Step("sample-traces", f"{_P}.sample:sample_traces", "traces", "sample-traces-{tag}", ("q", "task"),
         (*ENGINE, *DRAW, *_SAMPLE_TRACES, "model", "prompt", "seed"), ctx=("rnd",), gpu=True, sharded=True,
         report="sample-traces"),
    Step("score-traces", f"{_P}.score:score_traces", "scores", "score-traces-{tag}", ("pi", "q", "traces", "task"),
         ("model", "prompt", "objective.proposal_density", "sampling.temperature"), gpu=True, sharded=True,
         report="score"),
    Step("rollout-answers", f"{_P}.sample:rollout_answers", "answers", "rollout-answers-{tag}",
         ("pi", "traces", "task"),
         (*ENGINE, *DRAW, "sampling.answer_rollouts", "sampling.max_answer_tokens", "model", "prompt", "seed"),
         gpu=True, sharded=True, packages=(*MODEL_PKGS, *GRADER_PKGS), report="rollout-answers"),
    Step("weigh-traces", f"{_P}.weigh:weigh_traces", "weights", "weigh-traces-{tag}",
         ("traces", "scores", "answers?"), ("objective.trace_cutoff",), ctx=("est",), packages=("torch",),
         report="weights"),
    Step("build-reasoner-set", f"{_P}.sets:build_reasoner_set", "reasoner-set", "build-reasoner-set-{tag}",
         ("weights", "traces", "task", "answers?"),
         ("objective.selection", "objective.trace_cutoff", "objective.mix_seed_data", "prompt"), ctx=("est",),
         packages=(), report="train-set"),
    Step("train-reasoner", f"{_P}.train:train_reasoner", "checkpoint", "train-pi-{tag}", ("init", "set"),
         (*OPTIM, "train.steps", "model", "seed"), ctx=("rnd",), unkeyed=("train.checkpoint_every",), gpu=True,
         scratch=True, report="train"),
    Step("sample-refresh", f"{_P}.sample:sample_refresh", "responses", "sample-responses-{tag}", ("pi", "task"),
         (*ENGINE, *DRAW, *_RESPONSES, "sampling.traces_per_question", "model", "prompt", "seed"), ctx=("rnd",),
         gpu=True, sharded=True, packages=(*MODEL_PKGS, *GRADER_PKGS), report="refresh-sample"),
    Step("build-posterior-set", f"{_P}.weigh:build_posterior_set", "posterior-set", "build-posterior-set-{tag}",
         ("responses", "task"), ("prompt",), packages=("torch",)),
    Step("train-posterior", f"{_P}.train:train_posterior", "checkpoint", "train-q-{tag}", ("init", "set"),
         (*OPTIM, "train.posterior_steps", "model", "seed"), ctx=("rnd",), unkeyed=("train.checkpoint_every",),
         gpu=True, scratch=True, report="refresh-train"),
    Step("sample-rft", f"{_P}.sample:sample_rft", "responses", "sample-responses-{tag}", ("pi", "task"),
         (*ENGINE, *DRAW, *_RESPONSES, "baselines.rft_samples", "model", "prompt", "seed"), ctx=("rnd",),
         gpu=True, sharded=True, packages=(*MODEL_PKGS, *GRADER_PKGS), report="sample-responses"),
    Step("build-rft-set", f"{_P}.sets:build_rft_set", "rft-set", "build-rft-set-{tag}", ("responses", "task"),
         ("prompt", "objective.mix_seed_data"), packages=(), report="train-set"),
    Step("build-grpo-set", f"{_P}.grpo:build_grpo_set", "grpo-set", "build-grpo-set-{tag}",
         ("responses", "pi", "task"), ("prompt", "objective.mix_seed_data", "model"), gpu=True, report="train-set"),
    Step("train-grpo", f"{_P}.train:train_grpo", "checkpoint", "train-pi-{tag}", ("init", "set"),
         (*OPTIM, "train.steps", "baselines.grpo_clip", "model", "seed"), ctx=("rnd",),
         unkeyed=("train.checkpoint_every",), gpu=True, scratch=True, report="train"),
    Step("evaluate", f"{_P}.evaluate:evaluate", "eval", "evaluate-{tag}", ("model", "task"),
         ("eval", *ENGINE, "model", "prompt", "seed", "data.task"), gpu=True,
         data=("eval/tasks/*.yaml", "eval/tasks/*.py", "eval/data/*.jsonl"), packages=EVAL_PKGS, report="eval"),
]}

MERGE_MODULE = "varreason.shards"  # the merge of a sharded step's pieces (keyed by the pieces' hashes)
REPORT_MODULE = "varreason.report"  # the results publication (never cached; DVC's report stage deps)


# ---- keys ----

class UndeclaredRead(AttributeError):
    """A builder read a config key its ``Step`` row does not declare (so its cache key would not cover it)."""


class ConfigView:
    """Read-only view of an ``ExperimentConfig`` (or one of its sections) exposing only declared keys."""

    def __init__(self, obj: Any, allowed: frozenset[str], step: str, prefix: str = ""):
        self._obj, self._allowed, self._step, self._prefix = obj, allowed, step, prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        path = self._prefix + name
        if path in self._allowed:
            return getattr(self._obj, name)
        if any(a.startswith(path + ".") for a in self._allowed):
            return ConfigView(getattr(self._obj, name), self._allowed, self._step, path + ".")
        raise UndeclaredRead(f"step {self._step!r} reads config key {path!r} but its row in varreason/steps.py "
                             "does not declare it; add it to `reads` (or `unkeyed` if it cannot change the output)")


def _get(cfg: Any, dotted: str) -> Any:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj.model_dump() if hasattr(obj, "model_dump") else obj


def packages(step: Step, cfg: ExperimentConfig) -> tuple[str, ...]:
    """The step's package list, plus vLLM for the steps that sample with it."""
    vllm = any(r == "sampling.backend" for r in step.reads) and cfg.sampling.backend == "vllm"
    return (*step.packages, "vllm") if vllm else step.packages


def fingerprint(step: Step, cfg: ExperimentConfig) -> dict:
    """The code (AST hashes of the builder's import closure), data-file and package-version part of a key."""
    return {"code": fp.code_files((step.module, *fp.data_imports(step.data))), "data": fp.data_files(step.data),
            "packages": fp.package_versions(packages(step, cfg)), "version": step.version}


def key_parts(step: Step, cfg: ExperimentConfig, refs: dict[str, ArtifactRef | None], ctx: dict) -> dict:
    """Everything a step's output depends on; ``produce`` hashes it (with the step name) into the key."""
    missing = [r for r in step.inputs if not r.endswith("?") and refs.get(r) is None]
    extra = set(refs) - set(step.roles())
    if missing or extra or set(ctx) - {*step.ctx, "shard"}:
        raise ValueError(f"step {step.name!r} takes inputs {step.inputs} and ctx {step.ctx}; got inputs "
                         f"{sorted(refs)} and ctx {sorted(ctx)}")
    return {"params": {k: _get(cfg, k) for k in step.reads}, "ctx": {k: ctx.get(k) for k in sorted(ctx)},
            "inputs": {r: (refs[r].sha if refs.get(r) is not None else None) for r in step.roles()},
            **fingerprint(step, cfg)}


def builder(step: Step):
    module, func = step.build.split(":")
    return getattr(importlib.import_module(module), func)


def merge_key_parts(parts: list[ArtifactRef]) -> dict:
    """Key of the merge of a sharded step's pieces: their content hashes and the merge's own code."""
    return {"merged_shards": [p.sha for p in parts], "code": fp.code_files((MERGE_MODULE,))}


def run_merge(parts: list[ArtifactRef], root: str) -> ArtifactRef:
    """The unsharded artifact of a sharded step, from its pieces in range order (``varreason.shards``)."""
    from varreason.shards import merge_shards

    return merge_shards(parts, root, merge_key_parts(parts))


def run_step(name: str, cfg: ExperimentConfig, refs: dict[str, ArtifactRef | None], *, label: str = "",
             root: str | None = None, progress: bool = True, **ctx: Any) -> ArtifactRef:
    """Build (or reuse) step ``name``'s artifact from ``refs`` (role -> upstream artifact) and ``ctx``.

    ``label`` names the run (fault-point scope, ``.key.json``); it is not part of the key, so two runs that
    happen to compute the same thing share one artifact.
    """
    step = STEPS[name]
    refs = {r: refs.get(r) for r in step.roles()}
    parts = key_parts(step, cfg, refs, ctx)
    root = root or cfg.artifacts_dir
    fn = builder(step)
    view = ConfigView(cfg, frozenset(step.reads + step.unkeyed), name)
    params = inspect.signature(fn).parameters
    takes = lambda k: k in params or any(p.kind is p.VAR_KEYWORD for p in params.values())  # noqa: E731
    scratch = work_dir(root, step.out, {"step": name, **parts}) if step.scratch else None
    extra = {k: v for k, v in (("progress", progress), ("scratch", scratch)) if v is not None and takes(k)}
    args = {**refs, **ctx, **extra}
    with building(label or name):
        ref = produce(root, step.out, {"step": name, **parts}, lambda out: fn(out, view, **args), label=label)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return ref


def step_key(name: str, cfg: ExperimentConfig, refs: dict[str, ArtifactRef | None], ctx: dict) -> str:
    """The artifact key ``run_step`` would use (the Prefect cache key is this plus the store's identity)."""
    step = STEPS[name]
    return artifact_key(step.out, {"step": name, **key_parts(step, cfg, {r: refs.get(r) for r in step.roles()}, ctx)})


def artifact_path(name: str, cfg: ExperimentConfig, key: str, root: str | None = None) -> Path:
    return Path(root or cfg.artifacts_dir) / STEPS[name].out / key
