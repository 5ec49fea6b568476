"""The embedded ``arithmetic`` task: multi-step integer expressions whose thinking trace is the reduction.

A question is an expression of ``level`` operations over operands in ``[1, max_operand]`` with ``ops`` (default
``+ - *``) and the usual precedence, e.g. ``3+4*5-2``. With ``modulus`` m every intermediate value is reduced
mod m (so with m = 10 every number is one digit). The gold trace rewrites the expression one operation at a
time (multiplications first, then left to right), one line per step; for ``3+4*5-2`` mod 10::

    3+0-2
    3-2
    1

The answer is the final integer. Answering directly needs the whole computation in one step, which a small
model cannot do; the trace turns it into a chain of local rewrites, so thinking genuinely helps. Generation is
deterministic in ``seed``; held-out questions never appear in training. Answers are graded by
``varreason.eval.grader.grade_arith`` (rewards and evaluation alike).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from varreason.config import ConfigError

OPS = "+-*"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    level: int
    split: str  # "train" | "heldout"
    gold_trace: str | None  # only on the seed subset of train


def _tokens(expr: str) -> list[str]:
    return re.findall(r"\d+|[-+*]", expr)


def reduction_steps(expr: str, modulus: int | None = None) -> list[str]:
    """The expression after each single operation, ending with the value. ``"3+4*5-2"`` ->
    ``["3+20-2", "23-2", "21"]`` (``["3+0-2", "3-2", "1"]`` mod 10). Negative intermediate values fold their
    sign into the operator before them."""
    toks = _tokens(expr)
    nums: list[int] = [int(t) for t in toks[0::2]]
    ops: list[str] = toks[1::2]
    steps = []
    while ops:
        i = ops.index("*") if "*" in ops else 0
        a, b, op = nums[i], nums[i + 1], ops[i]
        value = a * b if op == "*" else a + b if op == "+" else a - b
        if modulus:
            value %= modulus
        nums[i : i + 2] = [value]
        del ops[i]
        steps.append(_render(nums, ops))
    return steps


def _render(nums: list[int], ops: list[str]) -> str:
    out = str(nums[0])
    for op, n in zip(ops, nums[1:]):
        # "a+-5" would be ambiguous to read back; fold the sign into the operator.
        if n < 0:
            op, n = {"+": "-", "-": "+", "*": "*-"}[op], -n
        out += f"{op}{n}"
    return out


def evaluate(expr: str, modulus: int | None = None) -> int:
    if _tokens(expr)[1:]:
        return int(reduction_steps(expr, modulus)[-1])
    return int(expr) % modulus if modulus else int(expr)


def trace_is_exact(expr: str, trace: str, modulus: int | None = None) -> bool:
    """Whether ``trace`` is exactly the gold reduction of ``expr`` (every step right, not only the answer)."""
    return trace.strip("\n").split("\n") == reduction_steps(expr, modulus)


def generate(n_train: int, n_heldout: int, n_seed_traces: int, levels: list[int], max_operand: int,
             seed: int, ops: str = OPS, modulus: int | None = None) -> list[Question]:
    """Deterministic train + held-out questions; ``n_seed_traces`` random train questions carry gold traces.

    Levels are drawn uniformly. Expressions are unique across both splits.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    exprs: list[tuple[str, int]] = []
    total = n_train + n_heldout
    attempts = 0
    while len(exprs) < total:
        attempts += 1
        if attempts > 50 * total:
            raise ConfigError(f"data: cannot draw {total} distinct questions from levels={levels}, "
                              f"max_operand={max_operand}; raise data.max_operand or add data.levels")
        level = rng.choice(levels)
        expr = str(rng.randint(1, max_operand))
        for _ in range(level):
            expr += rng.choice(ops) + str(rng.randint(1, max_operand))
        if expr not in seen:
            seen.add(expr)
            exprs.append((expr, level))
    seed_idx = set(rng.sample(range(n_train), n_seed_traces))
    out = []
    for i, (expr, level) in enumerate(exprs):
        split = "train" if i < n_train else "heldout"
        trace = "\n".join(reduction_steps(expr, modulus)) if i in seed_idx else None
        out.append(Question(id=f"{split}-{i:06d}", question=expr, answer=str(evaluate(expr, modulus)), level=level,
                            split=split, gold_trace=trace))
    return out


def charset(max_operand: int) -> list[str]:
    """Every character a question, trace or answer of this task can contain."""
    return sorted(set("0123456789+-*=\n\\{}boxed ") | set(str(max_operand)))
