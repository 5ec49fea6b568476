"""Every third-party package the code imports is declared in pyproject.toml itself, not only pulled in by
another package (``datasets`` once arrived only through lm-eval): the library's imports in the main
dependencies or an extra, the tests' and benchmarks' in those or the ``test`` extra."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN = {"varreason", "tasks", "flows", "tests", "benchmarks", "science"}


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", req).group(0)).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return ({_name(r) for r in project["dependencies"]},
            {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()})


def _imports(dirs: list[str]) -> dict[str, str]:
    """Top-level third-party module -> one file importing it (lazy imports inside functions included)."""
    local = {p.stem for d in dirs for p in (ROOT / d).rglob("*.py")}  # helper modules next to the tests
    found = {}
    for d in dirs:
        for f in sorted((ROOT / d).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for top in {n.split(".")[0] for n in names} - OWN - local - set(sys.stdlib_module_names):
                    found.setdefault(top, str(f.relative_to(ROOT)))
    return found


def _undeclared(dirs: list[str], allowed: set[str]) -> list[str]:
    dists = packages_distributions()
    bad = []
    for mod, where in sorted(_imports(dirs).items()):
        # an installed module: by the distribution that provides it; one not installed here (vllm): by its name
        names = {_name(d) for d in dists.get(mod, [])} or {_name(mod)}
        if not names & allowed:
            bad.append(f"{mod} (imported by {where}; provided by {sorted(names)})")
    return bad


def test_library_imports_are_declared():
    main, extras = _declared()
    assert not _undeclared(["varreason", "tasks", "flows", "science"], main.union(*extras.values()))


@pytest.mark.parametrize("needed", ["datasets", "dvc", "dvc-s3", "math-verify", "antlr4-python3-runtime"])
def test_the_issue_22_packages_are_declared(needed):
    main, extras = _declared()
    assert needed in main.union(*extras.values())


def test_test_and_benchmark_imports_are_declared():
    main, extras = _declared()
    assert not _undeclared(["tests", "benchmarks"], main | extras["test"] | extras["dvc"] | extras["gpu"])


def test_the_checker_sees_a_lazy_undeclared_import(tmp_path, monkeypatch):
    pkg = tmp_path / "varreason"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f():\n    import numpy\n    from yaml import safe_load\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _undeclared(["varreason"], {"numpy"}) == ["yaml (imported by varreason/m.py; provided by ['pyyaml'])"]
