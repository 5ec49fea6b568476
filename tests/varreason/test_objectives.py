"""Unit tests for varreason/objectives.py (weighted SFT, method.md §4)."""

import math

import pytest
import torch
import torch.nn.functional as F

from varreason.objectives import IGNORE, OBJECTIVES, objective_columns, token_nll, weighted_sft_loss

LOG3 = math.log(3.0)


def _hand_batch():
    # B=1, T=2, V=2.
    # t=0: logits [0, 0], label 1 -> nll = log 2 = 0.6931472
    # t=1: logits [log 3, 0], label 0 -> p = 3/4, nll = log(4/3) = 0.2876821
    logits = torch.tensor([[[0.0, 0.0], [LOG3, 0.0]]])
    labels = torch.tensor([[1, 0]])
    return logits, labels


def test_registry():
    assert "weighted_sft" in OBJECTIVES
    assert OBJECTIVES["weighted_sft"] is weighted_sft_loss


def test_columns_are_the_keyword_only_parameters():
    def grpo_like(logits, labels, weights, normalizer=None, *, advantage, old_logp):
        raise AssertionError("never called")

    assert objective_columns(weighted_sft_loss) == ()
    assert objective_columns(grpo_like) == ("advantage", "old_logp")


def test_token_nll_hand():
    logits, labels = _hand_batch()
    nll = token_nll(logits, labels)
    assert nll.tolist()[0] == pytest.approx([math.log(2.0), math.log(4.0 / 3.0)])


def test_loss_hand_default_normalizer():
    logits, labels = _hand_batch()
    loss, stats = weighted_sft_loss(logits, labels, torch.tensor([1.0]))
    # (log 2 + log 4/3) / 2 tokens = log(8/3) / 2 = 0.9808293 / 2 = 0.4904146
    assert loss.item() == pytest.approx(0.4904146, abs=1e-6)
    assert stats["tokens"] == 2.0
    assert stats["weight_sum"] == 1.0
    assert stats["nll_per_token"] == pytest.approx(0.4904146, abs=1e-6)


def test_loss_hand_weight_and_constant_normalizer():
    logits, labels = _hand_batch()
    loss, _ = weighted_sft_loss(logits, labels, torch.tensor([0.5]), normalizer=4.0)
    # 0.5 * log(8/3) / 4 = 0.5 * 0.9808293 / 4 = 0.1226037
    assert loss.item() == pytest.approx(0.1226037, abs=1e-6)


def test_ignore_labels_contribute_nothing():
    # t=1 is IGNORE even though its logits are extreme: loss = log 2 / 1 token
    logits = torch.tensor([[[0.0, 0.0], [50.0, -50.0]]], requires_grad=True)
    labels = torch.tensor([[1, IGNORE]])
    loss, stats = weighted_sft_loss(logits, labels, torch.tensor([1.0]))
    assert loss.item() == pytest.approx(math.log(2.0))
    assert stats["tokens"] == 1.0
    loss.backward()
    assert (logits.grad[0, 1] == 0).all()
    assert (logits.grad[0, 0] != 0).all()


def test_zero_weight_row_contributes_nothing():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, 4, 5, generator=g)
    b = torch.randn(1, 4, 5, generator=g)
    la = torch.tensor([[1, 2, IGNORE, 4]])
    lb = torch.tensor([[0, 3, 3, 1]])
    alone, _ = weighted_sft_loss(a, la, torch.tensor([1.0]), normalizer=7.0)
    both_logits = torch.cat([a, b]).requires_grad_(True)
    both, _ = weighted_sft_loss(both_logits, torch.cat([la, lb]), torch.tensor([1.0, 0.0]), normalizer=7.0)
    assert both.item() == pytest.approx(alone.item(), rel=1e-6)
    both.backward()
    assert (both_logits.grad[1] == 0).all()
    assert both_logits.grad[0].abs().sum() > 0


def test_weights_scale_rows_linearly():
    # loss(w = [2, 3]) = 2 * loss(row0) + 3 * loss(row1) with a constant normalizer
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, generator=g)
    labels = torch.tensor([[0, 1, 2], [3, IGNORE, 0]])
    r0, _ = weighted_sft_loss(logits[:1], labels[:1], torch.tensor([1.0]), normalizer=1.0)
    r1, _ = weighted_sft_loss(logits[1:], labels[1:], torch.tensor([1.0]), normalizer=1.0)
    both, _ = weighted_sft_loss(logits, labels, torch.tensor([2.0, 3.0]), normalizer=1.0)
    assert both.item() == pytest.approx(2 * r0.item() + 3 * r1.item(), rel=1e-6)


def test_unit_weights_equal_mean_token_cross_entropy():
    g = torch.Generator().manual_seed(1)
    B, T, V = 3, 5, 7
    logits = torch.randn(B, T, V, generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[0, :2] = IGNORE
    labels[2, 4] = IGNORE
    loss, stats = weighted_sft_loss(logits, labels, torch.ones(B))
    ref = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE)  # independent reference
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert stats["tokens"] == 12.0  # 15 - 3 ignored


@pytest.mark.parametrize("bad", [[1.0, -0.5], [1.0, float("nan")], [float("inf"), 1.0]])
def test_invalid_weights_raise(bad):
    logits, labels = _hand_batch()
    logits, labels = logits.repeat(2, 1, 1), labels.repeat(2, 1)
    with pytest.raises(ValueError):
        weighted_sft_loss(logits, labels, torch.tensor(bad))
