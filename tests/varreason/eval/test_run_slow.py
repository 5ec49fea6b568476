"""lm-eval end to end (CPU, offline): the oracle sampler checks the scoring path, the tiny model the engine path
(tiny arithmetic task and a 20-problem MATH500 slice), and two runs with one seed must agree exactly."""


import pytest
import torch

from varreason import arith
from varreason.config import ModelConfig
from varreason.eval.harness import run_lm_eval
from varreason.eval.questions import math_question
from varreason.modeling import build_char_tokenizer, build_tiny_model, save_checkpoint
from varreason.prompts import reasoner_prompt

from .fakes import PROMPT, SAMPLING, OracleSampler

pytestmark = pytest.mark.slow

CFG = ModelConfig(kind="tiny", hidden_size=32, intermediate_size=64, num_layers=1, num_heads=1, num_kv_heads=1,
                  head_dim=32, max_length=64)


@pytest.fixture(scope="module")
def heldout():
    return [q.__dict__ for q in arith.generate(40, 20, 10, [2, 3], 9, seed=0, ops="+-") if q.split == "heldout"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tok = build_char_tokenizer(arith.charset(9), PROMPT)
    model = build_tiny_model(CFG, tok, seed=0)
    out = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(model, tok, out)
    return out, tok


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


def test_oracle_sampler_scores_exactly(heldout, tmp_path):
    oracle = OracleSampler({q["question"]: q["answer"] for q in heldout})
    res = run_lm_eval("oracle", CFG, PROMPT, ["vr_arith", "vr_math500", "vr_aime24"], tmp_path, limit=20, seed=0,
                      arith_questions=heldout, repeats={"vr_arith": 4, "vr_math500": 2, "vr_aime24": 32},
                      sampling=SAMPLING, pass_k=[1, 2, 32], sampler=oracle, n_boot=200)
    for name, n, q in (("vr_arith", 4, 20), ("vr_math500", 2, 20), ("vr_aime24", 32, 20)):
        t = res["tasks"][name]
        assert (t["n_questions"], t["n_samples"]) == (q, n), name
        assert t["avg@n"] == pytest.approx(0.5) and t["lm_eval_avg_at_n"] == pytest.approx(0.5)
        # c = n/2 correct of n: pass@2 = 1 - C(n/2, 2) / C(n, 2) (n=2: 1; n=4: 5/6; n=32: 1 - 120/496)
        assert t["pass@1"] == pytest.approx(0.5)
        assert t["pass@2"] == pytest.approx({2: 1.0, 4: 5 / 6, 32: 1 - 120 / 496}[n])
        assert t["n_pred_unparseable"] == q * n // 2 and t["n_wrong"] == 0 and t["n_gold_unparseable"] == 0
        assert t["ci95"] == [0.5, 0.5] and t["version"] == 2
    assert res["tasks"]["vr_aime24"]["pass@32"] == pytest.approx(1.0)
    per_q = res["per_question"]["vr_arith"]  # what varreason.stats pairs questions by
    assert [r["id"] for r in per_q] == [q["id"] for q in heldout[:20]]
    assert all((r["n"], r["c"]) == (4, 2) for r in per_q)
    assert res["versions"]["lm_eval"] == "0.4.13" and res["versions"]["math_verify"] == "0.9.0"
    assert res["versions"]["engine"] == "hf" and res["versions"]["engine_version"]


def test_tiny_model_end_to_end_and_same_seed_same_scores(checkpoint, heldout, tmp_path):
    ckpt, tok = checkpoint
    # MATH characters outside the tiny alphabet become <|unk|> rather than failing
    prompt = reasoner_prompt(PROMPT, math_question("Find $\\pi$ in [0, 1)."))
    assert tok.unk_token_id in tok.encode(prompt, add_special_tokens=False)
    kw = dict(limit=20, arith_questions=heldout, repeats={"vr_arith": 2, "vr_math500": 2}, sampling=SAMPLING,
              max_new_tokens=12, pass_k=[1, 2], n_boot=200, keep_responses=True)
    a = run_lm_eval(ckpt, CFG, PROMPT, ["vr_arith", "vr_math500"], tmp_path / "a", seed=0, **kw)
    b = run_lm_eval(ckpt, CFG, PROMPT, ["vr_arith", "vr_math500"], tmp_path / "b", seed=0, **kw)
    c = run_lm_eval(ckpt, CFG, PROMPT, ["vr_arith"], tmp_path / "c", seed=1, **kw)
    for name in ("vr_arith", "vr_math500"):
        t = a["tasks"][name]
        assert t["n_questions"] == 20 and t["n_samples"] == 2
        assert t["n_wrong"] + t["n_pred_unparseable"] + round(t["avg@n"] * 40) == 40
        assert t["n_gold_unparseable"] == 0
        assert all(len(r) == 2 for r in a["responses"][name])
    assert a["tasks"] == b["tasks"] and a["responses"] == b["responses"]
    assert a["tokens_generated"] == b["tokens_generated"] > 0
    assert c["responses"]["vr_arith"] != a["responses"]["vr_arith"]  # the seed matters
    # the two samples of a question differ somewhere (per-sample seeds, not one seed per question)
    assert any(r[0] != r[1] for r in a["responses"]["vr_arith"])
