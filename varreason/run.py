"""Subprocess entry point for multi-process steps (style §4: the task launches a launcher, reads back a file).

    accelerate launch --config_file deploy/accelerate/fsdp.yaml --num_processes 8 -m varreason.run train SPEC.json
    torchrun --nproc_per_node 2 -m varreason.run train SPEC.json

``SPEC.json`` (written by ``pipeline.train`` or a test) names the train/model configs, the init checkpoint,
the example parquet files, steps, seed and the output dir. Every rank builds the same global batches as the
in-process trainer (``training.length_grouped_batches`` with the same seed) and takes rows ``rank::world`` of
each, so the optimisation is the single-process one split across ranks: the loss is the weighted token-sum
over the rank's rows divided by the run's constant normaliser, times ``world`` because DDP/FSDP average
gradients. ``accelerate`` applies the config's distributed type (FSDP with bf16 and activation checkpointing
in ``deploy/accelerate/fsdp.yaml``; DDP/gloo when started by ``torchrun`` on CPU). Rank 0 writes the full
(gathered) checkpoint with ``save_pretrained`` and ``train_result.json``.

Resume: with ``train.checkpoint_every > 0`` the ranks save ``accelerate``'s state (model, optimizer, each
rank's RNG; sharded as the FSDP config says) to ``<state_dir>/step-<n>/`` every ``checkpoint_every`` steps, and
rank 0 then writes ``<state_dir>/latest.json`` (step, batch queue, batch-RNG state, running counters) through a
temp file and rename. ``latest.json`` names a state only once every rank has finished writing it, so a kill at
any moment leaves the previous complete state; a retried step (``pipeline.train`` keys ``state_dir`` to the
artifact) resumes from it. Not here yet: sequence packing (batches are length-grouped instead).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from varreason.config import ModelConfig, TrainConfig
from varreason.faults import fault_point
from varreason.io import read_rows, write_json
from varreason.objectives import OBJECTIVES
from varreason.training import Example, TrainResult, collate, encode_examples, length_grouped_batches, lr_at


def train_distributed(spec: dict) -> TrainResult | None:
    """Run the spec's training on this rank; return the result on the main process (None elsewhere)."""
    from accelerate import Accelerator

    from varreason.modeling import load_checkpoint, save_checkpoint

    cfg, mcfg = TrainConfig.model_validate(spec["train"]), ModelConfig.model_validate(spec["model"])
    acc = Accelerator(cpu=not torch.cuda.is_available())  # CPU ranks: DDP over gloo (the CPU test)
    rank, world = acc.process_index, acc.num_processes
    # fp32 master weights whatever model.dtype says: AdamW on bf16 parameters rounds lr-1e-5 updates away (bf16
    # keeps ~3 significant digits); accelerate's mixed_precision (bf16 in fsdp.yaml) casts the compute.
    model, tok = load_checkpoint(spec["init"], mcfg.model_copy(update={"dtype": "float32"}), device="cpu")
    if cfg.launcher is not None and cfg.launcher.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    examples = [Example(r["prompt"], r["response"], float(r["weight"])) for p in spec["sets"]
                for r in read_rows(Path(p))]
    data = [e for e in encode_examples(tok, examples, mcfg.max_length) if e[2] > 0]
    steps, seed = spec["steps"], spec["seed"]
    mean_resp = sum(len(ids) - plen for ids, plen, _ in data) / len(data)
    normalizer = cfg.batch_size * mean_resp  # the same constant as the in-process trainer
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    model, opt = acc.prepare(model, opt)
    loss_fn = OBJECTIVES[spec.get("objective", "weighted_sft")]
    warmup, lengths = int(cfg.warmup_frac * steps), [len(ids) for ids, _, _ in data]
    queue: list[list[int]] = []
    tokens, last_loss, nll_sum, t0 = 0, float("nan"), 0.0, time.perf_counter()
    state_dir = Path(spec["state_dir"]) if spec.get("state_dir") and cfg.checkpoint_every else None
    start = _resume(acc, state_dir, rng, steps, len(data))
    if start:
        queue, tokens, nll_sum, last_loss = start["queue"], start["tokens"], start["nll_sum"], start["last_loss"]
    for step in range(start["step"] if start else 0, steps):
        if not queue:
            queue = length_grouped_batches(lengths, cfg.batch_size, rng)
        full = queue.pop()  # the global batch, identical on every rank
        mine = full[rank::world] or full[:1]  # a rank without rows recomputes row 0 with weight 0
        batch = collate([data[i] for i in mine], tok.pad_token_id)
        if not full[rank::world]:
            batch["weights"].zero_()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, warmup, cfg.lr)
        logits = model(input_ids=batch["input_ids"].to(acc.device),
                       attention_mask=batch["attention_mask"].to(acc.device)).logits
        loss, stats = loss_fn(logits, batch["labels"].to(acc.device), batch["weights"].to(acc.device), normalizer)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step} on rank {rank}; lower train.lr")
        opt.zero_grad(set_to_none=True)
        acc.backward(loss * world)  # DDP/FSDP average gradients over ranks; the objective is their sum
        acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        summed = acc.reduce(torch.tensor([loss.detach().float().item(), float(batch["attention_mask"].sum())]),
                            reduction="sum")
        last_loss, tokens = float(summed[0]), tokens + int(summed[1])
        nll_sum += stats["nll_per_token"]
        done = step + 1
        if state_dir is not None and done % cfg.checkpoint_every == 0 and done < steps:
            _save(acc, state_dir, {"step": done, "steps": steps, "n_data": len(data), "queue": queue,
                                   "tokens": tokens, "nll_sum": nll_sum, "last_loss": last_loss,
                                   "rng": rng.getstate()})
    state = acc.get_state_dict(model)  # gathered full state dict (on the main process under FSDP)
    if acc.is_main_process:
        out = Path(spec["out"])
        net, _ = load_checkpoint(spec["init"], mcfg, device="cpu")
        net.load_state_dict({k: v.to(net.dtype) for k, v in state.items()}, strict=False)
        save_checkpoint(net, tok, out)
        result = TrainResult(steps=steps, tokens=tokens, seconds=time.perf_counter() - t0, final_loss=last_loss,
                             mean_nll=nll_sum / steps, resumed_from=start["step"] if start else 0)
        (out / "train_result.json").write_text(json.dumps({**asdict(result), "world": world}))
    acc.wait_for_everyone()
    acc.end_training()
    return result if acc.is_main_process else None


def _save(acc, state_dir: Path, meta: dict) -> None:
    """Every rank writes its part of ``step-<n>/``; then rank 0 points ``latest.json`` at it and drops older ones."""
    target = state_dir / f"step-{meta['step']}"
    acc.save_state(str(target), safe_serialization=True)  # covers the DDP model only; see _resume
    acc.wait_for_everyone()  # latest.json must never name a state some rank is still writing
    if acc.is_main_process:
        write_json(state_dir / "latest.json", meta)
        for old in state_dir.glob("step-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    fault_point("launcher-state-saved")


def _resume(acc, state_dir: Path | None, rng: random.Random, steps: int, n_data: int) -> dict | None:
    """Load the state ``latest.json`` names (model, optimizer, RNGs) and return its metadata, or None."""
    latest = None if state_dir is None else state_dir / "latest.json"
    if latest is None or not latest.exists():
        return None
    meta = json.loads(latest.read_text())
    if meta["steps"] != steps or meta["n_data"] != n_data:
        raise RuntimeError(f"{state_dir} holds the state of another run ({meta['steps']} steps, "
                           f"{meta['n_data']} examples); delete it to start afresh")
    # accelerate writes the optimizer (and under FSDP the model) and the RNG states with torch.save; loading
    # them with weights_only=True runs torch's restricted unpickler (tensors and containers, no code). They are
    # this job's own scratch files in the artifact store's work dir, never downloaded.
    acc.load_state(str(state_dir / f"step-{meta['step']}"), load_kwargs={"weights_only": True})
    version, internal, gauss = meta["rng"]
    rng.setstate((version, tuple(internal), gauss))
    if acc.is_main_process:
        print(f"resuming training from step {meta['step']} of {steps} ({state_dir})", file=sys.stderr, flush=True)
    return meta


def launch_command(launcher, spec_path: str | Path) -> list[str]:
    """The command that runs ``spec_path`` under ``launcher`` (a ``LauncherConfig``)."""
    n = str(launcher.num_processes)
    tail = ["-m", "varreason.run", "train", str(spec_path)]
    if launcher.kind == "torchrun":
        # --standalone: one node, a free rendezvous port (no clash with other jobs on the host)
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", n, *tail]
    cfg = ["--config_file", launcher.config] if launcher.config else []
    return [sys.executable, "-m", "accelerate.commands.launch", *cfg, "--num_processes", n, *tail]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "train":
        print("usage: python -m varreason.run train SPEC.json (under accelerate launch or torchrun)", file=sys.stderr)
        return 2
    train_distributed(json.loads(Path(argv[1]).read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
