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

from varreason.eval.grader import last_boxed

FIELDS = ("question_content", "think_content", "solution_content")


def _read_file(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, list) else doc.get("data", doc.get("rows", []))
    raise ValueError(f"{path}: expected .jsonl, .json or .parquet")


def load_rows(dataset: str) -> list[dict]:
    """Every row of ``dataset`` (hub id or local path), checked for the three fields of the schema."""
    path = Path(dataset)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet"))
        if not files:
            raise FileNotFoundError(f"{path} holds no .jsonl/.json/.parquet files")
        rows = [r for f in files for r in _read_file(f)]
    elif path.exists():
        rows = _read_file(path)
    elif dataset.startswith((".", "/")) or dataset.endswith((".jsonl", ".json", ".parquet")):
        raise FileNotFoundError(f"data.dataset {dataset!r} does not exist; give a hub id or an existing path")
    else:
        import datasets

        rows = datasets.load_dataset(dataset, split="train").to_list()
    for i, row in enumerate(rows):
        missing = [f for f in FIELDS if not isinstance(row.get(f), str)]
        if missing:
            raise ValueError(f"{dataset}: row {i} lacks string field(s) {missing} (has {sorted(row)}); expected the "
                             f"Bespoke-Stratos-17k-Reformatted schema {list(FIELDS)}")
    return rows


def questions(rows: list[dict], n_train: int, n_heldout: int, n_seed_traces: int, seed: int) -> list[dict]:
    """The task table: ``n_heldout`` held-out then ``n_train`` training rows of a seeded shuffle.

    Ids carry the row's index in the source (``bespoke-000123``), so they are stable under re-splitting.
    """
    if n_train + n_heldout > len(rows):
        raise ValueError(f"data.n_train + data.n_heldout = {n_train + n_heldout} but the dataset has {len(rows)} "
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
                        "gold_trace": r["think_content"] if i in seeded else None,
                        "solution": r["solution_content"], "hint": r["solution_content"]})
    return out
