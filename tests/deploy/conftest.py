"""A real Prefect stack for the deploy tests: server on a free loopback port (started as `make server` starts it,
by deploy/server.sh), `deploy/deploy.sh`, two process workers (vr-cpu, vr-gpu), and one `vr-em/tiny` smoke run
shared by the integration and the UI tests.

Every process is started in its own session and stopped by its PID (its process group) at teardown: the server
with SIGTERM then SIGKILL, the workers with SIGKILL (a prefect worker ignores SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


@dataclass
class Stack:
    url: str                      # http://127.0.0.1:PORT (UI), API at url + "/api"
    env: dict
    tmp: Path
    procs: dict = field(default_factory=dict)   # name -> Popen

    def prefect(self, *args: str, timeout: float = 180) -> str:
        out = subprocess.run([PREFECT, "--no-prompt", *args], cwd=ROOT, env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        assert out.returncode == 0, f"prefect {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    def start(self, name: str, *args: str, cmd: list[str] | None = None, env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        p = subprocess.Popen(cmd or [PREFECT, *args], cwd=ROOT, env=env or self.env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-4000:]

    def run_deployment(self, name: str, params: dict | None = None) -> str:
        args = ["deployment", "run", f"vr-em/{name}"] + (["--params", json.dumps(params)] if params else [])
        out = self.prefect(*args)
        m = re.search(r"UUID: ([0-9a-f-]{36})", out)
        assert m, out
        return m.group(1)

    def api(self, fn):
        """Run ``await fn(client)`` with a Prefect client bound to this server; return its result."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def go():
            async with get_client() as client:
                return await fn(client)

        with temporary_settings(updates={PREFECT_API_URL: self.env["PREFECT_API_URL"]}):
            return asyncio.run(go())

    def wait_final(self, flow_run_id: str, timeout: float):
        async def poll(client):
            deadline = time.monotonic() + timeout
            while True:
                run = await client.read_flow_run(flow_run_id)
                if (run.state and run.state.is_final()) or time.monotonic() > deadline:
                    return run
                await asyncio.sleep(2)

        return self.api(poll)

    def task_runs(self, flow_run_id, subflows: bool = False, timeout: float = 120) -> list:
        """Every task run of a flow run (and of its subflows), once all their states are final.

        Prefect 3 persists task-run states from events, asynchronously: a flow run can read Completed (or Failed)
        while its last task runs still read Running, so this waits, at most ``timeout`` s."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
        from prefect_helpers import final_task_runs

        async def go(client):
            ids = [flow_run_id]
            if subflows:  # read once the parent is final: its subflow runs all exist by then
                ids += [s.id for s in await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))]
            return await final_task_runs(client, ids, timeout)

        return self.api(go)

    def start_workers(self) -> None:
        """A process worker on vr-cpu and one on vr-gpu, unless running (another module may have stopped them)."""
        for name, pool in (("worker-cpu", "vr-cpu"), ("worker-gpu", "vr-gpu")):
            if name not in self.procs or self.procs[name].poll() is not None:
                self.start(name, "worker", "start", "--pool", pool, "--type", "process")

    def stop_workers(self) -> None:
        for name, p in self.procs.items():
            if name.startswith("worker"):
                _stop(p, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(p: subprocess.Popen, sig: int) -> None:
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, sig)  # the group of the process we started (start_new_session): it and its children
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=20)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prefect-stack")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp / "home"), PREFECT_API_URL=f"{url}/api", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOCAL_STORAGE_PATH=str(tmp / "storage"), PREFECT_WORKER_QUERY_SECONDS="2",
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PREFECT=PREFECT)
    s = Stack(url=url, env=env, tmp=tmp)
    # `make server PREFECT_PORT=<port>`'s script, on a port that is not Prefect's default 4200 and without
    # PREFECT_API_URL in the server's environment (which would hide a UI still pointing at 4200, issue 23)
    assert port != 4200
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server_env.update(PREFECT_PORT=str(port), DB="sqlite")
    try:
        server = s.start("server", cmd=[str(ROOT / "deploy" / "server.sh")], env=server_env)
        deadline = time.monotonic() + 150
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"prefect server exited:\n{s.log('server')}"
            assert time.monotonic() < deadline, f"prefect server not healthy after 150 s:\n{s.log('server')}"
            time.sleep(1)
        deploy = subprocess.run([str(ROOT / "deploy" / "deploy.sh")], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=240)
        assert deploy.returncode == 0, f"deploy.sh failed:\n{deploy.stdout[-3000:]}\n{deploy.stderr[-3000:]}"
        s.deploy_output = deploy.stdout
        s.start_workers()
        yield s
    finally:
        s.stop_workers()
        if "server" in s.procs:
            _stop(s.procs["server"], signal.SIGTERM)


@pytest.fixture(scope="session")
def runs(stack):
    """`prefect deployment run vr-em/qwen3` (must fail fast on this CPU machine) and `vr-em/tiny` with the smoke
    profile cut to one EM round and no RFT for CI time; both submitted at once, then awaited."""
    overrides = {"artifacts_dir": str(stack.tmp / "artifacts"), "results_dir": str(stack.tmp / "results"),
                 "em.rounds": 1, "baselines.rft": False}
    stack.start_workers()
    t0 = time.monotonic()
    qwen3_id = stack.run_deployment("qwen3")
    tiny_id = stack.run_deployment("tiny", {"profile": "smoke", "overrides": overrides})
    try:
        qwen3 = stack.wait_final(qwen3_id, timeout=180)
        qwen3_s = time.monotonic() - t0
        tiny = stack.wait_final(tiny_id, timeout=420)
    finally:
        stack.stop_workers()  # both runs are final (or timed out): the UI test needs only the server
    return {"qwen3": qwen3, "qwen3_s": qwen3_s, "tiny": tiny, "overrides": overrides}


@pytest.fixture(scope="session")
def tiny_run(stack, runs):
    run = runs["tiny"]
    assert run.state is not None and run.state.is_completed(), (
        f"tiny run ended {run.state}:\n{stack.log('worker-cpu')}")
    return run
