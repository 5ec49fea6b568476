"""The grader's outcome on every labelled verifier case and every shipped gold, and math_verify's parse of every
string involved, under the antlr runtime of the interpreter that runs this; and a case-by-case comparison of two
such dumps (docs/dvc.md, Environment: antlr 4.9.3 vs 4.13.2).

    python tests/varreason/eval/grader_outcomes.py dump > a.json          # one environment
    other/python tests/varreason/eval/grader_outcomes.py dump > b.json    # another
    python tests/varreason/eval/grader_outcomes.py compare a.json b.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "varreason" / "eval" / "data"


def dump() -> dict:
    from importlib.metadata import version

    from math_verify import parse

    from varreason.eval.grader import grade_answer, grade_math

    cases = [json.loads(line) for line in (HERE / "verifier_cases.jsonl").read_text().splitlines()]
    golds = sorted({json.loads(line)["answer"] for f in ("math500", "aime24", "aime25", "amc23")
                    for line in (DATA / f"{f}.jsonl").read_text().splitlines()})
    texts = sorted({c["gold"] for c in cases} | {c["prediction"] for c in cases} | set(golds))
    outcomes = [grade_answer(c["gold"], c["prediction"]).value for c in cases]
    families = [json.loads(line) for line in (HERE / "grader_families.jsonl").read_text().splitlines()]
    return {"families": [grade_math(f["gold"], f["response"]).outcome.value for f in families],"antlr": version("antlr4-python3-runtime"),
            "parser": sorted(m for m in sys.modules if m.startswith("latex2sympy2_extended.gen.antlr"))[:1],
            "cases": outcomes, "agree": sum((o == "correct") == c["expected_correct"] for o, c in zip(outcomes, cases)),
            "self": [grade_answer(g, g).value for g in golds],
            "parse": {t: [str(x) for x in parse(f"${t}$")] for t in texts}}


def compare(a: dict, b: dict) -> list[str]:
    n = len(a["cases"])
    lines = [f"antlr {a['antlr']} ({a['parser']}) vs {b['antlr']} ({b['parser']})"]
    for d in (a, b):
        lines.append(f"  {d['antlr']}: outcomes {dict(sorted(Counter(d['cases']).items()))}, agreement with the labels "
                     f"{d['agree']}/{n}, golds correct against themselves {d['self'].count('correct')}/{len(d['self'])}")
    lines.append(f"  cases whose outcome differs: {[i for i, (x, y) in enumerate(zip(a['cases'], b['cases'])) if x != y]}"
                 f" of {n}")
    lines.append(f"  family cases whose outcome differs: "
                 f"{sum(x != y for x, y in zip(a['families'], b['families']))} of {len(a['families'])}")
    lines.append(f"  golds whose self-grade differs: {sum(x != y for x, y in zip(a['self'], b['self']))} of {len(a['self'])}")
    lines.append(f"  parses that differ: {[t for t in a['parse'] if a['parse'][t] != b['parse'].get(t)]} of {len(a['parse'])}")
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"]:
        json.dump(dump(), sys.stdout)
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        print("\n".join(compare(*(json.loads(Path(p).read_text()) for p in sys.argv[2:]))))
    else:
        sys.exit(__doc__)
