"""The false-positive audit (every shipped gold against itself and its mechanical perturbations), the
differential check against math_verify alone, and the family cases (docs/evaluation.md)."""

from pathlib import Path

import pytest

from varreason.eval import audit
from varreason.eval.perturb import perturbations, split_top

HERE = Path(__file__).resolve().parent
PMATRIX = r"\begin{pmatrix} -18 \\ -49 \\ 96 \end{pmatrix}"


def kinds(gold: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind, text in perturbations(gold):
        out.setdefault(kind, []).append(text)
    return out


def test_vector_perturbations():
    k = kinds(PMATRIX)
    assert k["first component only"] == ["-18"]
    assert r"\begin{pmatrix} -18 \\ -49 \end{pmatrix}" in k["drop component"] and len(k["drop component"]) == 3
    assert r"\begin{pmatrix} -18 \\ 49 \\ 96 \end{pmatrix}" in k["negate component"]
    assert k["number"][0] == r"\begin{pmatrix} -19 \\ -49 \\ 96 \end{pmatrix}"
    assert k["all numbers"] == [r"\begin{pmatrix} -19 \\ -50 \\ 97 \end{pmatrix}"]


def test_interval_tuple_and_list_perturbations():
    k = kinds(r"\left( 3, \frac{\pi}{2} \right)")
    assert k["bracket"] == [r"\left[ 3, \frac{\pi}{2} \right)", r"\left( 3, \frac{\pi}{2} \right]"]
    assert k["first component only"] == ["3"]
    assert kinds("(0,9) \\cup (9,36)")["drop component"] == ["(9,36)", "(0,9)"]
    assert kinds(r"(2,\infty)")["bracket"] == [r"[2,\infty)", r"(2,\infty]"]
    assert r"(2, \infty+1)" not in kinds(r"(2,\infty)")["change component"]  # infinity + 1 is infinity
    lst = kinds("3, 5, 7")
    assert lst["drop component"] == ["5, 7", "3, 7", "3, 5"] and "3, 5, -7" in lst["negate component"]
    assert "bracket" not in kinds(r"\{1,2\}")  # a set is no interval


def test_number_sign_and_special_perturbations():
    assert perturbations("025") == [("number", "026"), ("sign", "-025")]
    assert perturbations(".0000672") == [("number", ".0000673"), ("sign", "-.0000672")]
    assert perturbations("0") == [("number", "1")]  # -0 = 0 is no perturbation
    assert perturbations(r"10,\!080") == [("number", r"11,\!080"), ("number", r"10,\!081"),
                                          ("all numbers", r"11,\!081"), ("sign", r"-(10,\!080)")]
    assert perturbations(r"15\mbox{ cm}^2") == [("number", r"16\mbox{ cm}^2"), ("sign", r"-15\mbox{ cm}^2")]
    assert [t for _, t in perturbations(r"\text{(C)}")] == [rf"\text{{({c})}}" for c in "ABDE"]
    assert perturbations(r"\text{Evelyn}") == []
    assert perturbations("y = 2x + 3")[-1] == ("sign", "y = -(2x + 3)")


def test_split_top_ignores_nested_separators():
    assert split_top(r"(1,2), [3,4), \{5,6\}", ",") == ["(1,2)", "[3,4)", r"\{5,6\}"]
    assert split_top(r"\left( a, b \right), c", ",") == [r"\left( a, b \right)", "c"]


def test_differential_names_the_step():
    assert audit.differential_reason("90^\\circ", "90°") == "normalize()"
    assert audit.differential_reason("52_8", "52_9") == "base subscript"
    assert audit.differential_reason("(2,\\infty)", "(2,\\infty]") == "closed bracket at infinity"
    assert audit.differential_reason(".0000672", ".0000673") == "float rounding"
    assert audit.differential_reason("5", "6") == "none"
    assert audit.library_alone("52_8", "52_9")  # what the project fixes
    d = audit.differential([{"source": "t", "gold": "52_8", "pred": "52_9", "expected": False},
                            {"source": "t", "gold": "5", "pred": "5", "expected": True}])
    assert (d["n"], len(d["disagreements"]), d["worse"]) == (2, 1, [])


@pytest.mark.slow
def test_audit_has_no_false_positive_and_no_false_negative():
    """Every shipped gold (MATH500, AIME24/25, AMC23) and hub-suite fixture gold graded against itself and its
    perturbations; then the differential over every labelled maths case. The numbers are docs/evaluation.md's."""
    golds = audit.benchmark_golds() + audit.suite_golds()
    res = audit.audit(golds)
    assert res["golds"] == {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "olympiadbench": 3,
                            "gpqa_diamond": 3, "mmlu_pro": 3}
    assert res["n_perturbations"] > 1700 and set(res["perturbations_by_kind"]) == {
        "number", "all numbers", "drop component", "first component only", "change component",
        "negate component", "sign", "bracket", "choice"}
    assert res["false_positives"] == [] and res["self_false_negatives"] == []
    diff = audit.differential(audit.labelled(golds, HERE / "verifier_cases.jsonl", HERE / "grader_families.jsonl"))
    assert diff["n_normalize_changed"] > 0 and diff["worse"] == []
    assert {d["reason"] for d in diff["disagreements"]} <= {"normalize()", "base subscript", "float rounding",
                                                             "closed bracket at infinity", "percentage gold"}


def test_family_cases_against_math_verify_alone():
    """grade_math agrees with the label at least wherever math_verify alone does, except the by-design misses:
    only the last box is read, and a response without a box has no answer."""
    fam = audit.families(HERE / "grader_families.jsonl")
    project_only_misses = [(m["gold"], m["note"]) for m in fam["misses"]
                           if m["project"] != m["expected"] and m["library"] == m["expected"]]
    assert project_only_misses == [("1,2", "by design: only the last box is read"),
                                   ("34", "by design: no box, no answer")]
    assert fam["project_agrees"] >= fam["library_agrees"] and fam["n"] >= 170
