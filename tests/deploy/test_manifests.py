"""deploy/: prefect.yaml names the right flow, profiles and pools; the Kubernetes base job template is a valid
prefect-kubernetes style template that renders a Job requesting nvidia.com/gpu (no cluster here to apply it)."""

import json
import re
from pathlib import Path

import jsonschema
import yaml
from prefect.utilities.templating import apply_values, find_placeholders

from varreason.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "deploy" / "k8s-gpu-pool.json").read_text())


def _deployments():
    doc = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    return doc, {d["name"]: d for d in doc["deployments"]}


def test_prefect_yaml_deployments_point_at_the_flow_and_valid_profiles():
    doc, deps = _deployments()
    assert {"tiny", "qwen3"} <= set(deps)
    for d in deps.values():
        assert d["entrypoint"] == "flows/vr_em.py:vr_em"
        params = d["parameters"]
        assert set(params) <= {"profile", "params_path", "overrides"}
        load_config(ROOT / params["params_path"], params["profile"], params["overrides"])  # raises if invalid
    assert deps["tiny"]["work_pool"]["name"] == "vr-cpu"
    assert deps["qwen3"]["work_pool"] == doc["definitions"]["work_pools"]["gpu_pool"]  # the anchor, resolved
    assert deps["qwen3-k8s"]["work_pool"]["name"] == "vr-gpu-k8s"


def test_flow_source_has_the_entrypoint_function():
    src = (ROOT / "flows" / "vr_em.py").read_text()
    assert re.search(r'@flow\(name="vr-em".*\ndef vr_em\(', src)


def test_prefect_yaml_holds_no_experiment_values():
    _, deps = _deployments()
    for d in deps.values():
        assert d["parameters"]["overrides"] == {}, "experiment values belong in params.yaml, not in deployments"


def test_deploy_script_creates_every_pool_and_the_gpu_limit():
    script = (ROOT / "deploy" / "deploy.sh").read_text()
    _, deps = _deployments()
    for pool in {d["work_pool"]["name"] for d in deps.values()}:
        assert f"work-pool create {pool} " in script
    assert "concurrency-limit create gpu" in script
    from tasks.steps import step_task
    from varreason.config import load_config
    from varreason.steps import STEPS

    cfg = load_config(ROOT / "params.yaml", "tiny")
    gpu = {name for name in STEPS if "gpu" in step_task(cfg, name, name).tags}
    assert gpu == {"train-pi0", "train-q0", "sample-traces", "score-traces", "rollout-answers", "train-reasoner",
                   "sample-refresh", "train-posterior", "sample-rft", "build-grpo-set", "train-grpo", "evaluate"}


def test_k8s_template_variables_are_a_valid_schema_and_cover_every_placeholder():
    variables = TEMPLATE["variables"]
    jsonschema.Draft7Validator.check_schema(variables)
    used = {p.name for p in find_placeholders(TEMPLATE["job_configuration"])}
    assert used <= set(variables["properties"]), used - set(variables["properties"])


def _render(values: dict) -> dict:
    props = TEMPLATE["variables"]["properties"]
    filled = {k: v["default"] for k, v in props.items() if "default" in v} | values
    jsonschema.validate(filled, TEMPLATE["variables"])
    return apply_values(TEMPLATE["job_configuration"], filled)


def test_k8s_job_requests_gpus_and_shares_results_and_artifacts():
    job = _render({"image": "registry.example/varreason:1", "gpu_count": 2, "command": "prefect flow-run execute"})
    manifest = job["job_manifest"]
    assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1"
    pod = manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example/varreason:1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["restartPolicy"] == "Never" and manifest["spec"]["backoffLimit"] == 0
    assert job["env"]["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"].startswith("s3-bucket/")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["artifacts"] == "/opt/varreason/artifacts"
    claims = {v["name"]: v for v in pod["volumes"]}
    assert claims["artifacts"]["persistentVolumeClaim"]["claimName"] == "varreason-artifacts"


def test_k8s_template_rejects_zero_gpus():
    props = TEMPLATE["variables"]["properties"]
    filled = {k: v["default"] for k, v in props.items() if "default" in v} | {"gpu_count": 0}
    try:
        jsonschema.validate(filled, TEMPLATE["variables"])
    except jsonschema.ValidationError as exc:
        assert "gpu_count" in str(exc.path) or "minimum" in exc.message
    else:
        raise AssertionError("gpu_count 0 accepted")


def test_dockerfile_matches_the_k8s_deployment():
    docker = (ROOT / "deploy" / "Dockerfile").read_text()
    _, deps = _deployments()
    workdir = deps["qwen3-k8s"]["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert f"WORKDIR {workdir}" in docker
    assert ".[gpu]" in docker
