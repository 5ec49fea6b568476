"""varreason.procs: a run's descendants die with it, whatever they do to escape its process tree.

A stand-in for the CLI (``FAKE_RUN``) adopts its descendants, then starts the shapes a real run's children
take: a child in its own session that ignores SIGTERM (like a worker busy in C code), a daemon whose parent
exits at once (re-parented to init, as Ray's and vLLM's helpers can be), and a shell with a child of its own.
The test SIGKILLs the stand-in and checks every process carrying the test's outer marker is gone within a few
seconds, the reaper included; on a normal exit the same happens.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from varreason import procs

ROOT = Path(__file__).resolve().parents[2]
linux = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")

FAKE_RUN = r"""
import os, subprocess, sys, time
from varreason.procs import adopt_descendants
adopt_descendants(grace=1.0)
py = sys.executable
subprocess.Popen([py, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
                 start_new_session=True)
subprocess.Popen([py, "-c", "import os, subprocess, sys; subprocess.Popen([sys.executable, '-c', "
                  "'import time; time.sleep(600)'], start_new_session=True); os._exit(0)"])
subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600"])
print("ready", flush=True)
if sys.argv[1] == "wait":
    time.sleep(600)
"""


def _start(mode: str, token: str) -> subprocess.Popen:
    env = {**os.environ, procs.OWNERS: token, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", FAKE_RUN, mode], env=env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _wait_for(cond, timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - t0


def _reaper_of(pid: int) -> procs.Proc:
    [reaper] = [p for p in procs.descendants(pid)
                if b"varreason.procs\0reap" in Path(f"/proc/{p.pid}/cmdline").read_bytes()]
    return reaper


@linux
def test_sigkill_of_the_run_ends_every_descendant(tmp_path):
    token = f"test-{uuid.uuid4().hex[:8]}"
    run = _start("wait", token)
    try:
        reaper = _reaper_of(run.pid)

        def settled():  # every child exec'd (two tokens) and the daemon's parent gone (re-parented away)
            found = procs.marked(token)
            own = {tuple(procs.owners(p.pid)) for p in found if p.pid not in (run.pid, reaper.pid)}
            tree = {p.pid for p in procs.descendants(run.pid)}
            return len(found) == 7 and len(own) == 1 and any(p.pid != run.pid and p.pid not in tree for p in found)

        # the run, its reaper, 2 python children, the daemon (re-parented away), sh and its 2 sleeps
        _wait_for(settled, timeout=30)
        everyone = procs.marked(token)
        assert procs.owners(reaper.pid) == [token]  # the outer run's token only, not its own run's
        [own] = {tuple(procs.owners(p.pid)) for p in everyone if p.pid not in (run.pid, reaper.pid)}
        assert own[0] == token and own[1].startswith(f"{run.pid}-")
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
        gone = lambda: not procs.marked(token) and not [p for p in everyone if procs.alive(p)]
        took = _wait_for(gone, timeout=8)  # a process in the last moments of its exit still counts as alive
        assert took < 6, took  # SIGTERM, 1 s grace, SIGKILL of the one that ignores SIGTERM
        _wait_for(lambda: not procs.alive(reaper), timeout=5)
    finally:
        for p in procs.marked(token):
            os.kill(p.pid, signal.SIGKILL)


@linux
def test_a_normal_exit_ends_them_too():
    token = f"test-{uuid.uuid4().hex[:8]}"
    run = _start("exit", token)
    try:
        assert run.wait(timeout=30) == 0
        _wait_for(lambda: not procs.marked(token), timeout=8)
    finally:
        for p in procs.marked(token):
            os.kill(p.pid, signal.SIGKILL)


@linux
def test_process_table_helpers(tmp_path):
    token = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, procs.OWNERS: f"outer:{token}"}
    sh = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], env=env)
    try:
        _wait_for(lambda: [p.name for p in procs.descendants(sh.pid)] == ["sleep"], timeout=10)  # exec'd
        [sleep] = procs.descendants(sh.pid)
        assert sleep.ppid == sh.pid and sleep.name == "sleep" and procs.alive(sleep)
        assert procs.owners(sleep.pid) == ["outer", token]
        assert {p.pid for p in procs.marked(token)} == {sh.pid, sleep.pid}
        assert procs.descendants(os.getpid()) and sh.pid in {p.pid for p in procs.descendants(os.getpid())}
        hit = procs.reap(token, grace=2.0)
        assert {p.pid for p in hit} == {sh.pid, sleep.pid} and not procs.alive(sleep)
        assert sh.wait(timeout=5) == -signal.SIGTERM
    finally:
        sh.kill()
    assert procs.read_proc(2**22 + 7) is None  # above any pid_max: no such process
    assert procs.owners(2**22 + 7) == []


def test_owner_env_passes_the_marker_on(monkeypatch):
    monkeypatch.setenv(procs.OWNERS, "a:b")
    assert procs.owner_env() == {procs.OWNERS: "a:b"}
    monkeypatch.delenv(procs.OWNERS)
    assert procs.owner_env() == {}
