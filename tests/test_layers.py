"""Imports point one way: flows -> tasks -> varreason. varreason imports no prefect/dvc; flows import no torch."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer,forbidden", [
    ("varreason", {"prefect", "dvc", "tasks", "flows"}),
    ("tasks", {"flows"}),
    ("flows", {"torch", "transformers", "vllm"}),
])
def test_import_direction(layer, forbidden):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no files under {layer}/"
    bad = {str(f.relative_to(ROOT)): sorted(_imports(f) & forbidden) for f in files if _imports(f) & forbidden}
    assert not bad, f"forbidden imports: {bad}"


def test_checker_sees_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import prefect.tasks\nfrom dvc.repo import Repo\ndef f():\n    import torch\n")
    assert _imports(f) == {"prefect", "dvc", "torch"}


def test_vllm_only_imported_lazily():
    for f in (ROOT / "varreason").rglob("*.py"):
        tree = ast.parse(f.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        mods = {(n.module if isinstance(n, ast.ImportFrom) else n.names[0].name) or "" for n in top}
        assert not any(m.startswith("vllm") for m in mods), f"{f} imports vllm at module level"
