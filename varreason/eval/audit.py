"""False-positive audit of the answer graders, and the differential check against math_verify alone.

    python -m varreason.eval.audit        # from the repository root; prints the tables of docs/evaluation.md

Golds: every answer of the shipped benchmarks (``data/``: MATH500, AIME24, AIME25, AMC23) and of the hub-suite
fixtures (``tests/fixtures/suites``: OlympiadBench through ``grade_math``, GPQA-Diamond and MMLU-Pro through
``grade_choice``). The LiveCodeBench fixtures are graded by running code (``code_grader``), not by comparing an
answer, so they are not part of this audit. For each gold:

* self: ``\\boxed{gold}`` must grade correct (a miss is a self-grading false negative);
* every perturbation of ``perturb.perturbations`` (another letter for a choice gold) must not grade correct
  (a hit is a false positive).

Differential: each maths case is also graded by math_verify alone on the raw strings (``library_alone``: parse
``\\boxed{gold}`` and ``\\boxed{pred}``, ``verify`` with its defaults). Where the two disagree, the case's
label (self: correct; perturbation: not correct) says which is right. The project must never be worse where
``normalize()`` changes a string; cases it deliberately decides differently are counted per reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from varreason.eval.grader import (_CLOSED_INFINITY, _PERCENT, BEGIN_SOLUTION, Outcome, _bases, _float_rounding, _parse, _parsed, _verify,
                                   extract_answer, grade_answer, grade_choice, grade_math, normalize)
from varreason.eval.perturb import perturbations

DATA_DIR = Path(__file__).resolve().parent / "data"
SUITES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "suites"  # in a checkout of the repo
TESTS_DIR = Path(__file__).resolve().parents[2] / "tests" / "varreason" / "eval"
BENCHMARKS = ("math500", "aime24", "aime25", "amc23")


@dataclass(frozen=True)
class Gold:
    source: str
    id: str
    answer: str
    grader: str  # "math" | "choice"
    n_options: int = 0  # choice only


@dataclass(frozen=True)
class Case:
    gold: Gold
    kind: str  # "self" or a perturbation kind
    pred: str

    @property
    def expected(self) -> bool:
        return self.kind == "self"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def benchmark_golds(data_dir: Path = DATA_DIR) -> list[Gold]:
    return [Gold(name, str(r["id"]), r["answer"], "math") for name in BENCHMARKS
            for r in _jsonl(data_dir / f"{name}.jsonl")]


def suite_golds(suites_dir: Path = SUITES_DIR) -> list[Gold]:
    """The hub-suite fixtures' golds, prepared as their lm-eval tasks prepare them (``suites``)."""
    from varreason.eval.suites import gpqa_doc, olympiadbench_doc

    out = [Gold("olympiadbench", str(r["id"]), olympiadbench_doc(r)["answer"], "math")
           for r in _jsonl(suites_dir / "olympiadbench.jsonl")]
    out += [Gold("gpqa_diamond", r["Record ID"], gpqa_doc(r)["answer"], "choice", 4)
            for r in _jsonl(suites_dir / "gpqa_diamond.jsonl")]
    out += [Gold("mmlu_pro", str(r["question_id"]), r["answer"], "choice", len(r["options"]))
            for r in _jsonl(suites_dir / "mmlu_pro.jsonl")]
    return out


def cases(golds: list[Gold]) -> list[Case]:
    out = []
    for g in golds:
        out.append(Case(g, "self", g.answer))
        if g.grader == "choice":
            out += [Case(g, "choice", c) for c in "ABCDEFGHIJ"[:g.n_options] if c != g.answer]
        else:
            out += [Case(g, kind, text) for kind, text in perturbations(g.answer)]
    return out


def project_outcome(case: Case, grader=None) -> Outcome:
    """The project's grade of ``\\boxed{pred}`` as a model response (extractor + the gold's grader); ``grader``:
    another module with ``grade_math`` and ``grade_choice`` (``--grader-at``), compared by outcome value."""
    response = f"\\boxed{{{case.pred}}}"
    math_fn, choice_fn = (grade_math, grade_choice) if grader is None else (grader.grade_math, grader.grade_choice)
    if case.gold.grader == "choice":
        return Outcome(choice_fn(case.gold.answer, response, case.gold.n_options).outcome.value)
    return Outcome(math_fn(case.gold.answer, response).outcome.value)


def grader_at(ref: str):
    """``varreason/eval/grader.py`` as it was at git ``ref`` (run from the repository root), as a module."""
    import importlib.util
    import subprocess
    import tempfile

    src = subprocess.run(["git", "show", f"{ref}:varreason/eval/grader.py"], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    path = Path(tempfile.mkdtemp(prefix="vr-grader-")) / "grader_at_ref.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("grader_at_ref", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["grader_at_ref"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def library_alone(gold: str, pred: str) -> bool:
    """math_verify on the raw strings, no pre-processing, its default settings."""
    g, p = _parse(gold), _parse(pred)
    return _parsed(g) and _parsed(p) and _verify(g, p)


def differential_reason(gold: str, pred: str) -> str:
    """The step of ``grade_answer`` that can make it decide differently from math_verify alone."""
    if normalize(gold) != gold.strip() or normalize(pred) != pred.strip():
        return "normalize()"
    if _bases(gold) and _bases(pred) - _bases(gold):
        return "base subscript"
    if _CLOSED_INFINITY.search(pred) and not _CLOSED_INFINITY.search(gold):
        return "closed bracket at infinity"
    if _float_rounding(gold) != 6:
        return "float rounding"
    if _PERCENT.match(normalize(gold)):
        return "percentage gold"
    return "none"


def audit(golds: list[Gold], grader=None) -> dict:
    """Grades every self and perturbation case: counts, false positives and self-grading false negatives
    (``grader``: see ``project_outcome``)."""
    t0 = time.perf_counter()
    fp, fn, kinds = [], [], Counter()
    for c in cases(golds):
        ok = project_outcome(c, grader) is Outcome.CORRECT
        kinds[c.kind] += 1
        row = {"source": c.gold.source, "id": c.gold.id, "gold": c.gold.answer, "kind": c.kind, "pred": c.pred}
        if ok != c.expected:
            (fp if ok else fn).append(row)
    return {"golds": dict(Counter(g.source for g in golds)), "n_golds": len(golds),
            "n_perturbations": sum(kinds.values()) - kinds["self"],
            "perturbations_by_kind": {k: v for k, v in sorted(kinds.items()) if k != "self"},
            "false_positives": fp, "self_false_negatives": fn, "wall_s": round(time.perf_counter() - t0, 1)}


def labelled(golds: list[Gold], verifier_cases: Path | None = None, family_cases: Path | None = None) -> list[dict]:
    """Every maths case with a label, as ``{source, gold, pred, expected}``: the audit's self and perturbation
    cases, the labelled verifier set and the extracted answers of the family cases (those with a box)."""
    out = [{"source": f"audit:{c.gold.source}", "gold": c.gold.answer, "pred": c.pred, "expected": c.expected}
           for c in cases([g for g in golds if g.grader == "math"])]
    if verifier_cases is not None and verifier_cases.is_file():
        out += [{"source": "verifier set", "gold": r["gold"], "pred": r["prediction"], "expected": r["expected_correct"]}
                for r in _jsonl(verifier_cases)]
    if family_cases is not None and family_cases.is_file():
        out += [{"source": "families", "gold": r["gold"], "pred": extract_answer(r["response"]),
                 "expected": r["expected"]} for r in _jsonl(family_cases) if extract_answer(r["response"])]
    return out


def differential(rows: list[dict]) -> dict:
    """``grade_answer`` against math_verify alone on the raw strings. Returns the number of cases, of cases
    where ``normalize()`` changes a string, every disagreement (with the step behind it and whether the project
    is the one that matches the label) and the disagreements where math_verify alone is right (``worse``)."""
    diff, n_changed = [], 0
    for r in rows:
        reason = differential_reason(r["gold"], r["pred"])
        n_changed += reason == "normalize()"
        ours = grade_answer(r["gold"], r["pred"]) is Outcome.CORRECT
        if ours != library_alone(r["gold"], r["pred"]):
            diff.append({**r, "reason": reason, "project_right": ours == r["expected"]})
    return {"n": len(rows), "n_normalize_changed": n_changed, "disagreements": diff,
            "worse": [d for d in diff if not d["project_right"]]}


def suite_style(gold: str, response: str) -> bool:
    """math_verify alone, called as its own test suite calls it: both texts parsed whole (the gold in ``$..$``)
    with LaTeX extraction (boxed first) and expression extraction, then ``verify`` at 6 decimal places."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    from varreason.eval.grader import _timeout

    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    try:
        return bool(verify(parse(f"${gold}$", config, parsing_timeout=_timeout()),
                           parse(response, config, parsing_timeout=_timeout()), timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001
        return False


def families(path: Path) -> dict:
    """The hand-written cases of ``path`` (one JSON object per line: family, gold, response, expected, note),
    graded by math_verify alone (``suite_style``) and by ``grade_math``; who agrees with the label, per family."""
    rows = _jsonl(path)
    out: dict = {"n": len(rows), "library_agrees": 0, "project_agrees": 0, "by_family": {}, "misses": []}
    for r in rows:
        lib = suite_style(r["gold"], r["response"])
        ours = grade_math(r["gold"], r["response"]).correct
        fam = out["by_family"].setdefault(r["family"], {"n": 0, "library": 0, "project": 0})
        fam["n"] += 1
        fam["library"] += lib == r["expected"]
        fam["project"] += ours == r["expected"]
        out["library_agrees"] += lib == r["expected"]
        out["project_agrees"] += ours == r["expected"]
        if lib != r["expected"] or ours != r["expected"]:
            out["misses"].append({**r, "library": lib, "project": ours})
    return out


def _cases_md(rows: list[dict]) -> list[str]:
    return [f"- {r['source']} {r.get('id', '')}: gold `{r['gold']}`, {r.get('kind', 'prediction')} `{r['pred']}`"
            for r in rows]


def markdown(res: dict, diff: dict | None, fam: dict | None) -> str:
    lines = ["| corpus | golds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in res["golds"].items()]
    lines += [f"| **all** | **{res['n_golds']}** |", "", "| perturbation | cases |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in res["perturbations_by_kind"].items()]
    lines += [f"| **all** | **{res['n_perturbations']}** |", "",
              f"False positives (a perturbation graded correct): **{len(res['false_positives'])}**. "
              f"Self-grading false negatives (the boxed gold not graded correct): "
              f"**{len(res['self_false_negatives'])}**. ({res['wall_s']} s)"]
    lines += _cases_md(res["false_positives"]) + _cases_md(res["self_false_negatives"])
    if diff is None:
        return "\n".join(lines)
    by_reason = Counter((x["reason"], x["project_right"]) for x in diff["disagreements"])
    lines += ["", f"Differential, `grade_answer` vs math_verify alone on the raw strings: {diff['n']} labelled maths "
              f"cases, `normalize()` changes a string in {diff['n_normalize_changed']}; "
              f"{len(diff['disagreements'])} disagreements, math_verify alone right in {len(diff['worse'])}.",
              "", "| step | disagreements | project right |", "|---|---|---|"]
    for reason in sorted({r for r, _ in by_reason}):
        right = by_reason[(reason, True)]
        lines.append(f"| {reason} | {right + by_reason[(reason, False)]} | {right} |")
    lines += _cases_md(diff["worse"])
    if fam:
        lines += ["", f"Family cases (suite style): math_verify alone agrees with the label in "
                  f"{fam['library_agrees']}/{fam['n']}, `grade_math` in {fam['project_agrees']}/{fam['n']}.", "",
                  "| family | cases | math_verify alone | grade_math |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {v['library']} | {v['project']} |" for k, v in fam["by_family"].items()]
        lines += ["", "Cases where either disagrees with the label:", "",
                  "| family | gold | answer in the response | label | math_verify alone | grade_math | note |",
                  "|---|---|---|---|---|---|---|"]
        for m in fam["misses"]:
            shown = extract_answer(m["response"]) or m["response"].split(BEGIN_SOLUTION)[-1]
            lines.append(f"| {m['family']} | `{m['gold']}` | `{shown}` | {m['expected']} | {m['library']} | "
                         f"{m['project']} | {m['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suites", type=Path, default=SUITES_DIR, help="hub-suite fixtures (default: %(default)s)")
    ap.add_argument("--verifier-cases", type=Path, default=TESTS_DIR / "verifier_cases.jsonl")
    ap.add_argument("--families", type=Path, default=TESTS_DIR / "grader_families.jsonl")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON instead of the tables")
    ap.add_argument("--grader-at", metavar="GIT_REF", help="audit grader.py as it was at this git ref instead "
                    "(e.g. 737c5fb, before issue 18); prints the audit table only")
    args = ap.parse_args(argv)
    golds = benchmark_golds() + (suite_golds(args.suites) if args.suites.is_dir() else [])
    if args.grader_at:
        res = audit(golds, grader_at(args.grader_at))
        print(json.dumps(res, indent=1) if args.json else markdown(res, None, None))
        return 0
    res = audit(golds)
    diff = differential(labelled(golds, args.verifier_cases, args.families))
    fam = families(args.families) if args.families.is_file() else None
    print(json.dumps({"audit": res, "differential": diff, "families": fam}, indent=1) if args.json
          else markdown(res, diff, fam))
    return 1 if res["false_positives"] or res["self_false_negatives"] or diff["worse"] else 0


if __name__ == "__main__":
    sys.exit(main())
