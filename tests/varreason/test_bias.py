"""Unit tests for varreason/bias.py on small hand-built tables."""

import math
from pathlib import Path

import pytest
import torch

from varreason import bias
from varreason.io import produce, write_rows
from varreason.objectives import group_advantages

INF = float("inf")


def _responses(spec: dict[str, list[bool]]) -> list[dict]:
    return [{"qid": q, "j": j, "correct": c} for q, cs in spec.items() for j, c in enumerate(cs)]


def test_accuracy_by_question():
    rows = _responses({"a": [True, False, False, False], "b": [True, True, True, True], "c": [False, False]})
    assert bias.accuracy_by_question(rows) == {"a": (4, 1), "b": (4, 4), "c": (2, 0)}


@pytest.mark.parametrize("n,c,expected", [
    (4, 1, 1 / math.sqrt(3)),   # p 1/4, sigma sqrt(3)/4: (1/4) / (sqrt(3)/4)
    (4, 2, 1.0),                # p 1/2, sigma 1/2
    (4, 3, math.sqrt(3)),       # p 3/4: sqrt(p / (1 - p))
    (4, 0, 0.0), (4, 4, 0.0),   # flat groups: no signal
])
def test_grpo_realised_hand_and_matches_group_advantages(n, c, expected):
    assert bias.grpo_realised(n, c) == pytest.approx(expected)
    adv, _ = group_advantages(torch.tensor([[1.0] * c + [0.0] * (n - c)]))
    via_adv = (c / n) * float(adv[0, 0] - adv[0, -1]) if 0 < c < n else 0.0
    assert via_adv == pytest.approx(expected)


def test_em_signal_candidates():
    w = [{"qid": "a", "k": 0, "shared_len": 10, "log_rho": -1.0, "rho_tilde": 0.7},
         {"qid": "a", "k": 1, "shared_len": 10, "log_rho": -1.8, "rho_tilde": 0.3},
         {"qid": "b", "k": 0, "shared_len": 10, "log_rho": -INF, "rho_tilde": 0.0},   # dead question
         {"qid": "b", "k": 1, "shared_len": 10, "log_rho": -INF, "rho_tilde": 0.0},
         {"qid": "c", "k": 0, "shared_len": 90, "log_rho": -0.5, "rho_tilde": 1.0},   # only trace over the cutoff
         {"qid": "d", "k": 0, "shared_len": 90, "log_rho": -0.5, "rho_tilde": 0.5},   # one over, one kept
         {"qid": "d", "k": 1, "shared_len": 20, "log_rho": -0.5, "rho_tilde": 0.5}]
    assert bias.em_signal(w, cutoff=64) == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0}


def test_question_table_hand():
    rft = {"a": (4, 1), "b": (4, 4), "c": (4, 0)}
    p = {"a": (8, 2), "b": (8, 8), "c": (8, 1), "z": (8, 3)}  # z: not in the RFT samples -> left out
    rows = bias.question_table(p, rft, {"gml": {"a": 1.0, "b": 1.0, "c": 1.0}, "acc": {"a": 1.0, "b": 1.0, "c": 0.0}},
                               seed=3)
    assert [r["qid"] for r in rows] == ["a", "b", "c"]
    a, b, c = rows
    assert a["seed"] == 3 and a["p"] == 0.25 and a["n_p"] == 8
    assert (a["rft_kept"], a["rft_share"]) == (1.0, 0.25)
    assert a["grpo_expected"] == pytest.approx(math.sqrt(1 / 3))
    assert a["grpo_realised"] == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(b["grpo_expected"]) and b["grpo_realised"] == 0.0  # all right: unbounded / flat
    assert (c["rft_kept"], c["grpo_realised"], c["em-acc"], c["em-gml"]) == (0.0, 0.0, 0.0, 1.0)
    assert c["grpo_expected"] == pytest.approx(math.sqrt((1 / 8) / (7 / 8)))
    assert bias.signal_names(rows) == ["rft_kept", "rft_share", "grpo_expected", "grpo_realised", "em-acc", "em-gml"]


def _ladder(seeds=(0,)):
    # p in {0, 1/4, 1/2, 3/4, 1}, 4 questions each per seed; rft_share = p exactly; em constant 1
    rows = []
    for s in seeds:
        for i in range(20):
            p = (i % 5) / 4
            rows.append({"seed": s, "qid": f"q{i}", "p": p, "rft_share": p, "em-gml": 1.0,
                         "grpo_expected": math.sqrt(p / (1 - p)) if p < 1 else math.nan})
    return rows


def test_slopes_hand():
    rows = _ladder(seeds=(0, 1))
    fit = bias.slopes(rows, ["rft_share", "em-gml", "grpo_expected"], n_boot=300, seed=1,
                      pairs=[("rft_share", "em-gml")])
    # y = p, mean(p) = 1/2: relative slope of p / (1/2) on p is 2
    assert fit["slopes"]["rft_share"]["slope"] == pytest.approx(2.0)
    assert fit["slopes"]["rft_share"]["lo"] > 1.0  # replicates: 1 / mean of resampled p, all well above 0
    # constant signal: slope 0 in every replicate
    em = fit["slopes"]["em-gml"]
    assert (em["slope"], em["lo"], em["hi"], em["mean"]) == pytest.approx((0.0, 0.0, 0.0, 1.0), abs=1e-12)
    assert fit["diffs"]["rft_share - em-gml"]["diff"] == pytest.approx(2.0)
    g = fit["slopes"]["grpo_expected"]
    assert g["n_nan"] == 8 and g["n"] == 32 and g["slope"] > 0  # p = 1 left out
    again = bias.slopes(rows, ["rft_share", "em-gml", "grpo_expected"], n_boot=300, seed=1,
                        pairs=[("rft_share", "em-gml")])
    assert again == fit


def test_binned_hand():
    rows = _ladder()
    bins = bias.binned(rows, edges=(0.0, 0.5, 1.0), names=["rft_share", "em-gml", "grpo_expected"])
    lo, hi = bins
    assert (lo["n"], hi["n"]) == (8, 12)  # p = 0, 1/4 | p = 1/2, 3/4, 1 (the last bin is closed)
    assert lo["p_mean"] == pytest.approx(0.125) and hi["p_mean"] == pytest.approx(0.75)
    assert lo["rft_share"] == pytest.approx(0.125) and lo["em-gml"] == 1.0
    # SE of (0,0,0,0,1/4,1/4,1/4,1/4): sd = sqrt(8/7)/8... = 0.1336306 / sqrt(8)
    assert lo["rft_share_se"] == pytest.approx(0.1336306 / math.sqrt(8), rel=1e-6)
    assert hi["grpo_expected"] == pytest.approx((1.0 + math.sqrt(3)) / 2)  # p = 1 rows left out
    md = bias.bias_markdown(bins, bias.slopes(rows, ["rft_share", "em-gml"], n_boot=50))
    assert "| [0.000, 0.500) | 8 | 0.125 |" in md and "| [0.500, 1.000] | 12 |" in md
    assert "| rft_share | 0.500 | +2.000 |" in md


def test_bias_plot_writes_png(tmp_path: Path):
    rows = _ladder()
    out = bias.bias_plot(bias.binned(rows, names=["rft_share", "em-gml"]), tmp_path / "sub" / "bias.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_rows_reads_artifacts(tmp_path: Path):
    def responses(out: Path) -> None:
        write_rows(out / "responses.parquet", _responses({"a": [True, False], "b": [False, False]}))

    def weights(out: Path) -> None:
        write_rows(out / "weights.parquet", [
            {"qid": "a", "k": 0, "shared_len": 5, "log_rho": -1.0, "rho_tilde": 1.0},
            {"qid": "b", "k": 0, "shared_len": 5, "log_rho": -INF, "rho_tilde": 0.0}])

    r = produce(tmp_path, "responses", {"x": 1}, responses)
    w = produce(tmp_path, "weights", {"x": 1}, weights)
    summary = {"artifacts": [
        {"method": "rft", "round": 1, "stage": "sample-responses", "path": r.path, "sha": r.sha},
        {"method": "em-acc", "round": 1, "stage": "weights", "path": w.path, "sha": w.sha},
        {"method": "em-acc", "round": 2, "stage": "weights", "path": w.path, "sha": w.sha}]}
    rows = bias.run_rows(summary, cutoff=64, seed=2)
    assert [(x["qid"], x["p"], x["rft_kept"], x["em-acc"]) for x in rows] == [("a", 0.5, 1.0, 1.0),
                                                                              ("b", 0.0, 0.0, 0.0)]
    with pytest.raises(ValueError, match="RFT"):
        bias.run_rows({"artifacts": summary["artifacts"][1:]}, cutoff=64)
