"""Unit tests for varreason/selection.py (method.md §5.5, §10)."""

import math

import pytest

from varreason.selection import SELECTIONS, ScoredTrace, Selected, is_candidate, select_top1, select_weighted

NINF = float("-inf")


def row(qid, k, log_rho, shared_len=10, rho_tilde=None):
    rt = rho_tilde if rho_tilde is not None else (0.0 if log_rho == NINF else 0.5)
    return ScoredTrace(qid=qid, k=k, trace=f"{qid}-t{k}", shared_len=shared_len, log_rho=log_rho,
                       rho_tilde=rt, solution=f"{qid}-s{k}")


def test_registry():
    assert set(SELECTIONS) == {"top1", "weighted"}
    assert SELECTIONS["top1"] is select_top1 and SELECTIONS["weighted"] is select_weighted


def test_top1_picks_argmax():
    rows = [row("a", 0, -3.0), row("a", 1, -0.5), row("a", 2, -1.0)]
    out, stats = select_top1(rows, cutoff=100, gold={})
    assert out == [Selected("a", "a-t1", "a-s1", 1.0, 1)]
    assert stats == {"n_selected": 1.0, "n_fallback": 0.0, "n_dropped": 0.0, "n_over_cutoff": 0.0}


def test_top1_length_cutoff_and_minus_inf_excluded():
    rows = [row("a", 0, 5.0, shared_len=100),  # best weight but T == cutoff -> excluded
            row("a", 1, 9.0, shared_len=150),  # T > cutoff -> excluded
            row("a", 2, NINF),                 # zero weight -> excluded
            row("a", 3, -2.0, shared_len=99)]  # the only candidate
    out, _ = select_top1(rows, cutoff=100, gold={})
    assert [s.source for s in out] == [3]


def test_top1_nan_log_rho_excluded():
    rows = [row("a", 0, float("nan")), row("a", 1, -4.0)]
    out, _ = select_top1(rows, cutoff=100, gold={})
    assert [s.source for s in out] == [1]


def test_top1_fallback_and_drop():
    rows = [row("a", 0, NINF), row("a", 1, 1.0, shared_len=500),  # no candidate, has gold -> fallback
            row("b", 0, NINF),                                     # no candidate, no gold -> dropped
            row("c", 0, -1.0)]                                     # normal
    gold = {"a": ("gold-trace-a", "gold-sol-a")}
    out, stats = select_top1(rows, cutoff=100, gold=gold)
    assert out == [Selected("a", "gold-trace-a", "gold-sol-a", 1.0, -1), Selected("c", "c-t0", "c-s0", 1.0, 0)]
    assert stats == {"n_selected": 1.0, "n_fallback": 1.0, "n_dropped": 1.0, "n_over_cutoff": 1.0}


def test_top1_tie_lowest_k():
    rows = [row("a", 2, -1.0), row("a", 0, -1.0), row("a", 1, -1.0), row("a", 3, -2.0)]
    out, _ = select_top1(rows, cutoff=100, gold={})
    assert out[0].source == 0


def test_top1_one_per_question_sorted():
    rows = [row("b", 0, 0.0), row("a", 0, 0.0), row("b", 1, 1.0)]
    out, _ = select_top1(rows, cutoff=100, gold={})
    assert [(s.qid, s.source) for s in out] == [("a", 0), ("b", 1)]


def test_weighted_renormalises_over_candidates():
    # rho~ = 0.2, 0.3 survive; 0.5 is cut by length -> weights 0.2/0.5 = 0.4 and 0.3/0.5 = 0.6
    rows = [row("a", 0, -1.0, rho_tilde=0.2), row("a", 1, -0.6, rho_tilde=0.3),
            row("a", 2, 0.0, shared_len=200, rho_tilde=0.5),
            row("b", 0, 0.0, rho_tilde=1.0)]
    out, stats = select_weighted(rows, cutoff=100, gold={})
    wa = {s.source: s.weight for s in out if s.qid == "a"}
    assert wa == pytest.approx({0: 0.4, 1: 0.6})
    assert math.fsum(wa.values()) == pytest.approx(1.0)
    assert [(s.qid, s.weight) for s in out if s.qid == "b"] == [("b", 1.0)]
    assert stats == {"n_selected": 3.0, "n_fallback": 0.0, "n_dropped": 0.0, "n_over_cutoff": 1.0}
    assert {(s.trace, s.solution) for s in out if s.qid == "a"} == {("a-t0", "a-s0"), ("a-t1", "a-s1")}


def test_weighted_question_weights_sum_to_one():
    rows = [row(q, k, -float(k), rho_tilde=w) for q, ws in [("a", [0.1, 0.2, 0.3]), ("b", [0.05, 0.0, 0.7])]
            for k, w in enumerate(ws)]
    out, _ = select_weighted(rows, cutoff=100, gold={})
    for q in ("a", "b"):
        assert math.fsum(s.weight for s in out if s.qid == q) == pytest.approx(1.0)
    # b's k=1 has rho~ = 0 -> not emitted
    assert sorted(s.source for s in out if s.qid == "b") == [0, 2]


def test_weighted_fallback_and_drop():
    rows = [row("a", 0, NINF), row("b", 0, NINF), row("c", 0, -1.0, rho_tilde=0.0)]
    gold = {"a": ("ga", "sa"), "c": ("gc", "sc")}
    out, stats = select_weighted(rows, cutoff=100, gold=gold)
    assert out == [Selected("a", "ga", "sa", 1.0, -1), Selected("c", "gc", "sc", 1.0, -1)]
    assert stats == {"n_selected": 0.0, "n_fallback": 2.0, "n_dropped": 1.0, "n_over_cutoff": 0.0}


def test_is_candidate():
    assert is_candidate(14, -1.0, 15) and not is_candidate(15, -1.0, 15)
    assert not is_candidate(3, NINF, 15) and not is_candidate(3, float("nan"), 15)
