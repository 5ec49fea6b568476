"""math_verify's own public test suite against the project's grading (docs/evaluation.md). Reads the suite from a
checkout of https://github.com/huggingface/Math-Verify at run time (nothing of it is copied here):

    python tests/varreason/eval/run_math_verify_suite.py /path/to/Math-Verify

Counts its parametrised ``(gold, pred, expected)`` cases three ways:

1. the suite as it is (math_verify alone, called as the suite calls it);
2. the suite with every string passed through ``grader.normalize`` before math_verify parses it (does the
   project's pre-processing break anything the library gets right?);
3. ``grade_math(gold, pred)`` per case against ``expected``, the misses grouped by cause: the response has no
   ``\\boxed{}`` (by design: no box, no answer), or several (by design: only the last is read), or other.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLUGIN = '''
from varreason.eval.grader import normalize


def pytest_collection_modifyitems(items):
    for it in items:
        mod = it.module
        if hasattr(mod, "parse") and not getattr(mod.parse, "normalized", False):
            def parse(s, *a, _orig=mod.parse, **k):
                return _orig(normalize(s) if isinstance(s, str) else s, *a, **k)
            parse.normalized = True
            mod.parse = parse
'''
COUNTER = '''
import sys
import pytest


class Count:
    def __init__(self):
        self.ids, self.n, self.ok = set(), 0, 0

    def pytest_collection_modifyitems(self, items):
        self.ids = {it.nodeid for it in items if {"gold", "pred"} <= set(getattr(getattr(it, "callspec", None),
                                                                                  "params", {}))}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.nodeid in self.ids:
            self.n += 1
            self.ok += report.passed


c = Count()
pytest.main(["-q", "-p", "no:cacheprovider", "tests"] + sys.argv[1:], plugins=[c])
print(f"CASES {c.n} AGREE {c.ok}")
'''


def run_suite(checkout: Path, normalized: bool, tmp: Path) -> str:
    (tmp / "vr_normalize_plugin.py").write_text(PLUGIN)
    (tmp / "vr_count.py").write_text(COUNTER)
    env_path = f"{checkout}:{tmp}:{REPO}"
    args = [sys.executable, str(tmp / "vr_count.py")] + (["-p", "vr_normalize_plugin"] if normalized else [])
    out = subprocess.run(args, cwd=checkout, capture_output=True, text=True, timeout=1800,
                         env={"PYTHONPATH": env_path, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}).stdout
    return next(line for line in out.splitlines() if line.startswith("CASES"))


def grade_math_figure(checkout: Path) -> tuple[int, int, Counter]:
    import pytest

    sys.path[:0] = [str(checkout), str(REPO)]
    from varreason.eval.grader import grade_math

    class Collect:
        items: list = []

        def pytest_collection_modifyitems(self, items):
            self.items = items

    col = Collect()
    pytest.main(["--co", "-q", "-p", "no:cacheprovider", str(checkout / "tests")], plugins=[col])
    n, ok, misses = 0, 0, Counter()
    for it in col.items:
        p = getattr(getattr(it, "callspec", None), "params", {})
        if "gold" not in p or "pred" not in p:
            continue
        expected = bool(p.get("expected", p.get("result")))
        n += 1
        if grade_math(p["gold"], p["pred"]).correct == expected:
            ok += 1
            continue
        boxes = p["pred"].count("\\boxed")
        misses["no box in the response (by design)" if boxes == 0 else
               "several boxes, only the last is read (by design)" if boxes > 1 else "other"] += 1
    return n, ok, misses


def main(argv: list[str]) -> int:
    import tempfile

    checkout = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        print("math_verify alone:", run_suite(checkout, False, Path(tmp)))
        print("math_verify after normalize():", run_suite(checkout, True, Path(tmp)))
    n, ok, misses = grade_math_figure(checkout)
    print(f"grade_math: CASES {n} AGREE {ok}; misses: {dict(misses)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
