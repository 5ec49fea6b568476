"""Unit tests for varreason/scoring.py: batched scoring equals a batch-1 direct forward pass."""

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from varreason.scoring import score

CONTEXTS = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10], [2, 2], [10, 9, 8, 7]]
TARGETS = [[4, 5], [6, 7, 8, 9, 1], [3], [], [0, 1, 2, 3, 4, 5, 6]]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def model(_one_thread):
    torch.manual_seed(0)
    # initializer_range 0.5 (not the default 0.02) so the distributions are far from uniform and depend on context:
    # a misaligned position or a leaking pad would then change the log-probs by far more than the tolerance.
    cfg = Qwen3Config(vocab_size=11, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=8, initializer_range=0.5)
    return Qwen3ForCausalLM(cfg).eval()


class Counting:
    """Wraps the model to record the shape of every forward (the scorer runs the decoder, then the LM head)."""

    def __init__(self, m):
        self.m, self.shapes, self.config = m, [], m.config

    def eval(self):
        self.m.eval()
        return self

    def get_output_embeddings(self):
        return self.m.get_output_embeddings()

    def get_decoder(self):
        def call(**kw):
            self.shapes.append(tuple(kw["input_ids"].shape))
            return self.m.get_decoder()(**kw)

        return call

    def __call__(self, **kw):
        self.shapes.append(tuple(kw["input_ids"].shape))
        return self.m(**kw)


def reference(model, temperature=1.0):
    out = []
    with torch.no_grad():
        for c, t in zip(CONTEXTS, TARGETS):
            logits = model(torch.tensor([c + t])).logits[0].float()  # [L, V]
            lp = torch.log_softmax(logits / temperature, -1)
            # target token t_j sits at position len(c)+j and is predicted by position len(c)+j-1
            out.append([lp[len(c) - 1 + j, tok].item() for j, tok in enumerate(t)])
    return out


def _close(got, ref):
    assert [len(g) for g in got] == [len(t) for t in TARGETS]
    for g, r in zip(got, ref):
        assert g == pytest.approx(r, abs=1e-5)


def test_reference_is_informative(model):
    ref = reference(model)
    flat = torch.tensor([v for r in ref for v in r])
    assert flat.std() > 0.3  # not near-uniform (log 11 = 2.398 everywhere would make the test toothless)


@pytest.mark.parametrize("budget", [1, 12, 10 ** 6])
def test_score_matches_batch1_reference(model, budget):
    wrapped = Counting(model)
    got = score(wrapped, CONTEXTS, TARGETS, max_tokens_per_batch=budget, progress=False)
    _close(got, reference(model))
    assert sum(s[0] for s in wrapped.shapes) == len(CONTEXTS)  # every pair scored exactly once
    for B, W in wrapped.shapes:
        assert B == 1 or B * W <= budget
    if budget == 1:
        assert len(wrapped.shapes) == len(CONTEXTS)
    if budget == 10 ** 6:
        assert len(wrapped.shapes) == 1  # one forward for the whole batch (right-padded)


def test_pad_id_does_not_matter(model):
    got = score(model, CONTEXTS, TARGETS, max_tokens_per_batch=10 ** 6, pad_id=7, progress=False)
    _close(got, reference(model))


def test_temperature(model):
    got = score(model, CONTEXTS, TARGETS, max_tokens_per_batch=10 ** 6, progress=False, temperature=2.0)
    _close(got, reference(model, temperature=2.0))
    plain = score(model, CONTEXTS, TARGETS, max_tokens_per_batch=10 ** 6, progress=False)
    assert got[0] != pytest.approx(plain[0], abs=1e-3)


def test_length_mismatch_raises(model):
    with pytest.raises(ValueError):
        score(model, [[1], [2]], [[3]], progress=False)


@pytest.mark.parametrize("max_logits", [1, 11 * 3, 10 ** 9])
def test_head_chunks_do_not_change_the_result(model, max_logits):
    # 1 and 33 logits per chunk: one and three target positions per LM-head call
    got = score(model, CONTEXTS, TARGETS, max_tokens_per_batch=10 ** 6, progress=False, max_logits=max_logits)
    _close(got, reference(model))


def test_models_with_logit_post_processing_take_the_full_forward(model, monkeypatch):
    wrapped = Counting(model)
    monkeypatch.setattr(model.config, "final_logit_softcapping", 30.0, raising=False)
    got = score(wrapped, CONTEXTS, TARGETS, max_tokens_per_batch=10 ** 6, progress=False)
    _close(got, reference(model))  # Qwen3 ignores the attribute, so the full forward gives the same numbers
    assert wrapped.shapes == [(len(CONTEXTS), max(len(c) + len(t) for c, t in zip(CONTEXTS, TARGETS)))]
