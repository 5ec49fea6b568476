"""The hand-written family cases of grader_families.jsonl (docs/evaluation.md, "Against math_verify alone").

Written for this project after reading math_verify's public test suite (tests/test_all.py and its siblings) to
learn which answer families a maths grader meets: numbers and separators, currency, percent, fractions, LaTeX
notation and units, degrees, intervals and sets, tuples, vectors and matrices, number lists, relations, text and
choice answers, number bases, expressions, float precision, and what is read from a response. No case is
copied from it. Each label is what a careful human grader decides, never what a grader returned.
Re-run to regenerate: ``python tests/varreason/eval/make_grader_families.py``.
"""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "grader_families.jsonl"
S = "<|begin_of_solution|>"
C: list[dict] = []


def r(x):
    """A response whose solution block boxes ``x``."""
    return f"steps<|end_of_thought|>\n\n{S}The answer is $\\boxed{{{x}}}$."


def add(family, gold, response, expected, note=""):
    C.append({"family": family, "gold": gold, "response": response, "expected": expected, "note": note})


def b(family, gold, pred, expected, note=""):
    add(family, gold, r(pred), expected, note)


# numbers and separators
b("numbers", "-7", "-7", True); b("numbers", "-7", "7", False)
b("numbers", "025", "25", True, "AIME zero padding"); b("numbers", "25", "025", True); b("numbers", "025", "250", False)
b("numbers", "7425000", "7,425,000", True); b("numbers", "7425000", "7{,}425{,}000", True)
b("numbers", "10080", "10,\\!080", True); b("numbers", "10,\\!080", "10080", True)
b("numbers", "5000", "5\\,000", True, "thin-space thousands separator"); b("numbers", "5\\,000", "0", False, "thin-space gold must not read as 5*0")
b("numbers", "1000", "1\\ 000", True); b("numbers", "1000", "1 000", True)
b("numbers", "2500", "2, 500", False, "a list, not a thousands separator"); b("numbers", "120, 240", "120,240", True, "ambiguous: a comma before exactly three digits reads as a thousands separator")
b("numbers", "120, 240", "120240", False, "a list is not a number"); b("numbers", "32349", "32,\\! 349", True); b("numbers", "32349", "32, 349", False)
b("numbers", "0.111", "0,111", True, "decimal comma"); b("numbers", "1000", "1000.0", True); b("numbers", "1000.5", "1,000.5", True)
b("numbers", "0.4", ".4", True); b("numbers", "3.21", "3.2", False); b("numbers", "0.15", "0.150", True)
b("numbers", "1000000", "1000001", False); b("numbers", "123456789", "123456788", False)
# currency and percent
b("currency", "\\$18.90", "18.90", True); b("currency", "18.90", "\\$18.90", True); b("currency", "18.90", "18.90\\$", True)
b("currency", "\\$32,\\!348", "32348", True); b("currency", "\\$36", "36 \\text{ dollars}", True); b("currency", "\\$18.90", "18.80", False)
b("percent", "28\\%", "28", True); b("percent", "28\\%", "28\\%", True); b("percent", "28\\%", "28 \\text{ percent}", True); b("percent", "28\\%", "27\\%", False)
# fractions
b("fractions", "\\frac{1}{2}", "\\dfrac{1}{2}", True); b("fractions", "\\frac{1}{2}", "\\tfrac12", True); b("fractions", "\\frac43", "4/3", True)
b("fractions", "\\frac 59", "\\frac{5}{9}", True); b("fractions", "\\frac9{19}", "9/19", True); b("fractions", "-\\frac{1}{2}", "\\frac{-1}{2}", True)
b("fractions", "\\frac{1}{4}", "0.25", True); b("fractions", "\\frac{3}{4}", "\\frac{4}{3}", False); b("fractions", "1\\frac{4}{5}", "\\frac{9}{5}", True)
b("fractions", "137 \\frac{1}{2}", "137.5", True); b("fractions", "\\frac{1}{3}", "0.3333333", True, "precision 6 places")
b("fractions", "\\frac{1}{3}", "0.33", False, "precision 6 places"); b("fractions", "\\frac{10}{9}", "\\cfrac{10}{9}", True)
# notation
b("notation", "\\sqrt{2}", "\\sqrt2", True); b("notation", "11\\sqrt2", "11 \\sqrt{2}", True); b("notation", "3\\sqrt{13}", "\\sqrt{117}", True)
b("notation", "\\frac{1}{3}", "\\left( \\frac{1}{3} \\right)", True); b("notation", "\\frac{1}{3}", "\\frac{1}{3} \\text{ meters}", True)
b("notation", "864 \\mbox{ inches}^2", "864", True, "units are not graded"); b("notation", "15\\mbox{ cm}^2", "15 \\text{ cm}^2", True)
b("notation", "5.4 \\text{ cents}", "5.4", True); b("notation", "\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True)
b("notation", "\\frac{1}{3}", "k = \\frac{1}{3}", True); b("notation", "\\pi", "\\pi", True); b("notation", "288 \\pi", "288\\pi", True)
b("notation", "18+2\\pi", "2\\pi+18", True); b("notation", "\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True); b("notation", "\\sqrt{51}", "\\sqrt{52}", False)
# degrees
b("degrees", "90^\\circ", "90^\\circ", True); b("degrees", "90^\\circ", "90^{\\circ}", True); b("degrees", "90^\\circ", "90°", True, "Unicode degree sign")
b("degrees", "90^\\circ", "90 °", True); b("degrees", "90^\\circ", "90\\degree", True); b("degrees", "90^\\circ", "90", True, "degrees dropped")
b("degrees", "90^\\circ", "91°", False); b("degrees", "145^\\circ", "35^\\circ", False); b("degrees", "30^\\circ", "\\frac{\\pi}{6}", False, "radians are not degrees")
b("degrees", "120^\\circ", "120^\\circ.", True, "a full stop inside the box")
b("numbers", "120", "120.", True, "a full stop inside the box"); b("numbers", "3.5", "3.5.", True)
# sets and intervals
b("intervals", "[0,1)", "[0,1)", True); b("intervals", "[0,1)", "[0,1]", False); b("intervals", "(0,9)", "[0,9)", False)
b("intervals", "(3,4]", "(3, 4]", True); b("intervals", "(2,\\infty)", "(2, \\infty)", True); b("intervals", "(1, +\\infty)", "(1,\\infty)", True)
b("intervals", "(-\\infty, 0]", "(-\\infty,0)", False); b("intervals", "(2,\\infty)", "(2,\\infty]", False, "a closed bracket at infinity"); b("intervals", "(-\\infty, 0]", "[-\\infty, 0]", False); b("intervals", "(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", True)
b("intervals", "(0,9) \\cup (9,36)", "(0,36)", False); b("intervals", "x \\in [-2,7]", "[-2,7]", True); b("intervals", "[-2,7]", "x \\in [-2, 7]", True)
b("intervals", "\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac{8}{3}]", True); b("intervals", "(-\\sqrt{3}, \\sqrt{3})", "(-\\sqrt{3}, \\sqrt{3}]", False)
b("sets", "\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt{5}, 1-\\sqrt{5}\\}", True); b("sets", "\\{1,2\\}", "\\{2,1\\}", True); b("sets", "\\{1,2\\}", "\\{1\\}", False)
# tuples, vectors, matrices
b("tuples", "(6,31,-1)", "(6, 31, -1)", True); b("tuples", "(6,31,-1)", "(6,31,1)", False); b("tuples", "(6,31,-1)", "(6,31)", False)
b("tuples", "\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", True); b("tuples", "\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", True)
b("tuples", "\\left( 3, \\frac{\\pi}{2} \\right)", "(\\frac{\\pi}{2}, 3)", False); b("tuples", "(1,\\frac{9}{2})", "(1,4.5)", True)
b("tuples", "(1,-16,-4,43)", "(1,-16,-4,42)", False)
V = "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}"
b("matrices", V, V, True); b("matrices", V, "-18", False, "first entry alone"); b("matrices", V, "\\begin{pmatrix} -18 \\\\ 0 \\\\ 0 \\end{pmatrix}", False)
b("matrices", V, "\\begin{pmatrix}-18\\\\-49\\\\96\\end{pmatrix}", True); b("matrices", V, "\\begin{bmatrix} -18 \\\\ -49 \\\\ 96 \\end{bmatrix}", True)
b("matrices", V, "\\begin{pmatrix} -18 \\\\ -49 \\end{pmatrix}", False); b("matrices", V, "\\begin{pmatrix} -18 \\\\ 49 \\\\ 96 \\end{pmatrix}", False)
F = "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}"
b("matrices", F, "\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}", True, "\\frac in a matrix vs slashes")
b("matrices", F, "\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{4}{3} \\end{pmatrix}", False)
b("matrices", F, "\\begin{pmatrix} -0.333333 \\\\ 0.666667 \\\\ 1.666667 \\end{pmatrix}", True)
M = "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}"
b("matrices", M, "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", True); b("matrices", M, "\\begin{pmatrix} -1 & 0 \\\\ 0 & 1 \\end{pmatrix}", False)
b("matrices", M, "\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}", False); b("matrices", M, "\\begin{pmatrix} -1 & 0 \\end{pmatrix}", False)
b("matrices", "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}", True)
b("matrices", "\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}", "\\begin{pmatrix} \\frac{16}{49} \\\\ \\frac{48}{49} \\\\ \\frac{24}{49} \\end{pmatrix}", True)
b("matrices", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\left[\\begin{array}{cc}1 & 2 \\\\ 3 & 4\\end{array}\\right]", True)
# number lists
b("lists", "1,-2", "-2,1", True, "unordered"); b("lists", "1,-2", "1", False); b("lists", "3, 5, 7", "3,5,7", True); b("lists", "3, 5, 7", "3, 5", False)
b("lists", "3, 5, 7", "7, 5, 3", True); b("lists", "-2,1", "-2 \\text{ and } 1", True); b("lists", "-2,1", "x=-2, x=1", True)
b("lists", "3, 5, 7", "3, 5, 8", False); b("lists", "1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", True); b("lists", "3 \\pm 2 \\sqrt{2}", "3 + 2\\sqrt{2}", False)
# relations and equations
b("relations", "x=5", "5", True); b("relations", "5", "x=5", True); b("relations", "x=5", "x=-5", False)
b("relations", "y = 2x + 3", "y=3+2x", True); b("relations", "y = 2x + 3", "y = 2x - 3", False); b("relations", "y = -2x", "2x + y = 0", True)
b("relations", "5x - 7y + 11z + 4 = 0", "-5x + 7y - 11z - 4 = 0", True); b("relations", "5x - 7y + 11z + 4 = 0", "5x - 7y + 11z - 4 = 0", False)
b("relations", "x \\geq 5", "x >= 5", True); b("relations", "x > 5", "x < 5", False); b("relations", "x \\le 2", "2 \\ge x", True)
# text and choices
b("text", "\\text{Evelyn}", "\\text{Evelyn}", True); b("text", "\\text{Evelyn}", "Evelyn", True); b("text", "\\text{Evelyn}", "\\text{Navin}", False)
b("text", "\\text{east}", "\\text{East}", True); b("text", "\\text{east}", "\\text{west}", False); b("text", "\\text{(C)}", "C", True)
b("text", "\\text{(C)}", "(C)", True); b("text", "\\text{(C)}", "\\text{(D)}", False); b("text", "\\text{ellipse}", "\\text{ellipse}", True)
# bases
b("bases", "52_8", "52_8", True); b("bases", "52_8", "52", True, "digits without the base"); b("bases", "52_8", "52_9", False, "another base")
b("bases", "4210_{5}", "4210_5", True); b("bases", "4210_{5}", "4210_{6}", False); b("bases", "52_8", "42", False, "the decimal value is not base 8")
# complex numbers, expressions
b("expressions", "6 - 5i", "-5i + 6", True); b("expressions", "1+2i", "1-2i", False); b("expressions", "p - q", "-q + p", True)
b("expressions", "(a+5)(b+2)", "ab + 2a + 5b + 10", True); b("expressions", "x^3+3x-6", "x^3+3x+6", False); b("expressions", "2k+2", "2(k+1)", True)
b("expressions", "\\cot x", "\\frac{\\cos x}{\\sin x}", True); b("expressions", "6r^2-4r-24", "2(3r^2-2r-12)", True)
# precision
b("precision", ".0000672", "0.0000672", True); b("precision", ".0000672", ".0000673", False, "7th decimal place")
b("precision", "326.5", "326.50", True); b("precision", "\\frac{14}{3}", "4.666667", True); b("precision", "\\frac{14}{3}", "4.67", False)
# extraction: what is read from the response
add("extraction", "1,2", f"{S}$\\boxed{{1}}$ and $\\boxed{{2}}$", True, "by design: only the last box is read")
add("extraction", "34", f"{S}Final Answer: The largest $n$ is 34.", True, "by design: no box, no answer")
add("extraction", "9", "thinking \\boxed{8}<|end_of_thought|>\n\n" + S + "so $\\boxed{9}$", True)
add("extraction", "8", "thinking \\boxed{8}<|end_of_thought|>\n\n" + S + "so $\\boxed{9}$", False, "the thought's box is not the answer")
add("extraction", "\\frac{14}{3}", f"{S}$f(-2)+f(-1)+f(0)=2+\\frac{{5}}{{3}}+1=\\boxed{{\\frac{{14}}{{3}}}}$", True)
add("extraction", "2", f"{S}the number of values is $\\boxed{{2}}$ since $4^2=16$", True)
add("extraction", "\\frac{1}{3}", f"{S}$\\boxed{{\\frac{{1}}{{3}}}} \\text{{ and not }} \\frac{{1}}{{4}}$", True)
add("extraction", "12", f"{S}\\boxed{{12}}\n\n**Final Answer**\n\\boxed{{13}}", False, "the last box counts")
add("extraction", "7", f"{S}\\fbox{{7}}", True)


def main() -> None:
    OUT.write_text("".join(json.dumps(c) + "\n" for c in C))
    print(f"{len(C)} cases -> {OUT}")


if __name__ == "__main__":
    main()
