"""`make gpu-check`'s harness at toy sizes on CPU (`--dry-run`), so it runs the first time a GPU appears: every part
runs through the project's code path (HF backend and `generate`, `accelerate launch -m varreason.launch train`, the
scorer, `pytest -m gpu`) and lands in the JSON; vLLM is recorded as not run where it is not installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "results-gpu.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["dry_run"] is True and r["machine"]["device"] == "cpu"
    p = r["parts"]
    assert p["sampling"]["hf_backend"]["tokens"] == 2 * 8 and p["sampling"]["hf_backend"]["tokens_per_s"] > 0
    assert p["sampling"]["hf_generate"]["tokens_per_s"] > 0
    vllm = p["sampling"]["vllm"]
    assert vllm.get("tokens_per_s", 0) > 0 or vllm["status"].startswith("not run: vllm is not installed")
    assert p["training"]["steps"] == 2 and p["training"]["tokens_per_s"] > 0 and p["training"]["n_params"] > 9e6
    assert p["scoring"]["tokens"] == 2 * 128 and p["scoring"]["tokens_per_s"] > 0
    assert p["gpu_tests"]["returncode"] == 0 and "skipped" in p["gpu_tests"]["summary"]
