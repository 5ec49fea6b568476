"""The evaluation prompts (method.md §8, §13).

``SKY_T1_REASONER`` is the reasoner template of params.yaml's ``qwen3`` profile (ChatML, Sky-T1 system prompt,
``<|begin_of_thought|>\n\n`` prefill); ``TINY_REASONER`` the ``tiny`` profile's. Tests check both still equal
params.yaml. Math problems get the paper's instruction ``Return your final response within \boxed{}.`` in
front of the problem, as SkyThought's task templates put it (``"Return your final response within
\\boxed{{}}. {problem}"``).

Differences from the paper: SkyThought's prefill for the paper's models is literally ``<begin_of_thought>\n\n``
(no ``|``, method.md §13); we prefill the training format ``<|begin_of_thought|>\n\n`` that the reasoner was
trained on.
"""

from __future__ import annotations

SKY_T1_REASONER = "<|im_start|>system\nYour role as an assistant involves thoroughly exploring questions through a systematic long thinking process before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, backtracing, and iteration to develop well-considered thinking process. Please structure your response into two main sections: Thought and Solution. In the Thought section, detail your reasoning process using the specified format: <|begin_of_thought|> {thought with steps separated with '\\n\\n'} <|end_of_thought|> Each step should include detailed considerations such as analisying questions, summarizing relevant findings, brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting previous steps. In the Solution section, based on various attempts, explorations, and reflections from the Thought section, systematically present the final solution that you deem correct. The solution should remain a logical, accurate, concise expression style and detail necessary step needed to reach the conclusion, formatted as follows: <|begin_of_solution|> {final formatted, precise, and clear solution} <|end_of_solution|> Now, try to solve the following question through the above guidelines:<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n<|begin_of_thought|>\n\n"
TINY_REASONER = '<|im_start|>{question}<|im_end|><|begin_of_thought|>'
BOXED_INSTRUCTION = "Return your final response within \\boxed{}."


def math_prompt(problem: str, template: str = SKY_T1_REASONER) -> str:
    return template.replace("{question}", f"{BOXED_INSTRUCTION} {problem}")


def arith_prompt(question: str, template: str = TINY_REASONER) -> str:
    return template.replace("{question}", question)


# Hub suites (SkyThought's task templates, method.md §13). GPQA asks for the letter only; MMLU-Pro lists its
# options as "Answer Choices: (A) .. (B) ..". LiveCodeBench: SkyThought's stdin / non-stdin templates; for
# LeetCode-style problems we also show the starter code (SkyThought's template omits it, so the model must guess
# the class and method name the tests call).
GPQA_INSTRUCTION = ("Return your final response within \\boxed{} and only include the letter choice (A, B, C, or D) "
                    "as your final response.")
LCB_STDIN = ("Generate an executable Python function generated from the given prompt. The function should take "
             "stdin as input and print the output. Simply call the function after the definition.")
LCB_FUNCTIONAL = ("Generate an executable Python function generated from the given prompt. Return the function "
                  "body without invoking it at the final solution.")


def gpqa_prompt(question: str, choices: list[str], template: str = SKY_T1_REASONER) -> str:
    """``choices`` already shuffled; lettered A-D as SkyThought does: ``A) x, B) y, C) z, D) w``."""
    options = ", ".join(f"{chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return template.replace("{question}", f"{GPQA_INSTRUCTION} {question}\n{options}")


def mmlu_pro_prompt(question: str, options: list[str], template: str = SKY_T1_REASONER) -> str:
    listed = " ".join(f"({chr(65 + i)}) {str(o).strip()}" for i, o in enumerate(options))
    return template.replace("{question}", f"{BOXED_INSTRUCTION} {question}\nAnswer Choices: {listed}")


def code_prompt(question: str, starter_code: str = "", template: str = SKY_T1_REASONER) -> str:
    """stdin problems have no starter code; functional (LeetCode) ones show theirs after the statement."""
    if not starter_code.strip():
        return template.replace("{question}", f"{LCB_STDIN} {question}")
    return template.replace("{question}", f"{LCB_FUNCTIONAL} {question}\n\n```python\n{starter_code}\n```")
