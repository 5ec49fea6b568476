"""The benchmark harness at tiny sizes: result fields present, ours and naive do the same work and agree
numerically. No timing is asserted (ratios here are meaningless: the sizes are far too small)."""

import json
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks import common, run, sampling, scaling, scoring, training  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fx(tmp_path_factory, one_thread):
    return common.fixture(tmp_path_factory.mktemp("bench"), steps=20)


def _has_rate_fields(row):
    for key in ("metric", "ours", "naive", "ratio", "ratio_spread", "target", "met"):
        assert key in row, key
    assert row["ratio"] > 0 and row["ours"]["median"] > 0 and row["naive"]["median"] > 0


def test_spread_hand_computed():
    s = common.spread([4.0, 1.0, 3.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 4.0, 4)
    assert s["iqr"] == pytest.approx(3.25 - 1.75)  # inclusive quartiles of 1..4


def test_rate_row_ratio_of_medians():
    row = common.rate_row("m", [10.0, 30.0, 20.0], [2.0, 5.0, 4.0], 5, "tokens/s")
    assert row["ratio"] == pytest.approx(20 / 4) and row["met"] is True
    assert row["ratio_spread"]["values"] == pytest.approx(sorted([5.0, 6.0, 5.0]))


def test_linear_fit_hand_computed():
    f = scaling.linear_fit([1, 2, 3], [3, 5, 7])
    assert (f["intercept"], f["slope"], f["r2"]) == pytest.approx((1.0, 2.0, 1.0))
    # y = 0, 1, 1 on x = 0, 1, 2: slope 0.5, intercept 1/6, residuals -1/6, 1/3, -1/6 -> SS_res 1/6, SS_tot 2/3
    f = scaling.linear_fit([0, 1, 2], [0, 1, 1])
    assert (f["intercept"], f["slope"], f["r2"]) == pytest.approx((1 / 6, 0.5, 0.75))


def test_scoring_agrees_and_reports_ratio(fx):
    row = scoring.bench_scoring(fx, n=8, repeats=1)
    _has_rate_fields(row)
    assert row["agree"] and row["max_abs_diff"] < 1e-4 and row["tokens_per_call"] > 8
    _has_rate_fields(row["ours_2048_tokens_per_batch"])
    roof, n = row["roofline"], sum(p.numel() for p in fx.model()[0].parameters())
    assert roof["flop_per_token"] == 2 * n
    assert roof["ceiling_tokens_per_s"] == roof["peak"]["best_flops"] / (2 * n)
    # no scorer beats the matmul peak: a FLOP count too high would put a side above its ceiling
    assert 0 < roof["naive_fraction_of_peak"] < 1 and 0 < roof["ours_fraction_of_peak"] < 1


def test_scoring_benchmark_catches_a_wrong_scorer(fx, monkeypatch):
    import varreason.scoring

    real = varreason.scoring.score
    monkeypatch.setattr(varreason.scoring, "score",
                        lambda *a, **k: [[x + 0.01 for x in row] for row in real(*a, **k)])
    with pytest.raises(AssertionError, match="disagree"):
        scoring.bench_scoring(fx, n=4, repeats=1)


def test_scoring_at_qwen3_vocabulary_agrees(tmp_path):
    row = scoring.bench_scoring_vocab(tmp_path / "mini", n=2, repeats=1)
    _has_rate_fields(row)
    assert row["vocab"] == 151_936 and row["agree"] and row["max_abs_diff"] < 1e-4
    assert 0 < row["target_tokens"] < row["tokens_per_call"]


def test_sampling_counts_tokens_on_both_sides(fx):
    row = sampling.bench_sampling(fx, n_prompts=2, repeats=1)
    _has_rate_fields(row)
    budget = row["requests"] * fx.cfg.sampling.max_trace_tokens
    assert 0 < row["tokens_ours"][0] <= budget and 0 < row["tokens_naive"][0] <= budget


def test_greedy_sampler_matches_generate(fx):
    """At a vanishing temperature our sampler is greedy decoding: the same tokens as ``generate`` without
    sampling, so the two sides of the sampling benchmark decode the same model the same way."""
    import torch

    from varreason.backends.base import SamplingParams
    from varreason.backends.hf import HFSampler

    model, tok = fx.model()
    prompts, params, seeds = sampling._setup(fx, 3)
    params = SamplingParams(n=1, temperature=1e-6, top_p=1.0, max_new_tokens=12, stop=params.stop)
    ours = HFSampler(model, tok, batch_size=8, progress=False).generate(prompts, params, seeds)
    stop_ids = [tok.convert_tokens_to_ids(s) for s in params.stop] + [tok.eos_token_id]
    for p, comps in zip(prompts, ours.completions):
        ids = torch.tensor([tok.encode(p, add_special_tokens=False)])
        ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                             eos_token_id=stop_ids, pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
        if ref and ref[-1] in stop_ids:
            ref = ref[:-1]  # our token_ids leave out the stop token
        assert comps[0].token_ids == ref


def test_vllm_row_says_why_when_absent(fx):
    import importlib.util

    row = sampling.bench_vllm(fx, n_prompts=1, repeats=1)
    if importlib.util.find_spec("vllm") is None:
        assert row["status"] == "not run: vllm not installed"
    else:
        assert row["status"] == "run" or row["status"].startswith("failed:")


def test_random_batches_cover_epoch_and_pad_more():
    lengths = [random.Random(i).randint(10, 60) for i in range(640)]
    naive = training.random_batches(lengths, 64, random.Random(0))
    assert sorted(i for b in naive for i in b) == list(range(640))
    from varreason.training import length_grouped_batches

    grouped = length_grouped_batches(lengths, 64, random.Random(0))
    assert training.pad_fraction(lengths, grouped) < training.pad_fraction(lengths, naive)
    assert training.pad_fraction([5, 5], [[0, 1]]) == 0 and training.pad_fraction([2, 6], [[0, 1]]) == pytest.approx(1 - 8 / 12)


def test_training_rows(fx):
    peak = training.matmul_peak(256, repeats=2)
    assert peak["best_flops"] > 0
    row = training.bench_training(fx, steps=2, repeats=1, peak=peak)
    _has_rate_fields(row)
    assert row["pad_fraction_ours"] < row["pad_fraction_naive"]
    best = row["mfu"]["peak"]["best_flops"]
    assert best >= peak["best_flops"]  # the best of the peaks measured before and between the repeats
    assert row["mfu"]["fraction"] == pytest.approx(6 * row["n_params"] * row["ours"]["median"] / best)


def test_scaling_points_in_subprocesses(fx):
    res = scaling.bench_scaling([(4, 1), (8, 1)], k_fixed=1, fixture_root=fx.root, fixture_steps=20)
    assert [p["traces"] for p in res["points"]] == [4, 8]
    for p in res["points"]:
        assert p["peak_rss_mb"] > 0 and p["rss_before_mb"] > 0 and p["tokens_generated"] > 0
        assert set(p["stages_s"]) == {"sample", "score", "weigh", "build-set", "train"}
    assert "r2" in res["fit"] and res["rss_fit_vs_N"] is not None


def test_markdown_has_every_row(fx, tmp_path):
    res = run.run(only=("scoring", "vllm", "training"), quick=True, fixture_root=fx.root)
    md = run.markdown(res)
    assert "scoring tokens/s" in md and "training FLOP/s" in md and "vllm" in md.lower()
    assert "Qwen3's vocabulary (V = 151,936)" in md
    json.dumps(res, default=str)  # serialisable


def test_markdown_cache_rows_from_hand_made_result():
    sp = lambda v: {"median": v, "min": v, "max": v, "iqr": 0.0, "n": 2, "values": [v, v]}  # noqa: E731
    cache = {"metric": "cache: re-run / cold run wall time (in-process)", "profile": "smoke",
             "overrides": ["em.rounds=1"], "cold_s": 100.0, "warm_s": sp(2.0), "import_s": 10.0,
             "fraction": 0.02, "fraction_spread": sp(0.02), "target": "<= 5%", "met": True,
             "cli_rerun_s": 22.0, "cli_fraction": 0.2, "warm_backoff_s": sp(0.5), "warm_net_s": sp(1.5),
             "net_fraction": 0.015, "edit_s": 3.0, "edit_fraction": 0.03, "edit_met": True}
    res = {"machine": {"date": "d", "cpu": "c", "cores": 2, "torch": "t", "torch_threads": 1, "python": "p"},
           "quick": False, "results": {"cache": cache}, "bench_wall_s": {"total": 60.0}, "command": "make bench"}
    md = run.markdown(res)
    assert "| 2.0 s [2.0–2.0] | cold 100.0 s | 2.0% | <= 5% | yes | 2 |" in md
    assert "| 22.0 s | cold 100.0 s + import 10.0 s | 20.0% | info |" in md  # 22 / (100 + 10)
    assert "(`smoke` em.rounds=1)" in md
    assert "0.5 s [0.5–0.5] per re-run) | 1.5 s [1.5–1.5] | cold 100.0 s | 1.5% |" in md  # 1.5 / 100
    assert "comment edit of every `varreason/` module / cold | 3.0 s | cold 100.0 s | 3.0% | <= 5% | yes | 1 |" in md


def test_merge_replaces_only_the_new_rows():
    mach = {"date": "d0", "torch": "t0", "cpu": "c", "cores": 2, "torch_threads": 1, "python": "3"}
    old = {"machine": mach, "results": {"scoring": {"ratio": 2}, "vllm": {"status": "x"}},
           "bench_wall_s": {"total": 60.0}, "quick": False, "command": "make bench"}
    new = {"machine": {"date": "d1", "torch": "t1"}, "results": {"vllm": {"status": "run"}}}
    out = run.merge(old, new)
    assert out["results"] == {"scoring": {"ratio": 2}, "vllm": {"status": "run"}}
    assert out["machine"] == old["machine"] and out["merged"] == {"vllm": {"date": "d1", "torch": "t1"}}
    assert "vllm (d1, torch t1)" in run.markdown({**out, "results": {}})
