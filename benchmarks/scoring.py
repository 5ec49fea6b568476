"""Scoring: ``varreason.scoring.score`` (length-grouped batches, log-softmax over target positions only) vs the
reference-style loop: one sequence per forward, fp32 log-softmax over every position and the full vocabulary,
then a gather of the target tokens. Both score the same (prompt, gold response) pairs with the same model, and
the benchmark checks they return the same log-probs before timing anything."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from benchmarks.common import PARAMS, Fixture, rate_row, timeit


@torch.no_grad()
def naive_score(model, contexts: list[list[int]], targets: list[list[int]]) -> list[list[float]]:
    """Batch-1 reference loop: ``[1, L]`` forward, ``log_softmax`` of all ``[L, V]`` logits in fp32."""
    model.eval()
    out = []
    for c, t in zip(contexts, targets):
        ids = torch.tensor([c + t])
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)  # [L, V]
        out.append(logp[len(c) - 1 : len(c) - 1 + len(t)].gather(-1, torch.tensor(t)[:, None])[:, 0].tolist())
    return out


def pairs(fx: Fixture, tok, n: int) -> tuple[list[list[int]], list[list[int]]]:
    """(context, target) token ids of the first ``n`` seed questions: reasoner prompt -> gold trace + answer."""
    from varreason.pipeline.seeds import seed_example

    qs = [q for q in fx.questions(10**9) if q["gold_trace"]][:n]
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    ex = [seed_example(fx.cfg.prompt, q, "reasoner") for q in qs]
    return [enc(e["prompt"]) for e in ex], [enc(e["response"]) for e in ex]


def bench_scoring(fx: Fixture, n: int = 500, repeats: int = 5, peak: dict | None = None) -> dict:
    """Rates of both sides, plus the ceiling any scorer of this model has on this machine: a forward costs at
    least 2·N FLOP per token (N = all parameters, the tied LM head included; attention scores left out), so at
    the measured fp32 matmul peak no scorer exceeds ``peak / 2N`` tokens/s; ``ceiling_ratio`` is that over the
    naive rate: the best ratio the target could be measured at."""
    from benchmarks.training import matmul_peak
    from varreason.modeling import n_params
    from varreason.scoring import score

    model, tok = fx.model()
    ctx, tgt = pairs(fx, tok, n)
    ours = lambda: score(model, ctx, tgt, pad_id=tok.pad_token_id, progress=False)  # noqa: E731
    naive = lambda: naive_score(model, ctx, tgt)  # noqa: E731
    max_diff = _agree(ours(), naive(), "")
    # Info only: the same scorer with smaller batches (the flow uses the default 16384 padded tokens).
    small = lambda: score(model, ctx, tgt, max_tokens_per_batch=2048, pad_id=tok.pad_token_id, progress=False)  # noqa: E731
    t_ours, t_naive, t_small = [], [], []
    for _ in range(repeats):  # interleaved, so load from other processes hits both sides alike
        t_ours += timeit(ours, 1, warmup=0)[0]
        t_naive += timeit(naive, 1, warmup=0)[0]
        t_small += timeit(small, 1, warmup=0)[0]
    tokens = sum(len(c) + len(t) for c, t in zip(ctx, tgt))
    r_ours, r_naive, r_small = ([tokens / t for t in ts] for ts in (t_ours, t_naive, t_small))
    peak = peak or matmul_peak()
    flop_per_token = 2 * n_params(model)
    ceiling = peak["best_flops"] / flop_per_token
    naive_med = statistics.median(r_naive)
    roofline = {"flop_per_token": flop_per_token, "peak": peak, "ceiling_tokens_per_s": ceiling,
                "ceiling_ratio": ceiling / naive_med, "ours_fraction_of_peak": statistics.median(r_ours) / ceiling,
                "ours_2048_fraction_of_peak": statistics.median(r_small) / ceiling,
                "naive_fraction_of_peak": naive_med / ceiling}
    return rate_row("scoring tokens/s", r_ours, r_naive, 10, "tokens/s",
                    ours_2048_tokens_per_batch=rate_row("", r_small, r_naive, 10, "tokens/s"),
                    sequences=n, roofline=roofline,
                    tokens_per_call=tokens, agree=True, max_abs_diff=max_diff,
                    naive_desc="batch-1 forward, full [L, V] fp32 log-softmax (reference style)",
                    ours_desc="varreason.scoring.score, 16384 padded tokens per forward")


def vocab_fixture(root: str | Path, n: int):
    """The 151,936-row miniature (``python -m varreason.mini build --vocab full``, built under ``root`` once;
    deterministic) in fp32, and ``n`` (context, target) pairs shaped like qwen3-mini's pi scoring pass: the
    Sky-T1 reasoner prompt with a miniature Bespoke question -> its thought + solution."""
    from varreason import mini
    from varreason.config import load_config
    from varreason.modeling import load_checkpoint
    from varreason.prompts import full_response, reasoner_prompt

    out = Path(root)
    ckpt = out / f"qwen3-mini-vocab{mini.QWEN3_VOCAB}"
    if not (ckpt / "model.safetensors").exists():
        mini.build(out, full_vocab=True, pretrain_steps=0)
    cfg = load_config(PARAMS, "qwen3-mini")
    model, tok = load_checkpoint(ckpt, cfg.model.model_copy(update={"dtype": "float32"}))
    rows = mini.bespoke_rows()[:n]
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    ctx = [enc(reasoner_prompt(cfg.prompt, r["question_content"])) for r in rows]
    tgt = [enc(full_response(cfg.prompt, r["think_content"], r["solution_content"])) for r in rows]
    return model, tok, ctx, tgt


def _agree(a: list[list[float]], b: list[list[float]], where: str) -> float:
    """Max |difference| of two scorers' log-probs; AssertionError unless they have the same lengths and agree
    within 1e-4 (absolute and relative)."""
    flat_a = torch.tensor([x for row in a for x in row])
    flat_b = torch.tensor([x for row in b for x in row])
    max_diff = float((flat_a - flat_b).abs().max())
    if [len(x) for x in a] != [len(x) for x in b] or not torch.allclose(flat_a, flat_b, atol=1e-4, rtol=1e-4):
        raise AssertionError(f"batched and batch-1 scoring disagree{where} (max |diff| {max_diff:.2e})")
    return max_diff


def bench_scoring_vocab(root: str | Path, n: int = 48, repeats: int = 3) -> dict:
    """``varreason.scoring.score`` vs the batch-1 reference loop on the miniature with Qwen3's vocabulary, where
    the reference's full [L, V] fp32 log-softmax is most of the cost; same log-probs checked first."""
    from varreason.scoring import score

    model, tok, ctx, tgt = vocab_fixture(root, n)
    ours = lambda: score(model, ctx, tgt, pad_id=tok.pad_token_id, progress=False)  # noqa: E731
    naive = lambda: naive_score(model, ctx, tgt)  # noqa: E731
    max_diff = _agree(ours(), naive(), f" at V={model.config.vocab_size}")
    t_ours, t_naive = [], []
    for _ in range(repeats):  # interleaved, as bench_scoring
        t_ours += timeit(ours, 1, warmup=0)[0]
        t_naive += timeit(naive, 1, warmup=0)[0]
    tokens = sum(len(c) + len(t) for c, t in zip(ctx, tgt))
    return rate_row(f"scoring tokens/s at Qwen3's vocabulary (V = {model.config.vocab_size:,})",
                    [tokens / t for t in t_ours], [tokens / t for t in t_naive], 10, "tokens/s",
                    sequences=n, tokens_per_call=tokens, target_tokens=sum(map(len, tgt)), agree=True,
                    max_abs_diff=max_diff, vocab=model.config.vocab_size,
                    naive_desc="batch-1 forward, full [L, V] fp32 log-softmax (reference style)",
                    ours_desc="varreason.scoring.score: LM head on target positions only, chunked fp32 log-softmax")
