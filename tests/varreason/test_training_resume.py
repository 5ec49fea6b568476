"""Mid-epoch resume of training (varreason/training.py, pipeline/train.py): a run killed after its first
resumable state and retried continues from that step and ends with the same weights, byte for byte, as an
uninterrupted run. Each run is a fresh subprocess (one thread, so float sums are ordered alike)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS, EVERY = 40, 10

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from varreason.config import load_config
from varreason.io import read_json
from varreason.steps import run_step
import varreason.training as T

params, root, every, mode, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
cfg = load_config(params, "smoke", {"train.checkpoint_every": every, "train.init_steps": steps})
if mode == "hang":  # stand-in for a crash: hang right after the first state is on disk, the test SIGKILLs us
    save = T.save_state
    def save_then_hang(d, st):
        save(d, st)
        print("SAVED", st["step"], flush=True)
        time.sleep(600)
    T.save_state = save_then_hang
task = run_step("build-task", cfg, {}, root=root, progress=False)
backbone = run_step("init-backbone", cfg, {"task": task}, root=root, progress=False)
seed_pi = run_step("build-seed-set", cfg, {"task": task}, root=root, progress=False, role="reasoner")
ref = run_step("train-pi0", cfg, {"init": backbone, "set": seed_pi}, label="pi0", root=root, progress=False)
print("RESULT", json.dumps({"path": ref.path, "stats": read_json(ref.verify() / "stats.json")}), flush=True)
"""


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _run(tmp_path, root, every, mode="run"):
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "params.yaml"), str(root), str(every), mode,
                          str(STEPS)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_killed_training_resumes_bit_identical(tmp_path):
    plain = _run(tmp_path, tmp_path / "plain", every=0)
    assert plain["stats"]["resumed_from"] == 0

    root = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT / "params.yaml"), str(root), str(EVERY), "hang",
                              str(STEPS)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        first = child.stdout.readline()
        assert first.strip() == f"SAVED {EVERY}", (first, child.stderr.read() if child.poll() is not None else "")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    # the kill left a state but no finished checkpoint
    states = list((root / "checkpoint").glob(".work-*/state.safetensors"))
    assert len(states) == 1
    assert not [p for p in (root / "checkpoint").iterdir() if not p.name.startswith(".")]

    resumed = _run(tmp_path, root, every=EVERY)
    assert resumed["stats"]["resumed_from"] == EVERY
    assert resumed["stats"]["steps"] == STEPS
    a = (Path(plain["path"]) / "model.safetensors").read_bytes()
    b = (Path(resumed["path"]) / "model.safetensors").read_bytes()
    assert a == b
    for key in ("tokens", "final_loss", "mean_nll"):
        assert resumed["stats"][key] == plain["stats"][key]
    assert not list((root / "checkpoint").glob(".work-*"))  # the work dir is removed once the artifact exists


def test_state_of_another_run_is_refused(tmp_path):
    from varreason.training import Example, load_state, save_state, train_sft
    from varreason.config import load_config
    from varreason.modeling import build_char_tokenizer, build_tiny_model

    cfg = load_config(ROOT / "params.yaml", "smoke", {"train.checkpoint_every": 2})
    tok = build_char_tokenizer(list("0123456789+-"), cfg.prompt)
    model = build_tiny_model(cfg.model, tok, 0)
    save_state(tmp_path, {"steps": 99, "n_data": 1, "step": 2})
    with pytest.raises(RuntimeError, match="another run"):
        train_sft(model, tok, [Example("1+1", "2")], cfg.train, 4, 32, 0, progress=False, state_dir=tmp_path)
    assert load_state(tmp_path)["steps"] == 99
