"""Unit tests for varreason/backends/hf.py: per-request seeding, log-probs, nucleus, stopping."""


import pytest
import torch
from sampler_helpers import PROMPT, QUESTIONS, forward_logprobs, peaked_model, prompts

from varreason.backends.base import SamplingParams
from varreason.backends.hf import HFSampler, nucleus_mask
from varreason.config import ModelConfig
from varreason.modeling import build_char_tokenizer


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer(list("0123456789+-"), PROMPT)


@pytest.fixture(scope="module")
def model(tok, _one_thread):
    return peaked_model(ModelConfig(kind="tiny", hidden_size=32, intermediate_size=64, num_layers=1, num_heads=1,
                                    num_kv_heads=1, head_dim=32, max_length=64), tok)


def test_same_seeds_same_samples_whatever_the_batch(model, tok):
    params = SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=8)
    seeds = [11, 22, 33, 44]
    together = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, seeds)
    single = HFSampler(model, tok, batch_size=1, progress=False).generate(prompts(), params, seeds)
    rev = HFSampler(model, tok, batch_size=3, progress=False).generate(prompts()[::-1], params, seeds[::-1])
    rev_back = rev.completions[::-1]
    for i in range(len(QUESTIONS)):
        assert len(together.completions[i]) == 2
        for j in range(2):
            a, b, c = together.completions[i][j], single.completions[i][j], rev_back[i][j]
            assert a.token_ids == b.token_ids == c.token_ids
            assert a.text == b.text == c.text
            assert a.finish_reason == b.finish_reason == c.finish_reason
            assert a.logp_model == pytest.approx(b.logp_model, abs=1e-4)
            assert a.logp_model == pytest.approx(c.logp_model, abs=1e-4)
    assert together.n_generated == single.n_generated == rev.n_generated
    # the seed matters: other seeds give other samples, and samples j=0, 1 of one prompt differ somewhere
    other = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [12, 23, 34, 45])
    ids = lambda r: [[c.token_ids for c in row] for row in r.completions]  # noqa: E731
    assert ids(other) != ids(together)
    assert any(row[0].token_ids != row[1].token_ids for row in together.completions)


def test_logp_model_and_sampling_match_direct_forward(model, tok):
    T = 0.7
    params = SamplingParams(n=2, temperature=T, top_p=1.0, max_new_tokens=8)
    out = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [1, 2, 3, 4])
    spread = []
    for prompt, row in zip(prompts(), out.completions):
        for c in row:
            assert len(c.logp_model) == len(c.logp_sampling) == len(c.token_ids)
            ref_model = forward_logprobs(model, tok, prompt, c.token_ids)
            ref_samp = forward_logprobs(model, tok, prompt, c.token_ids, temperature=T)
            assert c.logp_model == pytest.approx(ref_model, abs=1e-4)
            assert c.logp_sampling == pytest.approx(ref_samp, abs=1e-4)
            assert c.text == tok.decode(c.token_ids)
            spread += ref_model
    assert torch.tensor(spread).std() > 0.1  # the comparison is not between near-constant numbers


def greedy_reference(model, tok, prompt, steps):
    ids = tok.encode(prompt, add_special_tokens=False)
    out = []
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            out.append(nxt)
    return out


def test_tiny_top_p_is_greedy(model, tok):
    params = SamplingParams(n=2, temperature=1.0, top_p=1e-6, max_new_tokens=8)
    out = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [5, 6, 7, 8])
    for prompt, row in zip(prompts(), out.completions):
        ref = greedy_reference(model, tok, prompt, 8)
        for c in row:
            assert c.token_ids == ref
            assert c.logp_sampling == pytest.approx([0.0] * len(ref), abs=1e-6)  # a one-token nucleus: p = 1


def test_nucleus_mask_hand():
    # probabilities 0.2, 0.5, 0.3 (sorted: 0.5, 0.3, 0.2; mass before each: 0, 0.5, 0.8)
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]])).repeat(6, 1)
    top_p = [1e-9, 0.45, 0.55, 0.75, 0.85, 0.999]
    got = torch.stack([nucleus_mask(logits[i: i + 1], p)[0] for i, p in enumerate(top_p)])
    expected = [[False, True, False],   # 1e-9: the top token alone (always >= 1 token)
                [False, True, False],   # 0.45 <= 0.5: top token reaches it
                [False, True, True],    # 0.55: 0.5 short, add 0.3
                [False, True, True],    # 0.75: 0.8 reaches it
                [True, True, True],     # 0.85: needs all three
                [True, True, True]]
    assert got.tolist() == expected
    assert nucleus_mask(logits, 1.0).all()
    assert nucleus_mask(logits, 1.0).dtype == torch.bool


def test_nucleus_mask_batched_rows_independent():
    # row 0: probs 0.7, 0.2, 0.1 ; row 1: 0.1, 0.1, 0.8 ; top_p 0.75: row 0 keeps {0, 1}, row 1 keeps {2}
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    assert nucleus_mask(logits, 0.75).tolist() == [[True, True, False], [False, False, True]]


def test_finish_reason_and_n_generated(model, tok):
    max_new = 6
    stop_tok = tok.convert_tokens_to_ids("3")
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_new_tokens=max_new, stop=("3",))
    out = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [9, 8, 7, 6])
    comps = [c for row in out.completions for c in row]
    assert len(comps) == 4 * len(QUESTIONS)
    n_stop = 0
    for c in comps:
        assert stop_tok not in c.token_ids and tok.eos_token_id not in c.token_ids
        if c.finish_reason == "length":
            assert len(c.token_ids) == max_new
        else:
            assert c.finish_reason == "stop"
            assert len(c.token_ids) < max_new
            n_stop += 1
    # every stop here is one token ("3" or EOS), counted as generated but cut from token_ids
    assert out.n_generated == sum(len(c.token_ids) for c in comps) + n_stop
    assert any(c.finish_reason == "length" for c in comps)
    assert n_stop > 0


def test_n_generated_length_only(model, tok):
    params = SamplingParams(n=1, temperature=1.0, top_p=1e-6, max_new_tokens=3)
    out = HFSampler(model, tok, batch_size=64, progress=False).generate(prompts(), params, [0, 0, 0, 0])
    comps = [row[0] for row in out.completions]
    n_stop = sum(c.finish_reason == "stop" for c in comps)
    assert out.n_generated == sum(len(c.token_ids) for c in comps) + n_stop
    assert all(len(c.token_ids) == 3 for c in comps if c.finish_reason == "length")


def test_seed_count_mismatch(model, tok):
    with pytest.raises(ValueError):
        HFSampler(model, tok, progress=False).generate(prompts(), SamplingParams(1, 1.0, 1.0, 2), [0])
