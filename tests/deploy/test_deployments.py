"""Against a real Prefect server (tests/deploy/conftest.py): `make deploy`'s script registers the deployments,
pools and the gpu limit; `vr-em/tiny` runs to Completed through a process worker and its artifacts read back
through the client API; `vr-em/qwen3` on this CPU machine fails fast with the preflight message."""

import json

import pytest
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

pytestmark = pytest.mark.slow


@pytest.mark.slow
def test_deploy_registers_deployments_pools_and_gpu_limit(stack):
    async def read(client):
        deps = {d.name: d for d in await client.read_deployments()}
        pools = {p.name: p for p in await client.read_work_pools()}
        limit = await client.read_concurrency_limit_by_tag("gpu")
        return deps, pools, limit

    deps, pools, limit = stack.api(read)
    assert {"tiny", "qwen3", "qwen3-k8s"} <= set(deps)
    assert deps["tiny"].work_pool_name == "vr-cpu" and deps["qwen3"].work_pool_name == "vr-gpu"
    assert deps["qwen3"].parameters == {"profile": "qwen3", "params_path": "params.yaml", "overrides": {}}
    assert deps["tiny"].entrypoint == "flows/vr_em.py:vr_em"
    assert deps["qwen3-k8s"].pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/varreason"}}]
    assert pools["vr-cpu"].type == "process" and pools["vr-gpu"].type == "process"
    k8s = pools["vr-gpu-k8s"]
    assert k8s.type == "kubernetes"
    container = k8s.base_job_template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert limit.concurrency_limit == 1


@pytest.mark.slow
def test_qwen3_fails_fast_with_the_preflight_message(stack, runs):
    run = runs["qwen3"]
    assert run.state is not None and run.state.is_failed(), f"qwen3 ended {run.state}:\n{stack.log('worker-gpu')}"
    msg = run.state.message or ""
    assert "PreflightError: profile 'qwen3' cannot run on this machine" in msg, msg
    assert "needs the vllm package" in msg and "torch.cuda.is_available() is False" in msg, msg
    assert runs["qwen3_s"] < 150, f"took {runs['qwen3_s']:.0f} s from `deployment run` to Failed"
    assert (run.end_time - run.start_time).total_seconds() < 60

    ran = {t.name: t.state.name for t in stack.task_runs(run.id)}
    assert ran == {"preflight-qwen3": "Failed"}, f"qwen3 half-ran: {ran}"


@pytest.mark.slow
def test_tiny_completes_and_publishes_run_history(stack, runs, tiny_run):
    assert tiny_run.name == "vr-em-smoke"
    assert tiny_run.parameters["profile"] == "smoke"

    async def artifacts(client):
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[tiny_run.id])))

    arts = {a.key: a for a in stack.api(artifacts) if a.key}
    assert set(arts) == {"vr-em-smoke-accuracy", "vr-em-smoke-report", "vr-em-smoke-run-info", "vr-em-smoke-status"}, \
        set(arts)

    table = arts["vr-em-smoke-accuracy"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {(r["method"], r["round"]) for r in rows} == {("sft", 0), ("em-acc", 1), ("em-gml", 1)}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)

    report = arts["vr-em-smoke-report"].data
    assert "| em-acc | 1 |" in report
    assert "data:image/png;base64," in report              # the accuracy plot, inlined
    assert "| ESS | max weight share |" in report         # weight diagnostics
    assert "| stage | wall s | tokens generated | tokens scored | tokens trained | tokens/s |" in report  # per-stage cost

    info = arts["vr-em-smoke-run-info"].data
    assert "| profile | smoke |" in info
    assert json.dumps(runs["overrides"], sort_keys=True) in info
    assert "| git commit | unknown |" not in info and "| git commit |" in info
    for pkg in ("torch", "transformers", "prefect"):
        assert f"| {pkg} | " in info and f"| {pkg} | not installed |" not in info
