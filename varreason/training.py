"""Weighted SFT of a causal LM on (prompt, response, weight) examples.

Loss on response tokens only, through ``objectives.OBJECTIVES``. Batches are length-grouped: examples are
shuffled, cut into pools of 50 batches, sorted by length inside a pool and re-batched, so padding stays small
while the batch order stays random. AdamW with linear warmup and cosine decay; a fixed number of optimizer
steps, so every method gets the same compute whatever the size of its training set.

Resume: with ``checkpoint_every > 0`` and a ``state_dir``, the full training state (weights, AdamW moments,
step, the batch queue, Python and torch RNG states, running counters) is written atomically to
``state_dir/state.safetensors`` (tensors, plus the rest as JSON in its header; no pickle) every
``checkpoint_every`` steps, and a later call with the same arguments continues from it. The schedule is a pure
function of the step (``lr_at``), so no scheduler object is saved. A resumed
run is bit-identical to an uninterrupted one (``tests/varreason/test_training_resume.py``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from varreason.config import DataError, TrainConfig
from varreason.faults import fault_point
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
    resumed_from: int = 0  # the step a saved state was resumed at (0: started fresh)
    n_truncated: int = 0  # examples longer than model.max_length, cut at the end (policy of encode_examples)
    n_dropped_overlong: int = 0  # examples whose prompt alone fills model.max_length, dropped


def encode_examples(tokenizer, examples: list[Example], max_length: int, counts: dict[str, int] | None = None
                    ) -> list[tuple[list[int], int, float]]:
    """(ids, prompt_len, weight) per example.

    Over-long policy: an example longer than ``max_length`` tokens (prompt + response + eos) is truncated at the
    end, as SFT trainers do; one whose prompt alone leaves no response token is dropped. ``counts`` (if given)
    receives ``n_truncated`` and ``n_dropped_overlong``, which ``train_sft`` reports in its result.
    """
    out = []
    n_trunc = n_drop = 0
    for ex in examples:
        p = tokenizer.encode(ex.prompt, add_special_tokens=False)
        r = tokenizer.encode(ex.response, add_special_tokens=False) + [tokenizer.eos_token_id]
        ids = (p + r)[:max_length]
        if len(ids) > len(p):
            out.append((ids, len(p), ex.weight))
            n_trunc += len(p) + len(r) > max_length
        else:
            n_drop += 1
    if counts is not None:
        counts.update(n_truncated=n_trunc, n_dropped_overlong=n_drop)
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


STATE_FILE = "state.safetensors"
_META = "varreason_state"


def save_state(state_dir: Path, state: dict) -> None:
    """Write ``state`` (nested dicts/lists/tuples of tensors and JSON scalars) to ``state_dir/state.safetensors``.

    Tensors go in the safetensors body; everything else (step, counters, the batch queue, the Python RNG state,
    AdamW's param groups) goes as JSON in the file's header, tensors replaced by their names. One file, so one
    atomic rename publishes both halves (a kill leaves the previous state), and loading runs no pickle.
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(state, "", tensors, set())
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
    save_file(tensors, tmp, metadata={_META: json.dumps(skeleton)})
    os.replace(tmp, state_dir / STATE_FILE)


def load_state(state_dir: Path | None) -> dict | None:
    """The saved state, or None. Read with safetensors and ``json``: nothing on disk is unpickled."""
    from safetensors import safe_open

    path = None if state_dir is None else Path(state_dir) / STATE_FILE
    if path is None or not path.exists():
        return None
    with safe_open(path, framework="pt", device="cpu") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        skeleton = json.loads(f.metadata()[_META])
    return _join(skeleton, tensors)


def _split(obj, name: str, tensors: dict, seen: set):
    """JSON skeleton of ``obj`` with each tensor moved into ``tensors`` under its path. Dicts keep their key
    types (AdamW's state is keyed by int) and tuples stay tuples, so ``_join`` rebuilds ``obj`` exactly."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        if t.data_ptr() in seen:  # tied weights share storage, which safetensors refuses: store a copy
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[name] = t
        return {"tensor": name}
    if isinstance(obj, dict):
        return {"dict": [[k, _split(v, f"{name}/{k}", tensors, seen)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)) and all(_plain(v) for v in obj):  # batch queues, RNG words: compact
        return {"tuple_of" if isinstance(obj, tuple) else "list_of": list(obj)}
    if isinstance(obj, (list, tuple)):
        items = [_split(v, f"{name}/{i}", tensors, seen) for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": items}
    if _plain(obj):
        return {"value": obj}
    raise TypeError(f"cannot save {type(obj).__name__} at {name!r} in a training state")


def _plain(obj) -> bool:
    return obj is None or isinstance(obj, (bool, int, float, str))


def _join(node, tensors: dict):
    (kind, body), = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {k: _join(v, tensors) for k, v in body}
    if kind in ("list", "tuple"):
        items = [_join(v, tensors) for v in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "tuple_of":
        return tuple(body)
    return body  # "value", "list_of"


def _rng_state(rng: random.Random) -> dict:
    st = {"python": rng.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(rng: random.Random, st: dict) -> None:
    version, internal, gauss = st["python"]
    rng.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def train_sft(model, tokenizer, examples: list[Example], cfg: TrainConfig, steps: int, max_length: int,
              seed: int, objective: str = "weighted_sft", progress: bool = True, device: str = "cpu",
              state_dir: Path | None = None, batcher=length_grouped_batches) -> TrainResult:
    """Train ``model`` in place for ``steps`` optimizer steps. Examples with weight 0 are dropped up front
    (they would contribute nothing). With ``state_dir`` and ``cfg.checkpoint_every > 0`` the state is saved
    every ``checkpoint_every`` steps and resumed from if present (the caller keys ``state_dir`` to the run).
    ``batcher(lengths, batch_size, rng)`` yields one epoch of index batches; the benchmarks swap in random
    batching to measure what length grouping saves."""
    counts: dict[str, int] = {}
    data = [e for e in encode_examples(tokenizer, examples, max_length, counts) if e[2] > 0]
    if not data:
        raise DataError(f"no training example with positive weight ({len(examples)} given, "
                        f"{counts['n_dropped_overlong']} with a prompt over model.max_length={max_length}); "
                        "raise model.max_length or set objective.mix_seed_data: true so the seed traces are kept")
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
    start = 0
    saved = load_state(state_dir) if cfg.checkpoint_every else None
    if saved is not None:
        if saved["steps"] != steps or saved["n_data"] != len(data):
            raise RuntimeError(f"{state_dir} holds the state of another run ({saved['steps']} steps, "
                               f"{saved['n_data']} examples); delete it to start afresh")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        _set_rng_state(rng, saved["rng"])
        start, queue, tokens, nll_sum, last_loss = (saved["step"], saved["queue"], saved["tokens"],
                                                    saved["nll_sum"], saved["last_loss"])
    bar = tqdm(range(start, steps), desc="train", unit="step", disable=None if progress else True, leave=False)
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
        done = step + 1
        if state_dir is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < steps:
            save_state(Path(state_dir), {
                "step": done, "steps": steps, "n_data": len(data), "model": model.state_dict(),
                "optimizer": opt.state_dict(), "rng": _rng_state(rng), "queue": queue, "tokens": tokens,
                "nll_sum": nll_sum, "last_loss": last_loss})
        fault_point("train-step")  # after step `done` (and its saved state, if any)
    model.eval()
    return TrainResult(steps=steps, tokens=tokens, seconds=time.perf_counter() - t0, final_loss=last_loss,
                       mean_nll=nll_sum / steps, resumed_from=start, **counts)
