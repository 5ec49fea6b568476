"""The LiveCodeBench code verifier: extraction, each outcome on hand-written programs, the sandbox's limits."""

import json

import pytest

from varreason.eval.code_grader import extract_code, grade_code, outputs_match, parse_tests
from varreason.eval.grader import Outcome

ADD = json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
                  {"input": "10 -4\n", "output": "6\n", "testtype": "stdin"}])
DOUBLE = json.dumps([{"input": "[1, 2, 3]", "output": "[2, 4, 6]", "testtype": "functional"}])
META = json.dumps({"func_name": "doubleAll"})


def block(code: str) -> str:
    return f"thoughts<|end_of_thought|>\n\n<|begin_of_solution|>Here:\n```python\n{code}\n```\n"


def test_extract_last_python_block_of_the_solution():
    text = ("```python\nprint(0)\n```<|end_of_thought|><|begin_of_solution|>```python\nprint(1)\n```\n"
            "then ```py\nprint(2)\n``` and ```text\nnot code\n```")
    assert extract_code(text) == "print(2)\n"
    assert extract_code("```python\nprint(1)\n") is None  # unclosed: generation stopped inside the block
    assert extract_code("no code at all") is None


def test_correct_program_passes_every_public_test():
    g = grade_code(ADD, block("a, b = map(int, input().split())\nprint(a + b)"))
    assert g.outcome is Outcome.CORRECT and "print(a + b)" in g.extracted


def test_wrong_output_is_wrong():
    # a*b fails test 1; printing 3 passes test 1 and fails test 2
    assert grade_code(ADD, block("a, b = map(int, input().split())\nprint(a * b)")).outcome is Outcome.WRONG
    assert grade_code(ADD, block("input()\nprint(3)")).outcome is Outcome.WRONG


def test_runtime_error_is_wrong():
    assert grade_code(ADD, block("raise SystemExit(1)")).outcome is Outcome.WRONG
    assert grade_code(ADD, block("print(1 // 0)")).outcome is Outcome.WRONG


def test_timeout_counted_apart():
    g = grade_code(ADD, block("while True:\n    pass"), timeout=1.0)
    assert g.outcome is Outcome.TIMEOUT


def test_runaway_output_is_capped_and_wrong():
    # past the 16 MiB file-size limit the write fails (SIGXFSZ): wrong, not a hung or bloated grader
    assert grade_code(ADD, block("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")).outcome is Outcome.WRONG


def test_syntax_error_and_no_block_are_unparseable():
    assert grade_code(ADD, block("def f(:\n    return")).outcome is Outcome.PRED_UNPARSEABLE
    assert grade_code(ADD, "the answer is print(3)").outcome is Outcome.PRED_UNPARSEABLE


def test_network_is_disabled():
    # prints the right answer only after opening a socket: passes only if sockets work
    code = "import socket\nsocket.socket()\na, b = map(int, input().split())\nprint(a + b)"
    assert grade_code(ADD, block(code)).outcome is Outcome.WRONG


def test_functional_tests_call_the_solution_method():
    # List comes from the prelude's imports, as in LiveCodeBench's harness
    good = ("class Solution:\n    def doubleAll(self, nums: List[int]) -> List[int]:\n"
            "        return [2 * x for x in nums]")
    bad = "class Solution:\n    def doubleAll(self, nums):\n        return nums"
    assert grade_code(DOUBLE, block(good), META).outcome is Outcome.CORRECT
    assert grade_code(DOUBLE, block(bad), META).outcome is Outcome.WRONG


@pytest.mark.parametrize("tests,meta", [("not json", None), ("[]", None), (json.dumps([{"input": "1"}]), None),
                                        (DOUBLE, "{}")])
def test_broken_tests_are_gold_unparseable_never_correct(tests, meta):
    g = grade_code(tests, block("print(3)"), meta)
    assert g.outcome is Outcome.GOLD_UNPARSEABLE
    with pytest.raises(ValueError):
        parse_tests(tests, meta)


def test_outputs_match():
    assert outputs_match("3\n\n", "3")
    assert outputs_match("1 2  3\n4", "1 2 3\n4\n")
    assert outputs_match("0.3333333", "0.33333333")
    assert not outputs_match("1 2\n3", "1 2 3")  # lines matter
    assert not outputs_match("0.34", "0.33") and not outputs_match("", "0")
