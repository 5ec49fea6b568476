"""Fault points and what a SIGKILL at one leaves behind: named points fire at the n-th hit of their scope only,
and the next writer removes a killed writer's temp dir / temp file (varreason/faults.py, varreason/io.py)."""

import fcntl
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from varreason import faults
from varreason.io import hash_dir, produce, write_atomic

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def test_scoped_point_fires_at_nth_hit_inside_its_scope_only():
    code = ("from varreason.faults import building, fault_point as f\n"
            "f('p'); print('outside', flush=True)\n"
            "with building('train-q'):\n"
            "    with building('checkpoint'):\n"
            "        f('p'); print('one', flush=True)\n"
            "        f('p'); print('two', flush=True)\n")
    res = _child(code, {"VARREASON_FAULT": "train-q/p:2"})  # the outer scope matches too
    assert res.returncode == -signal.SIGKILL
    assert res.stdout.split() == ["outside", "one"]
    res = _child(code, {"VARREASON_FAULT": "eval/p:1"})
    assert res.returncode == 0 and res.stdout.split() == ["outside", "one", "two"]


def test_unarmed_point_is_a_noop(monkeypatch):
    monkeypatch.delenv("VARREASON_FAULT", raising=False)
    for _ in range(3):
        faults.fault_point("train-step")
    assert faults._hits == {}
    monkeypatch.setenv("VARREASON_FAULT", "train-step")  # malformed: says how to write it
    with pytest.raises(ValueError, match="<point>:<n>"):
        faults.fault_point("train-step")


_BUILD = ("import sys\nfrom varreason.io import produce\n"
          "def build(d):\n    (d / 'a.txt').write_text('x' * 100)\n    (d / 'b.txt').write_text('y')\n"
          "print(produce(sys.argv[1], 'step', {'k': 1}, build).path)\n")


@pytest.mark.parametrize("point", ["step/artifact-built:1", "step/artifact-marked:1", "step/write-file:1"])
def test_killed_builder_leaves_no_orphan_after_the_rerun(tmp_path, point):
    """SIGKILL inside produce (a file written but not renamed, all built, marker written): nothing appears at the
    real path, and the next produce of the step removes the dead builder's temp dir and builds once."""
    code = _BUILD.replace("(d / 'b.txt').write_text('y')", "from varreason.io import write_atomic; "
                          "write_atomic(d / 'b.txt', 'y')")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "VARREASON_FAULT": point}, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    step = tmp_path / "step"
    assert [p.name[:5] for p in step.iterdir()] == [".tmp-"]  # only the dead builder's temp dir
    calls = []

    def build(d: Path) -> None:
        calls.append(d)
        (d / "a.txt").write_text("x" * 100)
        write_atomic(d / "b.txt", "y")

    ref = produce(tmp_path, "step", {"k": 1}, build)
    assert len(calls) == 1 and [p.name for p in step.iterdir()] == [Path(ref.path).name]
    assert ref.sha == hash_dir(ref.verify())


def test_a_live_builders_temp_dir_is_left_alone(tmp_path):
    """While another producer holds the step's lock shared (building), its temp dir must survive our produce."""
    produce(tmp_path, "step", {"k": 0}, lambda d: (d / "f").write_text("0"))
    live = tmp_path / "step" / ".tmp-live"
    live.mkdir()
    fd = os.open(tmp_path / ".locks" / "step", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        produce(tmp_path, "step", {"k": 1}, lambda d: (d / "f").write_text("1"))
        assert live.exists()
    finally:
        os.close(fd)
    produce(tmp_path, "step", {"k": 2}, lambda d: (d / "f").write_text("2"))
    assert not live.exists()  # its owner is gone now: swept


def test_write_atomic_removes_dead_writers_temp_files_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    target = tmp_path / "metrics.json"
    stale = tmp_path / f".metrics.json.{int(dead.stdout)}@{host}.0badf00d.tmp"
    mine = tmp_path / f".metrics.json.{os.getpid()}@{host}.0c0ffee0.tmp"  # a live writer (this process)
    remote = tmp_path / f".metrics.json.{int(dead.stdout)}@not-{host}.01234567.tmp"  # another host's: unknown
    for p in (stale, mine, remote):
        p.write_text("partial")
    write_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert not stale.exists() and mine.exists() and remote.exists()
