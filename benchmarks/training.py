"""Training: the weighted-SFT loop ``varreason.training.train_sft`` with its length-grouped batches vs the same
loop with naive random batches (shuffled, padded to the longest row), same model, data, steps and seed. Only
the batching differs (``train_sft(batcher=...)``). Throughput counts real (non-pad) tokens.

Achieved FLOP/s uses the 6·N·T rule (N = every parameter, the tied embedding included because it is also the
LM-head matmul; T = real tokens; forward 2·N·T + backward 4·N·T), which leaves out the attention-score matmuls
(≈ 6·layers·seq·d_attn per token, ~10% more at these lengths) and the padding the step also computes. It is
compared with the fp32 matmul peak measured in the same process with the same thread count.
"""

from __future__ import annotations

import copy
import random
import time

import torch

from benchmarks.common import Fixture, rate_row, spread


def random_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Naive batching: a shuffled epoch cut into consecutive batches, whatever the lengths."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    return [idx[j : j + batch_size] for j in range(0, len(idx), batch_size)]


def pad_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / padded


def matmul_peak(n: int = 1024, repeats: int = 5) -> dict:
    """fp32 ``torch.matmul`` of two n x n matrices: FLOP/s = 2 n^3 / t, best and median of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        rates.append(2 * n**3 / (time.perf_counter() - t0))
    return {"n": n, "best_flops": max(rates), **{f"{k}_flops": v for k, v in spread(rates).items()
                                                  if k in ("median", "min")}}


def _examples(fx: Fixture):
    from varreason.pipeline.common import rows
    from varreason.steps import run_step
    from varreason.training import Example

    sets = [run_step("build-seed-set", fx.cfg, {"task": fx.task}, progress=False, role=role)
            for role in ("reasoner", "posterior")]
    return [Example(r["prompt"], r["response"], float(r["weight"])) for s in sets for r in rows(s, "examples.parquet")]


def _run(model, tok, examples, cfg, steps, max_length, batcher) -> tuple[float, int]:
    from varreason.training import train_sft

    net = copy.deepcopy(model)
    res = train_sft(net, tok, examples, cfg, steps, max_length, seed=0, progress=False, batcher=batcher)
    return res.seconds, res.tokens


def bench_training(fx: Fixture, steps: int = 30, repeats: int = 3, peak: dict | None = None) -> dict:
    from varreason.modeling import n_params
    from varreason.training import encode_examples, length_grouped_batches

    model, tok = fx.model()
    examples = _examples(fx)
    cfg, L = fx.cfg.train, fx.cfg.model.max_length
    peaks = [peak] if peak else []
    rates_o, rates_n = [], []
    for _ in range(repeats):  # interleaved; the peak too, so a quiet moment is not credited to one side only
        peaks.append(matmul_peak())
        t, k = _run(model, tok, examples, cfg, steps, L, length_grouped_batches)
        rates_o.append(k / t)
        t, k = _run(model, tok, examples, cfg, steps, L, random_batches)
        rates_n.append(k / t)
    peak = max(peaks, key=lambda p: p["best_flops"])
    lengths = [len(e.ids) for e in encode_examples(tok, examples, L)]
    N = n_params(model)
    flops = 6 * N * statistics_median(rates_o)
    row = rate_row("training real tokens/s", rates_o, rates_n, 1.5, "tokens/s", steps=steps,
                   batch_size=cfg.batch_size, n_params=N,
                   pad_fraction_ours=pad_fraction(lengths, length_grouped_batches(lengths, cfg.batch_size,
                                                                                  random.Random(0))),
                   pad_fraction_naive=pad_fraction(lengths, random_batches(lengths, cfg.batch_size, random.Random(0))),
                   length_min_mean_max=[min(lengths), sum(lengths) / len(lengths), max(lengths)],
                   naive_desc="same loop, random batches padded to the longest row",
                   ours_desc="train_sft, length-grouped batches (pools of 50 batches)")
    row["mfu"] = mfu_row(f"training FLOP/s / fp32 matmul peak (tiny, {N / 1e6:.2f}M params)", flops, peak)
    return row


def statistics_median(x: list[float]) -> float:
    return spread(x)["median"]


def mfu_row(metric: str, flops: float, peak: dict) -> dict:
    frac = flops / peak["best_flops"]
    return {"metric": metric, "unit": "fraction", "achieved_flops": flops, "peak": peak, "fraction": frac,
            "target": ">= 30%", "met": frac >= 0.30, "formula": "6 * n_params * real_tokens / s"}


def bench_training_big(fx: Fixture, hidden: int = 512, steps: int = 2, repeats: int = 2,
                       peak: dict | None = None) -> dict:
    """The same length-grouped loop on a wider model (hidden ``hidden``, 4 layers, MLP 4x, same data and
    tokenizer): where tiny matmuls and per-op Python overhead stop dominating."""
    from varreason.modeling import build_tiny_model, n_params
    from varreason.training import length_grouped_batches

    _, tok = fx.model()
    mcfg = fx.cfg.model.model_copy(update={"hidden_size": hidden, "intermediate_size": 4 * hidden,
                                           "num_heads": hidden // 64, "num_kv_heads": hidden // 128, "head_dim": 64})
    model = build_tiny_model(mcfg, tok, seed=0)
    examples = _examples(fx)
    peak = peak or matmul_peak()
    rates = []
    _run(model, tok, examples, fx.cfg.train, 1, mcfg.max_length, length_grouped_batches)  # warm-up
    for _ in range(repeats):
        t, k = _run(model, tok, examples, fx.cfg.train, steps, mcfg.max_length, length_grouped_batches)
        rates.append(k / t)
    N = n_params(model)
    row = mfu_row(f"training FLOP/s / fp32 matmul peak (hidden {hidden}, {N / 1e6:.1f}M params)",
                  6 * N * statistics_median(rates), peak)
    row.update(n_params=N, tokens_per_s=spread(rates), steps=steps)
    return row
