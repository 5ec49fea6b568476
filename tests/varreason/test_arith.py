"""Unit tests for varreason/arith.py (the embedded arithmetic task)."""

import pytest

from varreason.arith import evaluate, generate, reduction_steps


def test_reduction_steps_docstring_example():
    # 4*5 = 20 first, then left to right: 3+20 = 23, 23-2 = 21
    assert reduction_steps("3+4*5-2") == ["3+20-2", "23-2", "21"]


def test_reduction_steps_modulus():
    # 4*5 = 20 = 0 mod 10; 3+0 = 3; 3-2 = 1
    assert reduction_steps("3+4*5-2", modulus=10) == ["3+0-2", "3-2", "1"]


def test_reduction_steps_negative_intermediate():
    # 6*4 = 24; 3-24 = -21; -21+9 = -12
    assert reduction_steps("3-6*4+9") == ["3-24+9", "-21+9", "-12"]


def test_reduction_steps_modulus_wraps_negative():
    # 2-5 = -3 = 7 mod 10; 7-9 = -2 = 8 mod 10
    assert reduction_steps("2-5-9", modulus=10) == ["7-9", "8"]


def test_reduction_steps_left_to_right_and_multiple_products():
    # 2*3 = 6 -> "6+4*5"; 4*5 = 20 -> "6+20"; 26.  Then 8-2+3: 6+3 = 9 (not 8-5 = 3)
    assert reduction_steps("2*3+4*5") == ["6+4*5", "6+20", "26"]
    assert reduction_steps("8-2+3") == ["6+3", "9"]


@pytest.mark.parametrize("expr,mod,value", [
    ("3+4*5-2", None, 21), ("3+4*5-2", 10, 1), ("3-6*4+9", None, -12), ("7", None, 7), ("9*9*9", None, 729),
    ("9*9*9", 10, 9),  # 81 -> 1 ; 1*9 = 9
])
def test_evaluate(expr, mod, value):
    assert evaluate(expr, mod) == value


GEN = dict(n_train=30, n_heldout=12, n_seed_traces=7, levels=[2, 3], max_operand=9)


def test_generate_deterministic():
    assert generate(**GEN, seed=3) == generate(**GEN, seed=3)
    assert [q.question for q in generate(**GEN, seed=3)] != [q.question for q in generate(**GEN, seed=4)]


def test_generate_splits_and_gold():
    qs = generate(**GEN, seed=0)
    train = [q for q in qs if q.split == "train"]
    held = [q for q in qs if q.split == "heldout"]
    assert len(train) == 30 and len(held) == 12
    assert not {q.question for q in train} & {q.question for q in held}
    assert len({q.question for q in qs}) == len(qs)
    assert len({q.id for q in qs}) == len(qs)
    gold = [q for q in qs if q.gold_trace is not None]
    assert len(gold) == 7
    assert all(q.split == "train" for q in gold)
    for q in gold:
        lines = q.gold_trace.split("\n")
        assert lines[-1] == q.answer
        assert len(lines) == q.level  # one line per operation
    for q in qs:
        assert q.level in (2, 3)
        assert sum(q.question.count(op) for op in "+-*") == q.level
        assert q.answer == str(evaluate(q.question))


def test_generate_modulus_answers_in_range():
    qs = generate(**GEN, seed=5, modulus=10)
    assert all(0 <= int(q.answer) < 10 for q in qs)
    for q in qs:
        if q.gold_trace:
            assert q.gold_trace.split("\n")[-1] == q.answer


def test_generate_impossible_raises():
    # levels [1], operands 1..2, op "+" -> only 4 distinct expressions exist
    with pytest.raises(ValueError):
        generate(n_train=4, n_heldout=1, n_seed_traces=1, levels=[1], max_operand=2, seed=0, ops="+")
