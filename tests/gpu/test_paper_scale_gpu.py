"""GPU-only checks of the paper-scale path (`make test-gpu` on any CUDA machine; opt-in, marker `gpu`).

* vLLM on CUDA with the tiny model: `make test-gpu` also selects tests/varreason/backends/test_vllm.py (marker
  `vllm`), which builds its engine on CUDA when one is present.
* a 2-process FSDP training step through `accelerate launch --config_file deploy/accelerate/fsdp.yaml`.
* sharded sampling: TODO(ray-helper) add the sharded pass on CUDA once the Ray sharding lands on main.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from varreason.config import load_config
from varreason.io import produce, read_json, write_rows
from varreason.modeling import build_char_tokenizer, build_tiny_model, save_checkpoint
from varreason.steps import run_step

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_two_process_fsdp_step(tmp_path):
    over = {"train.batch_size": 8, "train.steps": 2, "seed": 0,
            "train.launcher": {"kind": "accelerate", "num_processes": 2,
                                                      "config": str(ROOT / "deploy/accelerate/fsdp.yaml")}}
    cfg = load_config(ROOT / "params.yaml", "smoke", over)
    tok = build_char_tokenizer(list("0123456789+-"), cfg.prompt)
    rows = [{"prompt": f"<|im_start|>{a}+{b}<|im_end|><|begin_of_thought|>", "response": f"{a + b}", "weight": 1.0}
            for a in range(1, 9) for b in range(1, 4)]
    root = tmp_path / "artifacts"
    init = produce(root, "backbone", {"t": 1},
                   lambda out: save_checkpoint(build_tiny_model(cfg.model, tok, 0), tok, out))
    sets = produce(root, "reasoner-set", {"t": 1}, lambda out: write_rows(out / "examples.parquet", rows))
    ref = run_step("train-reasoner", cfg, {"init": init, "set": sets}, label="pi-gpu", root=str(root), rnd=0)
    stats = read_json(ref.verify() / "stats.json")
    assert stats["world"] == 2 and stats["steps"] == 2
    got, start = load_file(ref.verify() / "model.safetensors"), load_file(init.verify() / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in got.values())
    assert max(float((got[k].float() - start[k].float()).abs().max()) for k in got) > 1e-4
