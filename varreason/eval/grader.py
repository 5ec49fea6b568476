"""The one answer extractor and the graders every benchmark task calls.

* ``extract_answer``: the content of the last ``\\boxed{...}`` (nested braces allowed) of the solution block
  ``<|begin_of_solution|>...<|end_of_solution|>`` when the response has one, else of the whole response. The
  paper's harness (SkyThought) takes the last ``\\boxed{}`` of the whole response; restricting to the solution
  block when present only differs when a box in the thought comes after the solution, which cannot happen in
  the trained format.
* ``grade_math``: ``math_verify`` (parse + verify) with the gold parsed by LaTeX extraction. Before parsing,
  both sides get two normalisations math_verify does not do: pure integers lose AIME's zero padding
  (``025`` = 25) and thousands separators (``1,000``, ``1{,}000``) are removed from pure numbers. An exact
  match of the normalised strings also counts as correct (text answers such as ``\\text{Evelyn}``), but only
  once the gold parsed: a gold that cannot be parsed is ``GOLD_UNPARSEABLE`` and never scores correct.
  SkyThought uses its own ``math_equal``; math_verify is the issue's choice, so rare edge cases can differ.
* ``grade_choice``: multiple-choice letters A-J (GPQA, MMLU-Pro), from the box or a trailing "answer: X"; with
  ``n_options`` a letter past the question's options is ``PRED_UNPARSEABLE`` (not a choice at all) and a gold
  past them ``GOLD_UNPARSEABLE``.
* Code (LiveCodeBench) is graded in ``code_grader``; it adds ``TIMEOUT`` to these outcomes.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import Enum

BEGIN_SOLUTION, END_SOLUTION = "<|begin_of_solution|>", "<|end_of_solution|>"


class Outcome(str, Enum):
    CORRECT = "correct"
    WRONG = "wrong"
    PRED_UNPARSEABLE = "prediction_unparseable"  # no box, or a box math_verify cannot parse
    GOLD_UNPARSEABLE = "gold_unparseable"  # the reference answer itself does not parse: never correct
    TIMEOUT = "timeout"  # code only: a test case ran past its time limit (code_grader)


@dataclass(frozen=True)
class Grade:
    outcome: Outcome
    extracted: str | None  # what was taken from the response (None: nothing to take)

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT


def solution_block(text: str) -> str:
    """The text inside the last solution block (its end marker may be missing: generation stops on it)."""
    if BEGIN_SOLUTION not in text:
        return text
    return text.rsplit(BEGIN_SOLUTION, 1)[1].split(END_SOLUTION, 1)[0]


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}``, braces balanced; None if absent or unclosed."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i].strip()
    return None


def extract_answer(response: str) -> str | None:
    return last_boxed(solution_block(response))


_INT = re.compile(r"^[+-]?\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:(?:,|\{,\})\d{3})+(?:\.\d+)?$")


def normalize(ans: str) -> str:
    """String normalisation applied before parsing (see the module docstring); keeps everything else."""
    s = ans.strip().strip("$").strip()
    s = re.sub(r"\\[,;!: ]", "", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    if _THOUSANDS.match(s.replace(" ", "")):
        s = s.replace(" ", "").replace("{,}", "").replace(",", "")
    if _INT.match(s):
        s = str(int(s))
    return s


def _plain(s: str) -> str:
    """For the exact-match fallback: no spaces, no ``\\text{}``/``\\mathrm{}`` wrappers, no ``\\left``/``\\right``."""
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+|\\left|\\right", "", s).lower()


def _timeout() -> int | None:
    """math_verify's timeouts use SIGALRM, which only works in the main thread; elsewhere run without one."""
    return 5 if threading.current_thread() is threading.main_thread() else None


def _parse(ans: str):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    try:
        return parse("\\boxed{" + ans + "}", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
                     parsing_timeout=_timeout())
    except Exception:  # noqa: BLE001 - math_verify raises assorted sympy/antlr errors on odd inputs
        return []


def _verify(gold, pred) -> bool:
    from math_verify import verify

    try:
        return bool(verify(gold, pred, timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001
        return False


def _parsed(parsed: list) -> bool:
    """math_verify returns the raw string as a fallback element; only a sympy object counts as parsed."""
    return any(not isinstance(x, str) for x in parsed)


def grade_answer(gold: str, pred: str | None) -> Outcome:
    """Grade an already-extracted prediction against a gold answer string."""
    g_norm = normalize(gold)
    gold_parsed = _parse(g_norm)
    if not _parsed(gold_parsed):
        return Outcome.GOLD_UNPARSEABLE
    if pred is None or not pred.strip():
        return Outcome.PRED_UNPARSEABLE
    p_norm = normalize(pred)
    if _plain(g_norm) == _plain(p_norm):
        return Outcome.CORRECT
    pred_parsed = _parse(p_norm)
    if not _parsed(pred_parsed):
        return Outcome.PRED_UNPARSEABLE
    return Outcome.CORRECT if _verify(gold_parsed, pred_parsed) else Outcome.WRONG


def grade_math(gold: str, response: str) -> Grade:
    """Extract the answer from a full response and grade it (the benchmark tasks' grader)."""
    pred = extract_answer(response)
    return Grade(grade_answer(gold, pred), pred)


_LETTER = re.compile(r"^\(?([A-J])\)?[.:)]?$")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)?\s*\(?([A-J])\)?\b", re.IGNORECASE)


def extract_choice(response: str) -> str | None:
    """A letter A-J: the last box's content (``\\text{B}``, ``(B)``, ``B.``), else the last "answer: X"."""
    block = solution_block(response)
    boxed = last_boxed(block)
    if boxed is not None:
        m = _LETTER.match(_plain(boxed).upper())
        return m.group(1) if m else None
    found = _ANSWER_IS.findall(block)
    return found[-1].upper() if found else None


def grade_choice(gold: str, response: str, n_options: int = 10) -> Grade:
    """Multiple choice over the first ``n_options`` letters of A-J: the gold must itself be one of them, else
    ``GOLD_UNPARSEABLE``; a predicted letter outside them names no option, so it is ``PRED_UNPARSEABLE``."""
    letters = "ABCDEFGHIJ"[:n_options]
    g = gold.strip().strip("()").upper()
    if len(g) != 1 or g not in letters:
        return Grade(Outcome.GOLD_UNPARSEABLE, None)
    pred = extract_choice(response)
    if pred is None or pred not in letters:
        return Grade(Outcome.PRED_UNPARSEABLE, pred)
    return Grade(Outcome.CORRECT if pred == g else Outcome.WRONG, pred)
