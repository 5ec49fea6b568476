"""preflight.check: a profile that needs vllm/CUDA/hub files fails with one line naming each missing piece."""

import importlib.util
from pathlib import Path

import pytest
import torch

from varreason import preflight
from varreason.config import load_config
from varreason.preflight import PreflightError, check, problems

PARAMS = str(Path(__file__).resolve().parents[2] / "params.yaml")


@pytest.fixture
def qwen3(tmp_path):
    """The qwen3 profile with model and data pointing at local dirs, so only the GPU side is under test."""
    (tmp_path / "model").mkdir()
    (tmp_path / "data").mkdir()
    return load_config(PARAMS, "qwen3", {"model.name_or_path": str(tmp_path / "model"),
                                         "data.dataset": str(tmp_path / "data"), "eval.hub_suites": []})


def _fake_vllm(monkeypatch, present: bool):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if present else None) if name == "vllm" else real(name, *a))


def test_tiny_needs_nothing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fake_vllm(monkeypatch, False)
    check(load_config(PARAMS, "tiny"))  # no raise


def test_vllm_without_package_or_cuda_names_both(monkeypatch, qwen3):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fake_vllm(monkeypatch, False)
    with pytest.raises(PreflightError) as err:
        check(qwen3)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("profile 'qwen3' cannot run on this machine: ")
    assert "needs the vllm package (pip install -e '.[gpu]'" in msg
    assert "torch.cuda.is_available() is False" in msg and "vr-gpu" in msg


def test_vllm_with_package_and_enough_gpus_passes(monkeypatch, qwen3):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    _fake_vllm(monkeypatch, True)
    assert problems(qwen3) == []
    check(qwen3)


def test_package_present_but_no_cuda(monkeypatch, qwen3):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fake_vllm(monkeypatch, True)
    [only] = problems(qwen3)
    assert "needs CUDA" in only and "vllm package" not in only


def test_too_few_gpus_for_tensor_parallel(monkeypatch, qwen3):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    _fake_vllm(monkeypatch, True)
    [only] = problems(qwen3)
    assert "tensor_parallel_size=4 needs 4 GPUs but 2 are visible" in only


def test_hub_model_offline_and_uncached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(preflight, "_in_hf_cache", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    _fake_vllm(monkeypatch, True)
    cfg = load_config(PARAMS, "qwen3")
    msg = "; ".join(problems(cfg))
    assert "model.name_or_path 'Qwen/Qwen3-4B-Base' is not a local path" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "data.dataset 'zhouxiangxin/Bespoke-Stratos-17k-Reformatted'" in msg


def test_hub_online_checks_reachability(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(preflight, "_in_hf_cache", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    _fake_vllm(monkeypatch, True)
    cfg = load_config(PARAMS, "qwen3")
    assert problems(cfg, hub_reachable=lambda *a, **k: True) == []
    down = problems(cfg, hub_reachable=lambda *a, **k: False)
    # the model, the dataset, and the suites' hub data: GPQA, OlympiadBench, MMLU-Pro, LiveCodeBench's two files
    assert len(down) == 7 and all("hub is unreachable" in p for p in down), down


def test_cached_hub_model_counts_as_present(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(preflight, "_in_hf_cache", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    _fake_vllm(monkeypatch, True)
    assert problems(load_config(PARAMS, "qwen3")) == []
