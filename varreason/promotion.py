"""Eval-gated promotion: which checkpoint of a run becomes the promoted one, the pointer that says so, and the
local store that keeps a promoted checkpoint of a run DVC does not version. Pure library: the Prefect task that
runs it as a transaction (push, pointer, check; rolled back on failure) and the DVC push are ``tasks/promote.py``.

For each method of a run other than the SFT baseline (``em-acc``, ``em-gml``, ``rft``, ``grpo`` where
``baselines.grpo`` is on), the candidate is the reasoner of its last round and that reasoner's evaluation
(``candidates``). ``gate`` checks it against
``promotion:`` of params.yaml: every number in the evaluation's metrics.json finite, the training loss
(``final_loss``, ``mean_nll`` of the checkpoint's stats.json) finite, accuracy >= ``min_accuracy``, >= the lower 95%
CI bound of this run's SFT baseline (``not_below_baseline``) and >= the lower bound of the checkpoint promoted
before (``no_regression``; only when both evaluations are alike: same held-out questions, eval params and eval task
files, see ``eval_identity``; otherwise the check is reported as not applicable).

The pointer of (profile, method) is one JSON file, written atomically (``io.write_json``):
``<dir>/<profile>/<method>.json`` when the checkpoint is in the DVC remote (commit it with dvc.lock), else
``<dir>/.local/<profile>/<method>.json`` with the checkpoint copied into ``<dir>/.store/<sha>`` (machine-local,
git-ignored). It holds the checkpoint's path and content sha, where it is stored, the evaluation's headline metrics,
the training loss, the run (git commit, params digest, Prefect flow run), the gate's reasons, the time, and the
pointer it replaced (``previous``), which ``python -m varreason.promotion rollback`` puts back.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varreason.config import PromotionConfig
from varreason.io import ArtifactRef, hash_dir, hash_json, read_json, read_key, write_atomic, write_json

BASELINE = "sft"
ACTIONS = ("promoted", "kept", "refused", "rolled back", "error")  # the outcome of one method; the last three
NOT_PROMOTED = ("refused", "rolled back", "error")  # leave the previous pointer in place


class PromotionError(RuntimeError):
    """A promotion could not be carried out (unreadable pointer, failed push, store copy that does not verify)."""


@dataclass(frozen=True)
class Candidate:
    """The reasoner of a method's last round and its evaluation."""

    method: str
    round: int
    checkpoint: ArtifactRef
    evaluation: ArtifactRef


def _refs(summary: dict, stage: str) -> dict[tuple[str, int], ArtifactRef]:
    return {(a["method"], a["round"]): ArtifactRef(path=a["path"], sha=a["sha"])
            for a in summary["artifacts"] if a["stage"] == stage}


def candidates(summary: dict) -> list[Candidate]:
    """One candidate per method but the baseline, from a run summary (``report.collect``: its ``artifacts`` list the
    ``train`` (reasoner checkpoint) and ``eval`` artifacts of every method and round), in method order."""
    train, evals = _refs(summary, "train"), _refs(summary, "eval")
    out = []
    for method in sorted({m for m, _ in evals if m != BASELINE}):
        last = max(r for m, r in evals if m == method)
        if (method, last) not in train:
            raise PromotionError(f"the run summary has an evaluation of {method} round {last} but no checkpoint")
        out.append(Candidate(method, last, train[(method, last)], evals[(method, last)]))
    return out


def baseline_metrics(summary: dict) -> dict | None:
    """metrics.json of this run's SFT-only evaluation (pi_theta0), None if the run has none."""
    ref = _refs(summary, "eval").get((BASELINE, 0))
    return read_json(ref.verify() / "metrics.json") if ref else None


def non_finite(obj: Any, path: str = "") -> list[str]:
    """Dotted paths (``tasks.vr_arith.ci95[0]``) of every NaN or infinite number in a JSON-like value."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return [f"{path}={obj}"]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_finite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite(v, f"{path}[{i}]")]
    return []


def eval_identity(evaluation: str | Path) -> str | None:
    """What an evaluation measured: a hash of its held-out questions (the ``task`` input's sha), the config values
    its step reads (eval, sampling engine, model, prompt, seed) and its task files, from its ``.key.json``. Code and
    package versions are left out, so a refactor does not reset the regression baseline. None if no key."""
    key = read_key(evaluation)
    if not key or "parts" not in key:
        return None
    parts = key["parts"]
    return hash_json({"task": parts.get("inputs", {}).get("task"), "params": parts.get("params"),
                      "data": parts.get("data")})


@dataclass(frozen=True)
class Evidence:
    metrics: dict  # the evaluation's metrics.json
    train: dict  # the checkpoint's stats.json (final_loss, mean_nll, ...)
    eval_id: str | None


def evidence(c: Candidate) -> Evidence:
    return Evidence(read_json(c.evaluation.verify() / "metrics.json"), read_json(c.checkpoint.verify() / "stats.json"),
                    eval_identity(c.evaluation.path))


def _lower(metrics: dict | None) -> float | None:
    ci = (metrics or {}).get("ci95")
    ok = isinstance(ci, (list, tuple)) and len(ci) == 2 and not non_finite(list(ci))
    return float(ci[0]) if ok and isinstance(ci[0], (int, float)) else None


def gate(cfg: PromotionConfig, ev: Evidence, baseline: dict | None, previous: dict | None) -> tuple[bool, list[str]]:
    """Pure: does a candidate pass? Returns (passed, reasons): when refused, every failed check; when passed, what
    each applied check found (and which did not apply, and why). ``baseline``: this run's SFT metrics.json;
    ``previous``: the current pointer of (profile, method) or None."""
    fails, notes = [], []
    bad = non_finite(ev.metrics)
    if bad:
        fails.append(f"evaluation metrics not finite: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    acc = ev.metrics.get("accuracy")
    if not isinstance(acc, (int, float)) or isinstance(acc, bool) or not 0 <= acc <= 1:
        fails.append(f"accuracy is {acc!r}, not a number in [0, 1]")
        acc = None
    for k in ("final_loss", "mean_nll"):
        v = ev.train.get(k)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            fails.append(f"training {k} is {v!r}, not a finite number")
    if acc is None:
        return False, fails
    (fails if acc < cfg.min_accuracy else notes).append(f"accuracy {acc:.4f} {'<' if acc < cfg.min_accuracy else '>='} "
                                                        f"min_accuracy {cfg.min_accuracy}")
    if cfg.not_below_baseline:
        lo = _lower(baseline)
        if lo is None:
            notes.append("baseline check not applied: the run has no SFT evaluation with a finite ci95")
        else:
            (fails if acc < lo else notes).append(f"accuracy {acc:.4f} {'<' if acc < lo else '>='} {lo:.4f}, the "
                                                  "lower 95% CI bound of the SFT baseline")
    if cfg.no_regression:
        _regression(acc, ev, previous, fails, notes)
    return (not fails), (fails or notes)


def _regression(acc: float, ev: Evidence, previous: dict | None, fails: list[str], notes: list[str]) -> None:
    if previous is None:
        notes.append("regression check not applied: nothing promoted before")
        return
    pe = previous.get("evaluation", {})
    lo = _lower(pe.get("metrics"))
    if ev.eval_id is None or pe.get("identity") != ev.eval_id:
        notes.append("regression check not applied: the promoted checkpoint was evaluated differently (other "
                     "held-out questions, eval params or task files)")
    elif lo is None:
        notes.append("regression check not applied: the promoted checkpoint's ci95 is missing")
    else:
        sha = previous.get("checkpoint", {}).get("sha", "?")
        (fails if acc < lo else notes).append(
            f"accuracy {acc:.4f} {'<' if acc < lo else '>='} {lo:.4f}, the lower 95% CI bound of the promoted "
            f"checkpoint {sha} (accuracy {pe['metrics'].get('accuracy', float('nan')):.4f})")


def decide(cfg: PromotionConfig, c: Candidate, ev: Evidence, baseline: dict | None,
           previous: dict | None) -> tuple[str, list[str]]:
    """("promoted" | "kept" | "refused", reasons): "kept" when ``c`` is already the promoted checkpoint."""
    if previous and previous.get("checkpoint", {}).get("sha") == c.checkpoint.sha:
        run = previous.get("run", {})
        return "kept", [f"already the promoted checkpoint (since flow run {run.get('flow_run_name', '?')} "
                        f"{str(run.get('flow_run_id', '?'))[:8]}, {previous.get('promoted_at', '?')})"]
    passed, reasons = gate(cfg, ev, baseline, previous)
    return ("promoted" if passed else "refused"), reasons


def markdown(profile: str, root: str, where: str, run: dict, decisions: list[dict]) -> str:
    """The run's promotion report (Prefect artifact ``vr-em-<profile>-promotion``): one row per method."""
    def acc(d: dict) -> str:
        a, ci = d.get("accuracy"), d.get("ci95")
        ok = isinstance(a, (int, float)) and isinstance(ci, (list, tuple)) and len(ci) == 2
        return f"{a:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ok else str(a)

    rows = "\n".join(f"| {d['method']} | {d['round']} | **{d['action']}** | `{d['sha']}` | {acc(d)} | "
                     f"`{d.get('was') or '-'}` | {'<br>'.join(d['reasons'])} |" for d in decisions)
    return (f"# Promotion: profile `{profile}`\n\nCheckpoints go to {where}; pointers under `{root}`. Flow run "
            f"`{run.get('flow_run_name')}` (`{run.get('flow_run_id')}`), git `{run.get('git_commit')}`, params digest "
            f"`{run.get('params_digest')}`.\n\n| method | round | decision | checkpoint | accuracy [95% CI] | was "
            f"| why |\n|---|---|---|---|---|---|---|\n{rows}\n")


# ---- pointers ----

def pointer_path(root: str | Path, profile: str, method: str, shared: bool) -> Path:
    """Where the pointer of (profile, method) lives: shared (DVC remote, committed) or machine-local."""
    return Path(root) / profile / f"{method}.json" if shared else Path(root) / ".local" / profile / f"{method}.json"


def read_pointer(path: Path) -> dict | None:
    """The pointer at ``path``; None if there is none. A pointer that does not parse is an error, never 'none'."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PromotionError(f"{path}: unreadable pointer ({exc}); restore it (git checkout, or python -m "
                             "varreason.promotion rollback) or remove it") from None
    if not isinstance(doc, dict) or "checkpoint" not in doc:
        raise PromotionError(f"{path}: not a promotion pointer; restore it or remove it")
    return doc


def make_pointer(profile: str, c: Candidate, ev: Evidence, stored: dict, run: dict, reasons: list[str],
                 previous: dict | None, cfg: PromotionConfig, now: str) -> dict:
    """The pointer document (see the module docstring); ``previous`` is kept one level deep."""
    prev = {k: v for k, v in previous.items() if k != "previous"} if previous else None
    return {"schema": 1, "profile": profile, "method": c.method, "round": c.round, "promoted_at": now,
            "checkpoint": {"path": c.checkpoint.path, "sha": c.checkpoint.sha}, "stored": stored,
            "evaluation": {"path": c.evaluation.path, "sha": c.evaluation.sha, "identity": ev.eval_id,
                           "metrics": {k: v for k, v in ev.metrics.items() if k != "tasks"}},
            "train": {k: ev.train.get(k) for k in ("final_loss", "mean_nll", "steps")}, "run": run,
            "gate": {"config": cfg.model_dump(), "reasons": reasons}, "previous": prev}


def check_pointer(path: Path, doc: dict, store) -> None:
    """After the write: the pointer reads back as written and names a stored object (``store.verify``)."""
    got = read_pointer(path)
    if got is None or got["checkpoint"] != doc["checkpoint"] or got["stored"] != doc["stored"]:
        raise PromotionError(f"{path} does not read back as written")
    store.verify(doc["stored"])


def restore(path: Path, previous: dict | None) -> None:
    """Put ``previous`` back at ``path`` (atomically), or remove the pointer if there was none."""
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        write_json(path, previous)


def pointers(root: str | Path, profile: str = "*") -> list[Path]:
    """Every pointer file under ``root``: ``<profile>/<method>.json`` and ``.local/<profile>/<method>.json``."""
    root = Path(root)
    return sorted(p for p in [*root.glob(f"{profile}/*.json"), *root.glob(f".local/{profile}/*.json")]
                  if not p.name.startswith("."))


def referenced(root: str | Path) -> set[str]:
    """Checkpoint shas some pointer under ``root`` (shared or local) names, previous pointers included."""
    out = set()
    for p in pointers(root):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(p.read_text())
            for d in (doc, doc.get("previous") or {}):
                if isinstance(d, dict) and isinstance(d.get("checkpoint"), dict):
                    out.add(d["checkpoint"].get("sha"))
    return out


@contextlib.contextmanager
def promotion_lock(root: str | Path):
    """Exclusive ``flock`` on ``<root>/.locks/promote.lock``: one promotion at a time per pointer directory (two
    runs of one profile would otherwise both read the same previous pointer; the store's clean-up checks pointers)."""
    locks = Path(root) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / "promote.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


# ---- the local store (runs DVC does not version) ----

@dataclass(frozen=True)
class LocalStore:
    """Content-addressed copies of promoted checkpoints, ``<root>/.store/<sha>`` (hard links where the filesystem
    allows: artifacts are never edited in place). ``why`` says why the run is not pushed to DVC."""

    root: str
    why: str
    shared = False

    def put(self, c: Candidate) -> tuple[dict, bool]:
        """Copy ``c``'s checkpoint into the store, verified by re-hashing; returns (record, created)."""
        from varreason.pipeline.stages import materialise

        ref = c.checkpoint
        dest = Path(self.root) / ".store" / ref.sha
        created = not (dest / ".complete").exists()
        materialise(ref, dest)
        if hash_dir(dest) != ref.sha:
            shutil.rmtree(dest, ignore_errors=True)
            raise PromotionError(f"copy of {ref.path} in {dest} does not hash to {ref.sha}")
        return {"kind": "local", "path": str(dest), "sha": ref.sha, "pushed": False, "why": self.why}, created

    def verify(self, record: dict) -> None:
        ArtifactRef(path=record["path"], sha=record["sha"]).verify()

    def discard(self, record: dict) -> bool:
        """Remove a copy this promotion made, unless a pointer names it (callers hold ``promotion_lock``)."""
        if record["sha"] in referenced(self.root):
            return False
        shutil.rmtree(record["path"], ignore_errors=True)
        return True


# ---- by hand ----

def rollback(path: Path) -> dict:
    """Replace the pointer at ``path`` with the one it replaced (its ``previous``); return the restored one."""
    cur = read_pointer(path)
    if cur is None or not cur.get("previous"):
        raise PromotionError(f"{path}: nothing to roll back to (no pointer, or it replaced none)")
    write_json(path, cur["previous"])
    return cur["previous"]


def dvc_file(ptr: dict, dest: Path) -> Path:
    """Write ``<dest>.dvc``, whose ``dvc pull`` fetches the pointer's checkpoint from the DVC remote into ``dest``
    (by the md5 the pointer recorded, whatever dvc.lock says now); ``dest`` must lie in the DVC repository."""
    stored = ptr.get("stored", {})
    if stored.get("kind") != "dvc":
        raise PromotionError(f"the checkpoint was not pushed to DVC; it is at {stored.get('path')}")
    out = dest.with_name(dest.name + ".dvc")
    write_atomic(out, f"outs:\n- md5: {stored['md5']}\n  hash: md5\n  path: {dest.name}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m varreason.promotion", description="promoted checkpoints")
    p.add_argument("command", choices=("show", "rollback", "restore"))
    p.add_argument("--dir", default="promoted", help="promotion.dir of params.yaml")
    p.add_argument("--profile", default=None)
    p.add_argument("--method", default=None, help="rollback/restore: em-acc, em-gml or rft")
    p.add_argument("--local", action="store_true", help="rollback: the machine-local pointer (non-DVC runs)")
    p.add_argument("--to", default=None, help="restore: the directory `dvc pull` fills")
    a = p.parse_args(argv)
    if a.command != "show" and not (a.profile and a.method and (a.to or a.command == "rollback")):
        p.error(f"{a.command} needs --profile and --method{' and --to' if a.command == 'restore' else ''}")
    path = pointer_path(a.dir, a.profile or "", a.method or "", shared=not a.local)
    try:
        if a.command == "rollback":
            back = rollback(path)
            print(f"{a.profile}/{a.method}: back to {back['checkpoint']['sha']} (promoted {back.get('promoted_at')})")
        elif a.command == "restore":
            ptr = read_pointer(path)
            if ptr is None:
                raise PromotionError(f"{path}: no pointer")
            print(f"wrote {dvc_file(ptr, Path(a.to))}; now run: dvc pull {Path(a.to)}.dvc")
    except PromotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.command != "show":
        return 0
    for f in pointers(a.dir, a.profile or "*"):
        with contextlib.suppress(PromotionError):
            d = read_pointer(f) or {}
            m = d.get("evaluation", {}).get("metrics", {})
            st = d.get("stored") or {}
            print(f"{f}: {d['checkpoint'].get('sha')} round {d.get('round')} accuracy {m.get('accuracy')} ci95 "
                  f"{m.get('ci95')} stored {st.get('kind')} {st.get('path')} at {d.get('promoted_at')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
