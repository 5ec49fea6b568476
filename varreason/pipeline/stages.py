"""The DVC stage registry: every stage of ``dvc.yaml`` for one profile, and the code that runs one stage.

One implementation, two entry points: a stage calls the same ``varreason.pipeline`` function as the Prefect task
of the same step, with the same configs and seeds, on the profile's content-addressed store (``artifacts_dir``).
It then materialises the produced artifact (``.complete`` marker included) at the stage's fixed DVC path
``dvc/<profile>/<method>/<round>/<step>`` (temp dir + rename: never half-written), so DVC can hash, cache and
push it. Upstream artifacts are read back from their DVC paths: the marker holds their sha, and the pipeline
keys on shas, not paths, so a stage whose inputs the flow already built is a cache hit in the store.

``params`` of a stage are the dotted keys (under ``profiles.<profile>``) that the step reads, so DVC re-runs a
stage exactly when a value it uses changes: e.g. ``train.posterior_steps`` is read only by the posterior-refresh
training stages. DVC templating has no arithmetic, so the per-round chain (round r reads round r-1) is spelt out
in ``dvc/rounds.yaml``, written by :func:`rounds_vars` (``python -m varreason.pipeline.run_stage sync``); every
stage run checks that file against ``em.rounds`` and ``objective.estimators`` and refuses to run if they differ.
No DVC import here: ``tasks/versioning.py`` drives DVC.
"""

from __future__ import annotations

import copy
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from varreason.config import ExperimentConfig
from varreason.io import ArtifactError, ArtifactRef, _DONE

DVC_DIR = "dvc"
ROUNDS_FILE = "dvc/rounds.yaml"

_TRAIN = ["train.lr", "train.batch_size", "train.warmup_frac", "train.weight_decay", "train.adam_betas",
          "train.adam_eps", "train.grad_clip"]
_ENGINE = ["sampling.backend", "sampling.batch_size", "sampling.tensor_parallel_size"]
_DRAW = ["sampling.temperature", "sampling.top_p"]


@dataclass(frozen=True)
class StageSpec:
    """One DVC stage: its resolved DVC name, the step it runs, where its upstream artifacts are (by role), the
    params it reads (dotted, relative to the profile) and its output directory (relative to the repo)."""

    name: str
    step: str
    method: str
    round: int
    out: str
    inputs: dict[str, str] = field(default_factory=dict)  # role -> upstream stage name
    params: tuple[str, ...] = ()
    est: str | None = None


def _path(profile: str, method: str, rnd: int, step: str) -> str:
    return f"{DVC_DIR}/{profile}/{method}/r{rnd}/{step}"


def registry(cfg: ExperimentConfig) -> list[StageSpec]:
    """Every stage of the profile's pipeline in topological order; names match ``dvc stage list``."""
    p = cfg.profile
    S: list[StageSpec] = []

    def add(name, step, method, rnd, out_step, inputs=None, params=(), est=None):
        S.append(StageSpec(name, step, method, rnd, _path(p, method, rnd, out_step), inputs or {}, tuple(params), est))

    add("task", "task", "data", 0, "task", params=["data", "prompt", "seed"])
    add("backbone", "backbone", "data", 0, "backbone", {"task": "task"}, ["model", "seed"])
    for role in ("reasoner", "posterior"):
        add(f"seed-set@{role}", "seed-set", "data", 0, f"seed-{role}", {"task": "task"}, ["prompt"])
    sft_train = [*_TRAIN, "train.init_steps", "model", "seed"]
    add("pi0", "pi0", "sft", 0, "pi", {"init": "backbone", "set": "seed-set@reasoner"}, sft_train)
    add("q0", "q0", "sft", 0, "q", {"init": "backbone", "set": "seed-set@posterior"}, sft_train)
    ev = ["eval", *_ENGINE, "model", "prompt", "seed"]
    add("eval-sft", "eval", "sft", 0, "eval", {"model": "pi0", "task": "task"}, ev)
    for est in cfg.objective.estimators:
        pi, q, m = "pi0", "q0", f"em-{est}"
        for r in range(1, cfg.em.rounds + 1):
            k = f"{est}-r{r}"
            add(f"traces@{k}", "traces", m, r, "traces", {"q": q, "task": "task"},
                [*_ENGINE, *_DRAW, "sampling.traces_per_question", "sampling.max_trace_tokens", "model", "prompt",
                 "seed"], est)
            pis = {"pi": pi, "pi0": "pi0"}
            add(f"score@{k}", "score", m, r, "scores", {**pis, "q": q, "traces": f"traces@{k}", "task": "task"},
                ["model", "prompt", "objective.proposal_density", "sampling.temperature", "em.weights_model"], est)
            up = {"traces": f"traces@{k}", "scores": f"score@{k}"}
            set_up = {"traces": f"traces@{k}", "scores": f"score@{k}"}
            if est == "acc":
                add(f"answers@{k}", "answers", m, r, "answers", {**pis, "traces": f"traces@{k}", "task": "task"},
                    [*_ENGINE, *_DRAW, "sampling.answer_rollouts", "sampling.max_answer_tokens", "model", "prompt",
                     "seed", "em.weights_model"], est)
                up["answers"] = set_up["answers"] = f"answers@{k}"
                del set_up["scores"]
            add(f"weights@{k}", "weights", m, r, "weights", {**up, **({} if est == "acc" else {"task": "task"})},
                [], est)
            add(f"reasoner-set@{k}", "reasoner-set", m, r, "reasoner-set",
                {**set_up, "weights": f"weights@{k}", "task": "task"},
                ["objective.selection", "objective.trace_cutoff", "objective.mix_seed_data", "prompt"], est)
            add(f"train@{k}", "train", m, r, "pi", {**pis, "set": f"reasoner-set@{k}"},
                [*_TRAIN, "train.steps", "model", "seed", "em.reasoner_init"], est)
            add(f"refresh-sample@{k}", "refresh-sample", m, r, "refresh-sample", {"pi": f"train@{k}", "task": "task"},
                [*_ENGINE, *_DRAW, "sampling.traces_per_question", "sampling.max_trace_tokens",
                 "sampling.max_answer_tokens", "model", "prompt", "seed"], est)
            add(f"posterior-set@{k}", "posterior-set", m, r, "posterior-set",
                {"responses": f"refresh-sample@{k}", "task": "task"}, ["prompt"], est)
            add(f"refresh-train@{k}", "refresh-train", m, r, "q", {"q": q, "set": f"posterior-set@{k}"},
                [*_TRAIN, "train.posterior_steps", "model", "seed"], est)
            add(f"eval@{k}", "eval", m, r, "eval", {"model": f"train@{k}", "task": "task"}, ev, est)
            pi, q = f"train@{k}", f"refresh-train@{k}"
    pi = "pi0"
    for r in range(1, cfg.em.rounds + 1):
        k = f"r{r}"
        add(f"rft-sample@{k}", "rft-sample", "rft", r, "responses", {"pi": pi, "task": "task"},
            [*_ENGINE, *_DRAW, "sampling.max_trace_tokens", "sampling.max_answer_tokens", "baselines.rft_samples",
             "model", "prompt", "seed"])
        add(f"rft-set@{k}", "rft-set", "rft", r, "train-set", {"responses": f"rft-sample@{k}", "task": "task"},
            ["prompt", "objective.mix_seed_data"])
        add(f"rft-train@{k}", "train", "rft", r, "pi", {"pi": pi, "pi0": "pi0", "set": f"rft-set@{k}"},
            [*_TRAIN, "train.steps", "model", "seed", "em.reasoner_init"])
        add(f"rft-eval@{k}", "eval", "rft", r, "eval", {"model": f"rft-train@{k}", "task": "task"}, ev)
        pi = f"rft-train@{k}"
    S.append(StageSpec("report", "report", "report", 0, f"{DVC_DIR}/{p}-report",
                       {s.name: s.name for s in S}, ("eval.pass_k", "em.rounds", "objective.estimators")))
    return S


def check_supported(cfg: ExperimentConfig, raw_profile: dict) -> None:
    """The DVC graph is static: refuse profiles whose graph it does not describe, with the fix."""
    if "extends" in raw_profile:
        raise ValueError(f"profile {cfg.profile!r} uses 'extends'; DVC tracks keys of one complete profile, so "
                         "write the inherited keys out (see README, Reproducing with DVC)")
    if not cfg.em.refresh_posterior or not cfg.baselines.rft:
        raise ValueError("the DVC pipeline describes em.refresh_posterior: true and baselines.rft: true; run "
                         "other settings through the flow (python -m flows.vr_em)")


def rounds_vars(cfg: ExperimentConfig) -> dict:
    """The templating variables of ``dvc.yaml`` for the round chain: one entry per (estimator, round) and per RFT
    round, naming the previous round's stage outputs (DVC has no arithmetic to derive r-1)."""
    p, R = cfg.profile, cfg.em.rounds
    em, acc = {}, {}
    for est in cfg.objective.estimators:
        for r in range(1, R + 1):
            prev = f"{DVC_DIR}/{p}/sft/r0" if r == 1 else f"{DVC_DIR}/{p}/em-{est}/r{r - 1}"
            d = f"{DVC_DIR}/{p}/em-{est}/r{r}"
            # dvc.yaml's deps lists cannot be interpolated whole: one slot holds the answers (Acc) or an input
            # the step has anyway (GML), mirrored by the registry's inputs.
            acc_dep = f"{d}/answers" if est == "acc" else None
            item = {"est": est, "r": r, "dir": d, "pi": f"{prev}/pi", "q": f"{prev}/q",
                    "weigh_extra": acc_dep or f"{DVC_DIR}/{p}/data/r0/task", "set_extra": acc_dep or f"{d}/scores"}
            em[f"{est}-r{r}"] = item
            if est == "acc":
                acc[f"{est}-r{r}"] = copy.deepcopy(item)  # no YAML aliases in the file
    rft = {f"r{r}": {"r": r, "dir": f"{DVC_DIR}/{p}/rft/r{r}",
                     "pi": f"{DVC_DIR}/{p}/sft/r0/pi" if r == 1 else f"{DVC_DIR}/{p}/rft/r{r - 1}/pi"}
           for r in range(1, R + 1)}
    return {"profile": p, "em_rounds": em, "acc_rounds": acc, "rft_rounds": rft}


def check_rounds_file(cfg: ExperimentConfig, path: str | Path = ROUNDS_FILE) -> None:
    """Fail when ``dvc/rounds.yaml`` does not describe ``em.rounds`` x ``objective.estimators`` of ``cfg``."""
    want = rounds_vars(cfg)
    got = yaml.safe_load(Path(path).read_text()) if Path(path).exists() else None
    if got != want:
        raise ValueError(f"{path} does not match profile {cfg.profile!r} (em.rounds={cfg.em.rounds}, "
                         f"objective.estimators={list(cfg.objective.estimators)}); regenerate it with "
                         f"`python -m varreason.pipeline.run_stage sync --profile {cfg.profile}`")


def ref_at(path: str | Path) -> ArtifactRef:
    """The artifact at a DVC path, its sha read from the marker the producer wrote (then verified on use)."""
    marker = Path(path) / _DONE
    if not marker.exists():
        raise ArtifactError(f"{path} is missing; run `dvc repro` (or `dvc pull`) for the stage that writes it")
    return ArtifactRef(path=str(path), sha=marker.read_text().strip())


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same filesystem: no bytes copied; DVC replaces files, it never edits them in place
    except OSError:
        shutil.copy2(src, dst)


def materialise(ref: ArtifactRef, dest: str | Path) -> ArtifactRef:
    """Place a verified copy of ``ref`` at ``dest`` (atomic swap); return the ref at its new path."""
    src, dest = ref.verify(), Path(dest)
    if (dest / _DONE).exists() and (dest / _DONE).read_text().strip() == ref.sha:
        return ArtifactRef(path=str(dest), sha=ref.sha)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    old = dest.parent / f".old-{dest.name}-{uuid.uuid4().hex[:8]}"
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return ArtifactRef(path=str(dest), sha=ref.sha)
