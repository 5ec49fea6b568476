"""A fork server for crash tests: imports the flow once, then runs each requested ``flows.cli.main(argv)`` in a
fresh forked child, so every run (and every SIGKILL) is a separate worker process without paying ~15 s of
torch/transformers/prefect imports per run on a 2-core CI machine.

Protocol: one JSON object per stdin line, ``{"argv": [...], "env": {...}, "log": path}``; the child applies
``env``, sends stdout and stderr to ``log`` and exits with main's return code; the server answers one JSON line
``{"rc": n, "pid": p}`` (``rc`` < 0: killed by that signal). The parent never starts a flow, Prefect client or
torch op, so it holds no threads or locks a child could inherit (checked before every fork).
"""

import atexit
import json
import os
import sys
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # this worktree's varreason, tasks and flows, as `python -m flows.vr_em` from ROOT sees
os.chdir(ROOT)

import flows.vr_em  # noqa: E402,F401  (the flow and everything it imports at start-up)
import lm_eval  # noqa: E402,F401  (imported by the first evaluation otherwise)
from flows.cli import main  # noqa: E402


def _child(req: dict) -> None:
    for k, v in req.get("env", {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    rc = 1
    t0 = time.monotonic()
    try:
        rc = main(req["argv"])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report like the interpreter would, then exit non-zero
        traceback.print_exc()
    finally:
        t1 = time.monotonic()
        try:
            atexit._run_exitfuncs()  # Prefect flushes logs and events at exit
        finally:
            print(f"forkrun: main {t1 - t0:.1f} s, exit handlers {time.monotonic() - t1:.1f} s", flush=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)


def serve() -> None:
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if threading.active_count() != 1:
            raise RuntimeError(f"fork server has threads {threading.enumerate()}: a child could inherit a held lock")
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"rc": rc, "pid": pid}), flush=True)


if __name__ == "__main__":
    serve()
