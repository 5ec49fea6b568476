"""The Prefect API a ``python -m flows.vr_em`` run talks to: a configured server, or an ephemeral one it owns.

With ``PREFECT_API_URL`` set (``make server``, a lab's shared server) :func:`connect` checks the URL answers
``/health`` and returns; a wrong or dead URL is a user error (one line), not a traceback after a minute of
client retries. Without it, Prefect would start its ephemeral server lazily, on the first API call, as a child
whose stderr is the user's terminal; it stops it at exit with SIGTERM while the server's task-run recorder
still holds the last seconds of task-run events, so the recorder's final flush is cancelled: those task runs
miss their last states in ``$PREFECT_HOME``'s database and the server prints ``Error flushing N events`` /
``CancelledError`` tracebacks (from aiosqlite or the pool) after the run has succeeded. So :func:`connect`
starts that same server itself (Prefect's ``SubprocessASGIServer``, which Prefect's client then reuses) with

* its stdout and stderr in ``$PREFECT_HOME/ephemeral-server.log`` (the server's own messages: look there when
  a run fails inside Prefect);
* the task-run recorder flushing every second (Prefect's default is 5 s);
* an exit hook that runs after Prefect's client services have sent their last events and before Prefect's own
  stop: it waits (at most ``SETTLE_S``) until every task run created since the start is recorded in a final
  state, unchanged for ``QUIET_S``, so the server is stopped idle.

The server inherits the process's ``VARREASON_OWNERS`` marker, so the run's reaper (``varreason.procs``) ends
it if the run is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from varreason.config import UserError

class ServerError(UserError):
    """No Prefect server to talk to; the message says how to get one."""


SETTLE_S = 10.0  # longest wait for the recorder at exit
QUIET_S = 1.5  # the task-run counts must stay unchanged this long
_NOT_FINAL = ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"]


def connect(timeout: float = 5.0) -> str:
    """Return the API URL this process will use, starting an owned ephemeral server if none is configured.

    Raises:
        ConfigError: ``PREFECT_API_URL`` is set but no Prefect server answers there.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    url = PREFECT_API_URL.value()
    if url:
        _check_reachable(url.rstrip("/"), timeout)
        return url
    return _start_ephemeral(Path(PREFECT_HOME.value()))


def _check_reachable(url: str, timeout: float) -> None:
    fix = "start it (`make server`) or unset PREFECT_API_URL to use an ephemeral server"
    if not url.startswith(("http://", "https://")):
        raise ServerError(f"PREFECT_API_URL={url!r} is not an http(s) URL; set it to http://HOST:PORT/api or unset it")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            if resp.status == 200:
                return
            problem = f"answered {resp.status} on /health"
    except urllib.error.HTTPError as exc:
        problem = f"answered {exc.code} on /health (is it the API URL, ending in /api?)"
    except (OSError, ValueError) as exc:
        problem = f"is not reachable ({getattr(exc, 'reason', exc)})"
    raise ServerError(f"PREFECT_API_URL={url!r} {problem}; {fix}")


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Point file descriptors 1 and 2 at ``path`` while the block runs, so a child started inside inherits them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        log.write(f"--- ephemeral server of pid {os.getpid()}, {dt.datetime.now().isoformat()} ---\n".encode())
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _start_ephemeral(home: Path) -> str:
    from prefect.server.api.server import SubprocessASGIServer

    since = dt.datetime.now(dt.timezone.utc)
    server = SubprocessASGIServer()  # the instance Prefect's get_client() uses when no API URL is set
    key = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"
    before = os.environ.get(key)
    os.environ.setdefault(key, "1")  # read by the server process only
    log = home / "ephemeral-server.log"
    try:
        with _stderr_to(log):
            server.start()  # registers Prefect's atexit stop; ours below is registered later, so it runs first
    except RuntimeError as exc:  # Prefect's "Timed out while attempting to connect to ephemeral Prefect API server"
        raise ServerError(f"the ephemeral Prefect server did not start ({str(exc).splitlines()[0][:120]}); see {log}, "
                          "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine, or start "
                          "`make server` and set PREFECT_API_URL") from None
    finally:
        if before is None:
            os.environ.pop(key, None)
    atexit.register(settle, server.api_url, since)
    print(f"Prefect: ephemeral server on {server.address}, its log in {log}", file=sys.stderr, flush=True)
    return server.api_url


def _count(api: str, since: dt.datetime, states: list[str] | None) -> int:
    import httpx

    flt: dict = {"expected_start_time": {"after_": since.isoformat()}}
    if states:
        flt["state"] = {"type": {"any_": states}}
    resp = httpx.post(f"{api}/task_runs/count", json={"task_runs": flt}, timeout=5)
    resp.raise_for_status()
    return int(resp.json())


_interrupted = False


def interrupted() -> None:
    """The run was interrupted (Ctrl-C): its task runs will never all be final, so do not wait for them."""
    global _interrupted
    _interrupted = True


def settle(api: str, since: dt.datetime, limit: float = SETTLE_S, quiet: float = QUIET_S) -> bool:
    """Wait until the task runs created since ``since`` are all final and their count has not changed for
    ``quiet`` seconds (the recorder has written what it received); give up after ``limit`` s. True if settled."""
    if _interrupted:
        return False
    t0 = time.monotonic()
    last, stable_since = None, t0
    while time.monotonic() - t0 < limit:
        try:
            now = (_count(api, since, None), _count(api, since, _NOT_FINAL))
        except Exception:  # noqa: BLE001 - a server that is already gone has nothing left to settle
            return False
        if now != last:
            last, stable_since = now, time.monotonic()
        elif now[1] == 0 and time.monotonic() - stable_since >= quiet:
            return True
        time.sleep(0.25)
    return False
