"""VarReasonLM without a model: request grouping, seeds, sampling params, stop cut, loglikelihood refusal."""

import pytest
from lm_eval.api.instance import Instance

from varreason.eval.lm import VarReasonLM, cut_at_stop, stable_seed

from .fakes import RecordingSampler

GEN = {"until": ["<|end_of_solution|>"], "do_sample": True, "temperature": 0.7, "top_p": 1.0}


def inst(ctx, doc_id, task="t", gen=GEN, idx=0):
    return Instance("generate_until", doc={}, arguments=(ctx, dict(gen)), idx=idx, metadata=(task, doc_id, 1))


def test_repeats_grouped_into_n_samples_in_order():
    a, b = inst("A", 0), inst("B", 1)
    reqs = [a, a, a, b, b, b]  # what lm-eval passes for repeats=3
    s = RecordingSampler()
    out = VarReasonLM(s, seed=5).generate_until(reqs)
    assert len(s.calls) == 1
    prompts, params, seeds = s.calls[0]
    assert prompts == ["A", "B"] and params.n == 3
    assert (params.temperature, params.top_p, params.stop) == (0.7, 1.0, ("<|end_of_solution|>",))
    assert [o.split("|")[0] for o in out] == ["A"] * 3 + ["B"] * 3
    assert [o.split("|")[2] for o in out] == ["0", "1", "2"] * 2


def test_seeds_depend_on_base_seed_task_doc_not_on_batch():
    s = RecordingSampler()
    VarReasonLM(s, seed=5).generate_until([inst("A", 0), inst("B", 1)])
    VarReasonLM(s, seed=5).generate_until([inst("B", 1)])
    VarReasonLM(s, seed=6).generate_until([inst("B", 1)])
    VarReasonLM(s, seed=5).generate_until([inst("B", 1, task="other")])
    first, alone, other_seed, other_task = (c[2] for c in s.calls)
    assert first[1] == alone[0]
    assert other_seed[0] != alone[0] and other_task[0] != alone[0]
    assert first[0] != first[1]


def test_params_groups_greedy_and_max_tokens():
    s = RecordingSampler()
    greedy = {"until": "X", "do_sample": False, "max_gen_toks": 7}
    out = VarReasonLM(s, max_new_tokens=11).generate_until([inst("A", 0), inst("B", 1, gen=greedy)])
    assert len(s.calls) == 2
    by_prompt = {c[0][0]: c[1] for c in s.calls}
    assert by_prompt["A"].max_new_tokens == 11
    assert by_prompt["B"].max_new_tokens == 7 and by_prompt["B"].top_p < 1e-6 and by_prompt["B"].stop == ("X",)
    assert len(out) == 2


def test_unknown_generation_kwarg_rejected():
    with pytest.raises(ValueError, match="num_beams"):
        VarReasonLM(RecordingSampler()).generate_until([inst("A", 0, gen={"num_beams": 4})])


def test_cut_at_stop():
    assert cut_at_stop("ab<|end_of_solution|>cd", ("<|end_of_solution|>",)) == "ab"
    assert cut_at_stop("abXcdY", ("Y", "X")) == "ab"
    assert cut_at_stop("abc", ()) == "abc"


def test_stable_seed_is_62_bit_and_stable():
    assert stable_seed(0, "t", 1) == stable_seed(0, "t", 1) != stable_seed(0, "t", 2)
    assert 0 <= stable_seed(123, "x") < 1 << 62


def test_loglikelihood_not_implemented():
    lm = VarReasonLM(RecordingSampler())
    with pytest.raises(NotImplementedError, match="generate_until"):
        lm.loglikelihood([])
    with pytest.raises(NotImplementedError, match="generate_until"):
        lm.loglikelihood_rolling([])
