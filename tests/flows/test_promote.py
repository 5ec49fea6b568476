"""The promote task as a Prefect transaction: a passing gate moves the pointer, a failing one never does, a failure
between push and pointer (or after the pointer write) rolls back to the previous pointer; the DVC push on a real
DVC repository; and the whole flow on smoke (slow)."""

import asyncio
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.testing.utilities import prefect_test_harness

import tasks.promote as tp
from varreason import promotion as pr
from varreason.config import load_config
from varreason.io import ArtifactRef, hash_dir, produce, write_json

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"final_loss": 1.2, "mean_nll": 1.5, "steps": 10}
METHODS = ("em-acc", "em-gml", "rft")


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def _cfg(tmp: Path, **more):
    return load_config(ROOT / "params.yaml", "smoke", {"artifacts_dir": str(tmp / "artifacts"),
                                                       "promotion.enabled": True,
                                                       "promotion.dir": str(tmp / "promoted"), **more})


def _art(root, out, files, parts):
    def build(d):
        for name, doc in files.items():
            write_json(d / name, doc)
    return produce(root, out, parts, build)


def _summary(root, tags: dict, acc=0.4, nan_in=()):
    """A run summary (report.collect's ``artifacts``) of hand-made artifacts: sft r0 and each method's round 1,
    the checkpoint of method m keyed by ``tags[m]`` (same tag: same checkpoint); a NaN in the metrics of ``nan_in``."""
    arts = []
    for method in ("sft", *METHODS):
        ck = _art(root, "checkpoint", {"stats.json": TRAIN, "w.json": {"m": method, "t": tags.get(method)}},
                  {"m": method, "t": tags.get(method)})
        a = 0.2 if method == "sft" else acc
        m = {"accuracy": a, "ci95": [a - 0.05, a + 0.05], "tasks": {"vr_arith": {"avg@n": a}}}
        if method in nan_in:
            m["tasks"]["vr_arith"]["avg@n"] = math.nan
        ev = _art(root, "eval", {"metrics.json": m, "stats.json": {}},
                  {"params": {"eval": 1}, "inputs": {"model": ck.sha, "task": "t1"}, "data": {}})
        rnd = 0 if method == "sft" else 1
        arts += [{"method": method, "round": rnd, "stage": s, "path": r.path, "sha": r.sha}
                 for s, r in (("train", ck), ("eval", ev))]
    return {"artifacts": arts, "git_commit": "abc1234"}


@flow(name="promote-only")
def promote_only(cfg, summary: dict):
    return tp.final_state(summary, tp.promote(cfg, summary, "params.yaml", {"test": True}))


def _pointers(cfg) -> dict[str, bytes]:
    return {m: pr.pointer_path(cfg.promotion.dir, cfg.profile, m, False).read_bytes() for m in METHODS}


async def _server_view(flow_run_id, key):
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        return run.state.name, [a.data for a in arts if a.flow_run_id == flow_run_id]


def test_pass_refuse_and_roll_back(harness, tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    arts, store = tmp_path / "artifacts", Path(cfg.promotion.dir) / ".store"
    # 1. nothing promoted yet: every method passes; pointers written, checkpoints copied and verified
    first = _summary(arts, {m: "a" for m in METHODS})
    state = promote_only(cfg, first, return_state=True)
    name, md = asyncio.run(_server_view(state.state_details.flow_run_id, "vr-em-smoke-promotion"))
    assert name == "Completed" and "**promoted**" in md[0] and "not pushed" in md[0]
    ptrs = _pointers(cfg)
    for m in METHODS:
        doc = json.loads(ptrs[m])
        assert doc["stored"]["kind"] == "local" and doc["previous"] is None and doc["run"]["git_commit"] == "abc1234"
        assert doc["run"]["flow_run_id"] == str(state.state_details.flow_run_id)
        ArtifactRef(path=doc["stored"]["path"], sha=doc["checkpoint"]["sha"]).verify()
    # 2. em-acc's new evaluation has a NaN: refused, its pointer untouched; em-gml moves; rft is the same checkpoint
    second = _summary(arts, {"em-acc": "b", "em-gml": "b", "rft": "a"}, nan_in=("em-acc",))
    state = promote_only(cfg, second, return_state=True)
    name, md = asyncio.run(_server_view(state.state_details.flow_run_id, "vr-em-smoke-promotion"))
    assert name == "NotPromoted" and state.is_completed() and "tasks.vr_arith.avg@n=nan" in state.message
    assert "**refused**" in md[0] and "**kept**" in md[0] and md[0].count("**promoted**") == 1
    now = _pointers(cfg)
    assert now["em-acc"] == ptrs["em-acc"] and now["rft"] == ptrs["rft"] and now["em-gml"] != ptrs["em-gml"]
    assert json.loads(now["em-gml"])["previous"]["checkpoint"] == json.loads(ptrs["em-gml"])["checkpoint"]
    copies = set(p.name for p in store.iterdir())
    # 3. a failure between the push and the pointer write: rolled back, pointers untouched, the new copies removed
    third = _summary(arts, {m: "c" for m in METHODS})

    def boom(point):
        if point == "promote-pushed":
            raise OSError("disk vanished")
    monkeypatch.setattr(tp, "fault_point", boom)
    state = promote_only(cfg, third, return_state=True)
    assert state.name == "NotPromoted" and "disk vanished" in state.message
    assert _pointers(cfg) == now and set(p.name for p in store.iterdir()) == copies
    monkeypatch.undo()
    # 4. a failure after the pointer write (the read-back check): the previous pointer is put back
    monkeypatch.setattr(pr, "check_pointer", lambda *a: (_ for _ in ()).throw(pr.PromotionError("check failed")))
    state = promote_only(cfg, third, return_state=True)
    assert state.name == "NotPromoted" and "check failed (rolled back" in state.message
    assert _pointers(cfg) == now and set(p.name for p in store.iterdir()) == copies
    monkeypatch.undo()
    # 5. the push itself fails: nothing to undo, pointers untouched
    monkeypatch.setattr(pr.LocalStore, "put", lambda self, c: (_ for _ in ()).throw(OSError("store full")))
    state = promote_only(cfg, third, return_state=True)
    assert state.name == "NotPromoted" and state.message.count("store full") == 3
    assert _pointers(cfg) == now and set(p.name for p in store.iterdir()) == copies
    monkeypatch.undo()
    # 6. the same run again, nothing injected: promoted
    state = promote_only(cfg, third, return_state=True)
    assert state.name == "Completed" and all(json.loads(b)["round"] == 1 for b in _pointers(cfg).values())
    assert {json.loads(b)["checkpoint"]["sha"] for b in _pointers(cfg).values()} <= set(p.name for p in store.iterdir())


def test_the_dvc_stage_of_each_methods_reasoner(tmp_path):
    cfg = _cfg(tmp_path, **{"baselines.grpo": True})
    assert [tp.trained_by(cfg, m, 2) for m in (*METHODS, "grpo")] == [
        "train-pi-em-acc-r2", "train-pi-em-gml-r2", "train-pi-rft-r2", "train-pi-grpo-r2"]


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def test_the_dvc_store_pushes_the_stage_out_to_the_remote(tmp_path, monkeypatch):
    """DvcStore on a real DVC repo: the candidate's stage out (as dvc-version leaves it) is pushed, its dvc.lock md5
    recorded, the remote checked; a checkpoint that is not the stage's out is refused before any push."""
    from tasks.versioning import dvc

    repo, remote = tmp_path / "repo", tmp_path / "remote"
    repo.mkdir()
    cfg = _cfg(tmp_path)
    c = pr.candidates(_summary(tmp_path / "artifacts", {m: "a" for m in METHODS}))[0]
    out = f"dvc/smoke/train-pi-{c.method}-r{c.round}"
    shutil.copytree(c.checkpoint.path, repo / out)
    (repo / "dvc.yaml").write_text(f"stages:\n  s:\n    cmd: 'true'\n    outs:\n    - {out}\n")
    monkeypatch.chdir(repo)
    _git(repo, "init", "-q")
    dvc("init", "-q")
    dvc("remote", "add", "-d", "store", str(remote))
    dvc("commit", "-f", "-q")
    store = tp.DvcStore(cfg)
    record, created = store.put(c)
    assert not created and record["kind"] == "dvc" and record["remote"] == "store" and record["path"] == out
    assert record["md5"].endswith(".dir") and any(remote.rglob("*"))
    store.verify(record)
    assert not store.discard(record)
    # the documented recovery: a .dvc file from the pointer's md5, then `dvc pull`, with the local cache gone
    ptr = {"stored": record}
    assert pr.main(["restore", "--dir", str(tmp_path / "none"), "--profile", "smoke", "--method", "x", "--to",
                    "r/x"]) == 2  # no pointer there
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", "-q", str(pr.dvc_file(ptr, repo / "restore" / "em-acc")))
    assert hash_dir(repo / "restore" / "em-acc") == c.checkpoint.sha
    other = pr.Candidate(c.method, c.round, ArtifactRef(path=c.checkpoint.path, sha="0" * 16), c.evaluation)
    with pytest.raises(pr.PromotionError, match="not this run's checkpoint"):
        store.put(other)
    shutil.rmtree(remote)
    with pytest.raises(pr.PromotionError, match="not in sync"):
        store.verify(record)


@pytest.mark.slow
def test_smoke_flow_promotes_then_refuses_and_rolls_back(harness, tmp_path, monkeypatch):
    """The wired flow on smoke (one round): every method promoted; then, all steps cached, em-acc refused by the
    regression check against a doctored pointer, em-gml rolled back by a failure after its push; rft kept."""
    from flows.vr_em import vr_em

    over = {"artifacts_dir": str(tmp_path / "a"), "results_dir": str(tmp_path / "r"), "em.rounds": 1,
            "promotion.enabled": True, "promotion.dir": str(tmp_path / "promoted")}
    cfg = load_config(ROOT / "params.yaml", "smoke", over)
    state = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=over, return_state=True)
    assert state.name == "Completed"
    summary = state.result()
    ckpts = {c.method: c.checkpoint.sha for c in pr.candidates(summary)}
    ptrs = _pointers(cfg)
    assert {m: json.loads(b)["checkpoint"]["sha"] for m, b in ptrs.items()} == ckpts and len(set(ckpts.values())) == 3
    name, md = asyncio.run(_server_view(state.state_details.flow_run_id, "vr-em-smoke-promotion"))
    assert name == "Completed" and md[0].count("**promoted**") == 3

    def doctor(method, sha, ci95):
        path = pr.pointer_path(cfg.promotion.dir, "smoke", method, False)
        doc = json.loads(path.read_text())
        doc["checkpoint"]["sha"], doc["evaluation"]["metrics"]["ci95"] = sha, ci95
        write_json(path, doc)
        return path.read_bytes()

    acc_before = doctor("em-acc", "0" * 16, [0.5, 0.6])  # smoke's accuracy (0.0) is below this bound: refused
    gml_before = doctor("em-gml", "1" * 16, [0.0, 0.1])  # passes the gate, then fails between push and pointer
    monkeypatch.setattr(tp, "fault_point", lambda p: (_ for _ in ()).throw(OSError("remote gone")) if p else None)
    again = vr_em(profile="smoke", params_path=str(ROOT / "params.yaml"), overrides=over, return_state=True)
    assert again.name == "NotPromoted" and again.is_completed()
    assert again.result()["results"] == summary["results"]
    now = _pointers(cfg)
    assert now == {"em-acc": acc_before, "em-gml": gml_before, "rft": ptrs["rft"]}
    name, md = asyncio.run(_server_view(again.state_details.flow_run_id, "vr-em-smoke-promotion"))
    assert name == "NotPromoted"
    assert "**refused**" in md[0] and "**rolled back**" in md[0] and "**kept**" in md[0] and "remote gone" in md[0]
