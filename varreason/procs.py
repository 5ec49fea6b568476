"""No orphans: every process a run starts dies with it, however the run ends (``kill -9``, the OOM killer).

A run (the CLI, ``flows/cli.py``) calls :func:`adopt_descendants` before it starts anything. That appends a
fresh token to the environment variable ``VARREASON_OWNERS`` (colon-separated, so a run started inside another
run is owned by both) and starts a *reaper*: a small ``python -m varreason.procs reap TOKEN PID`` process in
its own session (a terminal's Ctrl-C does not reach it). Every process the run starts from then on inherits
the token: the ephemeral Prefect server, Ray's GCS, raylet and workers, torchrun/accelerate launcher ranks,
the vLLM engine, subprocesses of those. The reaper waits for the run to die, learning it from the Linux
parent-death signal (``prctl(PR_SET_PDEATHSIG)``, at once) or, where that does not exist, from its parent pid
changing (polled every second). It then sends SIGTERM to every process of this host whose environment holds
the token, waits up to ``grace`` seconds, SIGKILLs the survivors and repeats until none is left.

Why an environment marker and not process groups or per-child death signals: Ray and the launchers put their
processes in sessions of their own and spawn grandchildren, and a process whose parent dies is re-parented to
init, so neither the process tree nor a group still leads back to the run once it is dead; the environment is
inherited through fork and exec by default and outlives the parent. A process that overwrites its environment
block (``setproctitle``) is still found while its parent carries the token (:func:`marked` takes descendants
too), and after that parent died: while the run lives, the reaper records every marked process and descendant
once a second and reaps those as well. A process started with a scrubbed environment escapes (the code
grader's sandboxed ``python -I`` passes the marker on explicitly, see
:func:`owner_env`). Reading another process's environment needs the same user (or root): the reaper only ever
sees processes it may signal anyway. Linux only (``/proc``); elsewhere the reaper starts and finds nothing.

No prefect import here; ``python -m varreason.procs tree PID`` prints a process's descendants (debugging).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

OWNERS = "VARREASON_OWNERS"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Proc:
    """One process of ``/proc``: ``start`` (clock ticks since boot) makes ``(pid, start)`` unique across reuse."""

    pid: int
    ppid: int
    start: int
    state: str  # R, S, D, Z (zombie: dead, not yet reaped), ...
    name: str


def read_proc(pid: int) -> Proc | None:
    """``/proc/<pid>/stat`` parsed; None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()  # state ppid pgrp session ... starttime is field 22 (index 19 here)
    return Proc(pid=pid, ppid=int(rest[1]), start=int(rest[19]), state=rest[0], name=name)


def processes() -> list[Proc]:
    """Every process visible in ``/proc`` (empty where there is no ``/proc``)."""
    out = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            p = read_proc(int(entry.name))
            if p is not None:
                out.append(p)
    return out


def descendants(pid: int, table: list[Proc] | None = None) -> list[Proc]:
    """Live processes below ``pid`` in the parent tree (children, grandchildren, ...), zombies left out."""
    table = processes() if table is None else table
    children: dict[int, list[Proc]] = {}
    for p in table:
        children.setdefault(p.ppid, []).append(p)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid != pid and child not in out:
                out.append(child)
                todo.append(child.pid)
    return [p for p in out if p.state != "Z"]


def alive(proc: Proc) -> bool:
    """True while the very process ``proc`` (same pid and start time) exists and is not a zombie."""
    now = read_proc(proc.pid)
    return now is not None and now.start == proc.start and now.state != "Z"


def owners(pid: int) -> list[str]:
    """The tokens in ``VARREASON_OWNERS`` of process ``pid``'s environment (its environment at exec time)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    for item in env.split(b"\0"):
        if item.startswith(OWNERS.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace").split(":")
    return []


def marked(token: str, exclude: tuple[int, ...] = ()) -> list[Proc]:
    """Live processes whose environment carries ``token``, and every live descendant of those. The descendants
    because a process can lose its marker after exec: ``setproctitle`` (Ray's ``ray::DashboardAgent`` and
    ``ray::RuntimeEnvAgent``) writes a long title over the memory that ``/proc/<pid>/environ`` reads."""
    table = processes()
    found = {p.pid: p for p in table if p.pid not in exclude and p.state != "Z" and token in owners(p.pid)}
    for p in list(found.values()):
        found.update({d.pid: d for d in descendants(p.pid, table) if d.pid not in exclude})
    return list(found.values())


def owner_env() -> dict[str, str]:
    """The marker to pass to a subprocess started with a scrubbed environment, so the reaper still finds it
    (``varreason.eval.code_grader`` does the same inline, to keep this module out of its code fingerprint)."""
    return {OWNERS: os.environ[OWNERS]} if os.environ.get(OWNERS) else {}


def reap(token: str, grace: float = 3.0, rounds: int = 5, also: list[Proc] = ()) -> list[Proc]:
    """SIGTERM every process carrying ``token`` and every live process of ``also`` (met earlier: a process that
    lost its marker to ``setproctitle`` and whose marked parent has died since, like Ray's agents once raylet
    exits), SIGKILL what is left after ``grace`` s, repeat (a dying parent may have started a child meanwhile)
    for up to ``rounds`` rounds, until two scans 0.3 s apart find none. Returns the processes signalled."""
    hit: list[Proc] = []
    me = (os.getpid(),)

    def scan() -> list[Proc]:
        now = marked(token, exclude=me)
        ids = {(p.pid, p.start) for p in now}
        return now + [p for p in also if (p.pid, p.start) not in ids and p.pid not in me and alive(p)]

    for i in range(rounds):
        found = scan()
        if not found:  # look twice: a process in the middle of execve shows an empty environment for a moment
            time.sleep(0.3)
            found = scan()
        if not found:
            break
        hit += [p for p in found if p not in hit]
        _signal(found, signal.SIGTERM if i == 0 else signal.SIGKILL)
        deadline = time.monotonic() + (grace if i == 0 else 1.0)
        while time.monotonic() < deadline and any(alive(p) for p in found):
            time.sleep(0.05)
        _signal([p for p in found if alive(p)], signal.SIGKILL)
    return hit


def _signal(procs: list[Proc], sig: int) -> None:
    for p in procs:
        if alive(p):  # checked right before the kill, so a reused pid is never hit
            try:
                os.kill(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def _set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch(token: str, parent: int, grace: float = 3.0) -> None:
    """The reaper's loop: return (after reaping ``token``) once ``parent`` is no longer this process's parent.

    The death signal is SIGUSR1, blocked and waited for, so nothing else this process might receive (a SIGTERM
    from a user killing the whole session ends it the default way) is mistaken for the parent's death."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    _set_parent_death_signal(signal.SIGUSR1)
    seen: dict[tuple[int, int], Proc] = {}  # every marked process (and descendant) met while the run lived
    while os.getppid() == parent:  # also true at once if the parent died before the prctl above
        if signal.sigtimedwait({signal.SIGUSR1}, 1.0) is None:
            seen.update({(p.pid, p.start): p for p in marked(token, exclude=(os.getpid(),))})
    reap(token, grace=grace, also=list(seen.values()))


def adopt_descendants(grace: float = 3.0) -> str:
    """Mark this process's environment and start its reaper; return the token. Call it before starting any
    process that must die with this one (children started earlier are not marked)."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    outer = os.environ.get(OWNERS, "")
    env = dict(os.environ)  # the reaper carries the outer runs' tokens (it is theirs to reap), not its own
    os.environ[OWNERS] = ":".join(t for t in (outer, token) if t)
    subprocess.Popen([sys.executable, "-m", "varreason.procs", "reap", token, str(os.getpid()), str(grace)],
                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
                     close_fds=True)
    return token


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "reap":
        watch(argv[1], int(argv[2]), float(argv[3]) if len(argv) > 3 else 3.0)
        return 0
    if len(argv) == 2 and argv[0] == "tree":
        for p in descendants(int(argv[1])):
            print(p.pid, p.ppid, p.state, p.name, ":".join(owners(p.pid)))
        return 0
    print("usage: python -m varreason.procs reap TOKEN PARENT_PID [GRACE] | tree PID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
