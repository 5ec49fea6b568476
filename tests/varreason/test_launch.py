"""Process lifetime of a launched job (varreason/launch.py): whatever ends ``run_launcher``, no process of the
attempt is left, a rank in a session of its own included."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from varreason.launch import run_launcher

ROOT = Path(__file__).resolve().parents[2]

# The launcher stand-in: starts a "rank" in a session of its own (as torchrun does) that dies with its parent and
# then writes its pid; once it has, the stand-in sleeps (a hung launcher) or exits with the given code.
LAUNCHER = r"""
import os, subprocess, sys, time
f = sys.argv[1]
subprocess.Popen([sys.executable, "-c", "import os, sys, time; from varreason.launch import die_with_parent; "
                  "die_with_parent(); open(sys.argv[1], 'w').write(f'{os.getpid()}\\n'); time.sleep(600)", f],
                 start_new_session=True)
while not (os.path.exists(f) and open(f).read().endswith("\n")):
    time.sleep(0.02)
time.sleep(float(sys.argv[2]))
sys.exit(int(sys.argv[3]))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits to be read


def _gone(pid: int, within: float = 10.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _rank_pid(f: Path) -> int:
    for _ in range(400):
        if f.exists() and f.read_text().endswith("\n"):
            return int(f.read_text())
        time.sleep(0.05)
    raise AssertionError("the launcher stand-in never started its rank")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.mark.skipif(sys.platform != "linux", reason="die_with_parent uses Linux's PR_SET_PDEATHSIG")
def test_timeout_kills_the_launcher_and_its_rank_in_another_session(tmp_path, env):
    pids = tmp_path / "pids"
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_launcher([sys.executable, "-c", LAUNCHER, str(pids), "600", "0"], timeout=5)
    assert time.monotonic() - t0 < 60
    assert _gone(_rank_pid(pids))


@pytest.mark.skipif(sys.platform != "linux", reason="die_with_parent uses Linux's PR_SET_PDEATHSIG")
def test_failed_launcher_raises_and_leaves_no_rank(tmp_path, env):
    pids = tmp_path / "pids"
    with pytest.raises(subprocess.CalledProcessError) as err:
        run_launcher([sys.executable, "-c", LAUNCHER, str(pids), "0", "3"], timeout=60)
    assert err.value.returncode == 3
    assert _gone(_rank_pid(pids))


def test_success_still_kills_what_the_launcher_left_in_its_group(tmp_path, env):
    pid_file = tmp_path / "pid"
    run_launcher([shutil.which("sh"), "-c", f"sleep 600 & echo $! > {pid_file}; exit 0"], timeout=60)
    assert _gone(int(pid_file.read_text()))


@pytest.mark.skipif(sys.platform != "linux", reason="die_with_parent uses Linux's PR_SET_PDEATHSIG")
def test_launcher_dies_with_its_caller(tmp_path, env):
    """The caller itself SIGKILLed (no ``finally`` runs): the launcher and its rank still go."""
    pids = tmp_path / "pids"
    caller = subprocess.Popen([sys.executable, "-c", "import sys; from varreason.launch import run_launcher; "
                               f"run_launcher([sys.executable, '-c', {LAUNCHER!r}, {str(pids)!r}, '600', '0'])"])
    try:
        rank = _rank_pid(pids)
        launcher = int(Path(f"/proc/{rank}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the rank's parent
        assert _alive(launcher) and launcher != caller.pid
    finally:
        caller.kill()
        caller.wait(timeout=30)
    assert _gone(launcher) and _gone(rank)


def test_a_launcher_stuck_after_done_is_ended_and_the_call_succeeds(tmp_path, env, capsys):
    """The job wrote its done file (only teardown left) but the launcher never exits: ``grace`` later it is
    killed, with what it left in its group, and the call returns normally."""
    done, pid_file = tmp_path / "train_result.json", tmp_path / "pid"
    t0 = time.monotonic()
    run_launcher([shutil.which("sh"), "-c", f"sleep 600 & echo $! > {pid_file}; echo '{{}}' > {done}; sleep 600"],
                 timeout=120, done=done, grace=2)
    assert time.monotonic() - t0 < 60
    assert _gone(int(pid_file.read_text()))
    assert "still running 2 s after the job wrote train_result.json" in capsys.readouterr().err
