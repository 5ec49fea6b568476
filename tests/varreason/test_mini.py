"""varreason/mini.py: the miniature loads through the calls that load Qwen3-4B-Base and its hub data, and a
rebuild writes the same bytes."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from varreason import mini
from varreason.config import load_config

pytestmark = pytest.mark.slow  # three builds (~10 s each on a quiet core)
ROOT = Path(__file__).resolve().parents[2]
STEPS = 20  # pretraining steps: enough to exercise the loop, quick


def _digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("mini")
    made = mini.build(out, seed=0, full_vocab=True, pretrain_steps=STEPS)
    return out, made


def test_same_seed_same_bytes(built, tmp_path):
    out, _ = built
    mini.build(tmp_path, seed=0, full_vocab=True, pretrain_steps=STEPS)
    assert _digest(tmp_path) == _digest(out)
    other = tmp_path / "seed1"
    mini.build(other, seed=1, full_vocab=False, pretrain_steps=STEPS)
    a, b = _digest(out / "qwen3-mini"), _digest(other / "qwen3-mini")
    assert a["model.safetensors"] != b["model.safetensors"]


def test_loads_like_qwen3(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = built
    tok = AutoTokenizer.from_pretrained(out / "qwen3-mini")
    model = AutoModelForCausalLM.from_pretrained(out / "qwen3-mini", use_safetensors=True)
    assert type(tok).__name__ == "Qwen2Tokenizer" and type(model).__name__ == "Qwen3ForCausalLM"
    assert str(model.dtype) == "torch.bfloat16" and model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tok) == mini.MINI_VOCAB + len(mini.QWEN3_ADDED)
    # Qwen3's added tokens follow the learnt vocabulary, in Qwen3's order; eos = pad = <|endoftext|>, no bos
    assert [tok.convert_tokens_to_ids(t) for t in mini.QWEN3_ADDED] == list(range(mini.MINI_VOCAB, len(tok)))
    assert tok.eos_token == tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    assert model.config.eos_token_id == model.config.bos_token_id == tok.eos_token_id
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    # as in Qwen3, the Bespoke markers are text: several byte-level BPE tokens
    for marker in mini.MARKERS:
        ids = tok.encode(marker, add_special_tokens=False)
        assert len(ids) > 1 and tok.decode(ids) == marker
    chat = tok.apply_chat_template([{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    full = AutoModelForCausalLM.from_pretrained(out / f"qwen3-mini-vocab{mini.QWEN3_VOCAB}", use_safetensors=True)
    assert full.config.vocab_size == 151_936 and full.get_input_embeddings().weight.shape == (151_936, 64)


def test_pretraining_teaches_the_response_format(built):
    _, made = built
    assert made["pretrain_loss"] < 6.0  # from ~log(2074) = 7.6 at random init


def test_rows_are_bespoke_schema():
    rows = mini.bespoke_rows()
    assert len(rows) == 320 and len({r["id"] for r in rows}) == 320
    assert all(set(r) == {"id", "question_content", "think_content", "solution_content"} for r in rows)
    assert sum("\\boxed{" in r["solution_content"] for r in rows) == 300  # the 20 code rows have no box


_READ = """
import json, sys
import datasets
from varreason import bespoke, mini
rows = bespoke.load_rows(mini.BESPOKE_ID)
out = {"bespoke": rows == mini.bespoke_rows()}
for name, (repo, config, split, _) in mini.SUITES.items():
    out[name] = len(datasets.load_dataset(repo, config, split=split))
print(json.dumps(out))
"""


def test_hf_home_serves_the_hub_ids_offline(built):
    """The qwen3 profile's own calls (bespoke.load_rows on the hub id, `datasets.load_dataset(repo, config)` as
    lm-eval makes it) read the miniature from HF_HOME with the hub switched off."""
    out, _ = built
    env = {**os.environ, "HF_HOME": str(out / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("HF_DATASETS_CACHE", None)
    res = subprocess.run([sys.executable, "-c", _READ], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"bespoke": True, "vr_gpqa_diamond": 3,
                                                                "vr_olympiadbench": 3, "vr_mmlu_pro": 3}


def test_preflight_lets_the_miniature_run_on_cpu_and_not_qwen3(built, monkeypatch):
    import torch

    from varreason import preflight

    out, _ = built
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(out / "hf" / "datasets"))
    monkeypatch.setenv("HF_HUB_CACHE", str(out / "hf" / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(out / "hf" / "hub"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = ROOT / "params.yaml"
    mini_cfg = load_config(params, "qwen3-mini", {"model.name_or_path": str(out / "qwen3-mini")})
    assert preflight.problems(mini_cfg, module_available=lambda m: True, vllm_cpu_build=lambda: True) == []
    assert preflight.problems(mini_cfg.model_copy(update={"sampling": mini_cfg.sampling.model_copy(
        update={"backend": "hf"})})) == []
    # the CUDA build of vllm cannot serve it on CPU; neither can 4 tensor-parallel ranks
    [why] = preflight.problems(mini_cfg, module_available=lambda m: True, vllm_cpu_build=lambda: False)
    assert "not vLLM's CPU build" in why
    tp4 = load_config(params, "qwen3-mini", {"model.name_or_path": str(out / "qwen3-mini"),
                                             "sampling.tensor_parallel_size": 4})
    assert "tensor_parallel_size=4 needs that many GPUs" in preflight.problems(tp4, module_available=lambda m: True,
                                                                              vllm_cpu_build=lambda: True)[0]
    # qwen3 itself: 4B parameters (here: a config this size, counted on the meta device) never runs on CPU
    big = preflight.cpu_refusal(load_config(params, "qwen3", {"sampling.tensor_parallel_size": 1}),
                                n_params=lambda ref: 4_022_468_096, vllm_cpu_build=lambda: True)
    assert "4.02B parameters" in big
    assert preflight.checkpoint_params(str(out / "qwen3-mini")) < preflight.CPU_MAX_PARAMS
