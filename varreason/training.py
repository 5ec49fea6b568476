"""Weighted SFT of a causal LM on (prompt, response, weight) examples.

Loss on response tokens only, through ``objectives.OBJECTIVES``. Batches are length-grouped: examples are
shuffled, cut into pools of 50 batches, sorted by length inside a pool and re-batched, so padding stays small
while the batch order stays random. AdamW with linear warmup and cosine decay; a fixed number of optimizer
steps, so every method gets the same compute whatever the size of its training set.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from varreason.config import TrainConfig
from varreason.objectives import IGNORE, OBJECTIVES


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    weight: float = 1.0


@dataclass(frozen=True)
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    final_loss: float
    mean_nll: float


def encode_examples(tokenizer, examples: list[Example], max_length: int) -> list[tuple[list[int], int, float]]:
    """(ids, prompt_len, weight) per example; responses longer than ``max_length`` are truncated at the end."""
    out = []
    for ex in examples:
        p = tokenizer.encode(ex.prompt, add_special_tokens=False)
        r = tokenizer.encode(ex.response, add_special_tokens=False) + [tokenizer.eos_token_id]
        ids = (p + r)[:max_length]
        if len(ids) > len(p):
            out.append((ids, len(p), ex.weight))
    return out


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 50
                           ) -> list[list[int]]:
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches = []
    for s in range(0, len(idx), batch_size * pool):
        chunk = sorted(idx[s : s + batch_size * pool], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(items: list[tuple[list[int], int, float]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _, _ in items)
    B = len(items)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    labels = torch.full((B, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((B, width), dtype=torch.long)
    for b, (ids, plen, _) in enumerate(items):
        t = torch.tensor(ids)
        input_ids[b, : len(ids)] = t
        mask[b, : len(ids)] = 1
        labels[b, plen - 1 : len(ids) - 1] = t[plen:]  # position t predicts token t+1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels,
            "weights": torch.tensor([w for _, _, w in items], dtype=torch.float32)}


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def train_sft(model, tokenizer, examples: list[Example], cfg: TrainConfig, steps: int, max_length: int,
              seed: int, objective: str = "weighted_sft", progress: bool = True, device: str = "cpu",
              batcher=length_grouped_batches) -> TrainResult:
    """Train ``model`` in place for ``steps`` optimizer steps. Examples with weight 0 are dropped up front
    (they would contribute nothing). ``batcher(lengths, batch_size, rng)`` yields one epoch of index batches;
    the benchmarks swap in random batching to measure what length grouping saves."""
    data = [e for e in encode_examples(tokenizer, examples, max_length) if e[2] > 0]
    if not data:
        raise ValueError("no training examples with positive weight; check the training-set build step")
    loss_fn = OBJECTIVES[objective]
    mean_resp = sum(len(ids) - plen for ids, plen, _ in data) / len(data)
    normalizer = cfg.batch_size * mean_resp
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    warmup = int(cfg.warmup_frac * steps)
    lengths = [len(ids) for ids, _, _ in data]
    queue: list[list[int]] = []
    tokens, last_loss, nll_sum, t0 = 0, float("nan"), 0.0, time.perf_counter()
    bar = tqdm(range(steps), desc="train", unit="step", disable=None if progress else True, leave=False)
    for step in bar:
        if not queue:
            queue = batcher(lengths, cfg.batch_size, rng)
        batch = collate([data[i] for i in queue.pop()], tokenizer.pad_token_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, warmup, cfg.lr)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        loss, stats = loss_fn(logits, batch["labels"].to(device), batch["weights"].to(device), normalizer)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; lower train.lr or check the weights")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        tokens += int(batch["attention_mask"].sum())
        last_loss, nll_sum = float(loss.detach()), nll_sum + stats["nll_per_token"]
        if step % 20 == 0:
            bar.set_postfix(loss=f"{last_loss:.3f}")
    model.eval()
    return TrainResult(steps=steps, tokens=tokens, seconds=time.perf_counter() - t0, final_loss=last_loss,
                       mean_nll=nll_sum / steps)
