"""dvc.yaml against the stage registry (fast), and the DVC pipeline end to end on smoke-sized params (slow):
flow run -> dvc status clean and repro a no-op -> fresh `dvc repro` equals the flow's metrics -> a posterior-only
param re-runs exactly its downstream stages -> S3 round trip through a moto server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from dvc_repo import ROOT, dvc, dvc_exe, git, make_repo, ran_stages, run_py

from varreason.config import load_config
from varreason.pipeline.stages import check_dvc_yaml, dvc_yaml, registry


def _registry_tiny():
    return registry(load_config(ROOT / "params.yaml", "tiny"))


def test_dvc_yaml_is_generated_from_params_and_code():
    """dvc.yaml is exactly what the recipe, the step table and params.yaml give (else: run `... sync`)."""
    cfg = load_config(ROOT / "params.yaml", "tiny")
    check_dvc_yaml(cfg, ROOT / "dvc.yaml")
    with pytest.raises(ValueError, match="regenerate it"):
        check_dvc_yaml(load_config(ROOT / "params.yaml", "tiny", {"em.rounds": 3}), ROOT / "dvc.yaml")
    assert dvc_yaml(load_config(ROOT / "params.yaml", "tiny", {"em.rounds": 3})).count("evaluate-rft-r3:") == 1


def test_dvc_yaml_matches_registry():
    """Every stage DVC resolves from dvc.yaml (dvc's own parser) has the registry's name, out, deps and params,
    and a step's code deps are the files of its cache key's fingerprint (one list for all three caches)."""
    from subprocess import run

    from varreason.steps import STEPS, fingerprint

    code = ("import json,sys; from dvc.repo import Repo; r=Repo('.'); "
            "print(json.dumps({s.addressing: {'outs': [str(o.def_path) for o in s.outs], "
            "'deps': [str(d.def_path) for d in s.deps if not hasattr(d, 'params')], "
            "'params': sorted(p for d in s.deps if hasattr(d, 'params') for p in d.params)} for s in r.index.stages}))")
    py = str(Path(dvc_exe()).parent / "python")
    got = json.loads(run([py, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    specs = _registry_tiny()
    assert sorted(got) == sorted(s.name for s in specs)
    cfg = load_config(ROOT / "params.yaml", "tiny")
    for s in specs:
        st = got[s.name]
        assert st["deps"] == list(s.deps) and st["params"] == sorted(s.params), s.name
        if s.node is None:
            continue
        assert st["outs"] == [s.out], s.name
        fpr = fingerprint(STEPS[s.node.step], cfg)
        assert {d for d in st["deps"] if d.startswith("varreason/")} == set(fpr["code"]) | set(fpr["data"]), s.name


POSTERIOR_ONLY = {"train-q-em-gml-r1", "train-q-em-gml-r2", "sample-traces-em-gml-r2", "score-traces-em-gml-r2",
                  "weigh-traces-em-gml-r2", "build-reasoner-set-em-gml-r2", "train-pi-em-gml-r2",
                  "sample-responses-em-gml-r2", "build-posterior-set-em-gml-r2", "evaluate-em-gml-r2", "report"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Smoke values (GML only, to keep the stage count down) as the tracked profile. The flow runs first on its
    own artifact store (a params file that differs only in artifacts_dir), so `dvc repro` computes from scratch."""
    r = make_repo(tmp_path_factory.mktemp("dvc-repo"), **{"objective.estimators": ["gml"]})
    doc = yaml.safe_load((r / "params.yaml").read_text())
    doc["profiles"]["tiny"]["artifacts_dir"] = "artifacts-flow"
    (r / "params-flow.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run_py(r, "-m", "flows.vr_em", "--profile", "tiny", "--params", "params-flow.yaml")
    return r


@pytest.mark.slow
@pytest.mark.timeout(2400)  # with the module's repo fixture (a smoke flow run): > 20 min at load 18 on 2 cores
def test_repro_from_scratch_equals_flow(repo):
    flow = json.loads((repo / "results/tiny/metrics.json").read_text())
    out = dvc(repo, "repro")
    assert ran_stages(out) == {s.name for s in registry(load_config(repo / "params.yaml", "tiny"))}
    dvc_run = json.loads((repo / "dvc/tiny-report/flow-report/metrics.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "sample_wall_s"} for r in rows]  # noqa: E731
    assert strip(dvc_run["results"]) == strip(flow["results"])  # CPU, same seeds: exact
    assert dvc_run["weights"] == flow["weights"]
    assert ran_stages(dvc(repo, "repro")) == set()
    metrics = json.loads(dvc(repo, "metrics", "show", "--json"))[""]["data"]["dvc/tiny-report/metrics.json"]["data"]
    assert metrics["em-gml"]["r2"]["accuracy"] == next(r["accuracy"] for r in flow["results"]
                                                       if r["method"] == "em-gml" and r["round"] == 2)
    assert {"iwae", "ess"} <= set(metrics["em-gml"]["r1"])


@pytest.mark.slow
def test_posterior_only_param_reruns_downstream_only(repo):
    params = (repo / "params.yaml").read_text()
    doc = yaml.safe_load(params)
    doc["profiles"]["tiny"]["train"]["posterior_steps"] += 1
    (repo / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert "profiles.tiny.train.posterior_steps" in dvc(repo, "params", "diff")
    out = dvc(repo, "repro")
    assert ran_stages(out) == POSTERIOR_ONLY, out
    (repo / "params.yaml").write_text(params)
    dvc(repo, "repro")  # back: DVC's run cache restores the earlier outputs


@pytest.mark.slow
def test_flow_run_leaves_dvc_clean(repo):
    """A flow run on params.yaml records itself: dvc.lock matches, `dvc status` is clean, `dvc repro` a no-op."""
    (repo / "dvc.lock").unlink()
    run_py(repo, "-m", "flows.vr_em", "--profile", "tiny")
    assert "Data and pipelines are up to date" in dvc(repo, "status")
    assert ran_stages(dvc(repo, "repro")) == set()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {s.name for s in registry(load_config(repo / "params.yaml", "tiny"))}
    assert (repo / ".dvc-storage").is_dir()  # pushed to the default local remote


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_s3_round_trip_without_leaking_credentials(repo, tmp_path, monkeypatch):
    """push to a moto S3 server on 127.0.0.1 -> git clone -> pull: the clone gets every output back; the
    credential values appear in no tracked file, DVC file, log or artifact."""
    import boto3
    from moto.server import ThreadedMotoServer

    import secrets

    key_id, secret = f"AKIA{secrets.token_hex(8).upper()}", secrets.token_hex(20)  # in no file before the run
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="vr-dvc")
        run_py(repo, "-c", "from tasks.versioning import configure_s3_remote as c; "
               f"c('s3://vr-dvc/store', endpoint_url='{endpoint}')")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "run")
        logs = [dvc(repo, "push", "-v")]
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        run_py(clone, "-c", "from tasks.versioning import configure_s3_remote as c; "
               f"c('s3://vr-dvc/store', endpoint_url='{endpoint}')")
        logs.append(dvc(clone, "pull", "-v"))
        assert "Data and pipelines are up to date" in dvc(clone, "status")
        for rel in ("dvc/tiny/train-pi-em-gml-r2/model.safetensors", "dvc/tiny-report/metrics.json"):
            assert (clone / rel).read_bytes() == (repo / rel).read_bytes()
    finally:
        server.stop()
    assert all(key_id not in log and secret not in log for log in logs)
    for root in (repo, clone):
        for f in root.rglob("*"):
            if f.is_file() and ".git/objects" not in str(f) and f.stat().st_size < 50_000_000:
                blob = f.read_bytes()
                assert key_id.encode() not in blob and secret.encode() not in blob, f


def test_every_tracked_param_is_written_in_params_yaml():
    """DVC reads params from the file, not from the config defaults: a key a stage lists must be spelled out in
    the tracked profile, or `dvc repro` stops with "Parameters ... are missing"."""
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]["tiny"]
    missing = set()
    for spec in _registry_tiny():
        for key in spec.params:
            node = doc
            for part in key.removeprefix("profiles.tiny.").split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.add(key)
                    break
                node = node[part]
    assert not missing, f"add these keys to profiles.tiny in params.yaml: {sorted(missing)}"
