"""What a run will reuse and what it will compute, and why, without running anything (``--status``).

Walks the run's steps in order (``varreason.recipe.graph``). A step whose inputs are all known (cached) has a
computable key (``varreason.steps.key_parts``); if its artifact exists it is *cached*, else it *will run*, and the
reason is the first difference between its key and the key of the last artifact built for the same task run (the
``.key.json`` every artifact keeps): a param (``sampling.temperature: 0.7 -> 0.8``), an input artifact, a code
file, a data file, a package version, the step's ``version``, or "never built". A step downstream of one that will
run *may run*: its key holds its inputs' content hashes, so it runs unless every rebuilt input comes out
byte-identical (a refactor that changes no output recomputes only the steps whose own code changed). Costs: the
planner's token upper bound (``varreason.plan.tokens``) and, when the task run was built before, its measured
wall time (and GPU-hours = devices x hours for GPU steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from varreason.config import ExperimentConfig
from varreason.io import _DONE, ArtifactRef, artifact_key, read_json, read_key
from varreason.plan import resources, tokens
from varreason.recipe import Node, graph
from varreason.shards import shard_ranges
from varreason.steps import STEPS, key_parts, merge_key_parts

_ORDER = ("params", "inputs", "ctx", "code", "data", "packages", "version")


@dataclass(frozen=True)
class StatusRow:
    run: str  # task-run name
    state: str  # "cached" | "will run" | "may run" (an input will be rebuilt: runs unless it comes out the same)
    reason: str  # why it (may) run ("" when cached)
    path: str | None  # the artifact (cached) or None
    est_tokens: int  # planner's upper bound (0 for cached steps)
    last_wall_s: float | None  # wall time of the last build of this task run, if any
    gpus: int


def _cached(root: str, out: str, parts: dict) -> ArtifactRef | None:
    path = Path(root) / out / artifact_key(out, parts)
    marker = path / _DONE
    return ArtifactRef(path=str(path), sha=marker.read_text().strip()) if marker.exists() else None


def _previous(root: str, out: str, step: str, label: str, ctx: dict) -> tuple[dict, Path] | None:
    """The newest artifact of ``step`` built for task run ``label`` (else for the same ctx) and its key file."""
    best = None
    for marker in (Path(root) / out).glob(f"*/{_DONE}"):
        meta = read_key(marker.parent)
        if not meta or meta.get("parts", {}).get("step") != step:
            continue
        rank = 2 if meta.get("label") == label else 1 if meta["parts"].get("ctx") == ctx else 0
        if rank and (best is None or (rank, marker.stat().st_mtime) > best[0]):
            best = ((rank, marker.stat().st_mtime), meta, marker.parent)
    return (best[1], best[2]) if best else None


def _leaf(key: str, a, b) -> tuple[str, object, object]:
    """The first differing leaf of two values (``model`` -> ``model.hidden_size``)."""
    while isinstance(a, dict) and isinstance(b, dict):
        k = next((k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)), None)
        if k is None:
            break
        key, a, b = f"{key}.{k}", a.get(k), b.get(k)
    return key, a, b


def _diff(old: dict, new: dict) -> str:
    """The first part of a key that differs, in words."""
    for part in _ORDER:
        a, b = old.get(part), new.get(part)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    what = {"params": "param", "inputs": "input", "ctx": "run position", "code": "code file",
                            "data": "data file", "packages": "package"}[part]
                    if part in ("code", "data"):
                        change = "added" if k not in a else "removed" if k not in b else "changed"
                        return f"{what} {k} {change}"
                    if part == "inputs":
                        return f"input {k} changed (new content)"
                    key, x, y = _leaf(k, a.get(k), b.get(k))
                    return f"{what} {key}: {x!r} -> {y!r}"
        return f"{part}: {a!r} -> {b!r}"
    return "same key, artifact missing (deleted?)"


def _why(root: str, out: str, step: str, label: str, parts: dict) -> tuple[str, float | None]:
    prev = _previous(root, out, step, label, parts.get("ctx", {}))
    if prev is None:
        return "never built", None
    meta, path = prev
    wall = (read_json(path / "stats.json") or {}).get("wall_s") if (path / "stats.json").exists() else None
    other = "" if meta.get("label") == label else f" (compared with {meta.get('label')})"
    return _diff(meta["parts"], parts) + other, wall


def _pending(c: ExperimentConfig, node: Node, known: dict[str, ArtifactRef | None], building: dict[str, str],
             pending: list[tuple[str, str]]) -> StatusRow:
    """A step whose inputs are not built yet: its key is unknown, but if an earlier step of this run has the same
    step, config, run position and inputs (the same upstream steps, by their place in the run), it has the same
    key and the run takes it from that step (the estimators' shared round-1 traces, say)."""
    s = STEPS[node.step]
    refs = {r: (None if u is None else known[u] if known.get(u) is not None
                else ArtifactRef(path="", sha=f"built in this run by {building.get('node:' + u, u)}"))
            for r, u in node.inputs.items()}
    first = building.setdefault(f"{s.out}/{artifact_key(s.out, {'step': s.name, **key_parts(s, c, refs, node.ctx)})}",
                                node.run)
    building["node:" + node.run] = building.get("node:" + first, first)
    gpus = resources(c, node.step)[0]
    if first != node.run:
        return StatusRow(node.run, "cached", f"built by {first} in this run", None, 0, None, gpus)
    role, up = pending[0]
    return StatusRow(node.run, "may run", f"input {role} ({up}) is rebuilt first", None,
                     tokens(c, node.step)[0], None, gpus)


def _node(c: ExperimentConfig, node: Node, known: dict[str, ArtifactRef | None], building: dict[str, str]
          ) -> tuple[StatusRow, ArtifactRef | None]:
    s, root = STEPS[node.step], c.artifacts_dir
    gpus = resources(c, node.step)[0]
    pending = [(r, u) for r, u in node.inputs.items() if u is not None and known.get(u) is None]
    if pending:
        return _pending(c, node, known, building, pending), None
    refs = {r: (known[u] if u else None) for r, u in node.inputs.items()}
    ranges = shard_ranges(c.data.n_train, c.sharding.shards) if s.sharded and c.sharding.shards > 1 else [None]
    shard_refs = []
    for i, rng in enumerate(ranges):
        ctx = {**node.ctx, **({"shard": rng} if rng else {})}
        parts = {"step": s.name, **key_parts(s, c, refs, ctx)}
        ref = _cached(root, s.out, parts)
        first = building.setdefault(f"{s.out}/{artifact_key(s.out, parts)}", node.run)
        if ref is None and first != node.run:  # an earlier step of this run computes the same key
            building["node:" + node.run] = building.get("node:" + first, first)
            return StatusRow(node.run, "cached", f"built by {first} in this run", None, 0, None, gpus), None
        if ref is None:
            label = node.run + (f"-s{i}" if rng else "")
            why, wall = _why(root, s.out, s.name, label, parts)
            return StatusRow(node.run, "will run", why + (f" [shard s{i}]" if rng else ""), None,
                             tokens(c, node.step)[0], wall, gpus), None
        shard_refs.append(ref)
    if ranges != [None]:  # the merge of the shards, keyed by their hashes
        merged = _cached(root, s.out, merge_key_parts(shard_refs))
        if merged is None:
            return StatusRow(node.run, "will run", "shards cached, merge not built", None, 0, None, 0), None
        shard_refs = [merged]
    return StatusRow(node.run, "cached", "", shard_refs[0].path, 0, None, gpus), shard_refs[0]


def status(cfg: ExperimentConfig) -> list[StatusRow]:
    """One row per task run of the profile, in execution order."""
    known: dict[str, ArtifactRef | None] = {}
    building: dict[str, str] = {}  # artifact key -> the first task run of this run that has it; "node:" + a task
    # run not built yet -> the first task run with the same key (so equal inputs name the same upstream step)
    rows = []
    for node in graph(cfg):
        row, ref = _node(cfg, node, known, building)
        known[node.run] = ref
        rows.append(row)
    return rows


def _human(x: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def format_status(cfg: ExperimentConfig, rows: list[StatusRow]) -> str:
    """Markdown: every step with cached / will run and the reason, then what the run will cost."""
    lines = [f"status of vr-em, profile {cfg.profile!r}, artifact store {cfg.artifacts_dir}", "",
             "| task run | state | why it runs |", "|---|---|---|"]
    lines += [f"| {r.run} | {r.state} | {r.reason or '-'} |" for r in rows]
    will = [r for r in rows if r.state == "will run"]
    may = [r for r in rows if r.state == "may run"]
    measured = [r for r in will if r.last_wall_s is not None]
    gpu_h = sum(r.gpus * r.last_wall_s for r in measured) / 3600
    lines += ["", f"{len(rows) - len(will) - len(may)} of {len(rows)} steps cached, {len(will)} will run, "
              f"{len(may)} may run (downstream of those: they run unless their rebuilt inputs come out identical); "
              f"publish-results always runs. At most {_human(sum(r.est_tokens for r in will + may))} tokens "
              f"(upper bound from max lengths)."]
    if will:
        lines.append(f"Measured at their last build: {len(measured)} of the {len(will)} steps that will run took "
                     f"{sum(r.last_wall_s for r in measured):.0f} s ({gpu_h:.3f} GPU-hours); the other "
                     f"{len(will) - len(measured)} were never built for this run.")
    return "\n".join(lines)
