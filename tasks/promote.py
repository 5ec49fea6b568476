"""Task: eval-gated promotion of a run's reasoners (``varreason.promotion``), each one a Prefect transaction.

Per method (em-acc, em-gml, rft, grpo where it runs) the candidate is gated; if it passes, one transaction runs:
push the checkpoint (``push-<method>``: ``dvc push`` of its stage out on a DVC-versioned run, else a verified copy
into the local store), write the pointer atomically (``point-<method>``), read it back and check the stored object.
A failure anywhere in it rolls back, newest step first: the previous pointer is put back, and a store copy this
push made is removed unless a pointer names it (a DVC push is never undone: the object is an out of dvc.lock,
which ``dvc-version`` pushes anyway). A SIGKILL between push and pointer leaves the previous pointer and the pushed
object, which the next promotion of that checkpoint reuses. Runs after ``dvc-version`` (the push needs dvc.lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, State
from prefect.transactions import CommitMode, TransactionState, get_transaction, transaction

from tasks.versioning import dvc, lock_hashes, skip_reason
from varreason import promotion as pr
from varreason.config import ExperimentConfig
from varreason.faults import fault_point
from varreason.io import write_json
from varreason.pipeline.stages import out_path, ref_at
from varreason.recipe import graph
from varreason.steps import STEPS

ONCE = dict(cache_policy=NO_CACHE, persist_result=False, retries=0)


def trained_by(cfg: ExperimentConfig, method: str, rnd: int) -> str:
    """The recipe's task run (= DVC stage) that trained ``method``'s reasoner of round ``rnd``: train-pi-<m>-r<R>."""
    return next(n.run for n in graph(cfg) if (n.method, n.round) == (method, rnd) and STEPS[n.step].report == "train")


@dataclass(frozen=True)
class DvcStore:
    """The DVC remote: a checkpoint is the out ``dvc/<profile>/train-pi-<method>-r<round>`` of dvc.lock (the stage
    of the recipe step that trained it)."""

    cfg: ExperimentConfig
    shared = True

    def put(self, c: pr.Candidate) -> tuple[dict, bool]:
        path = out_path(self.cfg, trained_by(self.cfg, c.method, c.round))
        if ref_at(path).sha != c.checkpoint.sha:
            raise pr.PromotionError(f"{path} is not this run's checkpoint {c.checkpoint.sha}; dvc-version runs first")
        remote = dvc("remote", "default", check=False).stdout.strip()
        if not remote:
            raise pr.PromotionError("no default DVC remote to push to; add one (dvc remote add -d NAME URL)")
        dvc("push", "-q", path)
        md5 = next((r["md5"] for r in lock_hashes() if r["path"] == path), "")
        if not md5:
            raise pr.PromotionError(f"{path} is not an out of dvc.lock")
        return {"kind": "dvc", "remote": remote, "path": path, "md5": md5, "pushed": True}, False

    def verify(self, record: dict) -> None:
        if dvc("status", "--cloud", "-q", record["path"], check=False).returncode != 0:
            raise pr.PromotionError(f"{record['path']} is not in sync with DVC remote {record['remote']!r}")

    def discard(self, record: dict) -> bool:
        return False  # an out of dvc.lock: the remote keeps it whether promoted or not


@task(name="promote-push", task_run_name="push-{c.method}", **ONCE)
def push_checkpoint(store, c: pr.Candidate) -> dict:
    record, created = store.put(c)
    get_transaction().set("undo", {"store": store, "record": record, "created": created})
    return record


@push_checkpoint.on_rollback
def _unpush(txn) -> None:
    u = txn.get("undo")
    if u["created"]:
        u["store"].discard(u["record"])


@task(name="promote-point", task_run_name="point-{c.method}", **ONCE)
def write_pointer(path: str, doc: dict, previous: dict | None, c: pr.Candidate) -> None:
    write_json(Path(path), doc)
    get_transaction().set("undo", {"path": path, "previous": previous})


@write_pointer.on_rollback
def _unpoint(txn) -> None:
    u = txn.get("undo")
    pr.restore(Path(u["path"]), u["previous"])


def _one(cfg: ExperimentConfig, c: pr.Candidate, store, run: dict, base: dict | None) -> dict:
    path = pr.pointer_path(cfg.promotion.dir, cfg.profile, c.method, store.shared)
    out = {"method": c.method, "round": c.round, "sha": c.checkpoint.sha, "pointer": str(path)}
    try:
        previous, ev = pr.read_pointer(path), pr.evidence(c)
    except Exception as exc:  # noqa: BLE001 - an unreadable pointer or artifact refuses this method, not the run
        return {**out, "action": "error", "reasons": [f"{type(exc).__name__}: {exc}"]}
    action, reasons = pr.decide(cfg.promotion, c, ev, base, previous)
    out.update(action=action, reasons=reasons, accuracy=ev.metrics.get("accuracy"), ci95=ev.metrics.get("ci95"),
               was=(previous or {}).get("checkpoint", {}).get("sha"))
    if action != "promoted":
        return out
    txn = None
    try:
        with transaction(commit_mode=CommitMode.LAZY) as txn:  # LAZY + explicit commit: see docs/reliability.md
            stored = push_checkpoint(store, c)
            fault_point("promote-pushed")
            doc = pr.make_pointer(cfg.profile, c, ev, stored, run, reasons, previous, cfg.promotion,
                                  datetime.now(timezone.utc).isoformat(timespec="seconds"))
            write_pointer(str(path), doc, previous, c)
            pr.check_pointer(path, doc, store)
            if not txn.commit():
                raise pr.PromotionError("the transaction did not commit")
    except Exception as exc:  # noqa: BLE001 - rolled back: record why, keep the run's results
        undone = "rolled back" if txn is not None and txn.state == TransactionState.ROLLED_BACK else "ROLLBACK FAILED"
        return {**out, "action": "rolled back", "reasons": [f"{type(exc).__name__}: {exc} ({undone}; the previous "
                                                           "pointer stays)"]}
    return {**out, "stored": stored}


@task(name="promote", task_run_name="promote-{cfg.profile}", **ONCE)
def promote(cfg: ExperimentConfig, summary: dict, params_path: str, overrides: dict | None) -> list[dict]:
    """Gate and promote every method's last-round reasoner; publish ``vr-em-<profile>-promotion``; return one
    decision per method (``action`` in ``varreason.promotion.ACTIONS``, ``reasons``)."""
    why = skip_reason(cfg, params_path, overrides)
    store = pr.LocalStore(cfg.promotion.dir, why) if why else DvcStore(cfg)
    run = {"git_commit": summary.get("git_commit"), "params_digest": cfg.digest(), "params_path": params_path,
           "overrides": overrides or {}, "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name}
    base = pr.baseline_metrics(summary)
    with pr.promotion_lock(cfg.promotion.dir):
        decisions = [_one(cfg, c, store, run, base) for c in pr.candidates(summary)]
    log = get_run_logger()
    for d in decisions:
        (log.warning if d["action"] in pr.NOT_PROMOTED else log.info)(
            f"promotion {cfg.profile}/{d['method']}: {d['action']}: {'; '.join(d['reasons'])}")
    where = (f"local store `{cfg.promotion.dir}/.store` (not pushed: {why})" if why else "the default DVC remote")
    create_markdown_artifact(key=f"vr-em-{cfg.profile}-promotion".replace("_", "-").lower(),
                             markdown=pr.markdown(cfg.profile, cfg.promotion.dir, where, run, decisions),
                             description=f"vr-em {cfg.profile}: which reasoners were promoted, which refused, and why")
    return decisions


def final_state(summary: dict, decisions: list[dict]) -> dict | State:
    """The flow's return value: ``summary``, or when a method was not promoted a Completed state named
    ``NotPromoted`` that carries it (the run's results are good; only the release was withheld)."""
    bad = [d for d in decisions if d["action"] in pr.NOT_PROMOTED]
    if not bad:
        return summary
    msg = "; ".join(f"{d['method']} {d['action']}: {d['reasons'][0]}" for d in bad)
    return Completed(data=summary, name="NotPromoted", message=msg[:2000])
