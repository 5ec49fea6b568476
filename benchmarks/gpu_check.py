"""``make gpu-check``: the GPU numbers in one command, on a random-init model with Qwen3-0.6B's shapes.

    python -m benchmarks.gpu_check [--dry-run] [--out benchmarks/results-gpu.json]

Writes ``results-gpu.json`` with, each measured by the project's own code path:

* ``sampling``: generated tokens/s of the vLLM backend (``varreason.backends.vllm.VLLMSampler``), the HF
  backend (``HFSampler``) and plain transformers ``generate``, same prompts, temperature 0.7;
* ``training``: bf16 training tokens/s and MFU (6 x parameters x tokens/s over the GPU's dense bf16 peak) of
  the launcher path, ``accelerate launch --mixed_precision bf16 -m varreason.launch train`` on one process;
* ``scoring``: ``varreason.scoring.score`` tokens/s on 8k-token sequences (bf16 model, fp32 log-softmax);
* ``gpu_tests``: the outcome of ``pytest -m gpu``.

No weights are needed: the checkpoint is ``Qwen3ForCausalLM`` initialised from Qwen3-0.6B's config (28 layers,
hidden 1024, 16/8 heads of 128, vocabulary 151,936) with the miniature's tokenizer (``varreason.mini``). Sizes
are set to finish in about 5 minutes on one H100. ``--dry-run`` runs every part at toy sizes on CPU (the CI test
``tests/benchmarks/test_gpu_check.py``), so the script works the first time a GPU appears; a part that cannot run
(no vllm installed, no CUDA for the peak) is recorded with its reason, never left out silently.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QWEN3_06B = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960}
TOY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
       "num_key_value_heads": 1, "head_dim": 32, "max_position_embeddings": 2048}
SIZES = {  # per part: enough work for a stable rate, well inside the 8-minute budget on one H100
    "gpu": {"prompts": 256, "new_tokens": 512, "hf_prompts": 32, "train_steps": 20, "batch": 8, "seq": 2048,
            "score_seqs": 8, "score_len": 8192},
    "dry": {"prompts": 4, "new_tokens": 8, "hf_prompts": 2, "train_steps": 2, "batch": 2, "seq": 64,
            "score_seqs": 2, "score_len": 128},
}
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}  # dense, no sparsity


def build_checkpoint(out: Path, dims: dict, vocab: int = 151_936, seed: int = 0) -> Path:
    """A random-init Qwen3 with ``dims`` and ``vocab`` rows, bf16 safetensors, the miniature's tokenizer."""
    import torch

    from varreason import mini

    tok = mini.train_tokenizer(mini.corpus(mini.bespoke_rows(40, 0, seed)), vocab_size=1024)
    return mini.save(mini.build_model(tok, vocab, seed, dims).to(torch.bfloat16), tok, out)


def _prompts(n: int) -> list[str]:
    from varreason import mini
    from varreason.config import load_config
    from varreason.eval.questions import math_question
    from varreason.prompts import reasoner_prompt

    p = load_config(mini.ROOT / "params.yaml", "qwen3").prompt
    return [reasoner_prompt(p, math_question(r["question_content"])) for r in mini.bespoke_rows(max(n, 1), 0, 1)[:n]]


def bench_sampling(ckpt: Path, sz: dict, device: str) -> dict:
    import torch

    from varreason.backends.base import SamplingParams
    from varreason.backends.hf import HFSampler
    from varreason.config import ModelConfig
    from varreason.modeling import load_checkpoint

    mcfg = ModelConfig(kind="pretrained", name_or_path=str(ckpt), max_length=sz["new_tokens"] + 1024,
                       dtype="bfloat16")
    params = SamplingParams(n=1, temperature=0.7, top_p=1.0, max_new_tokens=sz["new_tokens"])
    out: dict = {"new_tokens": sz["new_tokens"]}
    model, tok = load_checkpoint(ckpt, mcfg, device=device)
    hf_prompts = _prompts(sz["hf_prompts"])
    t0 = time.perf_counter()
    res = HFSampler(model, tok, batch_size=len(hf_prompts), device=device, progress=False).generate(
        hf_prompts, params, list(range(len(hf_prompts))))
    out["hf_backend"] = _rate(res.n_generated, time.perf_counter() - t0, len(hf_prompts))
    enc = tok(hf_prompts, return_tensors="pt", padding=True, padding_side="left").to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        gen = model.generate(**enc, do_sample=True, temperature=0.7, top_p=1.0, max_new_tokens=sz["new_tokens"],
                             pad_token_id=tok.pad_token_id)
    out["hf_generate"] = _rate(int((gen[:, enc["input_ids"].shape[1]:] != tok.pad_token_id).sum()),
                               time.perf_counter() - t0, len(hf_prompts))
    del model
    out["vllm"] = _vllm_rate(ckpt, mcfg, _prompts(sz["prompts"]), params, device)
    return out


def _rate(tokens: int, seconds: float, prompts: int) -> dict:
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "prompts": prompts}


def _vllm_rate(ckpt: Path, mcfg, prompts: list[str], params, device: str) -> dict:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return {"status": "not run: vllm is not installed in this environment (pip install -e '.[gpu]')"}
    from varreason.backends.vllm import VLLMSampler

    t0 = time.perf_counter()
    sampler = VLLMSampler(str(ckpt), mcfg, enforce_eager=device == "cpu", gpu_memory_utilization=0.6)
    start_s = time.perf_counter() - t0
    try:
        sampler.generate(prompts[:1], params, [0])  # warm-up: first-request compilation is not throughput
        t0 = time.perf_counter()
        res = sampler.generate(prompts, params, list(range(len(prompts))))
        return {**_rate(res.n_generated, time.perf_counter() - t0, len(prompts)), "engine_start_s": round(start_s, 1)}
    finally:
        sampler.close()


def bench_training(ckpt: Path, sz: dict, device: str, peak: float | None, work: Path) -> dict:
    """The launcher path on one process with bf16 mixed precision; tokens/s from ``train_result.json``."""
    from varreason.config import ModelConfig, load_config
    from varreason.io import write_rows
    from varreason.preflight import checkpoint_params

    words = "the answer follows from the steps above and is checked twice".split()
    body = " ".join(words[i % len(words)] for i in range(sz["seq"]))
    write_rows(work / "examples.parquet", [{"prompt": "Q", "response": body, "weight": 1.0}
                                           for _ in range(sz["batch"] * 4)])
    train = load_config(ROOT / "params.yaml", "qwen3").train.model_copy(update=dict(  # qwen3's optimiser settings
        lr=1e-5, batch_size=sz["batch"], init_steps=1, steps=sz["train_steps"], posterior_steps=1, warmup_frac=0.0,
        launcher={"kind": "accelerate", "num_processes": 1, "gradient_checkpointing": True}))
    mcfg = ModelConfig(kind="pretrained", name_or_path=str(ckpt), max_length=sz["seq"], dtype="bfloat16")
    spec = {"train": train.model_dump(), "model": mcfg.model_dump(), "init": str(ckpt),
            "sets": [str(work / "examples.parquet")], "steps": sz["train_steps"], "seed": 0, "out": str(work / "out")}
    (work / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--mixed_precision", "bf16",
           *(["--cpu"] if device == "cpu" else []), "-m", "varreason.launch", "train", str(work / "spec.json")]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=600)
    res = json.loads((work / "out" / "train_result.json").read_text())
    n = checkpoint_params(str(ckpt))
    tps = res["tokens"] / res["seconds"]
    return {"steps": res["steps"], "tokens": res["tokens"], "seconds": round(res["seconds"], 3),
            "tokens_per_s": round(tps, 1), "n_params": n, "model_flops_per_s": 6 * n * tps,
            "mfu": (6 * n * tps / peak) if peak else None, "peak_bf16_flops": peak,
            **({} if peak else {"mfu_status": "not computed: no dense bf16 peak known for this device (BF16_PEAK)"}),
            "note": "MFU counts 6 x parameters per token (recompute of gradient checkpointing not credited)"}


def bench_scoring(ckpt: Path, sz: dict, device: str) -> dict:
    import torch

    from varreason.config import ModelConfig
    from varreason.modeling import load_checkpoint
    from varreason.scoring import score

    mcfg = ModelConfig(kind="pretrained", name_or_path=str(ckpt), max_length=sz["score_len"], dtype="bfloat16")
    model, tok = load_checkpoint(ckpt, mcfg, device=device)
    g = torch.Generator().manual_seed(0)
    vocab = len(tok)
    seqs = [torch.randint(0, vocab - 30, (sz["score_len"],), generator=g).tolist() for _ in range(sz["score_seqs"])]
    ctx, tgt = [s[:512 if sz["score_len"] > 1024 else 16] for s in seqs], [s[512 if sz["score_len"] > 1024 else 16:]
                                                                           for s in seqs]
    score(model, ctx[:1], tgt[:1], pad_id=tok.pad_token_id, device=device, progress=False)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    score(model, ctx, tgt, max_tokens_per_batch=2 * sz["score_len"], pad_id=tok.pad_token_id, device=device,
          progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    tokens = sum(map(len, seqs))
    return {"sequences": len(seqs), "sequence_tokens": sz["score_len"], "tokens": tokens, "seconds": round(sec, 3),
            "tokens_per_s": round(tokens / sec, 1)}


def gpu_tests(dry: bool) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/gpu"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    tail = (res.stdout.strip().splitlines() or [""])[-1]
    return {"command": " ".join(cmd[2:]), "returncode": res.returncode, "summary": tail}


def machine(device: str) -> dict:
    import torch

    out = {"device": device, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if device == "cuda":
        out.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count())
    try:
        from importlib.metadata import version

        out["vllm"] = version("vllm")
    except Exception:  # noqa: BLE001 - not installed
        out["vllm"] = None
    return out


def run(dry_run: bool, out: Path) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() and not dry_run else "cpu"
    if device == "cpu" and not dry_run:
        raise SystemExit("gpu-check: no CUDA device; use --dry-run for the CPU harness check")
    sz = SIZES["dry" if dry_run else "gpu"]
    info = machine(device)
    peak = next((v for k, v in BF16_PEAK.items() if k in info.get("gpu", "")), None)
    res: dict = {"machine": info, "dry_run": dry_run, "model": "random-init Qwen3ForCausalLM, " +
                 ("toy dims" if dry_run else "Qwen3-0.6B shapes") + ", vocabulary 151,936", "sizes": sz, "parts": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vr-gpu-check-") as tmp:
        ckpt = build_checkpoint(Path(tmp) / "ckpt", TOY if dry_run else QWEN3_06B)
        parts = {"sampling": lambda: bench_sampling(ckpt, sz, device),
                 "training": lambda: bench_training(ckpt, sz, device, peak, Path(tmp)),
                 "scoring": lambda: bench_scoring(ckpt, sz, device),
                 "gpu_tests": lambda: gpu_tests(dry_run)}
        for name, fn in parts.items():
            t0 = time.perf_counter()
            try:
                res["parts"][name] = fn()
            except Exception as exc:  # noqa: BLE001 - a failed part is recorded; the others still run
                res["parts"][name] = {"status": f"failed: {type(exc).__name__}: {str(exc)[:500]}"}
            res["parts"][name]["wall_s"] = round(time.perf_counter() - t0, 1)
            print(f"[gpu-check] {name}: {res['parts'][name]['wall_s']} s", file=sys.stderr, flush=True)
    res["wall_s"] = round(time.perf_counter() - t_all, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="toy sizes on CPU (harness check; numbers meaningless)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results-gpu.json"))
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    res = run(a.dry_run, Path(a.out))
    print(json.dumps(res, indent=1))
    failed = [k for k, v in res["parts"].items() if str(v.get("status", "")).startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
