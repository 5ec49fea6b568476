"""Per-step code fingerprints: the exact code, data files and package versions a step's result depends on.

A step's fingerprint covers the ``varreason`` modules its builder transitively imports (the static import graph:
every ``import`` statement of a module, those inside functions included, so lazy imports and the registries they
fill count), hashed after parsing, with docstrings removed, so comments, docstrings and formatting do not change
it; plus the non-Python files it reads (lm-eval task YAMLs, benchmark data) and the versions of the packages that
change its numbers. It is what the artifact key (``varreason.steps``), the Prefect cache key (``tasks/``) and the
DVC stage deps (``varreason.pipeline.dvc``) share. What a static graph cannot see (a module imported by a
computed name, a change of meaning behind an unchanged line) is covered by ``Step.version``, bumped by hand.

Two modules are left out on purpose (``NEUTRAL``): ``varreason.config``, because a step's key already holds the
resolved value of every config key it reads, so config code can only change a step's output through those values
(adding a field or a validator recomputes nothing); and ``varreason.faults``, the crash-test fault points, which
never change an output.

``tests/test_fingerprint_safety.py`` runs every step of the smoke profile in a fresh process and fails if it
loads a ``varreason`` module (other than ``NEUTRAL``) or opens a package data file missing from its fingerprint.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE = "varreason"
ROOT = Path(__file__).resolve().parent  # varreason/
NEUTRAL = frozenset({"varreason.config", "varreason.faults"})


def module_path(module: str) -> Path | None:
    """File of a ``varreason`` module (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``), None if there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    pkg = module.split(".")
    is_pkg = module_path(module) is not None and module_path(module).name == "__init__.py"
    base = pkg if is_pkg else pkg[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.cache
def direct_imports(module: str, path: Path | None = None) -> frozenset[str]:
    """``varreason`` modules that ``module`` (or the Python file ``path``, e.g. an lm-eval ``utils.py`` loaded by
    file name) imports anywhere in its body (parent packages included, since importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__``)."""
    path = path or module_path(module)
    if path is None:
        return frozenset()
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import mod` imports pkg.mod
        for name in names:
            out.update(m for m in _with_parents(name) if m.split(".")[0] == PACKAGE and module_path(m))
    return frozenset(out - {module})


@functools.cache
def closure(module: str) -> tuple[str, ...]:
    """``module`` and every ``varreason`` module it reaches through imports, sorted."""
    seen, todo = set(), [*_with_parents(module)]
    while todo:
        m = todo.pop()
        if m in seen or module_path(m) is None:
            continue
        seen.add(m)
        if m not in NEUTRAL:  # config's own imports (its validators') are not the step's code either
            todo.extend(direct_imports(m))
    return tuple(sorted(seen))


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


@functools.cache
def source_hash(path: Path) -> str:
    """Hash of a Python file's syntax tree without docstrings: comments and formatting do not count."""
    tree = _StripDocstrings().visit(ast.parse(Path(path).read_text(encoding="utf-8")))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()[:16]


@functools.cache
def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def rel(path: Path) -> str:
    """Path relative to the repository (``varreason/...``), as DVC deps and key diffs name it."""
    return str(Path(path).resolve().relative_to(ROOT.parent))


def code_files(modules: tuple[str, ...]) -> dict[str, str]:
    """{``varreason/...py``: source hash} over the union of the modules' closures (``NEUTRAL`` left out)."""
    files = {module_path(m) for mod in modules for m in closure(mod) if m not in NEUTRAL}
    return {rel(p): source_hash(p) for p in sorted(files)}


def _data_paths(globs: tuple[str, ...]) -> list[Path]:
    return sorted({p for g in globs for p in ROOT.glob(g) if p.is_file()})


def data_files(globs: tuple[str, ...]) -> dict[str, str]:
    """{``varreason/...``: hash} of the files matching ``globs`` (relative to ``varreason/``): bytes, or the
    syntax tree for a Python file (an lm-eval ``utils.py``), so its comments do not count either."""
    return {rel(p): source_hash(p) if p.suffix == ".py" else file_hash(p) for p in _data_paths(globs)}


def data_imports(globs: tuple[str, ...]) -> tuple[str, ...]:
    """The ``varreason`` modules that the Python files among ``globs`` import (lm-eval loads a task's
    ``utils.py`` by file name, so its imports are code of the step even though no module imports it)."""
    return tuple(sorted({m for p in _data_paths(globs) if p.suffix == ".py"
                         for m in direct_imports(f"{PACKAGE}._data_.{p.stem}", p)}))


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def clear_caches() -> None:
    """Forget parsed files (for a process that edits sources and fingerprints again, e.g. a test)."""
    for f in (direct_imports, closure, source_hash, file_hash):
        f.cache_clear()
