"""Unit tests for varreason/estimators.py (method.md §5.3, §5.4)."""

import math

import pytest
import torch

from varreason.estimators import ESTIMATORS, EstimatorInputs, acc_log_likelihood, gml_log_likelihood

NAN, NINF = float("nan"), float("-inf")


def test_registry_exact():
    assert set(ESTIMATORS) == {"acc", "gml"}
    assert ESTIMATORS["acc"] is acc_log_likelihood
    assert ESTIMATORS["gml"] is gml_log_likelihood


def test_acc_hand_values():
    # row 0: 3 of 4 correct -> log 0.75 = -0.2876821 ; row 1: none -> log 0 = -inf ; row 2: all -> 0
    correct = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    v, stats = acc_log_likelihood(EstimatorInputs(correct=correct))
    assert v[0].item() == pytest.approx(math.log(0.75))
    assert v[1].item() == NINF
    assert v[2].item() == 0.0
    assert stats["mean_acc"] == pytest.approx((0.75 + 0 + 1) / 3)  # 0.5833333
    assert stats["frac_zero_acc"] == pytest.approx(1 / 3)


def test_acc_accepts_bool():
    v, _ = acc_log_likelihood(EstimatorInputs(correct=torch.tensor([[True, False]])))
    assert v.item() == pytest.approx(math.log(0.5))


def test_gml_mean_over_valid_length():
    # row 0: len 3 -> (-1 - 2 - 3) / 3 = -2 (the NaN pad is ignored)
    # row 1: len 1 -> -0.5 (NaN / -inf pads ignored)
    # row 2: len 0 -> NaN
    lp = torch.tensor([[-1.0, -2.0, -3.0, NAN], [-0.5, NAN, NINF, 0.0], [-1.0, -1.0, -1.0, -1.0]])
    v, stats = gml_log_likelihood(EstimatorInputs(answer_logps=lp, answer_len=torch.tensor([3, 1, 0])))
    assert v[0].item() == pytest.approx(-2.0)
    assert v[1].item() == pytest.approx(-0.5)
    assert math.isnan(v[2].item())
    # mean_gml over finite rows: (e^-2 + e^-0.5) / 2 = (0.1353353 + 0.6065307) / 2 = 0.3709330
    assert stats["mean_gml"] == pytest.approx(0.3709330, abs=1e-6)


def test_gml_nan_inside_span_stays_nan():
    lp = torch.tensor([[-1.0, NAN, -1.0]])
    v, _ = gml_log_likelihood(EstimatorInputs(answer_logps=lp, answer_len=torch.tensor([3])))
    assert math.isnan(v.item())


def test_gml_full_length():
    # (-0.1 - 0.2 - 0.3 - 0.4) / 4 = -0.25
    lp = torch.tensor([[-0.1, -0.2, -0.3, -0.4]])
    v, _ = gml_log_likelihood(EstimatorInputs(answer_logps=lp, answer_len=torch.tensor([4])))
    assert v.item() == pytest.approx(-0.25)


@pytest.mark.parametrize("inp", [
    EstimatorInputs(),
    EstimatorInputs(answer_logps=torch.zeros(1, 2), answer_len=torch.tensor([2])),
])
def test_acc_missing_inputs(inp):
    with pytest.raises(ValueError):
        ESTIMATORS["acc"](inp)


@pytest.mark.parametrize("inp", [
    EstimatorInputs(),
    EstimatorInputs(correct=torch.ones(1, 2)),
    EstimatorInputs(answer_logps=torch.zeros(1, 2)),
    EstimatorInputs(answer_len=torch.tensor([2])),
])
def test_gml_missing_inputs(inp):
    with pytest.raises(ValueError):
        ESTIMATORS["gml"](inp)
