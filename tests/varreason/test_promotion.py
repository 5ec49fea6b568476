"""The promotion gate and pointers (varreason.promotion): hand-built evidence in, expected verdicts out."""

import json
import math
import threading
import time
from pathlib import Path

import pytest

from varreason import promotion as pr
from varreason.config import ConfigError, PromotionConfig, load_config
from varreason.inputs import check_inputs
from varreason.io import ArtifactRef, produce, write_json

ROOT = Path(__file__).resolve().parents[2]
GATE = PromotionConfig(enabled=True, min_accuracy=0.0, not_below_baseline=True, no_regression=True, dir="promoted")
METRICS = {"accuracy": 0.40, "ci95": [0.30, 0.50], "pass@1": 0.40, "tasks": {"vr_arith": {"avg@n": 0.40}}}
TRAIN = {"final_loss": 1.2, "mean_nll": 1.5, "steps": 10}


def ev(metrics=None, train=None, eval_id="E1"):
    return pr.Evidence(METRICS if metrics is None else metrics, TRAIN if train is None else train, eval_id)


def prev(lower, eval_id="E1", sha="old", acc=0.5):
    return {"checkpoint": {"sha": sha}, "evaluation": {"identity": eval_id,
                                                       "metrics": {"accuracy": acc, "ci95": [lower, lower + 0.1]}}}


def test_non_finite_finds_every_nan_and_inf_by_path():
    doc = {"a": 1.0, "b": [0.5, float("nan")], "c": {"d": {"e": float("-inf")}}, "ok": True, "n": None, "i": 3}
    assert pr.non_finite(doc) == ["b[1]=nan", "c.d.e=-inf"]
    assert pr.non_finite(METRICS) == []


def test_a_clean_first_candidate_passes_and_says_what_did_not_apply():
    passed, reasons = pr.gate(GATE, ev(), {"ci95": [0.1, 0.2]}, None)
    assert passed
    assert "accuracy 0.4000 >= 0.1000, the lower 95% CI bound of the SFT baseline" in reasons
    assert "regression check not applied: nothing promoted before" in reasons


@pytest.mark.parametrize("where", ["accuracy", "ci95", "tasks"])
def test_a_nan_anywhere_in_the_metrics_refuses(where):
    m = json.loads(json.dumps(METRICS))
    if where == "ci95":
        m["ci95"][1] = float("inf")
    elif where == "tasks":
        m["tasks"]["vr_arith"]["avg@n"] = float("nan")
    else:
        m["accuracy"] = float("nan")
    passed, reasons = pr.gate(GATE, ev(metrics=m), None, None)
    assert not passed and reasons[0].startswith("evaluation metrics not finite")
    assert {"accuracy": "accuracy=nan", "ci95": "ci95[1]=inf", "tasks": "tasks.vr_arith.avg@n=nan"}[where] in reasons[0]


@pytest.mark.parametrize("train,needle", [({"final_loss": math.nan, "mean_nll": 1.0}, "training final_loss is nan"),
                                          ({"final_loss": 1.0}, "training mean_nll is None"),
                                          ({"final_loss": 1.0, "mean_nll": math.inf}, "training mean_nll is inf")])
def test_a_non_finite_or_missing_training_loss_refuses(train, needle):
    passed, reasons = pr.gate(GATE, ev(train=train), None, None)
    assert not passed and any(needle in r for r in reasons), reasons


def test_min_accuracy_is_inclusive():
    at = GATE.model_copy(update={"min_accuracy": 0.40})
    above = GATE.model_copy(update={"min_accuracy": 0.41})
    assert pr.gate(at, ev(), None, None)[0]
    passed, reasons = pr.gate(above, ev(), None, None)
    assert not passed and reasons == ["accuracy 0.4000 < min_accuracy 0.41"]


def test_the_sft_baseline_lower_bound():
    assert pr.gate(GATE, ev(), {"ci95": [0.40, 0.5]}, None)[0]  # equal to the bound: passes
    passed, reasons = pr.gate(GATE, ev(), {"ci95": [0.41, 0.5]}, None)
    assert not passed and reasons == ["accuracy 0.4000 < 0.4100, the lower 95% CI bound of the SFT baseline"]
    off = GATE.model_copy(update={"not_below_baseline": False})
    assert pr.gate(off, ev(), {"ci95": [0.9, 1.0]}, None)[0]
    passed, reasons = pr.gate(GATE, ev(), {"ci95": [math.nan, 0.5]}, None)  # no usable bound: noted, not refused
    assert passed and any("baseline check not applied" in r for r in reasons)


def test_no_regression_below_the_promoted_lower_bound():
    passed, reasons = pr.gate(GATE, ev(), None, prev(0.45, sha="abc", acc=0.55))
    assert not passed
    assert reasons == ["accuracy 0.4000 < 0.4500, the lower 95% CI bound of the promoted checkpoint abc "
                       "(accuracy 0.5500)"]
    assert pr.gate(GATE, ev(), None, prev(0.40))[0]  # a drop within the old CI is no regression
    off = GATE.model_copy(update={"no_regression": False})
    assert pr.gate(off, ev(), None, prev(0.45))[0]


def test_a_differently_evaluated_previous_is_not_compared():
    passed, reasons = pr.gate(GATE, ev(eval_id="E2"), None, prev(0.9))
    assert passed and any("evaluated differently" in r for r in reasons)
    passed, reasons = pr.gate(GATE, ev(eval_id=None), None, prev(0.9))  # unknown identity: never comparable
    assert passed and any("evaluated differently" in r for r in reasons)


def test_every_failed_check_is_reported():
    m = {**METRICS, "accuracy": 0.1}
    passed, reasons = pr.gate(GATE.model_copy(update={"min_accuracy": 0.2}), ev(metrics=m, train={"final_loss": 1.0}),
                              {"ci95": [0.2, 0.3]}, prev(0.3))
    assert not passed and len(reasons) == 4, reasons


def _artifact(root, out, files, parts):
    def build(d):
        for name, doc in files.items():
            write_json(d / name, doc)
    return produce(root, out, parts, build)


def _run(root, acc=0.4, task_sha="t1", eval_n=4):
    """A summary like report.collect's, of hand-made artifacts: sft r0, em-acc r1/r2, rft r1, grpo r1 (+ a
    posterior)."""
    arts = []
    for method, rnd in [("sft", 0), ("em-acc", 1), ("em-acc", 2), ("rft", 1), ("grpo", 1)]:
        ck = _artifact(root, "checkpoint", {"stats.json": TRAIN, "weights.json": {"m": method, "r": rnd}},
                       {"m": method, "r": rnd})
        m = {**METRICS, "accuracy": acc if method != "sft" else 0.2, "ci95": [acc - 0.1, acc + 0.1]}
        evl = _artifact(root, "eval", {"metrics.json": m, "stats.json": {}},
                        {"params": {"eval": {"n_samples": eval_n}}, "inputs": {"model": ck.sha, "task": task_sha},
                         "data": {"f.yaml": "h"}, "code": {"x.py": f"{method}{rnd}"}})
        arts += [{"method": method, "round": rnd, "stage": "train", "path": ck.path, "sha": ck.sha},
                 {"method": method, "round": rnd, "stage": "eval", "path": evl.path, "sha": evl.sha}]
    q = _artifact(root, "checkpoint", {"stats.json": TRAIN}, {"posterior": 1})
    arts.append({"method": "em-acc", "round": 2, "stage": "refresh-train", "path": q.path, "sha": q.sha})
    return {"artifacts": arts}


def test_candidates_are_each_methods_last_round_reasoner(tmp_path):
    summary = _run(tmp_path)
    got = pr.candidates(summary)
    assert [(c.method, c.round) for c in got] == [("em-acc", 2), ("grpo", 1), ("rft", 1)]
    by = {(a["method"], a["round"], a["stage"]): a["sha"] for a in summary["artifacts"]}
    assert got[0].checkpoint.sha == by[("em-acc", 2, "train")] != by[("em-acc", 2, "refresh-train")]
    assert got[0].evaluation.sha == by[("em-acc", 2, "eval")]
    assert pr.baseline_metrics(summary)["accuracy"] == 0.2


def test_eval_identity_is_questions_params_and_task_files_not_code(tmp_path):
    a = pr.candidates(_run(tmp_path / "a"))
    b = pr.candidates(_run(tmp_path / "b", acc=0.3))  # other checkpoints and code parts, same evaluation
    c = pr.candidates(_run(tmp_path / "c", task_sha="t2"))
    d = pr.candidates(_run(tmp_path / "d", eval_n=8))
    ids = [pr.eval_identity(x[0].evaluation.path) for x in (a, b, c, d)]
    assert ids[0] == ids[1] and len({ids[0], ids[2], ids[3]}) == 3
    assert pr.eval_identity(tmp_path) is None


def test_decide_keeps_the_already_promoted_checkpoint(tmp_path):
    c = pr.candidates(_run(tmp_path))[0]
    action, reasons = pr.decide(GATE, c, pr.evidence(c), None, {"checkpoint": {"sha": c.checkpoint.sha},
                                                                "run": {"flow_run_name": "r1"}})
    assert action == "kept" and "r1" in reasons[0]
    assert pr.decide(GATE, c, pr.evidence(c), None, None)[0] == "promoted"


def test_pointer_write_read_restore_and_rollback(tmp_path, capsys):
    c = pr.candidates(_run(tmp_path / "art"))[0]
    path = pr.pointer_path(tmp_path / "promoted", "smoke", c.method, shared=False)
    assert path == tmp_path / "promoted" / ".local" / "smoke" / "em-acc.json"
    assert pr.read_pointer(path) is None
    first = pr.make_pointer("smoke", c, pr.evidence(c), {"kind": "local"}, {"flow_run_name": "a"}, ["ok"], None, GATE,
                            "t0")
    write_json(path, first)
    second = pr.make_pointer("smoke", c, pr.evidence(c), {"kind": "local"}, {"flow_run_name": "b"}, ["ok"],
                             pr.read_pointer(path), GATE, "t1")
    assert second["previous"] == {k: v for k, v in first.items() if k != "previous"}  # one level deep
    assert "tasks" not in second["evaluation"]["metrics"]
    assert second["profile"] == "smoke" and second["train"] == TRAIN
    assert second["evaluation"]["identity"] == pr.eval_identity(c.evaluation.path)
    write_json(path, second)
    assert pr.main(["rollback", "--dir", str(tmp_path / "promoted"), "--profile", "smoke", "--method", "em-acc",
                    "--local"]) == 0
    assert pr.read_pointer(path) == second["previous"]
    assert pr.main(["rollback", "--dir", str(tmp_path / "promoted"), "--profile", "smoke", "--method", "em-acc",
                    "--local"]) == 2  # first replaced nothing
    assert "nothing to roll back to" in capsys.readouterr().err
    pr.restore(path, None)
    assert not path.exists()
    path.write_text("{not json")
    with pytest.raises(pr.PromotionError, match="unreadable pointer"):
        pr.read_pointer(path)


def test_the_local_store_copies_verifies_and_discards_only_unreferenced(tmp_path):
    c = pr.candidates(_run(tmp_path / "art"))[0]
    store = pr.LocalStore(str(tmp_path / "promoted"), "no DVC here")
    record, created = store.put(c)
    assert created and record["path"] == str(tmp_path / "promoted" / ".store" / c.checkpoint.sha)
    assert ArtifactRef(path=record["path"], sha=c.checkpoint.sha).verify()
    assert json.loads((Path(record["path"]) / "weights.json").read_text()) == {"m": "em-acc", "r": 2}
    assert store.put(c) == (record, False)
    write_json(pr.pointer_path(store.root, "smoke", "em-acc", False), {"checkpoint": {"sha": c.checkpoint.sha}})
    assert not store.discard(record) and Path(record["path"]).exists()  # a pointer names it: kept
    pr.pointer_path(store.root, "smoke", "em-acc", False).unlink()
    assert store.discard(record) and not Path(record["path"]).exists()


def test_the_promotion_lock_is_exclusive(tmp_path):
    order = []

    def second():
        with pr.promotion_lock(tmp_path):
            order.append("second")

    with pr.promotion_lock(tmp_path):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first done")
    t.join(10)
    assert order == ["first done", "second"]


def test_the_config_section_is_required_strict_and_checked_before_a_run(tmp_path):
    with pytest.raises(ConfigError, match="promotion.min_accuracy"):
        load_config(ROOT / "params.yaml", "tiny", {"promotion.min_accuracy": 1.5})
    with pytest.raises(ConfigError, match="promotion.floor: unknown key"):
        load_config(ROOT / "params.yaml", "tiny", {"promotion.floor": 0.1})
    assert not load_config(ROOT / "params.yaml", "smoke").promotion.enabled
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = {"artifacts_dir": str(tmp_path / "a"), "results_dir": str(tmp_path / "r"), "promotion.dir": str(blocker)}
    with pytest.raises(ConfigError, match="promotion.dir .* is a file"):
        check_inputs(load_config(ROOT / "params.yaml", "tiny", base))
    check_inputs(load_config(ROOT / "params.yaml", "smoke", base))  # disabled: its dir is never used


def test_a_dvc_file_restores_by_the_recorded_md5_and_only_for_dvc_pushes(tmp_path, capsys):
    ptr = {"checkpoint": {"sha": "s"}, "stored": {"kind": "dvc", "md5": "ab12.dir", "path": "dvc/tiny/x"}}
    out = pr.dvc_file(ptr, tmp_path / "restore" / "em-acc")
    assert out == tmp_path / "restore" / "em-acc.dvc"
    assert out.read_text() == "outs:\n- md5: ab12.dir\n  hash: md5\n  path: em-acc\n"
    with pytest.raises(pr.PromotionError, match="not pushed to DVC; it is at promoted/.store/s"):
        pr.dvc_file({"stored": {"kind": "local", "path": "promoted/.store/s"}}, tmp_path / "r")
    write_json(pr.pointer_path(tmp_path / "p", "tiny", "rft", True), ptr)
    assert pr.main(["restore", "--dir", str(tmp_path / "p"), "--profile", "tiny", "--method", "rft", "--to",
                    str(tmp_path / "got")]) == 0
    assert "dvc pull" in capsys.readouterr().out and (tmp_path / "got.dvc").exists()
    assert pr.main(["show", "--dir", str(tmp_path / "p")]) == 0
    assert "ab12.dir" not in capsys.readouterr().out and pr.pointers(tmp_path / "p") == [
        tmp_path / "p" / "tiny" / "rft.json"]
