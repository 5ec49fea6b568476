"""Unit tests for varreason/evaluation.py."""

import pytest

from varreason.evaluation import avg_at_n, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k,expected", [
    (4, 1, 1, 0.25),        # 1 - C(3,1)/C(4,1) = 1 - 3/4
    (4, 1, 2, 0.5),         # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (4, 0, 1, 0.0),         # no correct sample
    (4, 0, 4, 0.0),
    (4, 3, 2, 1.0),         # n - c = 1 < k = 2
    (4, 4, 1, 1.0),
    (5, 2, 3, 0.9),         # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (10, 3, 5, 11 / 12),    # 1 - C(7,5)/C(10,5) = 1 - 21/252 = 1 - 1/12
    (1, 1, 1, 1.0),
])
def test_pass_at_k_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5), (0, 0, 1)])
def test_pass_at_k_bad_args(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_avg_at_n_hand():
    # (1/2 + 3/4) / 2 = 0.625
    assert avg_at_n([[True, False], [True, True, True, False]]) == pytest.approx(0.625)
    assert avg_at_n([[False, False, False]]) == 0.0


def test_avg_at_n_empty_raises():
    with pytest.raises(ValueError):
        avg_at_n([])


def test_mean_pass_at_k_hand():
    correct = [[True, False, False, False], [False] * 4, [True] * 4]
    # k=2: (0.5 + 0 + 1) / 3 = 0.5
    assert mean_pass_at_k(correct, 2) == pytest.approx(0.5)
    # k=1: (0.25 + 0 + 1) / 3 = 0.4166667 (= avg@4)
    assert mean_pass_at_k(correct, 1) == pytest.approx(1.25 / 3)


def test_mean_pass_at_k_bad_k():
    with pytest.raises(ValueError):
        mean_pass_at_k([[True, False]], 3)
