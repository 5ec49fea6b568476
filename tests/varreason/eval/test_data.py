"""The shipped benchmark files: byte-identical to SOURCES.md's table, and declared as package data."""

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "varreason" / "eval" / "data"


def table() -> dict[str, tuple[int, str]]:
    rows = re.findall(r"^\| (\w+\.jsonl) \| (\d+) \| ([0-9a-f]{64}) \|$", (DATA / "SOURCES.md").read_text(), re.M)
    return {name: (int(n), sha) for name, n, sha in rows}


def test_table_lists_the_four_benchmarks():
    assert sorted(table()) == ["aime24.jsonl", "aime25.jsonl", "amc23.jsonl", "math500.jsonl"]


@pytest.mark.parametrize("name", ["math500.jsonl", "aime24.jsonl", "aime25.jsonl", "amc23.jsonl"])
def test_sha256_and_rows_match_sources_md(name):
    n_rows, sha = table()[name]
    raw = (DATA / name).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == sha
    rows = [json.loads(line) for line in raw.decode().splitlines()]
    assert len(rows) == n_rows
    assert all(r["problem"] and r["answer"] and r["id"] for r in rows)
    assert len({r["id"] for r in rows}) == n_rows


def test_every_shipped_file_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    eval_dir = ROOT / "varreason" / "eval"
    shipped = [p.relative_to(eval_dir).as_posix() for sub in ("data", "tasks") for p in (eval_dir / sub).iterdir()
               if p.is_file() and "__pycache__" not in p.parts]
    assert len(shipped) >= 5 + 7
    missing = [f for f in shipped if not any(fnmatch.fnmatch(f, pat) for pat in patterns["varreason.eval"])]
    assert not missing, f"not declared in [tool.setuptools.package-data]: {missing}"
