"""lm-eval task hooks (``!function utils.*``): question text and per-document grading. All logic lives in
``varreason.eval.questions`` and ``varreason.eval.grader``; this file only adapts them to lm-eval's signatures.
``doc_to_text`` returns the question only: ``lm.VarReasonLM`` puts it into the profile's reasoner template."""

from functools import partial

from varreason.eval.code_grader import grade_code, parse_tests
from varreason.eval.grader import Outcome, grade_answer, grade_arith, grade_choice, grade_math
from varreason.eval.questions import code_question, gpqa_question, math_question, mmlu_pro_question
from varreason.eval.suites import gpqa_doc, olympiadbench_doc


def doc_to_text_math(doc: dict) -> str:
    return math_question(doc["problem"])


def doc_to_text_arith(doc: dict) -> str:
    return doc["question"]


def doc_to_text_gpqa(doc: dict) -> str:
    return gpqa_question(doc["Question"], doc["choices"])


def doc_to_text_mmlu_pro(doc: dict) -> str:
    return mmlu_pro_question(doc["question"], doc["options"])


def doc_to_text_code(doc: dict) -> str:
    """The starter code is shown only to problems with functional (LeetCode) tests, as SkyThought's is_stdin."""
    try:
        functional = parse_tests(doc["public_test_cases"], doc.get("metadata"))[1] is not None
    except (ValueError, TypeError, AttributeError):
        functional = False  # graded gold unparseable anyway
    return code_question(doc["question_content"], (doc.get("starter_code") or "") if functional else "")


def process_docs_gpqa(dataset):
    return dataset.map(gpqa_doc)


def process_docs_olympiadbench(dataset):
    return dataset.map(olympiadbench_doc)


def _with_difficulty(dataset, difficulty: str):
    return dataset.filter(lambda d: d["difficulty"] == difficulty)


process_docs_lcb_easy = partial(_with_difficulty, difficulty="easy")
process_docs_lcb_medium = partial(_with_difficulty, difficulty="medium")
process_docs_lcb_hard = partial(_with_difficulty, difficulty="hard")


def _summary(outcomes: list[Outcome], timeouts: bool = False) -> dict:
    """``timeouts``: also count ``n_timeout`` (code tasks only, so the other tasks' metrics stay as they were)."""
    n = len(outcomes)
    out = {"avg_at_n": sum(o is Outcome.CORRECT for o in outcomes) / n,
           "n_samples": n,
           "n_wrong": sum(o is Outcome.WRONG for o in outcomes),
           "n_pred_unparseable": sum(o is Outcome.PRED_UNPARSEABLE for o in outcomes),
           "n_gold_unparseable": sum(o is Outcome.GOLD_UNPARSEABLE for o in outcomes)}
    if timeouts:
        out["n_timeout"] = sum(o is Outcome.TIMEOUT for o in outcomes)
    return out


def _responses(results: list) -> list[str]:
    # with the take_first_k filter, results == [[response_1, ..., response_n]]
    return list(results[0]) if results and isinstance(results[0], (list, tuple)) else list(results)


def process_results_math(doc: dict, results: list) -> dict:
    """avg@n of this question (mean correctness of its n samples) and the count of each failure kind."""
    return _summary([grade_math(doc["answer"], r).outcome for r in _responses(results)])


def process_results_arith(doc: dict, results: list) -> dict:
    """The tiny task through its one grader, the one its rewards use (integer equality of the last box)."""
    return _summary([grade_arith(doc["answer"], r).outcome for r in _responses(results)])


def process_results_gpqa(doc: dict, results: list) -> dict:
    return _summary([grade_choice(doc["answer"], r, n_options=4).outcome for r in _responses(results)])


def process_results_mmlu_pro(doc: dict, results: list) -> dict:
    n = len(doc["options"])
    return _summary([grade_choice(doc["answer"], r, n_options=n).outcome for r in _responses(results)])


def process_results_code(doc: dict, results: list) -> dict:
    """Each sample's last python block run on the public tests (code_grader: wrong / timeout / unparseable)."""
    return _summary([grade_code(doc["public_test_cases"], r, doc.get("metadata")).outcome
                     for r in _responses(results)], timeouts=True)


def agg_sum(values: list) -> float:
    return sum(values)


__all__ = ["grade_answer", "doc_to_text_math", "doc_to_text_arith", "process_results_math", "process_results_arith",
           "agg_sum", "doc_to_text_gpqa", "doc_to_text_mmlu_pro", "doc_to_text_code", "process_docs_gpqa",
           "process_docs_olympiadbench", "process_docs_lcb_easy", "process_docs_lcb_medium", "process_docs_lcb_hard",
           "process_results_gpqa", "process_results_mmlu_pro", "process_results_code"]
