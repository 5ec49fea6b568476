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


# ---- GRPO (method.md §7): group advantages and the clipped surrogate ----

from varreason.objectives import grpo_loss, group_advantages  # noqa: E402

LOG2 = math.log(2.0)


def test_group_advantages_hand():
    # group (1, 0, 0, 0): mean 1/4, population std sqrt(3/16) = 0.4330127
    #   right: 0.75 / 0.4330127 = 1.7320508 (= sqrt(3)), wrong: -0.25 / 0.4330127 = -0.5773503 (= -1/sqrt(3))
    # group (1, 1, 0, 0): mean 1/2, std 1/2 -> +1, -1;  (1, 1, 1, 1) and (0, 0, 0, 0): flat -> 0
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    adv, st = group_advantages(r)
    s3 = math.sqrt(3.0)
    assert adv[0].tolist() == pytest.approx([s3, -1 / s3, -1 / s3, -1 / s3])
    assert adv[1].tolist() == pytest.approx([1.0, 1.0, -1.0, -1.0])
    assert adv[2].tolist() == [0.0] * 4 and adv[3].tolist() == [0.0] * 4
    assert st["n_groups"] == 4.0 and st["n_flat_groups"] == 2.0
    # weight on the local forward-KL gradient, p (A_right - A_wrong) = sqrt(p / (1 - p)): p = 1/4 -> 1/sqrt(3)
    assert 0.25 * (adv[0, 0] - adv[0, 1]).item() == pytest.approx(math.sqrt(0.25 / 0.75))
    assert adv.sum(-1).tolist() == pytest.approx([0.0] * 4, abs=1e-12)  # centred per group


def _grpo_batch():
    # B=1, T=2, V=2: t=0 logits [0, 0], label 1 -> log pi = -log 2; t=1 logits [log 3, 0], label 0 -> log(3/4)
    logits = torch.tensor([[[0.0, 0.0], [LOG3, 0.0]]], requires_grad=True)
    labels = torch.tensor([[1, 0]])
    return logits, labels


def test_grpo_on_policy_value_and_gradient_equal_weighted_sft():
    logits, labels = _grpo_batch()
    logp = torch.tensor([[-LOG2, math.log(0.75)]])
    loss, st = grpo_loss(logits, labels, torch.ones(1), 2.0, advantage=torch.tensor([0.5]), old_logp=logp)
    # ratio 1 at both tokens: loss = -(0.5 * 1 + 0.5 * 1) / 2 = -0.5
    assert loss.item() == pytest.approx(-0.5)
    assert st["clip_frac"] == 0.0 and st["ratio_mean"] == pytest.approx(1.0) and st["tokens"] == 2.0
    loss.backward()
    g_grpo = logits.grad.clone()
    logits2, _ = _grpo_batch()
    ref, _ = weighted_sft_loss(logits2, labels, torch.tensor([0.5]), normalizer=2.0)
    ref.backward()
    assert torch.allclose(g_grpo, logits2.grad, atol=1e-7)  # A * grad log pi == grad of weighted SFT with w = A


def test_grpo_negative_advantage_pushes_the_other_way():
    logits, labels = _grpo_batch()
    old = torch.tensor([[-LOG2, math.log(0.75)]])
    loss, _ = grpo_loss(logits, labels, torch.ones(1), 2.0, advantage=torch.tensor([-0.5]), old_logp=old)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    logits2, _ = _grpo_batch()
    ref, _ = weighted_sft_loss(logits2, labels, torch.tensor([0.5]), normalizer=2.0)
    ref.backward()
    assert torch.allclose(logits.grad, -logits2.grad, atol=1e-7)


@pytest.mark.parametrize("adv,old_p,clipped", [
    (1.0, 0.25, True),    # ratio 0.5/0.25 = 2 > 1.2 with A > 0: min(2A, 1.2A) = 1.2A, constant -> no gradient
    (-1.0, 0.25, False),  # ratio 2 with A < 0: min(-2, -1.2) = -2, the unclipped term -> gradient flows
    (-1.0, 1.0, True),    # ratio 0.5 < 0.8 with A < 0: min(-0.5, -0.8) = -0.8, constant -> no gradient
    (1.0, 1.0, False),    # ratio 0.5 with A > 0: min(0.5, 0.8) = 0.5, unclipped -> gradient flows
])
def test_grpo_clip_hand(adv, old_p, clipped):
    # one token, logits [0, 0] -> pi(label) = 1/2; old policy gave it old_p
    logits = torch.zeros(1, 1, 2, requires_grad=True)
    labels = torch.tensor([[1]])
    loss, st = grpo_loss(logits, labels, torch.ones(1), 1.0, advantage=torch.tensor([adv]),
                         old_logp=torch.tensor([[math.log(old_p)]]))
    ratio = 0.5 / old_p
    expected = -min(ratio * adv, min(max(ratio, 0.8), 1.2) * adv)
    assert loss.item() == pytest.approx(expected)
    assert st["clip_frac"] == (1.0 if clipped else 0.0)
    loss.backward()
    assert (logits.grad.abs().sum().item() == 0.0) is clipped


def test_grpo_nan_old_logps_are_on_policy_and_ignore_is_masked():
    # seed-data row: advantage 1, no sampling policy (NaN) -> plain SFT; t=1 is IGNORE with an absurd old logp
    logits = torch.tensor([[[0.0, 0.0], [50.0, -50.0]]], requires_grad=True)
    labels = torch.tensor([[1, IGNORE]])
    old = torch.tensor([[float("nan"), -1e9]])
    loss, st = grpo_loss(logits, labels, torch.ones(1), 1.0, advantage=torch.tensor([1.0]), old_logp=old)
    assert loss.item() == pytest.approx(-1.0)  # ratio 1 at the one target token
    assert st["tokens"] == 1.0 and st["clip_frac"] == 0.0
    loss.backward()
    assert (logits.grad[0, 1] == 0).all()
    logits2 = torch.tensor([[[0.0, 0.0], [50.0, -50.0]]], requires_grad=True)
    ref, _ = weighted_sft_loss(logits2, labels, torch.ones(1), normalizer=1.0)
    ref.backward()
    assert torch.allclose(logits.grad, logits2.grad, atol=1e-7)


def test_grpo_zero_advantage_row_contributes_nothing_and_registry():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, generator=g, requires_grad=True)
    labels = torch.tensor([[0, 1, 2], [3, 4, IGNORE]])
    old = torch.randn(2, 3, generator=g) - 2.0
    loss, _ = grpo_loss(logits, labels, torch.ones(2), 3.0, advantage=torch.tensor([0.7, 0.0]), old_logp=old)
    loss.backward()
    assert (logits.grad[1] == 0).all() and logits.grad[0].abs().sum() > 0
    assert OBJECTIVES["grpo"] is grpo_loss
    with pytest.raises(ValueError):
        grpo_loss(logits, labels, torch.tensor([1.0, -1.0]), advantage=torch.zeros(2), old_logp=old)
    with pytest.raises(ValueError):
        grpo_loss(logits, labels, torch.ones(2), advantage=torch.tensor([float("nan"), 0.0]), old_logp=old)
