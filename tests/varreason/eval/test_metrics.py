"""Hand-computed checks of the bootstrap CI and the benchmark summary (avg@n, pass@k)."""

import pytest

from varreason.eval.metrics import bootstrap_ci, pass_at_k, summarize


def test_constant_scores_have_a_point_interval():
    assert bootstrap_ci([0.5, 0.5, 0.5], n_boot=200, seed=1) == (0.5, 0.5)


def test_two_questions():
    # resampled means are 0, 0.5, 1 with prob 1/4, 1/2, 1/4: the 2.5% and 97.5% quantiles are 0 and 1
    assert bootstrap_ci([0.0, 1.0], n_boot=4000, seed=0) == (0.0, 1.0)


def test_three_questions_upper_tail():
    # scores 0, 0, 1: mean = k/3 with k ~ Bin(3, 1/3); P(mean = 1) = 1/27 = 3.7% > 2.5%, so the upper end is 1;
    # P(mean = 0) = 8/27 = 29.6%, so the lower end is 0
    assert bootstrap_ci([0.0, 0.0, 1.0], n_boot=20000, seed=3) == (0.0, 1.0)
    lo, hi = bootstrap_ci([0.0, 0.0, 1.0], n_boot=20000, seed=3, level=0.5)
    # 25% quantile: P(0) = 0.296 > 0.25 -> 0; 75% quantile: P(<= 1/3) = 20/27 = 0.741 < 0.75 -> 2/3
    assert lo == 0.0 and hi == pytest.approx(2 / 3)


def test_seeded_and_seed_matters():
    scores = [0.1 * i for i in range(10)]
    assert bootstrap_ci(scores, 500, seed=7) == bootstrap_ci(scores, 500, seed=7)
    assert bootstrap_ci(scores, 500, seed=7) != bootstrap_ci(scores, 500, seed=8)
    lo, hi = bootstrap_ci(scores, 2000, seed=0)
    assert lo < 0.45 < hi


def test_bad_input():
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)


def test_summarize_hand():
    # question 1: 1 of 4 correct, question 2: 3 of 4, question 3: 0 of 4
    s = summarize([(4, 1), (4, 3), (4, 0)], ks=[1, 2, 4, 8], n_boot=100)
    assert s["avg@n"] == pytest.approx((0.25 + 0.75 + 0) / 3)
    assert s["pass@1"] == pytest.approx(s["avg@n"])
    # pass@2: 1 - C(3,2)/C(4,2) = 1/2 ; 1 - C(1,2)/C(4,2) = 1 ; 0
    assert s["pass@2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3)
    assert "pass@8" not in s  # k > n is not defined
    assert s["n_questions"] == 3 and s["n_samples"] == 4
    lo, hi = s["ci95"]
    assert 0 <= lo <= s["avg@n"] <= hi <= 0.75


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
