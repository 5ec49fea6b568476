"""Sharding by question range: split a step's training questions into contiguous ranges, run one step per range
(each its own artifact, so a crash costs one shard, not a pass), and merge the shard artifacts into one.

Seeds are per question (``stable_seed(seed, purpose, qid)``) and per sample (``request_seed``), never per batch,
so shard ``[a, b)`` draws exactly the samples the unsharded pass draws for questions ``a..b-1``; a merge that
concatenates shard rows in range order gives the unsharded table (texts and token ids equal; floats up to the
rounding of differently padded batches). The orchestration (which runner, how shards are submitted) lives in
``flows/shards.py``; this module is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from varreason.io import ArtifactRef, produce, read_json, read_rows, write_json

Shard = tuple[int, int]  # [start, stop) into the split's questions, in task order


def shard_ranges(n: int, shards: int) -> list[Shard]:
    """``min(shards, n)`` contiguous ranges covering ``range(n)``; sizes differ by at most one (larger first).

    >>> shard_ranges(10, 4)
    [(0, 3), (3, 6), (6, 8), (8, 10)]
    """
    if n < 0 or shards < 1:
        raise ValueError(f"need n >= 0 and shards >= 1, got n={n}, shards={shards}")
    k = max(1, min(shards, n))
    size, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        stop = start + size + (i < extra)
        out.append((start, stop))
        start = stop
    return out


def in_shard(items: list, shard: Shard | None) -> list:
    """The items of ``shard`` (all of them when unsharded)."""
    return items if shard is None else items[shard[0]: shard[1]]


def shard_key(shard: Shard | None) -> dict:
    """Cache-key part of a shard: empty when unsharded, so unsharded keys are the ones they always were."""
    return {} if shard is None else {"shard": list(shard)}


def _accuracy(rows: list[dict]) -> dict:
    return {"accuracy": sum(r["correct"] for r in rows) / max(1, len(rows))}


@dataclass(frozen=True)
class MergeSpec:
    """How a step's shard artifacts merge: the one table they hold, the stats that add up across shards (the
    rest must agree across shards), and stats recomputed from the merged rows (means)."""

    table: str
    additive: tuple[str, ...]
    derived: Callable[[list[dict]], dict] | None = field(default=None)


MERGES: dict[str, MergeSpec] = {
    "traces": MergeSpec("traces.parquet", ("tokens_generated", "n_traces", "n_unfinished", "n_empty")),
    "scores": MergeSpec("scores.parquet", ("tokens_scored",)),
    "answers": MergeSpec("answers.parquet", ("tokens_generated", "n_rollouts")),
    "responses": MergeSpec("responses.parquet", ("tokens_generated", "n_responses", "n_unparsed"), _accuracy),
}


def _merge_stats(spec: MergeSpec, parts: list[dict], merged_rows: list[dict]) -> dict:
    out: dict = {}
    for key in sorted({k for p in parts for k in p} - {"wall_s"}):
        values = [p.get(key) for p in parts]
        if key in spec.additive:
            out[key] = sum(values)
        elif spec.derived is None or key not in spec.derived(merged_rows):
            if any(v != values[0] for v in values):
                raise ValueError(f"shard stats disagree on {key!r}: {values}; the shards come from different runs")
            out[key] = values[0]
    if spec.derived is not None:
        out.update(spec.derived(merged_rows))
    walls = [p.get("wall_s", 0.0) for p in parts]
    # wall_s keeps its meaning for the cost table (compute seconds spent on the step), now summed over shards;
    # the slowest shard bounds the step's elapsed time when shards run in parallel.
    out.update(wall_s=round(sum(walls), 3), shard_wall_s_max=max(walls), shards=len(parts))
    return out


def merge_shards(parts: list[ArtifactRef], root: str, key_parts: dict | None = None) -> ArtifactRef:
    """One artifact of the parts' step (``traces``, ``scores``, ``answers`` or ``responses``) whose table is the
    shard tables concatenated in the given (range) order, i.e. the unsharded table, and whose ``stats.json`` sums
    counts and compute seconds (``shards``: how many). Keyed by ``key_parts`` (``varreason.steps.merge_key_parts``:
    the parts' content hashes and this module's code), else by the hashes alone."""
    if not parts:
        raise ValueError("merge_shards needs at least one shard artifact")
    steps = {Path(p.path).parent.name for p in parts}
    if len(steps) != 1 or (step := steps.pop()) not in MERGES:
        raise ValueError(f"shards must all be of one mergeable step {sorted(MERGES)}; got {sorted(steps)}")
    spec = MERGES[step]

    def build(out: Path) -> None:
        tables = [pq.read_table(p.verify() / spec.table) for p in parts]
        tables = [t for t in tables if t.num_columns]  # an empty shard (no finished traces) has no schema
        # promote: a shard whose optional column is all null (no correct answer) gets the others' type
        merged = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
        pq.write_table(merged, out / spec.table)
        stats = _merge_stats(spec, [read_json(p.verify() / "stats.json") for p in parts],
                             read_rows(out / spec.table) if spec.derived else [])
        write_json(out / "stats.json", stats)

    return produce(root, step, key_parts or {"merged_shards": [p.sha for p in parts]}, build)
