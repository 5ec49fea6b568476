"""The paper's training data: Bespoke-Stratos-17k as reformatted by the authors (method.md §12).

Rows have ``question_content`` (the problem), ``think_content`` (DeepSeek-R1's thinking trace) and
``solution_content`` (the final solution, math answers in ``\\boxed{}``); the hub dataset
``zhouxiangxin/Bespoke-Stratos-17k-Reformatted`` holds 16,710 of them. ``load_rows`` takes a hub id (through
``datasets``, so ``HF_DATASETS_OFFLINE=1`` uses the local cache only) or a local ``.jsonl``/``.json``/``.parquet``
file or a directory of them. ``questions`` turns rows into the task table the pipeline reads (the same columns
as ``arith.Question`` plus ``solution``/``hint``):

* a seeded shuffle, then the first ``n_heldout`` rows are held out and the next ``n_train`` train;
* ``gold_trace`` = ``think_content`` on ``n_seed_traces`` training rows (the seed SFT data; the paper uses all);
* ``answer`` = the last ``\\boxed{}`` of the solution (``varreason.eval.grader``, the math grader that scores
  it), empty for code problems (APPS/TACO), which have no boxed answer and no verifier here;
* ``hint`` = the whole reference solution, what the posterior template's ``{hint}`` receives (PA/PB are not
  public, method.md §8: the reference posterior conditions on the solution, so we pass all of it).

The paper trains on all 16,710 rows and evaluates on benchmarks only (the qwen3 profile: ``n_heldout: 0``);
a held-out slice is available for smaller experiments.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from varreason.config import DataError
from varreason.eval.grader import last_boxed

FIELDS = ("question_content", "think_content", "solution_content")
SCHEMA = "the Bespoke-Stratos-17k-Reformatted schema (question_content, think_content, solution_content)"


def read_jsonl(path: Path) -> list[tuple[str, object]]:
    """``(file:line, value)`` per non-blank line; a line that is not UTF-8 or not JSON raises ``DataError``."""
    out = []
    for n, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{n}: not UTF-8 ({exc.reason} at byte {exc.start} of the line); re-encode the "
                            "file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
        try:
            out.append((f"{path}:{n}", json.loads(text)))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno}); write one JSON object "
                            "per line") from None
    return out


def _read_file(path: Path) -> list[tuple[str, dict]]:
    """``(where, row)`` per row; ``where`` is ``file:line`` (jsonl) or ``file row i``, for error messages."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0][:100]}); "
                            "rewrite it with pyarrow/pandas or convert it to .jsonl") from None
        return [(f"{path} row {i}", r) for i, r in enumerate(table.to_pylist())]
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); re-encode it as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the syntax there") from None
        rows = doc if isinstance(doc, list) else doc.get("data", doc.get("rows", [])) if isinstance(doc, dict) else []
        return [(f"{path} row {i}", r) for i, r in enumerate(rows)]
    raise DataError(f"{path}: expected .jsonl, .json or .parquet")


def _check_row(where: str, row: object) -> None:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object in {SCHEMA}, got {type(row).__name__}")
    for f in FIELDS:
        if f not in row or row[f] is None:
            raise DataError(f"{where}: field {f!r} is missing (the row has {sorted(row)}); expected {SCHEMA}")
        if not isinstance(row[f], str):
            raise DataError(f"{where}: field {f!r} must be a string, got {type(row[f]).__name__}; expected {SCHEMA}")
    for f in ("question_content", "solution_content"):  # nothing to ask, or no answer and no posterior hint
        if not row[f].strip():
            raise DataError(f"{where}: field {f!r} is empty; fill it in or delete the row")


def load_rows(dataset: str) -> list[dict]:
    """Every row of ``dataset`` (hub id or local path), checked against the schema.

    Raises:
        DataError: one line naming the file and line (or row), the field and the fix, for a file that is missing,
            not UTF-8 or not JSON, a row that lacks a field or has an empty question or solution, and two rows
            with the same optional ``id``. An empty ``think_content`` is allowed (see ``questions``).
    """
    path = Path(dataset)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet") and p.is_file())
        if not files:
            raise DataError(f"data.dataset {dataset!r}: the directory holds no .jsonl/.json/.parquet files")
        located = [r for f in files for r in _read_file(f)]
    elif path.exists():
        located = _read_file(path)
    elif dataset.startswith((".", "/")) or dataset.endswith((".jsonl", ".json", ".parquet")):
        raise DataError(f"data.dataset {dataset!r} does not exist; give a hub id or an existing path")
    else:
        import datasets

        hub = datasets.load_dataset(dataset, split="train").to_list()
        located = [(f"{dataset} row {i}", r) for i, r in enumerate(hub)]
    if not located:
        raise DataError(f"data.dataset {dataset!r} holds no rows; point it at a non-empty file")
    first_of: dict[object, str] = {}
    for where, row in located:
        _check_row(where, row)
        rid = row.get("id")
        if rid is not None:
            if rid in first_of:
                raise DataError(f"{where}: duplicate id {rid!r} (first at {first_of[rid]}); make ids unique or "
                                "drop the repeated row")
            first_of[rid] = where
    return [row for _, row in located]


def duplicate_questions(rows: list[dict]) -> int:
    """Rows whose ``question_content`` repeats an earlier row's: kept (the source's choice), counted in the task
    stats as ``n_duplicate_questions`` so a split that may share a question across train and held-out shows."""
    seen: set[str] = set()
    dup = 0
    for r in rows:
        dup += r["question_content"] in seen
        seen.add(r["question_content"])
    return dup


def questions(rows: list[dict], n_train: int, n_heldout: int, n_seed_traces: int, seed: int) -> list[dict]:
    """The task table: ``n_heldout`` held-out then ``n_train`` training rows of a seeded shuffle.

    Ids carry the row's index in the source (``bespoke-000123``), so they are stable under re-splitting.
    Policy: a seed row whose ``think_content`` is empty carries no gold trace (an empty trace teaches nothing);
    the task build counts these as ``n_seed_empty``. A row whose solution has no ``\\boxed{}`` (code problems)
    gets answer ``""``, is never graded correct and is counted as ``n_code``.
    """
    if n_train + n_heldout > len(rows):
        raise DataError(f"data.n_train + data.n_heldout = {n_train + n_heldout} but the dataset has {len(rows)} "
                        "rows; lower one of them")
    order = list(range(len(rows)))
    rng = random.Random(seed)
    rng.shuffle(order)
    heldout, train = order[:n_heldout], order[n_heldout : n_heldout + n_train]
    seeded = set(rng.sample(train, n_seed_traces))
    out = []
    for split, idx in (("train", train), ("heldout", heldout)):
        for i in idx:
            r = rows[i]
            out.append({"id": f"bespoke-{i:06d}", "question": r["question_content"],
                        "answer": last_boxed(r["solution_content"]) or "", "level": 0, "split": split,
                        "gold_trace": r["think_content"] if i in seeded and r["think_content"].strip() else None,
                        "solution": r["solution_content"], "hint": r["solution_content"]})
    return out
