"""The multi-process training entry point (varreason/launch.py) on CPU: two gloo ranks under torchrun train the
tiny model for a few steps and end where the in-process trainer ends on the same data (same global batches,
split across ranks; gradients averaged, loss scaled back to the sum)."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from varreason.config import load_config
from varreason.io import produce, read_json, write_rows
from varreason.modeling import build_char_tokenizer, build_tiny_model, load_checkpoint, save_checkpoint
from varreason.steps import run_step
from varreason.training import Example, train_sft

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~1.5 min at load 10 on 2 cores
def test_two_gloo_ranks_match_in_process_training(tmp_path, one_thread, monkeypatch):
    over = {"train.batch_size": 8, "train.steps": STEPS, "seed": 2,  # train-reasoner round 1: seed 2 + 1 = 3
            "train.launcher": {"kind": "torchrun", "num_processes": 2, "gradient_checkpointing": True}}
    cfg = load_config(ROOT / "params.yaml", "smoke", over)
    tok = build_char_tokenizer(list("0123456789+-"), cfg.prompt)
    rows = [{"prompt": f"<|im_start|>{a}+{b}<|im_end|><|begin_of_thought|>", "response": f"{a + b}",
             "weight": 0.5 + (a % 3) / 2} for a in range(1, 9) for b in range(1, 4)]
    root = tmp_path / "artifacts"
    init_ref = produce(root, "backbone", {"t": 1}, lambda out: save_checkpoint(build_tiny_model(cfg.model, tok, 0),
                                                                              tok, out))
    set_ref = produce(root, "reasoner-set", {"t": 1}, lambda out: write_rows(out / "examples.parquet", rows))
    init = init_ref.verify()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the pipeline step: train.launcher set -> `torchrun --standalone --nproc_per_node 2 -m varreason.launch ...`
    ref = run_step("train-reasoner", cfg, {"init": init_ref, "set": set_ref}, label="pi-test", root=str(root), rnd=1)
    out = ref.verify()
    result = read_json(out / "stats.json")
    assert result["world"] == 2 and result["steps"] == STEPS

    # the same training in-process
    model, tok2 = load_checkpoint(init, cfg.model)
    ref = train_sft(model, tok2, [Example(r["prompt"], r["response"], r["weight"]) for r in rows], cfg.train, STEPS,
                    cfg.model.max_length, 3, progress=False)
    got = load_file(out / "model.safetensors")
    want = {k: v.detach() for k, v in model.state_dict().items()}
    start = load_file(init / "model.safetensors")
    moved = max(float((want[k] - start[k]).abs().max()) for k in got)
    assert moved > 1e-3  # the weights did move (lr 2e-3, 3 steps)
    # float sums in other orders (two half batches, gloo all-reduce) differ by ~1e-7; Adam's first steps are
    # ~lr * sign(grad), so a weight whose gradient is ~0 can differ by more: 1e-4 is 5% of one step
    for k, v in got.items():
        assert torch.allclose(v, want[k], atol=1e-4), (k, float((v - want[k]).abs().max()))
    assert result["tokens"] == ref.tokens
    assert result["final_loss"] == pytest.approx(ref.final_loss, rel=1e-4)


def test_launch_commands():
    from varreason.config import LauncherConfig
    from varreason.launch import launch_command

    acc = LauncherConfig(kind="accelerate", num_processes=8, config="deploy/accelerate/fsdp.yaml")
    assert launch_command(acc, "s.json") == [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                                             "deploy/accelerate/fsdp.yaml", "--num_processes", "8", "-m",
                                             "varreason.launch", "train", "s.json"]
    tr = LauncherConfig(kind="torchrun", num_processes=2)
    assert launch_command(tr, "s.json")[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # three 2-rank runs: ~2 min at load 10 on 2 cores
def test_killed_launcher_training_resumes_from_its_state(tmp_path, one_thread, monkeypatch):
    """Both ranks SIGKILL themselves right after the first saved state (a fault point); the retried step resumes
    from it and ends with the same weights, byte for byte, as an uninterrupted 2-rank run."""
    import subprocess

    over = {"train.batch_size": 8, "train.checkpoint_every": 2, "train.steps": 6, "seed": 4,
            "train.launcher": {"kind": "torchrun", "num_processes": 2, "gradient_checkpointing": False}}
    cfg = load_config(ROOT / "params.yaml", "smoke", over)
    tok = build_char_tokenizer(list("0123456789+-"), cfg.prompt)
    rows = [{"prompt": f"<|im_start|>{a}-{b}<|im_end|><|begin_of_thought|>", "response": f"{a - b}", "weight": 1.0}
            for a in range(1, 9) for b in range(1, 4)]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def run(root):
        init = produce(root, "backbone", {"t": 1}, lambda out: save_checkpoint(build_tiny_model(cfg.model, tok, 0),
                                                                               tok, out))
        tset = produce(root, "reasoner-set", {"t": 1}, lambda out: write_rows(out / "examples.parquet", rows))
        return run_step("train-reasoner", cfg, {"init": init, "set": tset}, label="pi-test", root=str(root), rnd=1)

    plain = run(tmp_path / "plain")
    monkeypatch.setenv("VARREASON_FAULT", "launcher-state-saved:1")
    with pytest.raises(subprocess.CalledProcessError):
        run(tmp_path / "killed")
    works = list((tmp_path / "killed" / "checkpoint").glob(".work-*/latest.json"))
    assert len(works) == 1 and read_json(works[0])["step"] == 2
    monkeypatch.delenv("VARREASON_FAULT")
    resumed = run(tmp_path / "killed")
    stats = read_json(resumed.verify() / "stats.json")
    assert stats["resumed_from"] == 2 and stats["steps"] == 6
    assert (plain.verify() / "model.safetensors").read_bytes() == (resumed.verify() / "model.safetensors").read_bytes()
    assert stats["tokens"] == read_json(plain.verify() / "stats.json")["tokens"]
    assert not list((tmp_path / "killed" / "checkpoint").glob(".work-*"))
