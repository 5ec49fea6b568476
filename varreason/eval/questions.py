"""What each benchmark puts into the reasoner template's ``{question}`` (method.md §13).

The chat format itself is the profile's ``prompt.reasoner`` (params.yaml), applied by ``lm.VarReasonLM`` through
``varreason.prompts.reasoner_prompt``, the function training uses; evaluation has no template of its own. Here
only the benchmark's part: SkyThought's instruction in front of the problem (``"Return your final response
within \\boxed{}. {problem}"`` for maths), the lettered options of GPQA and MMLU-Pro, the code instructions of
LiveCodeBench. The tiny task's question is the expression alone, as in training.
"""

from __future__ import annotations

BOXED_INSTRUCTION = "Return your final response within \\boxed{}."
# SkyThought's task templates. GPQA asks for the letter only; MMLU-Pro lists its options as "Answer Choices: (A) ..
# (B) ..". LiveCodeBench: SkyThought's stdin / non-stdin templates; for LeetCode-style problems we also show the
# starter code (SkyThought's template omits it, so the model must guess the class and method name the tests call).
GPQA_INSTRUCTION = ("Return your final response within \\boxed{} and only include the letter choice (A, B, C, or D) "
                    "as your final response.")
LCB_STDIN = ("Generate an executable Python function generated from the given prompt. The function should take "
             "stdin as input and print the output. Simply call the function after the definition.")
LCB_FUNCTIONAL = ("Generate an executable Python function generated from the given prompt. Return the function "
                  "body without invoking it at the final solution.")


def math_question(problem: str) -> str:
    return f"{BOXED_INSTRUCTION} {problem}"


def gpqa_question(question: str, choices: list[str]) -> str:
    """``choices`` already shuffled; lettered A-D as SkyThought does: ``A) x, B) y, C) z, D) w``."""
    options = ", ".join(f"{chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return f"{GPQA_INSTRUCTION} {question}\n{options}"


def mmlu_pro_question(question: str, options: list[str]) -> str:
    listed = " ".join(f"({chr(65 + i)}) {str(o).strip()}" for i, o in enumerate(options))
    return f"{BOXED_INSTRUCTION} {question}\nAnswer Choices: {listed}"


def code_question(question: str, starter_code: str = "") -> str:
    """stdin problems have no starter code; functional (LeetCode) ones show theirs after the statement."""
    if not starter_code.strip():
        return f"{LCB_STDIN} {question}"
    return f"{LCB_FUNCTIONAL} {question}\n\n```python\n{starter_code}\n```"
