"""Builds verifier_cases.jsonl from the shipped benchmark golds: every label is fixed by the rewrite that made the
prediction (an equivalent form or a near miss), never by the grader. Re-run to regenerate:
``python tests/varreason/eval/make_verifier_cases.py``."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "varreason" / "eval" / "data"
OUT = Path(__file__).resolve().parent / "verifier_cases.jsonl"


def golds(name: str) -> list[tuple[str, str]]:
    return [(r["id"], r["answer"]) for r in map(json.loads, (DATA / f"{name}.jsonl").read_text().splitlines())]


def case(src, gold, pred, correct, kind):
    return {"source": src, "gold": gold, "prediction": pred, "expected_correct": correct, "kind": kind}


def int_cases(src: str, gold: str, i: int) -> list[dict]:
    v = int(gold)
    out = [case(src, gold, str(v + (1 if i % 2 else -1)), False, "off-by-one")]
    if v > 0 and i % 3 == 0:
        out.append(case(src, gold, str(-v), False, "sign flip"))
    if src.startswith("20") and 0 < v < 100:  # AIME/AMC: zero padding either side
        out.append(case(src, gold, f"{v:03d}", True, "zero-padded"))
        if gold != str(v):
            out.append(case(src, gold, str(v), True, "zero-padding removed"))
    if v >= 1000:
        sep = "," if i % 2 else "{,}"
        out.append(case(src, gold, f"{v:,}".replace(",", sep), True, "thousands separator"))
    if i % 4 == 0:
        out.append(case(src, gold, f"{v}.0", True, "trailing .0"))
    return out


def frac_cases(src: str, gold: str, i: int) -> list[dict]:
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", gold)
    sign, a, b = m.group(1), int(m.group(2)), int(m.group(3))
    f = Fraction(a, b) * (-1 if sign else 1)
    out = [case(src, gold, gold.replace("\\frac", "\\dfrac"), True, "dfrac"),
           case(src, gold, f"{sign}\\frac{{{b}}}{{{a}}}", a == b, "inverted fraction"),
           case(src, gold, f"{sign}{a}/{b}", True, "slash fraction")]
    if 2 ** 20 % f.denominator == 0 or 10 ** 6 % f.denominator == 0:
        out.append(case(src, gold, str(float(f)), True, "decimal"))
    out.append(case(src, gold, gold[1:] if sign else "-" + gold, False, "sign flip"))
    return out


def matrix_cases(src: str, gold: str, body: str) -> list[dict]:
    """Column vectors and matrices (``pmatrix``): equivalent layouts and entry forms, and near misses that a
    parser stopping at the first row break (``\\\\ ``) would accept."""
    rows = [[c.strip() for c in r.split("&")] for r in body.split("\\\\") if r.strip()]
    render = lambda m, env="pmatrix", sep=" \\\\ ": (f"\\begin{{{env}}} " + sep.join(" & ".join(r) for r in m)  # noqa: E731
                                                 + f" \\end{{{env}}}")
    out = [case(src, gold, render(rows, sep="\\\\").replace("\\begin{pmatrix} ", "\\begin{pmatrix}"), True,
                "matrix without spaces"),
           case(src, gold, render(rows, "bmatrix"), True, "bmatrix"),
           case(src, gold, rows[0][0], False, "matrix first entry only")]
    if len(rows) > 1:
        out.append(case(src, gold, render(rows[:-1]), False, "matrix row dropped"))
        out.append(case(src, gold, render([rows[0]] + [["0"] * len(r) for r in rows[1:]]), False,
                        "matrix first row kept, rest zero"))
    flat = [c for r in rows for c in r]
    if all(re.fullmatch(r"-?\d+/\d+", c) for c in flat):
        frac = [[re.sub(r"(-?)(\d+)/(\d+)", r"\1\\frac{\2}{\3}", c) for c in r] for r in rows]
        out.append(case(src, gold, render(frac), True, "\\frac in a matrix"))
        fracs = [Fraction(c) for c in flat]
        if all(10 ** 6 % f.denominator == 0 for f in fracs):
            out.append(case(src, gold, render([[str(float(Fraction(c))) for c in r] for r in rows]), True,
                            "decimals in a matrix"))
    last = rows[-1][-1]
    changed = [r[:] for r in rows]
    changed[-1][-1] = last[1:] if last.startswith("-") else "-" + last
    if last not in ("0", "-0"):
        out.append(case(src, gold, render(changed), False, "matrix entry sign flipped"))
    return out


def list_cases(src: str, gold: str) -> list[dict]:
    """Unordered answer lists (``3, 5, 7``): any order is right, a dropped or changed element is not."""
    items = [x.strip() for x in gold.split(",")]
    out = [case(src, gold, ", ".join(reversed(items)), True, "number list reordered"),
           case(src, gold, ", ".join(items[:-1]), False, "number list element dropped")]
    if re.fullmatch(r"-?\d+", items[-1]):
        out.append(case(src, gold, ", ".join(items[:-1] + [str(int(items[-1]) + 1)]), False,
                        "number list element changed"))
    return out


def main() -> None:
    rows: list[dict] = []
    for name in ("aime24", "aime25", "amc23"):
        for i, (src, g) in enumerate(golds(name)):
            if i % 2 == 0 or g.startswith("0"):
                rows += int_cases(src, g, i)
    m500 = golds("math500")
    ints = [(s, g) for s, g in m500 if re.fullmatch(r"-?\d+", g)]
    for i, (s, g) in enumerate(ints[:40]):
        rows += int_cases(s, g, i)
    rows += [case(s, g, g.replace(",", ""), True, "thousands separator removed")
             for s, g in m500 if re.fullmatch(r"\d{1,3}(,\d{3})+", g)]
    fracs = [(s, g) for s, g in m500 if re.fullmatch(r"-?\\frac\{\d+\}\{\d+\}", g)]
    for i, (s, g) in enumerate(fracs[:12]):
        rows += frac_cases(s, g, i)
    for s, g in m500:
        if g.endswith("^\\circ"):
            v = int(g[: -len("^\\circ")])
            rows += [case(s, g, str(v), True, "degrees dropped"), case(s, g, f"{v}^{{\\circ}}", True, "degrees braced"),
                     case(s, g, f"{v + 1}^\\circ", False, "off-by-one degrees"),
                     case(s, g, f"{v}°", True, "degree sign"), case(s, g, f"{v + 1}°", False, "off-by-one degree sign")]
        m = re.fullmatch(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}", g)
        if m:
            rows += matrix_cases(s, g, m.group(1))
        if re.fullmatch(r"-?\d+(?:, ?-?\d+)+", g) and not re.fullmatch(r"\d{1,3}(?:,\d{3})+", g):
            rows += list_cases(s, g)
        if g.startswith("\\left("):
            plain = g.replace("\\left", "").replace("\\right", "").replace(" ", "")
            rows += [case(s, g, plain, True, "tuple without \\left/\\right")]
            inner = plain[1:-1].split(",")
            wrong = [inner[0], "-" + inner[1] if not inner[1].startswith("-") else inner[1][1:]]
            rows += [case(s, g, plain[0] + ",".join(wrong) + plain[-1], False, "wrong tuple element")]
            if plain.endswith("]"):
                rows += [case(s, g, plain[:-1] + ")", False, "wrong interval bracket")]
        if re.fullmatch(r"\\text\{[A-Za-z]+\}", g):
            word = g[6:-1]
            rows += [case(s, g, word, True, "text unwrapped"), case(s, g, f"\\text{{{word}}}", True, "text same"),
                     case(s, g, "\\text{Nobody}", False, "other text")]
        if re.fullmatch(r"\\text\{\([A-E]\)\}", g):
            rows += [case(s, g, g[7], True, "choice letter"), case(s, g, "(" + "ABCDE"[("ABCDE".index(g[7]) + 1) % 5] + ")",
                                                                     False, "other choice")]
        if re.fullmatch(r"[\[(][^()\[\]]*,[^()\[\]]*[\])]", g):
            flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
            rows += [case(s, g, g.replace(" ", ""), True, "spaces removed"),
                     case(s, g, flip[g[0]] + g[1:], False, "wrong interval bracket"),
                     case(s, g, g[:-1] + flip[g[-1]], False, "wrong interval bracket")]
            parts = g[1:-1].split(",")
            if re.fullmatch(r"-?\d+", parts[-1].strip()):
                parts[-1] = str(int(parts[-1]) + 1)
                rows += [case(s, g, g[0] + ",".join(parts) + g[-1], False, "wrong tuple element")]
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} cases ({sum(r['expected_correct'] for r in rows)} correct) -> {OUT}")


if __name__ == "__main__":
    main()
