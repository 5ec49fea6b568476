"""Unit tests for varreason/stats.py: hand-computed CIs, closed-form bootstrap cases, reproducibility."""

import math
from pathlib import Path

import numpy as np
import pytest

from varreason import stats
from varreason.io import produce, write_rows


@pytest.mark.parametrize("p,df,expected", [
    (0.975, 1, 12.706204736),   # t tables
    (0.975, 2, 4.302652730),
    (0.975, 9, 2.262157163),
    (0.975, 30, 2.042272456),
    (0.5, 5, 0.0),
    (0.025, 9, -2.262157163),   # symmetry
])
def test_t_quantile_table_values(p, df, expected):
    assert stats.t_quantile(p, df) == pytest.approx(expected, abs=1e-7)


def test_t_cdf_closed_form_df1():
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi
    for t in (-3.0, -0.5, 0.0, 0.7, 10.0):
        assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_t_cdf_closed_form_df2():
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    for t in (-2.0, 0.3, 4.0):
        assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_mean_ci_t_hand():
    # x = 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t_{0.975,2} = 4.3026527 -> half width 2.4841377
    iv = stats.mean_ci_t([1.0, 2.0, 3.0])
    assert iv.estimate == 2.0 and iv.n == 3 and iv.kind == "t"
    assert (iv.lo, iv.hi) == pytest.approx((2 - 2.4841377, 2 + 2.4841377), abs=1e-6)
    assert iv.excludes_zero() is False
    assert stats.mean_ci_t([1.0, 1.2, 0.9]).excludes_zero() is True


def test_mean_ci_t_one_value_is_unbounded():
    iv = stats.mean_ci_t([0.3])
    assert iv.estimate == 0.3 and iv.lo == -math.inf and iv.hi == math.inf


def test_bootstrap_constant_and_two_points():
    iv = stats.bootstrap_mean_ci([0.25] * 7, n_boot=500)
    assert (iv.lo, iv.estimate, iv.hi) == (0.25, 0.25, 0.25)
    # x = (0, 1): a replicate's mean is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4, so the 2.5% and 97.5%
    # quantiles of 20000 replicates are 0 and 1
    iv = stats.bootstrap_mean_ci([0.0, 1.0], n_boot=20_000, seed=3)
    assert (iv.lo, iv.estimate, iv.hi) == (0.0, 0.5, 1.0)


def test_bootstrap_is_reproducible_and_seed_dependent():
    x = np.random.default_rng(0).normal(size=25)
    a = stats.bootstrap_mean_ci(x, n_boot=2000, seed=7)
    b = stats.bootstrap_mean_ci(x, n_boot=2000, seed=7)
    c = stats.bootstrap_mean_ci(x, n_boot=2000, seed=8)
    assert a == b
    assert (a.lo, a.hi) != (c.lo, c.hi)
    # and close to the normal-theory interval for a sample this size
    t = stats.mean_ci_t(x)
    assert a.lo == pytest.approx(t.lo, abs=0.12) and a.hi == pytest.approx(t.hi, abs=0.12)


def test_question_scores_hand():
    counts = {"q1": (4, 1), "q2": (4, 0), "q3": (4, 4)}
    assert stats.question_scores(counts, "avg@n") == {"q1": 0.25, "q2": 0.0, "q3": 1.0}
    assert stats.question_scores(counts, "pass@2") == {"q1": 0.5, "q2": 0.0, "q3": 1.0}  # 1 - C(3,2)/C(4,2)
    with pytest.raises(ValueError):
        stats.question_scores(counts, "accuracy")


def test_question_bootstrap_constant_difference_is_degenerate():
    a = {0: {"x": 0.5, "y": 0.75}, 1: {"u": 0.25, "v": 1.0}}
    b = {0: {"x": 0.25, "y": 0.5}, 1: {"u": 0.0, "v": 0.75}}  # every question: a - b = 0.25
    iv = stats.paired_question_bootstrap(a, b, n_boot=300)
    assert (iv.lo, iv.estimate, iv.hi) == pytest.approx((0.25, 0.25, 0.25))
    assert iv.n == 2 and iv.kind == "bootstrap-questions"


def test_question_bootstrap_stratified_vs_two_level():
    # seed 0: every question differs by 0.1; seed 1: by 0.3. Stratified (seeds fixed): every replicate is
    # (0.1 + 0.3)/2 = 0.2. Two-level: replicates are 0.1, 0.2 or 0.3 (probabilities 1/4, 1/2, 1/4).
    a = {0: {"a": 0.6, "b": 0.4}, 1: {"c": 0.8, "d": 0.3}}
    b = {0: {"a": 0.5, "b": 0.3}, 1: {"c": 0.5, "d": 0.0}}
    strat = stats.paired_question_bootstrap(a, b, n_boot=4000, seed=1)
    assert (strat.lo, strat.estimate, strat.hi) == pytest.approx((0.2, 0.2, 0.2))
    two = stats.paired_question_bootstrap(a, b, n_boot=4000, seed=1, two_level=True)
    assert (two.lo, two.estimate, two.hi) == pytest.approx((0.1, 0.2, 0.3))
    assert two.kind == "bootstrap-2level"


def test_question_bootstrap_one_seed_matches_plain_bootstrap_closed_form():
    # one seed, question differences (0, 1): replicate means 0, 1/2, 1 -> 95% CI [0, 1]
    iv = stats.paired_question_bootstrap({5: {"p": 1.0, "q": 0.0}}, {5: {"p": 0.0, "q": 0.0}}, n_boot=20_000)
    assert (iv.lo, iv.estimate, iv.hi) == (0.0, 0.5, 1.0)


def test_question_bootstrap_reproducible():
    rng = np.random.default_rng(4)
    a = {s: {f"q{i}": float(rng.integers(0, 5)) / 4 for i in range(30)} for s in range(3)}
    b = {s: {f"q{i}": float(rng.integers(0, 5)) / 4 for i in range(30)} for s in range(3)}
    assert stats.paired_question_bootstrap(a, b, 500, seed=2) == stats.paired_question_bootstrap(a, b, 500, seed=2)


def test_pairing_mismatches_raise():
    with pytest.raises(ValueError, match="seeds"):
        stats.paired_question_bootstrap({0: {"a": 1.0}}, {1: {"a": 1.0}})
    with pytest.raises(ValueError, match="held-out"):
        stats.paired_question_bootstrap({0: {"a": 1.0}}, {0: {"b": 1.0}})
    with pytest.raises(ValueError, match="seeds"):
        stats.paired_seed_ci({0: 0.1, 1: 0.2}, {0: 0.1})


def test_paired_seed_ci_hand():
    # README's three seeds: EM-GML r2 - RFT r2 = 0.033, 0.007, 0.019 -> mean 0.019667, sd 0.013013,
    # t half width 4.3026527 * 0.013013 / sqrt(3) = 0.032326
    out = stats.paired_seed_ci({0: 0.166, 1: 0.228, 2: 0.162}, {0: 0.133, 1: 0.221, 2: 0.143})
    assert out["diffs"] == pytest.approx({0: 0.033, 1: 0.007, 2: 0.019})
    t = out["t"]
    assert t.estimate == pytest.approx(0.0196667, abs=1e-6)
    assert (t.lo, t.hi) == pytest.approx((0.0196667 - 0.032326, 0.0196667 + 0.032326), abs=2e-6)
    assert not t.excludes_zero()
    assert out["bootstrap"].kind == "bootstrap-seeds"


def _outcome(acc_em, acc_rft, q_em, q_rft):
    return stats.RunOutcome(metrics={("em-gml", 1): {"avg@n": acc_em}, ("rft", 1): {"avg@n": acc_rft}},
                            counts={("em-gml", 1): q_em, ("rft", 1): q_rft})


def test_contrast_and_tables():
    runs = {0: _outcome(0.5, 0.25, {"a": (2, 1), "b": (2, 1)}, {"a": (2, 0), "b": (2, 1)}),
            1: _outcome(0.75, 0.5, {"c": (2, 2), "d": (2, 1)}, {"c": (2, 1), "d": (2, 1)})}
    row = stats.contrast(runs, ("em-gml", 1), ("rft", 1), "avg@n", n_boot=200)
    assert row["diffs"] == {0: 0.25, 1: 0.25}
    assert row["t"]["estimate"] == 0.25 and row["t"]["lo"] == row["t"]["hi"] == 0.25  # sd 0
    assert row["bootstrap_questions"]["estimate"] == pytest.approx(0.25)
    table = stats.contrasts_table([row])
    assert "| em-gml r1 - rft r1 | avg@n | +0.250 |" in table and "2/2" in table and "*" in table
    means = stats.cell_means(runs, "avg@n")
    assert [(m["method"], m["round"]) for m in means] == [("rft", 1), ("em-gml", 1)]
    assert means[1]["t"]["estimate"] == 0.625 and means[1]["per_seed"] == {0: 0.5, 1: 0.75}
    assert "| em-gml | 1 | avg@n | 0.625 |" in stats.means_table(means)


def test_run_outcome_reads_eval_artifacts(tmp_path: Path):
    def build(out: Path) -> None:
        write_rows(out / "questions.parquet", [{"qid": "h1", "n": 4, "c": 3}, {"qid": "h2", "n": 4, "c": 0}])

    ref = produce(tmp_path, "eval", {"t": 1}, build)
    summary = {"results": [{"method": "sft", "round": 0, "accuracy": 0.375, "pass@4": 0.5}],
               "artifacts": [{"method": "sft", "round": 0, "stage": "eval", "path": ref.path, "sha": ref.sha}]}
    out = stats.run_outcome(summary)
    assert out.metrics == {("sft", 0): {"avg@n": 0.375, "pass@4": 0.5}}
    assert out.counts == {("sft", 0): {"h1": (4, 3), "h2": (4, 0)}}
    # per-question scores average back to the run's reported accuracy
    assert np.mean(list(stats.question_scores(out.counts[("sft", 0)], "avg@n").values())) == 0.375


def test_t_test_p_and_holm_hand():
    # x = (1, 2, 3): t = 2 / (1 / sqrt 3) = 3.4641016, df 2: p = 2 (1 - F(t)) = 1 - t / sqrt(2 + t^2)
    t = 2 * math.sqrt(3)
    assert stats.t_test_p([1.0, 2.0, 3.0]) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert stats.t_test_p([0.0, 0.0]) == 1.0 and stats.t_test_p([0.2, 0.2]) == 0.0
    assert math.isnan(stats.t_test_p([0.1]))
    # Holm: sorted 0.01, 0.02, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.02), max(0.04, 1 * 0.04)
    adj = stats.holm({"a": 0.04, "b": 0.01, "c": 0.02, "d": math.nan})
    assert adj["b"] == pytest.approx(0.03) and adj["c"] == pytest.approx(0.04) and adj["a"] == pytest.approx(0.04)
    assert math.isnan(adj["d"])
