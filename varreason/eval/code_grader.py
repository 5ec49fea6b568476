"""Code verification for LiveCodeBench: run the response's last ``python`` block on the public test cases.

* ``extract_code``: the last fenced ```` ```python ```` (or ``py``/``python3``) block of the solution block when
  the response has one, else of the whole response (the same scope rule as ``grader.extract_answer``). An
  unclosed fence does not count: generation that stopped inside it left no program.
* ``parse_tests``: LiveCodeBench's ``public_test_cases`` (a JSON string of ``[{"input", "output", "testtype"}]``)
  and, for LeetCode-style ``functional`` tests, the method name from ``metadata`` (JSON ``{"func_name": ...}``).
* ``run_case``: one test in a fresh ``python -I`` subprocess with a wall-clock timeout (its whole process group
  is killed), an address-space/CPU/file-size limit (stdout is a file, so it is capped too), its own temp dir as
  cwd, an empty environment, sockets disabled in the program's own process and, where the kernel allows it, a
  new network namespace without interfaces (``unshare -rn``). Not a security sandbox: it keeps honest-but-wrong
  programs from hanging the eval, filling the disk or reaching the network; run untrusted models' code in a
  container.
* ``grade_code``: outcomes as in ``grader``: no block or a syntax error is ``PRED_UNPARSEABLE``, tests that do not
  parse ``GOLD_UNPARSEABLE`` (checked first, never correct), a test past its limit ``TIMEOUT``, a failing test
  or a crash ``WRONG``; ``CORRECT`` only when every public test passes. Tests run in order and stop at the
  first non-pass.

Output comparison (stdin tests): line by line after stripping, trailing blank lines ignored, and within a line
token by token, where two tokens that both parse as floats match within 1e-6 (LiveCodeBench's harness compares
the same way). Functional tests: each input line is one JSON argument of ``Solution().<func_name>(...)``, and
the JSON of the return value must equal the expected JSON.

Differences from the paper's harness (SkyThought ``livecodebench_handler``): SkyThought runs the private test
cases (base64/zlib/pickle-encoded in the dataset) in a multiprocessing worker; we run the public ones, in a
subprocess per test, as the issue asks.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from varreason.eval.grader import Grade, Outcome, solution_block

TIMEOUT_S = 6.0  # per test case, SkyThought's value for LiveCodeBench
MEMORY_BYTES = 2 << 30
OUTPUT_BYTES = 1 << 24  # RLIMIT_FSIZE: stdout and any file the program writes

_FENCE = re.compile(r"```(?:python3?|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

# Prepended to every program: LiveCodeBench's harness also pre-imports the usual modules (LeetCode solutions
# use ``List`` etc. without importing them), and sockets are disabled before the program runs.
_PRELUDE = '''\
import socket as _socket
def _no_network(*a, **k):
    raise OSError("network disabled in the code grader")
_socket.socket = _socket.create_connection = _socket.socketpair = _no_network
del _socket, _no_network
import sys, math, collections, itertools, heapq, bisect, functools, string, re
from typing import *
from collections import *
from itertools import *
from functools import *
from heapq import *
from bisect import *
sys.setrecursionlimit(1 << 16)
'''

_FUNCTIONAL_DRIVER = '''
import json as _json
_args = [_json.loads(_line) for _line in sys.stdin.read().split("\\n") if _line.strip()]
print(_json.dumps(Solution().{func}(*_args)))
'''


@dataclass(frozen=True)
class TestCase:
    input: str
    output: str
    functional: bool


def extract_code(response: str) -> str | None:
    blocks = _FENCE.findall(solution_block(response))
    return blocks[-1] if blocks else None


def parse_tests(public_test_cases: str | list, metadata: str | dict | None = None) -> tuple[list[TestCase], str | None]:
    """``(tests, func_name)``; raises ``ValueError`` when the tests are missing or malformed."""
    raw = json.loads(public_test_cases) if isinstance(public_test_cases, str) else public_test_cases
    if not isinstance(raw, list) or not raw:
        raise ValueError("no public test cases")
    tests = []
    for t in raw:
        if t.get("testtype") not in ("stdin", "functional") or not isinstance(t.get("input"), str) \
                or not isinstance(t.get("output"), str):
            raise ValueError(f"malformed test case {t!r}")
        tests.append(TestCase(t["input"], t["output"], t["testtype"] == "functional"))
    func = None
    if any(t.functional for t in tests):
        meta = json.loads(metadata) if isinstance(metadata, str) and metadata else (metadata or {})
        func = meta.get("func_name") if isinstance(meta, dict) else None
        if not func or not str(func).isidentifier():
            raise ValueError("functional tests without metadata.func_name")
    return tests, func


def _tokens_match(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    except ValueError:
        return False


def outputs_match(got: str, expected: str) -> bool:
    """stdin tests: see the module docstring."""
    g = [line.split() for line in got.strip().splitlines()]
    e = [line.split() for line in expected.strip().splitlines()]
    return len(g) == len(e) and all(len(x) == len(y) and all(map(_tokens_match, x, y)) for x, y in zip(g, e))


def _json_match(got: str, expected: str) -> bool:
    try:
        return json.loads(got.strip()) == json.loads(expected.strip())
    except ValueError:
        return False


@functools.cache
def _netns_prefix() -> tuple[str, ...]:
    """``unshare -rn`` (a user + network namespace) where the kernel allows unprivileged namespaces, else ()."""
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return ("unshare", "-rn") if ok else ()


def _limits(timeout: float):
    def apply():
        import resource

        cpu = int(math.ceil(timeout)) + 1  # soft < hard: SIGXCPU first, SIGKILL a second later
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_BYTES, OUTPUT_BYTES))
    return apply


def _owner_marker() -> dict[str, str]:
    """The run's ``VARREASON_OWNERS`` marker (varreason.procs), kept in the program's otherwise empty environment
    so that the run's reaper still finds the program if the run is killed."""
    return {k: v for k, v in os.environ.items() if k == "VARREASON_OWNERS"}


def run_case(code: str, case: TestCase, func_name: str | None = None, timeout: float = TIMEOUT_S) -> Outcome:
    """``CORRECT`` (test passed), ``WRONG`` (wrong output or a crash) or ``TIMEOUT`` for one test case."""
    program = _PRELUDE + code + (_FUNCTIONAL_DRIVER.format(func=func_name) if case.functional else "")
    with tempfile.TemporaryDirectory(prefix="vr_code_") as tmp:
        script = Path(tmp) / "main.py"
        script.write_text(program)
        # stdout goes to a file, not a pipe, so the file-size limit also caps what a runaway print can write
        with open(Path(tmp) / "stdout", "w+") as sink:
            proc = subprocess.Popen([*_netns_prefix(), sys.executable, "-I", str(script)], cwd=tmp,
                                    env={"PATH": os.defpath, "PYTHONHASHSEED": "0", **_owner_marker()},
                                    stdin=subprocess.PIPE,
                                    stdout=sink, stderr=subprocess.DEVNULL, text=True,
                                    start_new_session=True, preexec_fn=_limits(timeout))
            try:
                proc.communicate(case.input, timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the program may have forked
                proc.communicate()
                return Outcome.TIMEOUT
            sink.seek(0)
            out = sink.read()
    if proc.returncode == -signal.SIGXCPU or proc.returncode == -signal.SIGKILL:
        return Outcome.TIMEOUT  # the CPU limit fired (e.g. a busy loop that beat the wall clock to it)
    if proc.returncode != 0:
        return Outcome.WRONG
    match = _json_match if case.functional else outputs_match
    return Outcome.CORRECT if match(out, case.output) else Outcome.WRONG


def grade_code(public_test_cases: str | list, response: str, metadata: str | dict | None = None,
               timeout: float = TIMEOUT_S) -> Grade:
    """Grade one response against a problem's public tests (``Grade.extracted``: the program that ran)."""
    try:
        tests, func = parse_tests(public_test_cases, metadata)
    except (ValueError, TypeError, AttributeError):
        return Grade(Outcome.GOLD_UNPARSEABLE, None)
    code = extract_code(response)
    if code is None or not code.strip():
        return Grade(Outcome.PRED_UNPARSEABLE, None)
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return Grade(Outcome.PRED_UNPARSEABLE, code)
    for case in tests:
        outcome = run_case(code, case, func, timeout)
        if outcome is not Outcome.CORRECT:
            return Grade(outcome, code)
    return Grade(Outcome.CORRECT, code)
