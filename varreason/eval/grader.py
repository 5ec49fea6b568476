"""The one ``\\boxed{}`` extractor and the one grader per dataset, used by rewards, RFT filtering, the posterior
refresh and evaluation alike (nanochat's ``reward()`` calls its ``evaluate()``).

* ``extract_answer``: the content of the last ``\\boxed{...}`` (nested braces allowed) of the solution block
  ``<|begin_of_solution|>...<|end_of_solution|>`` when the response has one, else of the whole response. The
  paper's harness (SkyThought) takes the last ``\\boxed{}`` of the whole response; restricting to the solution
  block when present only differs when a box in the thought comes after the solution, which cannot happen in
  the trained format. Only the last box is read: a response that boxes several parts of a list is graded by
  its last box alone (SkyThought does the same).
* ``grade_math`` (MATH500, AIME, AMC, OlympiadBench, Bespoke-Stratos): ``math_verify`` (parse + verify) on the
  extracted answer against the gold, both wrapped in ``\\boxed{}`` so that math_verify reads exactly them. The
  pre-processing is kept to what math_verify gets wrong on its own, each step with the case it fixes
  (docs/evaluation.md has the audit that checks them):

  - ``normalize``: a Unicode degree sign (or ``\\degree``) becomes ``^\\circ`` (``90°`` is unparseable to
    math_verify); a pure number with space-like thousands separators loses them (``5\\,000`` parses as
    ``5*0 = 0``, so the gold ``5\\,000`` would accept ``0``); a full stop closing the box is dropped
    (``\\boxed{120.}`` is unparseable);
  - numbers with a base subscript (``52_8``): math_verify drops the subscript, so ``52_9`` would equal
    ``52_8``; when the gold has a base, a prediction with another base is wrong (no base at all is still graded
    by its digits, as math_verify does: ``52`` = ``52_8``);
  - a closed bracket at infinity (``(2,\\infty]``) is no interval of reals; sympy opens it silently, so
    math_verify would accept it for ``(2,\\infty)``: it is wrong unless the gold has one too;
  - float precision: math_verify rounds floats to 6 decimal places, so ``.0000673`` would equal ``.0000672``;
    the rounding keeps at least as many decimals as the gold has.

  A gold that cannot be parsed is ``GOLD_UNPARSEABLE`` and never scores. SkyThought uses its own
  ``math_equal``; math_verify is the issue's choice, so rare edge cases can differ.
* ``grade_arith`` (the tiny arithmetic task): integer equality of the extracted answer.
* ``grade_choice`` (GPQA, MMLU-Pro): multiple-choice letters A-J, from the box or a trailing "answer: X"; with
  ``n_options`` a letter past the question's options is ``PRED_UNPARSEABLE`` (not a choice at all) and a gold
  past them ``GOLD_UNPARSEABLE``.
* Code (LiveCodeBench) is graded in ``code_grader``; it adds ``TIMEOUT`` to these outcomes.

``GRADERS`` names the grader of each dataset (a task row's ``grader`` column; the tiny task's rows have none).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

BEGIN_SOLUTION, END_SOLUTION = "<|begin_of_solution|>", "<|end_of_solution|>"


class Outcome(str, Enum):
    CORRECT = "correct"
    WRONG = "wrong"
    PRED_UNPARSEABLE = "prediction_unparseable"  # no box, or a box the grader cannot read
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


# ---- math: math_verify plus the few fixes above
_DEGREE = re.compile(r"\s*(?:\^\s*)?(?:\{\s*°\s*\}|°|\\degree\b)")
_SPACED_THOUSANDS = re.compile(r"^([+-]?\d{1,3}(?:(?:\\,|\\;|\\:|\\ |~| )\d{3})+)(\.\d+)?$")
_SPACE_SEP = re.compile(r"\\,|\\;|\\:|\\ |~| ")
_BASE = re.compile(r"(?<![\w.\\])\d+_\{?(\d+)\}?")
_DECIMALS = re.compile(r"\d*\.(\d+)")
_FULL_STOP = re.compile(r"(?<!\.)\.\s*$")
_CLOSED_INFINITY = re.compile(r"\[\s*[-+]?\s*\\infty|\\infty\s*(?:\\right\s*)?\]")
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*(?:\\%|%|\\text\{\s*(?:\\%|percent)\s*\})$")


def normalize(ans: str) -> str:
    """The string fixes applied before parsing (see the module docstring); everything else is left alone."""
    s = _FULL_STOP.sub("", _DEGREE.sub(r"^\\circ", ans.strip()))
    m = _SPACED_THOUSANDS.match(s)
    if m:
        s = _SPACE_SEP.sub("", m.group(1)) + (m.group(2) or "")
    return s


def _bases(s: str) -> set[str]:
    return set(_BASE.findall(s))


def _float_rounding(gold: str) -> int:
    """math_verify's default 6 decimal places, or more when the gold itself has more."""
    return max([6] + [len(d) for d in _DECIMALS.findall(gold)])


def _timeout() -> int | None:
    """math_verify's timeouts use SIGALRM, which only works in the main thread; elsewhere run without one."""
    return 5 if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=8192)
def _parse(ans: str) -> tuple:
    """math_verify's parse of ``\\boxed{ans}`` (cached: a gold is parsed once for all its samples)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    try:
        return tuple(parse("\\boxed{" + ans + "}", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
                           parsing_timeout=_timeout()))
    except Exception:  # noqa: BLE001 - math_verify raises assorted sympy/antlr errors on odd inputs
        return ()


def _verify(gold: tuple, pred: tuple, float_rounding: int = 6) -> bool:
    from math_verify import verify

    try:
        return bool(verify(list(gold), list(pred), float_rounding=float_rounding, timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001
        return False


def _parsed(parsed: tuple) -> bool:
    """math_verify returns the raw string as a fallback element; only a sympy object counts as parsed."""
    return any(not isinstance(x, str) for x in parsed)


def grade_answer(gold: str, pred: str | None) -> Outcome:
    """Grade an already-extracted prediction against a gold answer string (the core of ``grade_math``)."""
    g = normalize(gold)
    percent = _PERCENT.match(g)
    # A percentage gold n% accepts n and n/100 (what math_verify does under its antlr 4.13 parser; its 4.9.3
    # parser, which DVC's hydra requires, cannot read \% in a box at all): parse the two values explicitly.
    gold_parsed = _parse(percent[1]) + _parse(f"\\frac{{{percent[1]}}}{{100}}") if percent else _parse(g)
    if not _parsed(gold_parsed):
        return Outcome.GOLD_UNPARSEABLE
    if pred is None or not pred.strip():
        return Outcome.PRED_UNPARSEABLE
    p = normalize(pred)
    if percent and _PERCENT.match(p):
        p = _PERCENT.match(p)[1]
    pred_parsed = _parse(p)
    if not _parsed(pred_parsed):
        return Outcome.PRED_UNPARSEABLE
    if _bases(g) and _bases(p) - _bases(g):
        return Outcome.WRONG
    if _CLOSED_INFINITY.search(p) and not _CLOSED_INFINITY.search(g):
        return Outcome.WRONG
    return Outcome.CORRECT if _verify(gold_parsed, pred_parsed, _float_rounding(g)) else Outcome.WRONG


def grade_math(gold: str, response: str) -> Grade:
    """Extract the answer from a full response and grade it (the maths datasets' grader)."""
    pred = extract_answer(response)
    return Grade(grade_answer(gold, pred), pred)


# ---- the tiny arithmetic task
_INTEGER = re.compile(r"[+-]?\d+")


def grade_arith(gold: str, response: str) -> Grade:
    """The tiny task's grader: the extracted answer must be an integer (surrounding spaces allowed) equal to the
    gold. Anything else in the box is ``PRED_UNPARSEABLE``; a gold that is no integer is ``GOLD_UNPARSEABLE``."""
    pred = extract_answer(response)
    if not _INTEGER.fullmatch(str(gold).strip()):
        return Grade(Outcome.GOLD_UNPARSEABLE, pred)
    if pred is None or not _INTEGER.fullmatch(pred.strip()):
        return Grade(Outcome.PRED_UNPARSEABLE, pred)
    return Grade(Outcome.CORRECT if int(pred) == int(gold) else Outcome.WRONG, pred)


# ---- multiple choice
_LETTER = re.compile(r"^\(?([A-J])\)?[.:)]?$")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)?\s*\(?([A-J])\)?\b", re.IGNORECASE)
_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def extract_choice(response: str) -> str | None:
    """A letter A-J: the last box's content (``\\text{B}``, ``(B)``, ``B.``), else the last "answer: X"."""
    block = solution_block(response)
    boxed = last_boxed(block)
    if boxed is not None:
        m = _LETTER.match(re.sub(r"\s+", "", _WRAPPER.sub(r"\1", boxed)).upper())
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


# The grader of each dataset whose answers are free text, by a task row's ``grader`` column ("" or missing: the
# tiny task). Rewards, RFT filtering and the posterior refresh (``pipeline.common.grade``) and the lm-eval tasks
# (``tasks/utils.py``) all grade through these.
GRADERS: dict[str, Callable[[str, str], Grade]] = {"arithmetic": grade_arith, "math": grade_math}


def grader_of(row: dict) -> Callable[[str, str], Grade]:
    """The grader of a task row: ``GRADERS[row["grader"]]``, the tiny task's when the row names none."""
    name = row.get("grader") or "arithmetic"
    if name not in GRADERS:
        raise ValueError(f"unknown grader {name!r}; known: {sorted(GRADERS)}")
    return GRADERS[name]
