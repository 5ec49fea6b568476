"""Unit tests for varreason/weights.py (method.md §4, §5.2, §6). Expectations are hand-computed."""

import itertools
import math
from pathlib import Path

import pytest
import torch

from varreason.weights import (effective_sample_size, elbo, forward_kl_weights, iwae_bound, length_normalised_log_ratio,
                               log_rho, self_normalise, within_cutoff)

NAN, NINF = float("nan"), float("-inf")


def t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


# ---------------------------------------------------------------- length_normalised_log_ratio


def test_log_ratio_truncates_to_shared_length():
    # pi has 3 tokens, q has 2 -> T = 2; the 3rd pi token (-3) is ignored.
    # d = ((-1 - (-1.5)) + (-2 - (-1))) / 2 = (0.5 - 1.0) / 2 = -0.25
    d, stats = length_normalised_log_ratio(t([[-1.0, -2.0, -3.0]]), torch.tensor([3]),
                                           t([[-1.5, -1.0]]), torch.tensor([2]))
    assert d.tolist() == pytest.approx([-0.25])
    assert stats["n_invalid"] == 0.0


def test_log_ratio_truncation_is_symmetric():
    # q longer than pi: T = len_pi = 1 -> d = (-1 - (-3)) / 1 = 2
    d, _ = length_normalised_log_ratio(t([[-1.0, 0.0]]), torch.tensor([1]),
                                       t([[-3.0, -7.0, -9.0]]), torch.tensor([3]))
    assert d.tolist() == pytest.approx([2.0])


def test_log_ratio_is_mean_not_sum():
    # 4 tokens, each log-ratio = (-1) - (-2) = 1 -> mean 1 (a sum would give 4)
    d, _ = length_normalised_log_ratio(t([[-1.0] * 4]), torch.tensor([4]), t([[-2.0] * 4]), torch.tensor([4]))
    assert d.tolist() == pytest.approx([1.0])


def test_log_ratio_padding_ignored_even_if_nonfinite():
    # T = 1: only position 0 counts, (-1) - (-3) = 2; NaN / -inf beyond the lengths must not leak in.
    # row 2: T = min(2, 2) = 2: ((-0.5 - -1.0) + (-0.5 - -2.0)) / 2 = (0.5 + 1.5) / 2 = 1.0
    logp_pi = t([[-1.0, NAN, NINF], [-0.5, -0.5, NAN]])
    logp_q = t([[-3.0, NINF, NAN], [-1.0, -2.0, NINF]])
    d, stats = length_normalised_log_ratio(logp_pi, torch.tensor([1, 2]), logp_q, torch.tensor([1, 2]))
    assert d.tolist() == pytest.approx([2.0, 1.0])
    assert stats["n_invalid"] == 0.0


def test_log_ratio_nonfinite_policy_and_counts():
    logp_pi = t([
        [-1.0, NAN],    # NaN in the shared span under pi -> invalid
        [-1.0, -1.0],   # NaN in the shared span under q -> invalid
        [-1.0, -1.0],   # -inf under q in the span -> invalid (q could not sample it)
        [-1.0, NINF],   # -inf under pi only -> valid, d = -inf
        [-1.0, -1.0],   # T = 0 -> invalid
        [-1.0, -2.0],   # ordinary: ((-1 - -2) + (-2 - -2)) / 2 = 0.5
    ])
    logp_q = t([
        [-1.0, -1.0],
        [NAN, -1.0],
        [-1.0, NINF],
        [-1.0, -2.0],
        [-1.0, -1.0],
        [-2.0, -2.0],
    ])
    len_pi = torch.tensor([2, 2, 2, 2, 0, 2])
    len_q = torch.tensor([2, 2, 2, 2, 2, 2])
    d, stats = length_normalised_log_ratio(logp_pi, len_pi, logp_q, len_q)
    assert math.isnan(d[0]) and math.isnan(d[1]) and math.isnan(d[2]) and math.isnan(d[4])
    assert d[3].item() == NINF
    assert d[5].item() == pytest.approx(0.5)
    assert stats["n_invalid"] == 4.0


def test_log_ratio_T_zero_both_sides():
    d, stats = length_normalised_log_ratio(t([[0.0]]), torch.tensor([0]), t([[0.0]]), torch.tensor([0]))
    assert math.isnan(d.item())
    assert stats["n_invalid"] == 1.0


# ---------------------------------------------------------------- log_rho


def test_log_rho_sum_and_invalid_policy():
    # -1.0 + 0.25 = -0.75 ; -inf + 0.1 = -inf ; 0.5 + NaN = NaN -> -inf ; NaN + 1 -> -inf ; 0 + (-inf) = -inf
    ll = t([[-1.0, NINF, 0.5, NAN, 0.0]])
    lr = t([[0.25, 0.1, NAN, 1.0, NINF]])
    out, stats = log_rho(ll, lr)
    assert out[0, 0].item() == pytest.approx(-0.75)
    assert out[0, 1:].tolist() == [NINF] * 4
    assert not out.isnan().any()
    assert stats["n_invalid"] == 2.0  # the two NaN sums
    assert stats["n_zero_weight"] == 4.0  # every -inf entry


def test_log_rho_shape_preserved():
    out, stats = log_rho(t([[0.0, 1.0], [2.0, 3.0]]), t([[1.0, 1.0], [-1.0, -1.0]]))
    assert out.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    assert stats == {"n_invalid": 0.0, "n_zero_weight": 0.0}


# ---------------------------------------------------------------- self_normalise


def test_self_normalise_hand_values():
    # weights 1, 2, 1 -> 1/4, 2/4, 1/4
    w, stats = self_normalise(t([[0.0, math.log(2.0), 0.0]]))
    assert w.tolist()[0] == pytest.approx([0.25, 0.5, 0.25])
    assert stats["n_dead_questions"] == 0.0


def test_self_normalise_zero_weight_entry_and_shift_invariance():
    # weights 0, 3, 1 -> 0, 3/4, 1/4 ; adding 1000 to every log weight changes nothing (no overflow)
    w, _ = self_normalise(t([[NINF, math.log(3.0), 0.0], [NINF, 1000 + math.log(3.0), 1000.0]]))
    assert w[0].tolist() == pytest.approx([0.0, 0.75, 0.25])
    assert w[1].tolist() == pytest.approx([0.0, 0.75, 0.25])


def test_self_normalise_dead_row():
    w, stats = self_normalise(t([[NINF, NINF, NINF], [0.0, 0.0, math.log(2.0)]]))
    assert w[0].tolist() == [0.0, 0.0, 0.0]
    assert w[1].tolist() == pytest.approx([0.25, 0.25, 0.5])
    assert stats["n_dead_questions"] == 1.0
    assert not w.isnan().any()


def test_self_normalise_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 8, generator=g, dtype=torch.float64) * 5
    x[3, :5] = NINF
    w, stats = self_normalise(x)
    assert torch.allclose(w.sum(-1), torch.ones(20, dtype=torch.float64))
    assert (w >= 0).all() and not w.isnan().any()
    assert (w[3, :5] == 0).all()
    assert stats["n_dead_questions"] == 0.0


# ---------------------------------------------------------------- iwae_bound / elbo


def test_iwae_hand_values():
    # row 0: rho = 1, 2, 3 -> log(6/3) = log 2 = 0.693147
    # row 1: rho = 4, 0, 0 -> log(4/3) = 0.287682
    b, stats = iwae_bound(t([[0.0, math.log(2.0), math.log(3.0)], [math.log(4.0), NINF, NINF]]))
    assert b.tolist() == pytest.approx([math.log(2.0), math.log(4.0 / 3.0)])
    # iwae_mean = (0.693147 + 0.287682) / 2 = 0.4904146
    assert stats["iwae_mean"] == pytest.approx(0.4904146265)


def test_iwae_dead_row_is_minus_inf_and_excluded_from_mean():
    b, stats = iwae_bound(t([[NINF, NINF], [math.log(2.0), math.log(4.0)]]))
    # row 1: log((2 + 4) / 2) = log 3
    assert b[0].item() == NINF
    assert b[1].item() == pytest.approx(math.log(3.0))
    assert stats["iwae_mean"] == pytest.approx(math.log(3.0))


def test_iwae_all_dead_stats():
    b, stats = iwae_bound(t([[NINF, NINF]]))
    assert b.item() == NINF and stats["iwae_mean"] == NINF


def test_elbo_hand_value():
    # (log 1 + log 2 + log 3) / 3 = log 6 / 3 = 0.5972532
    e, stats = elbo(t([[0.0, math.log(2.0), math.log(3.0)]]))
    assert e.item() == pytest.approx(0.5972531564)
    assert stats["elbo_mean"] == pytest.approx(0.5972531564)


def test_iwae_ge_elbo_random():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 8, generator=g, dtype=torch.float64) * 3
    iw, _ = iwae_bound(x)
    el, _ = elbo(x)
    assert (iw >= el - 1e-12).all()  # Jensen: log mean exp >= mean log
    assert (iw - el).max() > 0.1  # and strictly for non-constant rows
    # K = 1: the two coincide
    iw1, _ = iwae_bound(x[:, :1])
    el1, _ = elbo(x[:, :1])
    assert torch.allclose(iw1, el1)


# Toy model with known evidence:
#   z in {0, 1}, pi(z) = [0.5, 0.5], p(Y|z) = [0.9, 0.1]  =>  p(Y) = 0.45 + 0.05 = 0.5
#   proposal q(z) = [0.3, 0.7]
#   rho(0) = 0.5 * 0.9 / 0.3 = 1.5 ; rho(1) = 0.5 * 0.1 / 0.7 = 1/14 = 0.0714286
RHO = [1.5, 1.0 / 14.0]
Q = [0.3, 0.7]


def _expected_LK(K: int) -> float:
    """E_{z_1:K ~ q}[ L_K ] by exact enumeration of all 2^K assignments, each row scored by iwae_bound."""
    assigns = list(itertools.product([0, 1], repeat=K))
    lr = t([[math.log(RHO[z]) for z in a] for a in assigns])  # [2^K, K]
    probs = t([math.prod(Q[z] for z in a) for a in assigns])  # [2^K]
    bound, _ = iwae_bound(lr)
    assert probs.sum().item() == pytest.approx(1.0)
    return float((probs * bound).sum())


def test_toy_unbiased_rho():
    # E_q[rho] = 0.3 * 1.5 + 0.7 * (1/14) = 0.45 + 0.05 = 0.5 = p(Y)
    assert Q[0] * RHO[0] + Q[1] * RHO[1] == pytest.approx(0.5)
    # the same through iwae_bound on K = 1 rows: E_q[exp(L_1)] = p(Y)
    b, _ = iwae_bound(t([[math.log(RHO[0])], [math.log(RHO[1])]]))
    assert float(Q[0] * b[0].exp() + Q[1] * b[1].exp()) == pytest.approx(0.5)


def test_toy_iwae_bounds_exact():
    log_pY = math.log(0.5)  # -0.6931472
    L = [_expected_LK(K) for K in range(1, 6)]
    # L_1 = ELBO = 0.3 log 1.5 + 0.7 log(1/14) = 0.3*0.4054651 + 0.7*(-2.6390573) = 0.1216395 - 1.8473401 = -1.7257006
    assert L[0] == pytest.approx(-1.7257006, abs=1e-6)
    e0, _ = elbo(t([[math.log(RHO[0])]]))
    e1, _ = elbo(t([[math.log(RHO[1])]]))
    assert L[0] == pytest.approx(Q[0] * e0.item() + Q[1] * e1.item())  # E_q[log rho]
    # L_2 = 0.09 log 1.5 + 0.42 log((1.5 + 1/14)/2) + 0.49 log(1/14)
    #     = 0.09*0.4054651 + 0.42*(-0.2411621) + 0.49*(-2.6390573) = 0.0364919 - 0.1012881 - 1.2931381 = -1.3579343
    assert L[1] == pytest.approx(-1.3579343, abs=1e-6)
    for a, b in zip(L, L[1:]):
        assert b > a  # non-decreasing (strictly here)
    assert all(v <= log_pY for v in L)
    gaps = [log_pY - v for v in L]
    assert all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:]))
    assert gaps[-1] < gaps[0] / 2


# ---------------------------------------------------------------- effective_sample_size


def test_ess_hand_values():
    rt = t([[0.25, 0.25, 0.25, 0.25],  # 1 / (4 * 1/16) = 4
            [0.0, 1.0, 0.0, 0.0],      # 1
            [0.0, 0.0, 0.0, 0.0],      # dead -> 0
            [0.5, 0.5, 0.0, 0.0]])     # 1 / (0.25 + 0.25) = 2
    ess, stats = effective_sample_size(rt)
    assert ess.tolist() == pytest.approx([4.0, 1.0, 0.0, 2.0])
    assert stats["ess_mean"] == pytest.approx((4 + 1 + 2) / 3)  # dead row excluded
    assert stats["max_weight_share"] == pytest.approx((0.25 + 1.0 + 0.5) / 3)  # = 0.5833333


def test_ess_all_dead():
    ess, stats = effective_sample_size(t([[0.0, 0.0]]))
    assert ess.tolist() == [0.0]
    assert stats == {"ess_mean": 0.0, "max_weight_share": 0.0}


# ---------------------------------------------------------------- forward_kl_weights


def test_forward_kl_weights_hand_values():
    p = t([[1.0, 0.0, 1.0, 0.0],
           [0.0, 0.0, 0.0, 0.0],
           [0.125, 0.375, 0.0, 0.5]])  # sum 1 -> unchanged
    w, stats = forward_kl_weights(p)
    assert w[0].tolist() == pytest.approx([0.5, 0.0, 0.5, 0.0])
    assert w[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert w[2].tolist() == pytest.approx([0.125, 0.375, 0.0, 0.5])
    assert stats["n_dead_questions"] == 1.0


def test_forward_kl_weights_rows_sum_to_one():
    # [0.2, 0.6] -> [0.25, 0.75]
    w, _ = forward_kl_weights(t([[0.2, 0.6]]))
    assert w.tolist()[0] == pytest.approx([0.25, 0.75])
    g = torch.Generator().manual_seed(2)
    p = torch.rand(10, 8, generator=g, dtype=torch.float64)
    w, stats = forward_kl_weights(p)
    assert torch.allclose(w.sum(-1), torch.ones(10, dtype=torch.float64))
    assert stats["n_dead_questions"] == 0.0


# ---------------------------------------------------------------- within_cutoff: diagnostics of what is trained on


def test_within_cutoff_issue_example():
    """Shared lengths [20, 5] at cutoff 15, rho = [5, 2]: over both traces rho~ = [5/7, 2/7] = [0.71, 0.29], but
    selection drops the first, so the weights trained on are [0, 1]; L_2 = log((0 + 2) / 2) = 0 instead of
    log(7/2) = 1.2528; ESS = 1 instead of 1 / ((25 + 4) / 49) = 1.6897."""
    lr = t([[math.log(5.0), math.log(2.0)]])
    shared = torch.tensor([[20, 5]])
    every, _ = self_normalise(lr)
    assert every[0].tolist() == pytest.approx([5 / 7, 2 / 7])
    usable, st = within_cutoff(lr, shared, 15)
    assert usable[0, 0].item() == NINF and usable[0, 1].item() == pytest.approx(math.log(2.0))
    assert st == {"n_over_cutoff": 1.0}
    rt, _ = self_normalise(usable)
    assert rt[0].tolist() == [0.0, 1.0]
    assert iwae_bound(usable)[0].item() == pytest.approx(0.0) and iwae_bound(lr)[0].item() == pytest.approx(
        math.log(3.5))
    assert effective_sample_size(rt)[0].item() == pytest.approx(1.0)
    assert effective_sample_size(every)[0].item() == pytest.approx(49 / 29)


def test_within_cutoff_boundary_and_dead_rows():
    # shared length == cutoff is over (selection keeps shared_len < cutoff); a row with every trace over is dead
    lr = t([[0.0, 0.0], [0.0, 1.0]])
    usable, st = within_cutoff(lr, torch.tensor([[15, 15], [14, 15]]), 15)
    assert st["n_over_cutoff"] == 3.0
    rt, st_n = self_normalise(usable)
    assert rt.tolist() == [[0.0, 0.0], [1.0, 0.0]] and st_n["n_dead_questions"] == 1.0


def test_within_cutoff_agrees_with_selection():
    """The traces ``within_cutoff`` keeps are exactly ``selection``'s candidates, and ``select_weighted`` then
    trains on the rho~ the diagnostics report."""
    from varreason.selection import ScoredTrace, is_candidate, select_weighted

    lr = t([[math.log(5.0), math.log(2.0), NINF], [0.0, math.log(3.0), 1.0]])
    shared = torch.tensor([[20, 5, 3], [15, 14, 16]])
    usable, _ = within_cutoff(lr, shared, 15)
    rt, _ = self_normalise(usable)
    rows = [ScoredTrace(q, k, f"{q}{k}", int(shared[b, k]), float(lr[b, k]), float(rt[b, k]), "s")
            for b, q in enumerate("ab") for k in range(3)]
    for r, u in zip(rows, usable.flatten().tolist()):
        assert is_candidate(r.shared_len, r.log_rho, 15) == math.isfinite(u)
    chosen, _ = select_weighted(rows, 15, {})
    assert {(c.qid, c.trace): c.weight for c in chosen} == pytest.approx({("a", "a1"): 1.0, ("b", "b1"): 1.0})
    assert {(r.qid, r.trace): r.rho_tilde for r in rows if r.rho_tilde > 0} == pytest.approx(
        {("a", "a1"): 1.0, ("b", "b1"): 1.0})


def test_weigh_step_reports_what_selection_trains_on(tmp_path):
    """The ``weigh-traces`` step on two traces of one question with shared lengths [20, 5] at cutoff 15."""
    from varreason.config import load_config
    from varreason.io import produce, read_json, read_rows, write_rows
    from varreason.steps import run_step

    root = str(tmp_path)

    def art(step, name, rows):
        return produce(root, step, {"rows": repr(rows)}, lambda out: write_rows(out / name, rows))

    traces = art("traces", "traces.parquet", [{"qid": "a", "k": k, "trace": f"t{k}", "finished": True}
                                              for k in range(2)])
    # d_k = mean(pi - q) = 0 for both; log pi(Y|x,z) (GML: mean answer log-prob) = log 0.5 and log 0.2
    scores = art("scores", "scores.parquet", [
        {"qid": "a", "k": 0, "think_pi": [-1.0] * 20, "think_q": [-1.0] * 20, "answer_pi": [math.log(0.5)]},
        {"qid": "a", "k": 1, "think_pi": [-1.0] * 5, "think_q": [-1.0] * 5, "answer_pi": [math.log(0.2)]}])
    for cutoff, want in ((15, [0.0, 1.0]), (64, [5 / 7, 2 / 7])):
        cfg = load_config(Path(__file__).resolve().parents[2] / "params.yaml", "tiny",
                          {"artifacts_dir": root, "objective.trace_cutoff": cutoff})
        ref = run_step("weigh-traces", cfg, {"traces": traces, "scores": scores}, est="gml")
        w = sorted(read_rows(ref.verify() / "weights.parquet"), key=lambda r: r["k"])
        assert [r["rho_tilde"] for r in w] == pytest.approx(want)
        assert [r["log_rho"] for r in w] == pytest.approx([math.log(0.5), math.log(0.2)])  # each trace's own
        st = read_json(ref.verify() / "stats.json")
        assert st["n_over_cutoff"] == (1.0 if cutoff == 15 else 0.0)
        assert st["ess_mean"] == pytest.approx(1.0 if cutoff == 15 else 49 / 29)
