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
