"""lm-eval task hooks (``!function utils.*``): prompts and per-document grading. All logic lives in
``varreason.eval.prompts`` and ``varreason.eval.grader``; this file only adapts them to lm-eval's signatures."""

from varreason.eval.grader import Outcome, grade_answer, grade_math
from varreason.eval.prompts import arith_prompt, math_prompt


def doc_to_text_math(doc: dict) -> str:
    return math_prompt(doc["problem"])


def doc_to_text_arith(doc: dict) -> str:
    return arith_prompt(doc["question"])


def _summary(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    return {"avg_at_n": sum(o is Outcome.CORRECT for o in outcomes) / n,
            "n_samples": n,
            "n_wrong": sum(o is Outcome.WRONG for o in outcomes),
            "n_pred_unparseable": sum(o is Outcome.PRED_UNPARSEABLE for o in outcomes),
            "n_gold_unparseable": sum(o is Outcome.GOLD_UNPARSEABLE for o in outcomes)}


def _responses(results: list) -> list[str]:
    # with the take_first_k filter, results == [[response_1, ..., response_n]]
    return list(results[0]) if results and isinstance(results[0], (list, tuple)) else list(results)


def process_results_math(doc: dict, results: list) -> dict:
    """avg@n of this question (mean correctness of its n samples) and the count of each failure kind."""
    return _summary([grade_math(doc["answer"], r).outcome for r in _responses(results)])


def process_results_arith(doc: dict, results: list) -> dict:
    """The tiny task through the same extractor and verifier (its answers are integers)."""
    return _summary([grade_math(doc["answer"], r).outcome for r in _responses(results)])


def agg_sum(values: list) -> float:
    return sum(values)


__all__ = ["grade_answer", "doc_to_text_math", "doc_to_text_arith", "process_results_math", "process_results_arith",
           "agg_sum"]
