"""The reasoner's and the posterior's chat formats (method.md §8).

Reasoner prompt ends with the ``<|begin_of_thought|>`` prefill; its response is
``{trace}<|end_of_thought|>\\n\\n<|begin_of_solution|>{solution}<|end_of_solution|>``. The posterior prompt also
carries the answer hint and its response is the trace alone, closed by ``<|end_of_thought|>``.

Difference from the reference: it cuts responses at the string ``'<|end_of'`` so its answer span starts with
``_thought|>``; we cut at the full end-of-thought marker and count the marker as the last trace token, which
keeps the trace/answer boundary a token boundary under any tokenizer that keeps the marker whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from varreason.config import PromptConfig


def reasoner_prompt(p: PromptConfig, question: str) -> str:
    return p.reasoner.replace("{question}", question)


def posterior_prompt(p: PromptConfig, question: str, hint: str) -> str:
    return p.posterior.replace("{question}", question).replace("{hint}", hint)


def boxed(answer: str) -> str:
    return f"\\boxed{{{answer}}}"


def hint_of(q: dict) -> str:
    """The posterior's answer hint for a task row: its ``hint`` column (Bespoke: the reference solution), else
    the answer (the tiny task)."""
    return q.get("hint") or q["answer"]


def reference_solution(q: dict) -> str:
    """The reference solution block's content: the row's ``solution`` (Bespoke), else ``\\boxed{answer}``."""
    return q.get("solution") or boxed(q["answer"])


def trace_target(p: PromptConfig, trace: str) -> str:
    """What the posterior emits and what pi scores as the thinking part: the trace and its closing marker."""
    return trace + p.end_of_thought


def answer_target(p: PromptConfig, solution: str) -> str:
    """The answer span after the trace (scored by the GML estimator)."""
    return f"\n\n{p.begin_of_solution}{solution}{p.end_of_solution}"


def full_response(p: PromptConfig, trace: str, solution: str) -> str:
    return trace_target(p, trace) + answer_target(p, solution)


@dataclass(frozen=True)
class ParsedResponse:
    trace: str | None  # None when the end-of-thought marker never came
    solution: str | None  # text inside the solution block, None when absent


def parse_response(p: PromptConfig, text: str) -> ParsedResponse:
    """Split a sampled response into trace and solution. Missing markers yield None (counted by callers)."""
    if p.end_of_thought not in text:
        return ParsedResponse(None, None)
    trace, rest = text.split(p.end_of_thought, 1)
    if p.begin_of_solution not in rest:
        return ParsedResponse(trace, None)
    sol = rest.split(p.begin_of_solution, 1)[1]
    return ParsedResponse(trace, sol.split(p.end_of_solution, 1)[0])
