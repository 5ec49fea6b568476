"""The answer extractor, the math and multiple-choice graders, and the labelled verifier set."""

import json
import re
from pathlib import Path

import pytest

from varreason.eval.grader import (GRADERS, Outcome, extract_answer, extract_choice, grade_answer, grade_arith,
                                   grade_choice, grade_math, grader_of, last_boxed, normalize)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DATA = ROOT / "varreason" / "eval" / "data"


def test_last_boxed_nested_and_last():
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{\left( 3, \frac{\pi}{2} \right)}.") == r"\left( 3, \frac{\pi}{2} \right)"
    assert last_boxed(r"\fbox{7}") == "7"
    assert last_boxed("no box") is None
    assert last_boxed(r"\boxed{1} and an unclosed \boxed{2") == "1"


def test_extract_from_solution_block_when_present():
    text = (r"think \boxed{3}<|end_of_thought|>" "\n\n" r"<|begin_of_solution|>so \boxed{4} and that's it"
            r"<|end_of_solution|> \boxed{5}")
    assert extract_answer(text) == "4"
    # generation stops at <|end_of_solution|>, so the block is usually unterminated
    assert extract_answer(r"t<|end_of_thought|><|begin_of_solution|>\boxed{9}") == "9"
    assert extract_answer(r"no block, last box \boxed{1} \boxed{2}") == "2"
    assert extract_answer(r"t \boxed{3}<|begin_of_solution|>no box here") is None


def test_normalize_does_only_what_math_verify_cannot():
    # each step with the case it fixes (math_verify alone: 90° unparseable, 5\,000 = 5*0, 120. unparseable)
    assert normalize("90°") == normalize("90 °") == normalize(r"90\degree") == normalize("90^{°}") == r"90^\circ"
    assert normalize(r"5\,000") == normalize(r"5\ 000") == normalize("5 000") == "5000"
    assert normalize(r"1\,000\,000.5") == "1000000.5"
    assert normalize("120.") == "120" and normalize(r"120^\circ.") == r"120^\circ" and normalize("3.5") == "3.5"
    # everything else is math_verify's to read, untouched: lists, padded integers, separators it parses itself
    for s in ("2, 500", "120, 240", "0,111", "025", "1{,}000", "58,500", r"10,\!080", r"18.90\$", r"\$18.90",
              r"\dfrac{1}{2}", r"\begin{pmatrix} -18 \\ -49 \\ 96 \end{pmatrix}", "1,2,..."):
        assert normalize(s) == s, s


PMATRIX = r"\begin{pmatrix} -18 \\ -49 \\ 96 \end{pmatrix}"


def test_row_breaks_are_read_in_full():
    """The issue's acceptance cases: a vector gold is not its first entry."""
    assert grade_math(PMATRIX, r"\boxed{-18}").outcome is Outcome.WRONG
    assert grade_math(PMATRIX, r"\boxed{\begin{pmatrix} -18 \\ 0 \\ 0 \end{pmatrix}}").outcome is Outcome.WRONG
    assert grade_math(PMATRIX, r"\boxed{(-18, 0, 0)}").outcome is Outcome.WRONG
    assert grade_math(PMATRIX, r"\boxed{" + PMATRIX + "}").correct
    slash = r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}"
    frac = r"\begin{pmatrix} -\frac{1}{3} \\ \frac{2}{3} \\ \frac{5}{3} \end{pmatrix}"
    assert grade_math(slash, r"\boxed{" + frac + "}").correct


def test_degree_sign():
    assert grade_math(r"90^\circ", r"\boxed{90°}").correct
    assert grade_math(r"90^\circ", r"\boxed{91°}").outcome is Outcome.WRONG


@pytest.mark.parametrize("gold,pred,expected", [
    ("2500", "2, 500", Outcome.WRONG),  # a list, not 2,500
    ("120, 240", "120, 240", Outcome.CORRECT),
    ("120, 240", "120240", Outcome.WRONG),
    ("0.111", "0,111", Outcome.CORRECT),  # a decimal comma (math_verify), not 111
    ("111", "0,111", Outcome.WRONG),
    (r"18.90", r"18.90\$", Outcome.CORRECT),
    (r"\$18.90", "18.9", Outcome.CORRECT),
    (r"5\,000", "0", Outcome.WRONG),  # math_verify alone reads the gold as 5*0
    ("52_8", "52_9", Outcome.WRONG),  # math_verify alone ignores the base
    ("52_8", "52", Outcome.CORRECT),
    (".0000672", ".0000673", Outcome.WRONG),  # past math_verify's 6 decimal places
    (r"\frac{1}{3}", "0.3333333", Outcome.CORRECT),
])
def test_issue_cases(gold, pred, expected):
    assert grade_answer(gold, pred) is expected


def test_outcomes():
    assert grade_math("025", r"<|begin_of_solution|>\boxed{25}").outcome is Outcome.CORRECT
    assert grade_math("025", r"<|begin_of_solution|>\boxed{26}").outcome is Outcome.WRONG
    assert grade_math("025", "<|begin_of_solution|>25").outcome is Outcome.PRED_UNPARSEABLE
    assert grade_answer("5", "}{") is Outcome.PRED_UNPARSEABLE
    g = grade_math("7", r"\boxed{7}")
    assert g.correct and g.extracted == "7"


@pytest.mark.parametrize("gold", ["", "???", r"\frac{", "}{"])
def test_gold_unparseable_never_correct(gold):
    # even an identical prediction must not score: the gold itself is broken
    assert grade_answer(gold, gold) is Outcome.GOLD_UNPARSEABLE
    assert grade_math(gold, r"\boxed{" + gold + "}").outcome is Outcome.GOLD_UNPARSEABLE
    assert grade_answer(gold, None) is Outcome.GOLD_UNPARSEABLE


def test_every_shipped_gold_parses_and_matches_itself():
    bad = []
    for f in ("math500", "aime24", "aime25", "amc23"):
        for line in (DATA / f"{f}.jsonl").read_text().splitlines():
            gold = json.loads(line)["answer"]
            if grade_answer(gold, gold) is not Outcome.CORRECT:
                bad.append((f, gold))
    assert not bad


def test_multiple_choice():
    assert grade_choice("B", r"<|begin_of_solution|>\boxed{B}").correct
    assert grade_choice("(B)", r"\boxed{\text{(B)}}").correct
    assert grade_choice("J", "The answer is J").correct
    assert grade_choice("B", r"\boxed{C}").outcome is Outcome.WRONG
    assert grade_choice("B", r"\boxed{42}").outcome is Outcome.PRED_UNPARSEABLE
    assert grade_choice("B", "no letter given").outcome is Outcome.PRED_UNPARSEABLE
    assert grade_choice("K", r"\boxed{K}").outcome is Outcome.GOLD_UNPARSEABLE


def test_multiple_choice_within_the_question_options():
    four = 4  # GPQA: A-D
    assert grade_choice("C", r"t<|begin_of_solution|>\boxed{C}", four).correct
    assert grade_choice("C", r"t<|begin_of_solution|>\boxed{B}", four).outcome is Outcome.WRONG
    # a box in the thought does not count once there is a solution block
    assert grade_choice("C", r"\boxed{C}<|begin_of_solution|>so it is", four).outcome is Outcome.PRED_UNPARSEABLE
    # E names no option of a 4-option question; a 10-option question (MMLU-Pro) has it
    assert grade_choice("C", r"\boxed{E}", four).outcome is Outcome.PRED_UNPARSEABLE
    assert grade_choice("E", r"\boxed{E}", 10).correct
    # a gold past the options is broken data: never correct, even when the prediction equals it
    assert grade_choice("E", r"\boxed{E}", four).outcome is Outcome.GOLD_UNPARSEABLE
    assert grade_choice("", r"\boxed{A}", four).outcome is Outcome.GOLD_UNPARSEABLE
    assert extract_choice(r"answer: a, then \boxed{D}") == "D"


def load_cases():
    return [json.loads(line) for line in (HERE / "verifier_cases.jsonl").read_text().splitlines()]


def test_verifier_cases_come_from_shipped_golds():
    golds = {json.loads(line)["answer"] for f in ("math500", "aime24", "aime25", "amc23")
             for line in (DATA / f"{f}.jsonl").read_text().splitlines()}
    cases = load_cases()
    assert len(cases) >= 100
    assert all(c["gold"] in golds for c in cases)
    kinds = {c["kind"] for c in cases}
    for k in ("dfrac", "decimal", "degrees dropped", "tuple without \\left/\\right", "text unwrapped",
              "thousands separator", "zero-padded", "sign flip", "off-by-one", "wrong interval bracket",
              "wrong tuple element", "degree sign", "matrix first entry only", "matrix row dropped",
              "matrix first row kept, rest zero", "\\frac in a matrix", "decimals in a matrix", "bmatrix",
              "number list reordered", "number list element dropped", "number list element changed"):
        assert k in kinds, k
    assert 0.25 < sum(c["expected_correct"] for c in cases) / len(cases) < 0.75  # both labels well represented


def test_verifier_agreement_at_least_99_5_percent():
    cases = load_cases()
    got = [grade_answer(c["gold"], c["prediction"]) for c in cases]
    disagree = [(c["gold"], c["prediction"], c["expected_correct"], o.value)
                for c, o in zip(cases, got) if (o is Outcome.CORRECT) != c["expected_correct"]]
    agreement = 1 - len(disagree) / len(cases)
    print(f"\nverifier agreement {agreement:.4f} on {len(cases)} cases; disagreements:")
    for d in disagree:
        print("  gold=%r pred=%r expected_correct=%s got=%s" % d)
    assert agreement >= 0.995


SOL = "1+2<|end_of_thought|>\n\n<|begin_of_solution|>"


@pytest.mark.parametrize("response,gold,outcome", [
    (SOL + r"\boxed{42}", "42", Outcome.CORRECT),
    (SOL + r"\boxed{ 42 }", "42", Outcome.CORRECT),
    (SOL + r"\boxed{-7}", "-7", Outcome.CORRECT),
    (SOL + r"\boxed{007}", "7", Outcome.CORRECT),
    (SOL + r"\boxed{41}", "42", Outcome.WRONG),
    (r"first \boxed{3} then \boxed{4}", "4", Outcome.CORRECT),  # the last box
    (r"\boxed{3}<|begin_of_solution|>\boxed{4}", "3", Outcome.WRONG),  # the solution block's box
    (SOL + "42", "42", Outcome.PRED_UNPARSEABLE),  # no box
    (SOL + r"\boxed{4 2}", "42", Outcome.PRED_UNPARSEABLE),  # not an integer
    (SOL + r"\boxed{4.0}", "4", Outcome.PRED_UNPARSEABLE),
    (SOL + r"\boxed{abc}", "42", Outcome.PRED_UNPARSEABLE),
    (SOL + r"\boxed{}", "0", Outcome.PRED_UNPARSEABLE),
    (SOL + r"\boxed{{42}}", "42", Outcome.PRED_UNPARSEABLE),  # nested braces are read in full
    (SOL + r"\boxed{3}", "x", Outcome.GOLD_UNPARSEABLE),
])
def test_grade_arith(response, gold, outcome):
    assert grade_arith(gold, response).outcome is outcome


def test_one_grader_per_dataset():
    assert GRADERS == {"arithmetic": grade_arith, "math": grade_math}
    assert grader_of({"answer": "3"}) is grade_arith and grader_of({"answer": "3", "grader": ""}) is grade_arith
    assert grader_of({"answer": "3", "grader": "math"}) is grade_math
    with pytest.raises(ValueError):
        grader_of({"answer": "3", "grader": "code"})


def test_one_boxed_extractor_and_one_grader_per_dataset_in_the_library():
    """grep-style: the only box-reading code is ``last_boxed``; graders are defined in the grader modules only."""
    boxed_readers, graders = [], []
    for f in sorted((ROOT / "varreason").rglob("*.py")):
        text = f.read_text()
        rel = f.relative_to(ROOT).as_posix()
        if re.search(r"re\.compile\(r?[\"'].*boxed", text) or re.search(r"finditer\(r?[\"'].*boxed", text):
            boxed_readers.append(rel)
        graders += [f"{rel}:{m}" for m in re.findall(r"^def (grade_?[a-z]*)\(", text, re.M)]
    assert boxed_readers == ["varreason/eval/grader.py"]
    assert sorted(graders) == ["varreason/eval/code_grader.py:grade_code", "varreason/eval/grader.py:grade_answer",
                               "varreason/eval/grader.py:grade_arith", "varreason/eval/grader.py:grade_choice",
                               "varreason/eval/grader.py:grade_math", "varreason/pipeline/sample.py:grade"]
