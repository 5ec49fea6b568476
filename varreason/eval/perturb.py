"""Mechanical near misses of a gold answer, for the false-positive audit (``audit``).

``perturbations(gold)`` returns ``(kind, text)`` pairs, each a different answer that a grader must never score
correct against ``gold``:

* ``number``: one number of the gold changed (integers +1 keeping zero padding, decimals +1 in their last
  place), one perturbation per number; ``all numbers``: every number changed at once;
* ``drop component``: one component of a tuple, vector, matrix row/column, interval, set, list or union left
  out; ``first component only``: the answer cut down to its first component (what a parser that stops at the
  first row break sees);
* ``change component``: one component plus 1; ``negate component``: one component with its sign flipped;
* ``sign``: the leading sign of the answer (of its right-hand side after ``=`` or ``\\in``) flipped;
* ``bracket``: one bracket of an interval or tuple swapped, ``(`` <-> ``[`` or ``)`` <-> ``]``;
* ``choice``: another answer letter (``\\text{(C)}`` -> ``\\text{(D)}``).

Rules that keep every perturbation a different answer: a zero is never negated (``-0 = 0``) and an infinite
component never gets 1 added; set braces
``\\{ \\}`` are never swapped (a set and a tuple of the same elements differ only in order); a pure number with
thousands separators (``58,500``, ``10,\\!080``) is a number, not a list; the exponent of a unit (``15\\mbox{ cm}^2``)
is part of the unit, not a number of the answer (units are not graded: math_verify drops them).
"""

from __future__ import annotations

import re
from decimal import Decimal

_NUMBER = re.compile(r"\d*\.\d+|\d+")
_MATRIX = re.compile(r"^\\begin\{([pbvB]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)
_CLOSE = {")", "]", "\\}", "}"}
_THOUSANDS = re.compile(r"^(?:\\\$)?\d{1,3}(?:,(?:\\!)?\s*\d{3})+(?:\.\d+)?$")
_TEXT = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}$")
_CHOICE = re.compile(r"^\\text\{\(([A-E])\)\}$")
_UNIT_POWER = re.compile(r"\\(?:text|textnormal|mbox|mathrm)\{[^{}]*\}\^\{?$")  # cm^2: the unit's, not a number
_RELATION = re.compile(r"^(.*?(?:=|\\in\b)\s*)(.+)$", re.DOTALL)


def _tokens(s: str) -> list[tuple[int, int, str]]:
    """Bracket tokens ``(start, end, text)``: ``\\left``/``\\right`` prefixes belong to the bracket after them."""
    return [(m.start(), m.end(), m.group(2)) for m in
            re.finditer(r"(\\left|\\right)?(\\\{|\\\}|[()\[\]{}])", s)]


def split_top(s: str, sep: str) -> list[str]:
    """``s`` split at every ``sep`` outside all brackets (any kind: depth is counted, not matched by type, so the
    half-open interval ``[0,1)`` nests like any other)."""
    depth, parts, start, i = 0, [], 0, 0
    while i < len(s):
        if s.startswith("\\left", i) or s.startswith("\\right", i):
            i += 5 if s.startswith("\\left", i) else 6
            continue
        two = s[i:i + 2]
        if two in ("\\{", "\\}"):
            depth += 1 if two == "\\{" else -1
            i += 2
            continue
        if depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(s[i], 0)
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _outer(s: str) -> tuple[str, str, str] | None:
    """``(open, inner, close)`` when the first bracket of ``s`` opens at its start and closes at its end."""
    toks = _tokens(s)
    if not toks or toks[0][0] != 0 or toks[-1][1] != len(s):
        return None
    depth = 0
    for k, (_, end, b) in enumerate(toks):
        depth += -1 if b in _CLOSE else 1
        if depth == 0:
            if k != len(toks) - 1:
                return None
            return s[:toks[0][1]], s[toks[0][1]:toks[-1][0]], s[toks[-1][0]:]
    return None


def _change_number(t: str) -> str:
    if "." not in t:
        return str(int(t) + 1).zfill(len(t))
    d = Decimal(t)
    out = str(d + Decimal(1).scaleb(d.as_tuple().exponent))
    return out[1:] if t.startswith(".") and out.startswith("0.") else out


def _numbers(s: str) -> list[tuple[str, str]]:
    spans = [m.span() for m in _NUMBER.finditer(s) if not _UNIT_POWER.search(s[:m.start()])]
    out = [("number", s[:a] + _change_number(s[a:b]) + s[b:]) for a, b in spans]
    if len(spans) > 1:
        t = s
        for a, b in reversed(spans):
            t = t[:a] + _change_number(t[a:b]) + t[b:]
        out.append(("all numbers", t))
    return out


def _is_zero(c: str) -> bool:
    return re.sub(r"\s|\\left|\\right|[{}]", "", c) in ("0", "0.0", "-0")


def _negate(c: str) -> str:
    c = c.strip()
    if c.startswith("-"):
        return c[1:].lstrip()
    if re.fullmatch(r"[\w\\{}^./ ]+", c):
        return "-" + c
    return f"-({c})"


def _components(parts: list[str], join: callable) -> list[tuple[str, str]]:
    """Drop / first-only / change / negate perturbations of a list of components; ``join(parts)`` renders."""
    out = []
    for i, c in enumerate(parts):
        if len(parts) > 1:
            out.append(("drop component", join(parts[:i] + parts[i + 1:])))
        if "\\infty" not in c:  # infinity plus 1 is infinity
            out.append(("change component", join(parts[:i] + [f"{c}+1"] + parts[i + 1:])))
        if not _is_zero(c):
            out.append(("negate component", join(parts[:i] + [_negate(c)] + parts[i + 1:])))
    if len(parts) > 1:
        out.append(("first component only", parts[0]))
    return out


def _brackets(s: str) -> list[tuple[str, str]]:
    """Every round/square bracket of ``s`` swapped in turn."""
    swap = {"(": "[", "[": "(", ")": "]", "]": ")"}
    return [("bracket", s[:end - 1] + swap[b] + s[end:]) for _, end, b in _tokens(s) if b in swap]


def _matrix(name: str, body: str) -> list[tuple[str, str]]:
    rows = [r for r in split_top(body, "\\\\") if r]
    cells = [split_top(r, "&") for r in rows]
    render = lambda m: f"\\begin{{{name}}} " + " \\\\ ".join(" & ".join(r) for r in m) + f" \\end{{{name}}}"  # noqa: E731
    out = []
    flat = [(i, j) for i, r in enumerate(cells) for j in range(len(r))]
    if len(rows) > 1:
        out += [("drop component", render(cells[:i] + cells[i + 1:])) for i in range(len(rows))]
    if cells and len(cells[0]) > 1 and all(len(r) == len(cells[0]) for r in cells):
        out += [("drop component", render([r[:j] + r[j + 1:] for r in cells])) for j in range(len(cells[0]))]
    for i, j in flat:
        e = cells[i][j]
        for kind, new in (("change component", f"{e}+1"), ("negate component", _negate(e))):
            if kind == "negate component" and _is_zero(e):
                continue
            m = [list(r) for r in cells]
            m[i][j] = new
            out.append((kind, render(m)))
    if len(flat) > 1:
        out.append(("first component only", cells[0][0]))
    return out


def _structure(s: str) -> list[tuple[str, str]]:
    """Perturbations of the answer's structure: matrix, union, bracketed tuple/interval/set, bare list."""
    m = _MATRIX.match(s)
    if m:
        return _matrix(m.group(1), m.group(2).strip())
    union = split_top(s, "\\cup")
    if len(union) > 1:
        out = _components(union, lambda ps: " \\cup ".join(ps))
        return [o for o in out if o[0] == "drop component"] + _brackets(s)
    outer = _outer(s)
    if outer:
        op, inner, cl = outer
        parts = split_top(inner, ",")
        if len(parts) > 1:
            out = _components(parts, lambda ps: op + ", ".join(ps) + cl)
            return out + ([] if "\\{" in op else _brackets(s))
        return []
    parts = split_top(s, ",")
    if len(parts) > 1 and not _THOUSANDS.match(s):
        return _components(parts, lambda ps: ", ".join(ps))
    return []


def perturbations(gold: str) -> list[tuple[str, str]]:
    """Every mechanical near miss of ``gold`` (see the module docstring), duplicates and ``gold`` itself removed."""
    s = gold.strip()
    out: list[tuple[str, str]] = []
    choice = _CHOICE.match(s)
    if choice:
        out += [("choice", f"\\text{{({c})}}") for c in "ABCDE" if c != choice.group(1)]
    elif not _TEXT.match(s):
        out += _numbers(s)
        rel = _RELATION.match(s)
        prefix, value = (rel.group(1), rel.group(2)) if rel and "\\{" not in s else ("", s)
        structure = _structure(value)
        out += [(k, prefix + v) for k, v in structure]
        if not structure and not _is_zero(value):
            out.append(("sign", prefix + _negate(value)))
    seen, unique = {s}, []
    for kind, text in out:
        if text.strip() not in seen:
            seen.add(text.strip())
            unique.append((kind, text))
    return unique
