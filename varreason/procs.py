"""Process lifetime of a launched job (``launch``): no process of an attempt outlives it, so a retry starts
clean. Standard library only: ``run_launcher``'s guard imports this module before it becomes the launcher.

The launcher (torchrun, ``accelerate launch``) runs in a session of its own that dies with its caller and is
killed as a whole when ``run_launcher`` returns or raises; torchrun starts each rank in a session of its own
(out of reach of a group kill), so every rank arranges to die with its launcher (``die_with_parent``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1
# The launcher's process, before it becomes the launcher: die with the caller (the setting survives exec).
_GUARD = ("import os, sys; from varreason.procs import die_with_parent; die_with_parent(int(sys.argv[1])); "
          "os.execvp(sys.argv[2], sys.argv[2:])")


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere a no-op); exit at once if it already has.

    ``parent``: the parent's pid where the caller knows it; else the parent at the time of the call (a parent
    that died between starting this process and this call goes unnoticed).
    """
    if sys.platform != "linux":
        return
    import ctypes

    parent = os.getppid() if parent is None else parent
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the setting took hold
        os._exit(1)


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid`` (none left: nothing to do)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_launcher(cmd: list[str], timeout: float | None = None) -> None:
    """Run ``cmd`` (``launch.launch_command``) and wait, at most ``timeout`` seconds (None: no limit).

    Whatever ends the call (success, a failed rank, the timeout, an exception or interrupt here) the launcher's
    whole process group is killed before it returns, and the ranks die with the launcher.

    Raises:
        subprocess.CalledProcessError: the launcher failed (a rank failed; torchrun then stops the others).
        subprocess.TimeoutExpired: ``timeout`` passed.
    """
    proc = subprocess.Popen([sys.executable, "-c", _GUARD, str(os.getpid()), *cmd], start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        kill_group(proc.pid)
        proc.wait()
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)
