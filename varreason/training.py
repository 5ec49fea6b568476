"""The training loop: weighted SFT (or any objective of ``objectives.OBJECTIVES``) of a causal LM on
(prompt, response, weight, extra columns) examples, in-process or on every rank under a launcher.

Loss on response tokens only. Batches are length-grouped: examples are shuffled, cut into pools of 50 batches,
sorted by length inside a pool and re-batched, so padding stays small while the batch order stays random. AdamW
(``train.adam_betas``, ``train.adam_eps``) with linear warmup and cosine decay; a fixed number of optimizer
steps, so every method gets the same compute whatever the size of its training set.

One loop, two ways to run it (as nanochat's scripts: the launcher only sets up the process group). ``train_sft``
takes a ``Ranks`` (how many processes share each batch, how gradients are summed, how the state is saved):
``LocalRanks`` (the default: one process, the whole batch) or ``launch.AccelerateRanks`` (``python -m
varreason.launch`` under ``torchrun``/``accelerate launch``). Every rank draws the same global batches from the
same seed and takes rows ``rank::world`` of each, so a multi-rank run is the single-process optimisation split
across ranks (``tests/varreason/test_run_distributed.py``).

Resume: with ``checkpoint_every > 0`` and a ``state_dir`` the full training state (weights, AdamW moments,
step, the batch queue, Python and torch RNG states, running counters) is saved every ``checkpoint_every``
steps and a later call with the same arguments continues from it. ``LocalRanks`` writes it atomically to
``state_dir/state.safetensors`` (tensors, plus the rest as JSON in its header; no pickle). The schedule is a
pure function of the step (``lr_at``), so no scheduler object is saved. A resumed run is bit-identical to an
uninterrupted one (``tests/varreason/test_training_resume.py``).
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from typing import Any, NamedTuple, Protocol

import torch
from tqdm.auto import tqdm

from varreason.config import DataError, TrainConfig
from varreason.faults import fault_point
from varreason.objectives import IGNORE, OBJECTIVES, objective_columns

_CORE = ("prompt", "response", "weight")


@dataclass(frozen=True)
class Example:
    """One training row. ``columns``: its other fields, for objectives that read them (``objectives``)."""

    prompt: str
    response: str
    weight: float = 1.0
    columns: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Example":
        """A row of an ``examples.parquet``: prompt, response, weight; every other field goes to ``columns``."""
        return cls(row["prompt"], row["response"], float(row["weight"]),
                   {k: v for k, v in row.items() if k not in _CORE})


class Encoded(NamedTuple):
    """An encoded example: token ids, prompt length, weight, and the objective's columns (name -> float for a
    per-example value, list[float] with one value per target token ``ids[prompt_len:]`` for a per-token one)."""

    ids: list[int]
    prompt_len: int
    weight: float
    columns: dict[str, Any]


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


def encode_examples(tokenizer, examples: list[Example], max_length: int, counts: dict[str, int] | None = None,
                    columns: tuple[str, ...] = ()) -> list[Encoded]:
    """One ``Encoded`` per kept example, carrying the ``columns`` an objective reads.

    Over-long policy: an example longer than ``max_length`` tokens (prompt + response + eos) is truncated at the
    end, as SFT trainers do (a per-token column is cut with it); one whose prompt alone leaves no response token
    is dropped. ``counts`` (if given) receives ``n_truncated`` and ``n_dropped_overlong``, which ``train_sft``
    reports in its result.

    Raises:
        DataError: an example lacks one of ``columns``, or a per-token column's length is not the response's
            token count (its tokens, then eos).
    """
    out = []
    n_trunc = n_drop = 0
    for i, ex in enumerate(examples):
        p = tokenizer.encode(ex.prompt, add_special_tokens=False)
        r = tokenizer.encode(ex.response, add_special_tokens=False) + [tokenizer.eos_token_id]
        ids = (p + r)[:max_length]
        if len(ids) > len(p):
            out.append(Encoded(ids, len(p), ex.weight, _columns_of(ex, i, columns, len(r), len(ids) - len(p))))
            n_trunc += len(p) + len(r) > max_length
        else:
            n_drop += 1
    if counts is not None:
        counts.update(n_truncated=n_trunc, n_dropped_overlong=n_drop)
    return out


def _columns_of(ex: Example, i: int, names: tuple[str, ...], n_resp: int, n_kept: int) -> dict[str, Any]:
    got = {}
    for name in names:
        if name not in ex.columns:
            raise DataError(f"training example {i} has no column {name!r}, which the objective reads; add it to "
                            "the rows or pick an objective that does not need it")
        v = ex.columns[name]
        if isinstance(v, numbers.Real):
            got[name] = float(v)
        elif len(v) == n_resp:
            got[name] = [float(x) for x in v[:n_kept]]
        else:
            raise DataError(f"training example {i}: column {name!r} has {len(v)} values but the response has "
                            f"{n_resp} target tokens (its tokens, then eos); give one value per target token")
    return got


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


def collate(items: list[Encoded], pad_id: int, columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pad ``items`` into a batch: input_ids, attention_mask, labels [B, T] (long), weights [B] (float32), and
    ``columns``: name -> [B] float32 (per-example values) or [B, T] float32 aligned with labels (per-token
    values, 0.0 where labels are IGNORE)."""
    width = max(len(it.ids) for it in items)
    B = len(items)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    labels = torch.full((B, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((B, width), dtype=torch.long)
    cols = {c: torch.zeros((B, width) if isinstance(items[0].columns[c], list) else (B,), dtype=torch.float32)
            for c in columns}
    for b, it in enumerate(items):
        t = torch.tensor(it.ids)
        n, plen = len(it.ids), it.prompt_len
        input_ids[b, :n] = t
        mask[b, :n] = 1
        labels[b, plen - 1 : n - 1] = t[plen:]  # position t predicts token t+1
        for c, col in cols.items():
            v = it.columns[c]
            if isinstance(v, list) != (col.dim() == 2):
                raise DataError(f"column {c!r} mixes per-example numbers and per-token lists across rows")
            if col.dim() == 2:
                col[b, plen - 1 : n - 1] = torch.tensor(v)
            else:
                col[b] = v
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels,
            "weights": torch.tensor([it.weight for it in items], dtype=torch.float32), "columns": cols}


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


class Ranks(Protocol):
    """The processes that share each batch, as the loop sees them (``LocalRanks``, ``launch.AccelerateRanks``)."""

    rank: int
    world: int
    is_main: bool
    device: Any

    def prepare(self, model, make_optimizer) -> tuple[Any, torch.optim.Optimizer]:
        """Put ``model`` in train mode on ``device`` (wrapped for DDP/FSDP where distributed), build its
        optimizer with ``make_optimizer(parameters)``; return both as the loop must use them."""

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of the sum of every rank's ``loss``."""

    def clip_grad_norm_(self, max_norm: float) -> None: ...

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over ranks (the identity for one process)."""

    def save(self, state_dir: Path, meta: dict, rng: random.Random) -> None:
        """Save the model, optimizer and RNG states with ``meta`` (step, steps, n_data, queue, counters)."""

    def load(self, state_dir: Path) -> dict | None:
        """The saved state's ``meta`` (holding whatever ``restore`` needs), or None if there is none."""

    def restore(self, state_dir: Path, saved: dict, rng: random.Random) -> None:
        """Load the model, optimizer and RNG states of ``saved`` (what ``load`` returned)."""


class LocalRanks:
    """One process on ``device``: the whole batch, plain backward, state in one ``state.safetensors``."""

    rank, world, is_main = 0, 1, True

    def __init__(self, device: str = "cpu"):
        self.device = device

    def prepare(self, model, make_optimizer):
        model.to(self.device).train()
        self.model, self.opt = model, make_optimizer(model.parameters())
        return self.model, self.opt

    def backward(self, loss):
        loss.backward()

    def clip_grad_norm_(self, max_norm):
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)

    def sum(self, values):
        return values

    def save(self, state_dir, meta, rng):
        save_state(state_dir, {**meta, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                               "rng": _rng_state(rng)})

    def load(self, state_dir):
        return load_state(state_dir)

    def restore(self, state_dir, saved, rng):
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        _set_rng_state(rng, saved["rng"])


def train_sft(model, tokenizer, examples: list[Example], cfg: TrainConfig, steps: int, max_length: int,
              seed: int, objective: str = "weighted_sft", progress: bool = True, device: str = "cpu",
              state_dir: Path | None = None, batcher=length_grouped_batches, ranks: Ranks | None = None,
              objective_options: dict | None = None) -> TrainResult:
    """Train ``model`` in place for ``steps`` optimizer steps with ``OBJECTIVES[objective]``; every rank of
    ``ranks`` (default ``LocalRanks(device)``) calls this with the same arguments and gets the same result.

    Examples with weight 0 are dropped up front (they would contribute nothing). The objective's extra columns
    (its keyword-only parameters, ``objectives.objective_columns``) come from ``Example.columns`` and reach it
    as [B] or [B, T] tensors (``collate``); nothing here changes for a new objective. With ``state_dir`` and
    ``cfg.checkpoint_every > 0`` the state is saved every ``checkpoint_every`` steps and resumed from if present
    (the caller keys ``state_dir`` to the run). ``batcher(lengths, batch_size, rng)`` yields one epoch of index
    batches; the benchmarks swap in random batching to measure what length grouping saves.
    """
    ranks = LocalRanks(device) if ranks is None else ranks
    loss_fn = functools.partial(OBJECTIVES[objective], **(objective_options or {}))  # options: e.g. GRPO's clip
    columns = objective_columns(loss_fn)
    counts: dict[str, int] = {}
    data = [e for e in encode_examples(tokenizer, examples, max_length, counts, columns) if e.weight > 0]
    if not data:
        raise DataError(f"no training example with positive weight ({len(examples)} given, "
                        f"{counts['n_dropped_overlong']} with a prompt over model.max_length={max_length}); "
                        "raise model.max_length or set objective.mix_seed_data: true so the seed traces are kept")
    mean_resp = sum(len(e.ids) - e.prompt_len for e in data) / len(data)
    normalizer = cfg.batch_size * mean_resp  # a constant of the run, the same on every rank
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, opt = ranks.prepare(model, lambda params: torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.adam_betas, eps=cfg.adam_eps))
    warmup, lengths = int(cfg.warmup_frac * steps), [len(e.ids) for e in data]
    run = {"step": 0, "steps": steps, "n_data": len(data), "queue": [], "tokens": 0, "nll_sum": 0.0,
           "last_loss": float("nan")}
    state_dir = Path(state_dir) if state_dir is not None and cfg.checkpoint_every else None
    saved = None if state_dir is None else ranks.load(state_dir)
    if saved is not None:
        if saved["steps"] != steps or saved["n_data"] != len(data):
            raise RuntimeError(f"{state_dir} holds the state of another run ({saved['steps']} steps, "
                               f"{saved['n_data']} examples); delete it to start afresh")
        ranks.restore(state_dir, saved, rng)
        run.update({k: saved[k] for k in run})
    start, t0 = run["step"], time.perf_counter()
    bar = tqdm(range(start, steps), desc="train", unit="step", leave=False,
               disable=None if progress and ranks.is_main else True)
    for step in bar:
        if not run["queue"]:
            run["queue"] = batcher(lengths, cfg.batch_size, rng)
        full = run["queue"].pop()  # the global batch, identical on every rank
        mine = full[ranks.rank :: ranks.world]
        batch = collate([data[i] for i in mine or full[:1]], tokenizer.pad_token_id, columns)
        if not mine:  # a rank without rows recomputes row 0 with weight 0 (DDP needs every rank's backward)
            batch["weights"].zero_()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, warmup, cfg.lr)
        dev = ranks.device
        logits = model(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev)).logits
        loss, stats = loss_fn(logits, batch["labels"].to(dev), batch["weights"].to(dev), normalizer,
                              **{c: v.to(dev) for c, v in batch["columns"].items()})
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step} on rank {ranks.rank}; lower train.lr or "
                                     "check the weights")
        opt.zero_grad(set_to_none=True)
        ranks.backward(loss)
        ranks.clip_grad_norm_(cfg.grad_clip)
        opt.step()
        last_loss, n_tok = ranks.sum([float(loss.detach()), float(batch["attention_mask"].sum())])
        run.update(step=step + 1, last_loss=last_loss, tokens=run["tokens"] + int(n_tok),
                   nll_sum=run["nll_sum"] + stats["nll_per_token"])
        if step % 20 == 0:
            bar.set_postfix(loss=f"{last_loss:.3f}")
        if state_dir is not None and run["step"] % cfg.checkpoint_every == 0 and run["step"] < steps:
            ranks.save(state_dir, dict(run), rng)
        fault_point("train-step")  # after step ``run["step"]`` (and its saved state, if any)
    model.eval()
    return TrainResult(steps=steps, tokens=run["tokens"], seconds=time.perf_counter() - t0,
                       final_loss=run["last_loss"], mean_nll=run["nll_sum"] / steps, resumed_from=start, **counts)
